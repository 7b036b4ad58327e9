"""`python -m bot backup PATH` while the store is open: a consistent, owner-only copy."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from bot.cli.backup import backup
from storage.store import Store
from tests.cli_helpers import clean_environment, run_cli
from tests.store_data import make_history


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_backup_copies_rows_and_images_while_the_store_is_open(tmp_path) -> None:
    database = tmp_path / "data" / "refinebot.db"
    store = await Store.open(database)
    try:
        history = await make_history(store)
        env = clean_environment(DATABASE_PATH=str(database))
        target = tmp_path / "backups" / "today"
        finished = await run_cli("backup", str(target), env=env, cwd=tmp_path)
        assert finished.returncode == 0, finished.stderr
        assert finished.lines[0].startswith(f"database: {database} -> {target / 'refinebot.db'}")
        assert "(2 sessions, 4 rounds, integrity ok)" in finished.lines[0]
        assert finished.lines[1].startswith("images: 4 copied")
        assert "0 already there" in finished.lines[1]

        # The store keeps working while and after the copy is taken.
        later = await store.sessions.create(
            42, chat_type="private", thread_id=0, user_id=1001, brief="after the backup"
        )
        assert later.id == 3
    finally:
        await store.close()

    copy = target / "refinebot.db"
    assert mode_of(copy) == 0o600
    assert mode_of(target) == 0o700
    assert not list(target.glob("*.partial")) and not list(target.glob("refinebot.db-*"))
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 2
        rows = conn.execute("SELECT id, image_sha FROM rounds ORDER BY id").fetchall()
        chosen = conn.execute("SELECT chosen_round_id FROM sessions WHERE id = 1").fetchone()[0]
        paths = dict(conn.execute("SELECT sha256, path FROM images").fetchall())
    finally:
        conn.close()
    assert chosen == history.chosen_round
    assert {round_id: sha for round_id, sha in rows} == history.shas
    for round_id, sha in history.shas.items():
        assert (target / paths[sha]).read_bytes() == history.images[round_id]

    # The restored copy opens as a Store: migrations are up to date, rounds read back.
    restored = await Store.open(copy)
    try:
        _, data = await restored.images.read(history.shas[history.chosen_round])
        assert data == history.images[history.chosen_round]
    finally:
        await restored.close()


async def test_a_second_backup_copies_only_new_images(tmp_path) -> None:
    database = tmp_path / "data" / "refinebot.db"
    store = await Store.open(database)
    try:
        await make_history(store)
        first = backup(database, tmp_path / "b")
        assert (first.images_copied, first.images_present) == (4, 0)
        second = backup(database, tmp_path / "b")
        assert (second.images_copied, second.images_present) == (0, 4)
        assert (second.sessions, second.rounds) == (2, 4)
    finally:
        await store.close()


async def test_backup_without_a_database_is_one_clear_line(tmp_path) -> None:
    env = clean_environment(DATABASE_PATH=str(tmp_path / "nothing" / "refinebot.db"))
    finished = await run_cli("backup", str(tmp_path / "b"), env=env, cwd=tmp_path)
    assert finished.returncode == 1
    assert finished.stderr.strip().startswith("refinebot: backup failed: no database at")
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "nothing").exists()

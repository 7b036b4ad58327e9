"""`python -m bot` and its data: one process per database, a 409 Conflict, and the start-up
problems of the data folder and the database file, each one clear line and no traceback."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.health import check_health, write_heartbeat
from storage.startup import StorageProblem, check_database, lock_database
from storage.store import Store
from tests.cli_helpers import fakes_environment, run_cli, start_bot, stop_bot
from tests.helpers import next_round, next_text


def one_clear_line(stderr: str) -> str:
    text = stderr.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


async def test_a_second_bot_on_the_same_database_refuses_to_start(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    first = await start_bot(env, tmp_path)
    try:
        telegram.user_sends_text(ana_chat, ana, "walnut bowl")
        round1 = await next_round(telegram, ana_chat)
        second = await run_cli(env=env, cwd=tmp_path)
        assert second.returncode == 1
        line = one_clear_line(second.stderr)
        assert "another refinebot" in line and f"pid {first.pid}" in line
        # The first one never noticed: its round's buttons still work.
        telegram.user_presses(ana_chat, ana, round1, "Accept")
        await next_round(telegram, ana_chat, after=round1.message_id)
    finally:
        await stop_bot(first)
    again = await start_bot(env, tmp_path)  # the lock went with the process
    try:
        telegram.user_sends_text(ana_chat, ana, "/help")
        await next_text(telegram, ana_chat, "refinebot", after=round1.message_id + 2)
    finally:
        await stop_bot(again)
    assert again.returncode == 0


async def test_a_409_conflict_stops_the_bot_with_one_line(
    telegram, openai_fake, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    telegram.fail_next("getUpdates", error_code=409, count=100)
    process = await start_bot(env, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    text = stderr.decode()
    assert "Traceback" not in text
    assert text.count("terminated by other getUpdates request") == 1  # one log line
    assert "another bot is getting this token's updates" in text.splitlines()[-1]


async def test_start_up_problems_are_one_clear_line_each(telegram, openai_fake, tmp_path) -> None:
    folder = tmp_path / "folder.db"
    folder.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    not_a_database = tmp_path / "data" / "refinebot.db"
    not_a_database.parent.mkdir()
    junk = b"PK\x03\x04 a zip file, not a database " * 50
    not_a_database.write_bytes(junk)
    cases = {
        folder: "is a folder",
        a_file / "refinebot.db": "inside a file",
        not_a_database: "is not a refinebot database",
    }
    for path, expected in cases.items():
        env = fakes_environment(telegram, openai_fake, path.parent) | {"DATABASE_PATH": str(path)}
        finished = await run_cli(env=env, cwd=tmp_path)
        assert finished.returncode in (1, 2), finished.stderr
        assert expected in one_clear_line(finished.stderr)
    assert not_a_database.read_bytes() == junk  # left untouched


def test_a_folder_the_bot_may_not_write_is_named(tmp_path, monkeypatch) -> None:
    # As root (CI) a read-only folder is still writable, so the refusal is simulated.
    import storage.startup

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(storage.startup.os, "open", refuse)
    try:
        lock_database(tmp_path / "data" / "refinebot.db")
    except StorageProblem as problem:
        assert "read-only or not writable" in str(problem) and "DATABASE_PATH" in str(problem)
    else:
        raise AssertionError("no StorageProblem")


async def test_a_damaged_database_is_found_at_start_and_by_health(tmp_path) -> None:
    path = tmp_path / "data" / "refinebot.db"
    store = await Store.open(path)
    session = await store.sessions.create(7, chat_type="private", thread_id=0, user_id=1, brief="x")
    for n in range(300):  # enough rows for the sessions table to span several pages
        await store.sessions.create(7, chat_type="private", thread_id=0, user_id=n, brief="y" * 200)
    await store.close()
    assert session.id == 1
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sessions'").fetchone()[
            0
        ]
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size  # the sessions table's root page: header left intact
    data[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))

    try:
        check_database(path)
    except StorageProblem as problem:
        assert "is damaged" in str(problem) and "python -m bot backup" in str(problem)
    else:
        raise AssertionError("no StorageProblem")
    write_heartbeat(path.parent, mode="polling")
    report = check_health(path)
    assert not report.ok and "damaged" in report.line


def test_one_lock_per_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "refinebot.db"
    lock = lock_database(path)
    try:
        lock_database(path)  # the same process again: flock locks are per open file
    except StorageProblem as problem:
        assert "already running" in str(problem)
    else:
        raise AssertionError("a second lock was granted")
    finally:
        lock.release()
    lock_database(path).release()

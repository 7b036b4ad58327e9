"""The Store: migrations, permissions, rounds, content-addressed images, pending edits."""

from __future__ import annotations

import sqlite3
import stat

import pytest
import sqlite_utils

from storage.records import RoundStatus, SessionStatus, UsageEntry
from storage.schema import MIGRATIONS, migrate
from storage.store import Store


async def test_new_database_is_private_wal_and_migrated(tmp_path) -> None:
    path = tmp_path / "sub" / "bot.db"
    store = await Store.open(path)
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    db = sqlite_utils.Database(path)
    assert db.journal_mode == "wal"
    assert {"chats", "sessions", "rounds", "images", "usage", "pending_edits"} <= set(
        db.table_names()
    )
    assert migrate(db) == []  # idempotent: nothing left to apply
    assert [r["id"] for r in db["migrations"].rows] == [m[0] for m in MIGRATIONS]


async def test_session_and_rounds_survive_reopen(tmp_path) -> None:
    path = tmp_path / "bot.db"
    store = await Store.open(path)
    session = await store.create_session(5, "private", 0, 5, "red saree")
    first = await store.create_round(session.id, None, "red saree", "brief", 5, "Ana")
    second = await store.create_round(session.id, first.id, "red saree, gold", "accept", 5, "Ana")
    assert (first.number, second.number, second.parent_round_id) == (1, 2, first.id)
    assert first.status is RoundStatus.PENDING
    await store.update_round(first.id, status=RoundStatus.DONE, score=6)
    await store.stop_session(session.id, first.id)
    await store.close()

    store = await Store.open(path)
    rounds = await store.session_rounds(session.id)
    assert [(r.number, r.status, r.score) for r in rounds] == [
        (1, RoundStatus.DONE, 6),
        (2, RoundStatus.PENDING, None),
    ]
    reopened = await store.get_session(session.id)
    assert reopened.status is SessionStatus.STOPPED and reopened.chosen_round_id == first.id
    assert [r.id for r in await store.running_rounds()] == [second.id]
    [summary] = await store.chat_sessions(5, 0)
    assert (summary.rounds, summary.best_score) == (2, 6)
    await store.close()


async def test_images_are_content_addressed_files(tmp_path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    record = await store.save_image(b"\x89PNG fake", "image/png", 4, 3)
    again = await store.save_image(b"\x89PNG fake", "image/png", 4, 3)
    assert record == again
    assert (tmp_path / record.path).read_bytes() == b"\x89PNG fake"
    assert record.path.endswith(f"{record.sha256}.png")
    assert (await store.read_image(record.sha256))[1] == b"\x89PNG fake"
    await store.close()


async def test_a_round_takes_its_image_in_the_transaction_that_stores_it(tmp_path) -> None:
    # A paid image is never stored without its round pointing at it (a crash in between
    # would make a restart call the round interrupted and Retry pay again), nor the reverse.
    store = await Store.open(tmp_path / "bot.db")
    session = await store.create_session(7, "private", 0, 1, "mug")
    round = await store.create_round(session.id, None, "mug", "brief", 1, "Ana")
    usage = UsageEntry(round.id, 7, 1, "image", "gpt-image-1", {"output_tokens": 9}, 0.01)
    with pytest.raises(sqlite3.OperationalError):  # the round's part fails: nothing is kept
        await store.save_image(
            b"\x89PNG one", "image/png", 4, 3, usage, round_id=round.id, round_values={"x": 1}
        )
    assert (await store.get_round(round.id)).image_sha is None
    with sqlite3.connect(tmp_path / "bot.db") as db:
        assert db.execute("SELECT COUNT(*) FROM images").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM usage").fetchone() == (0,)
    record = await store.save_image(
        b"\x89PNG one",
        "image/png",
        4,
        3,
        usage,
        round_id=round.id,
        round_values={"status": RoundStatus.CRITIQUING},
    )
    kept = await store.get_round(round.id)
    assert (kept.image_sha, kept.status) == (record.sha256, RoundStatus.CRITIQUING)
    await store.close()


async def test_pending_edit_taken_once_and_matched_by_prompt(tmp_path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    session = await store.create_session(-100, "supergroup", 0, 5, "b")
    round = await store.create_round(session.id, None, "b", "brief", 5, "Ana")
    await store.set_pending_edit(-100, 0, 5, round.id, prompt_message_id=77)
    assert await store.take_pending_edit(-100, 0, 5, prompt_message_id=78) is None
    taken = await store.take_pending_edit(-100, 0, 5, prompt_message_id=77)
    assert taken is not None and taken.round_id == round.id
    assert await store.take_pending_edit(-100, 0, 5) is None
    await store.close()

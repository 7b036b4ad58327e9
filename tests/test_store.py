"""The Store: migrations, permissions, rounds and their drafts, content-addressed images,
pending edits; every named write is one transaction (a failing part rolls all of it back)."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from storage import schema
from storage.records import (
    AutopilotStatus,
    DraftPlan,
    DraftRecord,
    ImageRecord,
    RoundRecord,
    RoundStatus,
    SessionStatus,
    UsageEntry,
)
from storage.schema import MIGRATIONS, migrate
from storage.store import Store
from storage.transactions import transaction


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[Store]:
    store = await Store.open(path)
    yield store
    await store.close()


async def new_round(
    store: Store, seeds: Sequence[int | None] = (None,), chat_id: int = 7
) -> RoundRecord:
    """A pending round of a new session, with one pending draft per seed."""
    session = await store.sessions.create(
        chat_id, chat_type="private", thread_id=0, user_id=1, brief="mug"
    )
    return await store.rounds.create(
        session.id,
        parent_id=None,
        prompt="mug",
        action="brief",
        actor_id=1,
        actor_name="Ana",
        drafts=[DraftPlan(seed) for seed in seeds],
    )


async def draw(
    store: Store,
    draft: DraftRecord,
    data: bytes = b"\x89PNG one",
    *,
    takes: bool = False,
    usage: UsageEntry | None = None,
) -> ImageRecord:
    """Store an image the draft drew (1200 ms), as the engine does."""
    return await store.save_draft_image(
        draft.id,
        data=data,
        mime="image/png",
        width=4,
        height=3,
        usage=usage,
        generate_ms=1200,
        round_takes_it=takes,
    )


def image_usage(round: RoundRecord) -> UsageEntry:
    return UsageEntry(round.id, 7, 1, "image", "gpt-image-1", {"output_tokens": 9}, 0.01)


def fail_on(path: Path, event: str, table: str) -> None:
    """From now on, every `event` (INSERT, UPDATE) on `table` fails: one part of a write."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            f"CREATE TRIGGER fail_{event}_{table} BEFORE {event} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'this part fails'); END"
        )


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# --- the database ---------------------------------------------------------------------------


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


def schema_and_migrations(db: sqlite_utils.Database) -> tuple[list[Any], list[Any]]:
    tables = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    done = db.execute("SELECT id, name FROM migrations ORDER BY id").fetchall()
    return tables, done


def test_a_migration_failing_half_way_changes_nothing(tmp_path, monkeypatch) -> None:
    db = sqlite_utils.Database(tmp_path / "bot.db")
    migrate(db)
    before = schema_and_migrations(db)

    def broken(db: sqlite_utils.Database) -> None:
        db.execute("ALTER TABLE chats ADD COLUMN nickname TEXT")
        db.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY)")
        db.execute("CREATE INDEX chats_by_type ON chats(type)")
        db.execute("INSERT INTO chats (id, type, created_at) VALUES (1, 'private', 'now')")
        raise RuntimeError("half-way")

    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS, (99, "broken", broken)])
    with pytest.raises(RuntimeError, match="half-way"):
        schema.migrate(db)
    assert schema_and_migrations(db) == before
    assert db.execute("SELECT COUNT(*) FROM chats").fetchone()[0] == 0

    def fixed(db: sqlite_utils.Database) -> None:
        db.execute("ALTER TABLE chats ADD COLUMN nickname TEXT")

    monkeypatch.setattr(schema, "MIGRATIONS", [*MIGRATIONS, (99, "fixed", fixed)])
    assert schema.migrate(db) == [99]
    assert "nickname" in db["chats"].columns_dict


def test_transactions_nest_as_savepoints(tmp_path) -> None:
    db = sqlite_utils.Database(tmp_path / "t.db")
    db.execute("CREATE TABLE t (n INTEGER)")
    with transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError), transaction(db):  # only this part is undone
            db.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError()
        db.execute("INSERT INTO t VALUES (3)")
    with pytest.raises(RuntimeError), transaction(db):  # all of it is undone
        db.execute("INSERT INTO t VALUES (4)")
        with transaction(db):
            db.execute("INSERT INTO t VALUES (5)")
        raise RuntimeError()
    assert db.execute("SELECT n FROM t ORDER BY n").fetchall() == [(1,), (3,)]
    assert not db.conn.in_transaction


def old_version_database(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database migrated to 6, with rows as a version before drafts-for-every-round wrote
    them: manual rounds without drafts (draft_count NULL), an autopilot round with two."""
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", MIGRATIONS[:6])
        db = sqlite_utils.Database(path)
        assert schema.migrate(db) == [1, 2, 3, 4, 5, 6]
    t = "2024-05-01T10:00:00.000+00:00"
    later = "2024-05-01T10:00:09.000+00:00"
    statements: list[tuple[str, tuple[Any, ...]]] = [
        ("INSERT INTO chats (id, type, created_at) VALUES (7, 'private', ?)", (t,)),
        (
            "INSERT INTO sessions (id, chat_id, started_by, brief, created_at, updated_at) "
            "VALUES (1, 7, 1, 'mug', ?, ?)",
            (t, t),
        ),
        (
            "INSERT INTO images (sha256, path, mime, width, height, size_bytes, created_at) "
            "VALUES ('a', 'images/a/a.png', 'image/png', 4, 3, 9, ?), "
            "('b', 'images/b/b.png', 'image/png', 4, 3, 9, ?)",
            (t, t),
        ),
        (  # 1: manual, done, critiqued
            "INSERT INTO rounds (id, session_id, number, prompt, action, acted_by, status, "
            "image_sha, critique, score, fidelity, created_at, image_at, finished_at, "
            "generate_ms, critique_ms) VALUES (1, 1, 1, 'mug', 'brief', 1, 'done', 'a', "
            "'{\"score\": 6}', 6, 8, ?, ?, ?, 1200, 800)",
            (t, later, later),
        ),
        (  # 2: manual, failed without an image
            "INSERT INTO rounds (id, session_id, number, prompt, action, acted_by, status, "
            "error_kind, error, created_at, finished_at, generate_ms) VALUES (2, 1, 2, 'mug', "
            "'retry', 1, 'failed', 'blocked', 'the image was blocked', ?, ?, 300)",
            (t, later),
        ),
        (  # 3: autopilot, two drafts, the second kept
            "INSERT INTO rounds (id, session_id, number, prompt, action, acted_by, status, "
            "image_sha, score, created_at, draft_count) "
            "VALUES (3, 1, 3, 'mug', 'auto', 1, 'done', 'b', 7, ?, 2)",
            (t,),
        ),
        (
            "INSERT INTO drafts (round_id, number, seed, status, image_sha, score, created_at, "
            "kept) VALUES (3, 1, 11, 'done', 'a', 5, ?, 0), (3, 2, 12, 'done', 'b', 7, ?, 1)",
            (t, t),
        ),
        (  # 4: manual, left pending by a crash
            "INSERT INTO rounds (id, session_id, number, prompt, action, acted_by, status, "
            "created_at) VALUES (4, 1, 4, 'mug', 'accept', 1, 'pending', ?)",
            (t,),
        ),
    ]
    for sql, params in statements:
        db.execute(sql, params)
    db.conn.close()


async def test_migration_7_gives_every_old_round_its_draft(path, monkeypatch) -> None:
    old_version_database(path, monkeypatch)
    store = await Store.open(path)  # applies migration 7
    try:
        rounds = {r.id: r for r in await store.rounds.of_session(1)}
        drafts = {r: await store.rounds.drafts(r) for r in rounds}
    finally:
        await store.close()
    assert [r.draft_count for r in rounds.values()] == [1, 1, 2, 1]
    [done] = drafts[1]
    assert (done.number, done.seed, done.status, done.image_sha, done.kept) == (
        1,
        None,
        RoundStatus.DONE,
        "a",
        1,
    )
    assert (done.critique, done.score, done.fidelity) == ('{"score": 6}', 6, 8)
    assert (done.generate_ms, done.critique_ms, done.error_kind, done.error) == (
        1200,
        800,
        None,
        None,
    )
    assert (done.created_at, done.finished_at) == (rounds[1].created_at, rounds[1].finished_at)
    [failed] = drafts[2]
    assert (failed.status, failed.image_sha, failed.kept) == (RoundStatus.FAILED, None, 0)
    assert (failed.error_kind, failed.error, failed.generate_ms) == (
        "blocked",
        "the image was blocked",
        300,
    )
    assert (failed.finished_at, failed.score) == (rounds[2].finished_at, None)
    assert [(d.number, d.seed, d.kept) for d in drafts[3]] == [(1, 11, 0), (2, 12, 1)]
    [pending] = drafts[4]
    assert (pending.status, pending.kept, pending.finished_at) == (RoundStatus.PENDING, 0, None)


# --- sessions ---------------------------------------------------------------------------------


async def test_session_and_rounds_survive_reopen(tmp_path) -> None:
    path = tmp_path / "bot.db"
    store = await Store.open(path)
    session = await store.sessions.create(
        5, chat_type="private", thread_id=0, user_id=5, brief="red saree"
    )
    first = await store.rounds.create(
        session.id,
        parent_id=None,
        prompt="red saree",
        action="brief",
        actor_id=5,
        actor_name="Ana",
        drafts=[DraftPlan(None)],
    )
    second = await store.rounds.create(
        session.id,
        parent_id=first.id,
        prompt="red saree, gold",
        action="accept",
        actor_id=5,
        actor_name="Ana",
        drafts=[DraftPlan(None)],
    )
    assert (first.number, second.number, second.parent_round_id) == (1, 2, first.id)
    assert first.status is RoundStatus.PENDING
    [draft] = await store.rounds.drafts(first.id)
    await draw(store, draft)
    await store.rounds.critique_draft(
        draft.id, critique="{}", score=6, fidelity=None, critique_ms=1
    )
    await store.rounds.keep_draft(first.id, draft.id, done=True)
    await store.sessions.stop(session.id, chosen_round_id=first.id)
    await store.close()

    store = await Store.open(path)
    rounds = await store.rounds.of_session(session.id)
    assert [(r.number, r.status, r.score) for r in rounds] == [
        (1, RoundStatus.DONE, 6),
        (2, RoundStatus.PENDING, None),
    ]
    reopened = await store.sessions.get(session.id)
    assert reopened.status is SessionStatus.STOPPED and reopened.chosen_round_id == first.id
    assert [r.id for r in await store.rounds.running()] == [second.id]
    [summary] = await store.sessions.of_chat(5, 0)
    assert (summary.rounds, summary.best_score) == (2, 6)
    await store.close()


async def test_autopilot_runs_start_running_and_finish_once(store) -> None:
    round = await new_round(store)
    run = await store.sessions.create_run(
        round.session_id, start_round_id=None, rounds=3, drafts=2, threshold=8, started_by=1
    )
    assert (run.status, run.finished_at, run.drafts) == (AutopilotStatus.RUNNING, None, 2)
    assert await store.sessions.get_run(run.id) == run
    with pytest.raises(ValueError):
        await store.sessions.finish_run(
            run.id, status=AutopilotStatus.RUNNING, stop_reason="x", best_round_id=None
        )
    done = await store.sessions.finish_run(
        run.id, status=AutopilotStatus.DONE, stop_reason="threshold", best_round_id=round.id
    )
    assert (done.status, done.stop_reason, done.best_round_id) == (
        AutopilotStatus.DONE,
        "threshold",
        round.id,
    )
    assert done.finished_at is not None
    with pytest.raises(LookupError):
        await store.sessions.stop(999, chosen_round_id=round.id)
    assert await store.sessions.count(7, 0) == 1


# --- rounds and their drafts -----------------------------------------------------------------


async def test_a_round_is_created_with_its_numbered_pending_drafts(store) -> None:
    session = await store.sessions.create(
        7, chat_type="private", thread_id=0, user_id=1, brief="mug"
    )
    run = await store.sessions.create_run(
        session.id, start_round_id=None, rounds=2, drafts=3, threshold=8, started_by=1
    )
    round = await store.rounds.create(
        session.id,
        parent_id=None,
        prompt="mug",
        action="auto",
        actor_id=1,
        actor_name="Ana",
        drafts=[DraftPlan(11), DraftPlan(22), DraftPlan(None)],
        autopilot_id=run.id,
    )
    assert (round.number, round.status, round.draft_count, round.autopilot_id) == (
        1,
        RoundStatus.PENDING,
        3,
        run.id,
    )
    drafts = await store.rounds.drafts(round.id)
    assert [(d.number, d.seed, d.status, d.kept) for d in drafts] == [
        (1, 11, RoundStatus.PENDING, 0),
        (2, 22, RoundStatus.PENDING, 0),
        (3, None, RoundStatus.PENDING, 0),
    ]
    assert (await store.sessions.get(session.id)).updated_at == round.created_at
    with pytest.raises(ValueError):
        await store.rounds.create(
            session.id,
            parent_id=None,
            prompt="mug",
            action="brief",
            actor_id=1,
            actor_name="Ana",
            drafts=[],
        )


async def test_creating_a_round_is_one_transaction(store, path) -> None:
    session = await store.sessions.create(
        7, chat_type="private", thread_id=0, user_id=1, brief="mug"
    )
    fail_on(path, "INSERT", "drafts")  # the round is inserted, its drafts fail
    with pytest.raises(sqlite3.IntegrityError):
        await store.rounds.create(
            session.id,
            parent_id=None,
            prompt="mug",
            action="brief",
            actor_id=1,
            actor_name="Ana",
            drafts=[DraftPlan(None)],
        )
    assert rows(path, "SELECT COUNT(*) FROM rounds") == [(0,)]
    assert (await store.sessions.get(session.id)).updated_at == session.updated_at


async def test_starting_makes_the_round_and_its_pending_drafts_generating(store, path) -> None:
    round = await new_round(store, seeds=[1, 2])
    _, second = await store.rounds.drafts(round.id)
    await store.rounds.cancel_draft(second.id)
    started = await store.rounds.start(round.id)
    assert started.status is RoundStatus.GENERATING
    assert [d.status for d in await store.rounds.drafts(round.id)] == [
        RoundStatus.GENERATING,
        RoundStatus.CANCELLED,
    ]
    other = await new_round(store)
    fail_on(path, "UPDATE", "rounds")
    with pytest.raises(sqlite3.IntegrityError):
        await store.rounds.start(other.id)
    assert [d.status for d in await store.rounds.drafts(other.id)] == [RoundStatus.PENDING]


async def test_a_draft_takes_its_image_and_usage_in_one_transaction(store, path) -> None:
    round = await new_round(store, seeds=[1, 2])
    await store.rounds.start(round.id)
    first, _ = await store.rounds.drafts(round.id)
    record = await draw(store, first, usage=image_usage(round))
    assert (path.parent / record.path).read_bytes() == b"\x89PNG one"
    drawn, other = await store.rounds.drafts(round.id)
    assert (drawn.image_sha, drawn.generate_ms, drawn.status, drawn.kept) == (
        record.sha256,
        1200,
        RoundStatus.CRITIQUING,
        0,
    )
    assert (other.image_sha, other.status) == (None, RoundStatus.GENERATING)
    untouched = await store.rounds.get(round.id)  # an autopilot round keeps one later
    assert (untouched.image_sha, untouched.status) == (None, RoundStatus.GENERATING)
    assert rows(path, "SELECT round_id, kind, cost_usd FROM usage") == [(round.id, "image", 0.01)]


async def test_the_round_takes_the_image_of_its_draft_in_the_same_transaction(store) -> None:
    round = await new_round(store)
    await store.rounds.start(round.id)
    [draft] = await store.rounds.drafts(round.id)
    record = await draw(store, draft, takes=True, usage=image_usage(round))
    taken = await store.rounds.get(round.id)
    assert (taken.image_sha, taken.generate_ms, taken.status) == (
        record.sha256,
        1200,
        RoundStatus.CRITIQUING,
    )
    assert taken.image_at is not None and taken.finished_at is None
    [kept] = await store.rounds.drafts(round.id)
    assert (kept.image_sha, kept.status, kept.kept) == (record.sha256, RoundStatus.CRITIQUING, 1)


async def test_a_failing_part_keeps_no_image_row_nor_usage(store, path) -> None:
    # A paid image is never stored without its round pointing at it (a crash in between
    # would make a restart call the round interrupted and Retry pay again), nor the reverse.
    round = await new_round(store)
    [draft] = await store.rounds.drafts(round.id)
    fail_on(path, "UPDATE", "rounds")  # the image row and usage are in, the round fails
    with pytest.raises(sqlite3.IntegrityError):
        await draw(store, draft, takes=True, usage=image_usage(round))
    with pytest.raises(LookupError):  # no such draft
        await store.save_draft_image(
            999,
            data=b"\x89PNG two",
            mime="image/png",
            width=4,
            height=3,
            usage=image_usage(round),
            generate_ms=1,
            round_takes_it=False,
        )
    assert rows(path, "SELECT COUNT(*) FROM images") == [(0,)]
    assert rows(path, "SELECT COUNT(*) FROM usage") == [(0,)]
    [unchanged] = await store.rounds.drafts(round.id)
    assert (unchanged.image_sha, unchanged.kept) == (None, 0)
    assert (await store.rounds.get(round.id)).image_sha is None


async def test_a_draft_is_critiqued_failed_or_cancelled(store) -> None:
    round = await new_round(store, seeds=[1, 2, 3])
    await store.rounds.start(round.id)
    critiqued, failed, cancelled = await store.rounds.drafts(round.id)
    await draw(store, critiqued)
    await store.rounds.fail_draft(
        critiqued.id, status=RoundStatus.DONE, error_kind="critic", error="no critique"
    )
    done = await store.rounds.critique_draft(
        critiqued.id, critique='{"score": 8}', score=8, fidelity=9, critique_ms=700
    )
    assert (done.status, done.critique, done.score, done.fidelity, done.critique_ms) == (
        RoundStatus.DONE,
        '{"score": 8}',
        8,
        9,
        700,
    )
    assert (done.error_kind, done.error) == (None, None) and done.finished_at is not None
    gone = await store.rounds.fail_draft(
        failed.id, status=RoundStatus.FAILED, error_kind="blocked", error="blocked"
    )
    assert (gone.status, gone.error_kind, gone.image_sha) == (RoundStatus.FAILED, "blocked", None)
    assert gone.finished_at is not None
    with pytest.raises(ValueError):
        await store.rounds.fail_draft(
            cancelled.id, status=RoundStatus.CANCELLED, error_kind="x", error="x"
        )
    stopped = await store.rounds.cancel_draft(cancelled.id)
    assert stopped.status is RoundStatus.CANCELLED and stopped.finished_at is not None
    assert (await store.rounds.cancel_draft(done.id)).status is RoundStatus.DONE  # finished
    with pytest.raises(LookupError):
        await store.rounds.critique_draft(999, critique="{}", score=1, fidelity=None, critique_ms=1)


async def drawn_drafts(store: Store) -> tuple[RoundRecord, DraftRecord, DraftRecord]:
    """A generating round with two drafts drawn: the first critiqued (6), the second not."""
    round = await new_round(store, seeds=[1, 2])
    await store.rounds.start(round.id)
    first, second = await store.rounds.drafts(round.id)
    await draw(store, first, b"\x89PNG first")
    await draw(store, second, b"\x89PNG second")
    first = await store.rounds.critique_draft(
        first.id, critique='{"score": 6}', score=6, fidelity=7, critique_ms=500
    )
    second = await store.rounds.fail_draft(
        second.id, status=RoundStatus.DONE, error_kind="interrupted", error="restart"
    )
    return round, first, second


async def test_keeping_a_draft_gives_the_round_all_of_it(store) -> None:
    round, first, second = await drawn_drafts(store)
    kept = await store.rounds.keep_draft(round.id, first.id, done=True)
    assert (kept.image_sha, kept.generate_ms, kept.critique, kept.score) == (
        first.image_sha,
        1200,
        '{"score": 6}',
        6,
    )
    assert (kept.fidelity, kept.critique_ms, kept.error_kind, kept.error) == (7, 500, None, None)
    assert kept.status is RoundStatus.DONE and kept.finished_at is not None
    assert kept.image_at is not None
    assert [d.kept for d in await store.rounds.drafts(round.id)] == [1, 0]

    # A restart keeps the other one instead: still to be critiqued, its image time kept.
    again = await store.rounds.keep_draft(round.id, second.id, done=False)
    assert (again.image_sha, again.score, again.error_kind) == (
        second.image_sha,
        None,
        "interrupted",
    )
    assert (again.status, again.finished_at) == (RoundStatus.CRITIQUING, None)
    assert again.image_at == kept.image_at
    assert [d.kept for d in await store.rounds.drafts(round.id)] == [0, 1]


async def test_keeping_a_draft_is_one_transaction_and_checked(store, path) -> None:
    round, first, _ = await drawn_drafts(store)
    other = await new_round(store)
    [foreign] = await store.rounds.drafts(other.id)
    with pytest.raises(LookupError):  # not one of the round's drafts
        await store.rounds.keep_draft(round.id, foreign.id, done=True)
    with pytest.raises(ValueError):  # nothing to keep
        await store.rounds.keep_draft(other.id, foreign.id, done=True)
    fail_on(path, "UPDATE", "rounds")  # the drafts' kept marks are set, the round fails
    with pytest.raises(sqlite3.IntegrityError):
        await store.rounds.keep_draft(round.id, first.id, done=True)
    assert [d.kept for d in await store.rounds.drafts(round.id)] == [0, 0]


async def test_a_round_fails_is_cancelled_and_is_shown(store, path) -> None:
    failed = await new_round(store)
    ended = await store.rounds.fail(
        failed.id, status=RoundStatus.FAILED, error_kind="blocked", error="blocked"
    )
    assert (ended.status, ended.error_kind, ended.error) == (
        RoundStatus.FAILED,
        "blocked",
        "blocked",
    )
    assert ended.finished_at is not None
    with pytest.raises(ValueError):
        await store.rounds.fail(failed.id, status=RoundStatus.PENDING, error_kind="x", error="x")

    round, first, _ = await drawn_drafts(store)
    await store.rounds.fail_draft(first.id, status=RoundStatus.DONE, error_kind="x", error="x")
    third = await new_round(store, seeds=[1, 2])
    [finished, _] = await store.rounds.drafts(third.id)
    await store.rounds.fail_draft(finished.id, status=RoundStatus.FAILED, error_kind="x", error="x")
    cancelled = await store.rounds.cancel(third.id)
    assert cancelled.status is RoundStatus.CANCELLED and cancelled.finished_at is not None
    assert [d.status for d in await store.rounds.drafts(third.id)] == [
        RoundStatus.FAILED,
        RoundStatus.CANCELLED,
    ]

    shown = await store.rounds.shown(round.id, 321)
    assert shown.message_id == 321
    assert await store.rounds.by_message(7, 321) == shown
    assert await store.rounds.by_message(8, 321) is None
    round_, session, settings = await store.rounds.with_context(round.id)
    assert (round_, session.id, settings.chat_id) == (shown, round.session_id, 7)
    assert await store.rounds.with_context(999) is None
    for write in (
        store.rounds.cancel(999),
        store.rounds.shown(999, 1),
        store.rounds.start(999),
        store.rounds.fail(999, status=RoundStatus.FAILED, error_kind="x", error="x"),
    ):
        with pytest.raises(LookupError):
            await write

    fourth = await new_round(store)
    fail_on(path, "UPDATE", "rounds")  # the drafts are cancelled, the round fails
    with pytest.raises(sqlite3.IntegrityError):
        await store.rounds.cancel(fourth.id)
    assert [d.status for d in await store.rounds.drafts(fourth.id)] == [RoundStatus.PENDING]


async def test_a_restart_interrupts_every_unfinished_draft_and_run(store, path) -> None:
    round = await new_round(store, seeds=[1, 2, 3])
    run = await store.sessions.create_run(
        round.session_id, start_round_id=None, rounds=1, drafts=3, threshold=8, started_by=1
    )
    ended = await store.sessions.create_run(
        round.session_id, start_round_id=None, rounds=1, drafts=1, threshold=8, started_by=1
    )
    await store.sessions.finish_run(
        ended.id, status=AutopilotStatus.DONE, stop_reason="rounds", best_round_id=None
    )
    await store.rounds.start(round.id)
    drawn, _, critiqued = await store.rounds.drafts(round.id)
    await draw(store, drawn, b"\x89PNG drawn")
    await draw(store, critiqued, b"\x89PNG critiqued")
    await store.rounds.critique_draft(
        critiqued.id, critique="{}", score=5, fidelity=None, critique_ms=1
    )
    manual = await new_round(store)  # a manual round's draft, still pending

    fail_on(path, "UPDATE", "autopilot_runs")  # the drafts are marked, the runs fail
    with pytest.raises(sqlite3.IntegrityError):
        await store.rounds.interrupt_unfinished()
    assert [d.status for d in await store.rounds.drafts(round.id)] == [
        RoundStatus.CRITIQUING,
        RoundStatus.GENERATING,
        RoundStatus.DONE,
    ]
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TRIGGER fail_UPDATE_autopilot_runs")

    assert await store.rounds.interrupt_unfinished() == 1
    after = await store.rounds.drafts(round.id)
    assert [(d.status, d.error_kind) for d in after] == [
        (RoundStatus.DONE, "interrupted"),
        (RoundStatus.FAILED, "interrupted"),
        (RoundStatus.DONE, None),
    ]
    assert after[0].image_sha is not None and after[0].finished_at is not None
    [manual_draft] = await store.rounds.drafts(manual.id)
    assert manual_draft.status is RoundStatus.FAILED
    assert (await store.sessions.get_run(run.id)).status is AutopilotStatus.INTERRUPTED
    assert (await store.sessions.get_run(ended.id)).status is AutopilotStatus.DONE
    assert {r.id for r in await store.rounds.running()} == {round.id, manual.id}
    assert await store.rounds.interrupt_unfinished() == 0


# --- images ------------------------------------------------------------------------------------


async def test_images_are_content_addressed_files(tmp_path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    record = await store.images.save(b"\x89PNG fake", mime="image/png", width=4, height=3)
    again = await store.images.save(b"\x89PNG fake", mime="image/png", width=4, height=3)
    assert record == again
    assert (tmp_path / record.path).read_bytes() == b"\x89PNG fake"
    assert record.path.endswith(f"{record.sha256}.png")
    assert (await store.images.read(record.sha256))[1] == b"\x89PNG fake"
    await store.close()


async def test_a_missing_image_is_a_lookup_error(store, path) -> None:
    with pytest.raises(LookupError):
        await store.images.read("0" * 64)
    record = await store.images.save(b"\x89PNG gone", mime="image/png", width=4, height=3)
    (path.parent / record.path).unlink()
    with pytest.raises(LookupError):
        await store.images.read(record.sha256)


# --- chats ---------------------------------------------------------------------------------------


async def test_pending_edit_taken_once_and_matched_by_prompt(tmp_path) -> None:
    store = await Store.open(tmp_path / "bot.db")
    session = await store.sessions.create(
        -100, chat_type="supergroup", thread_id=0, user_id=5, brief="b"
    )
    round = await store.rounds.create(
        session.id,
        parent_id=None,
        prompt="b",
        action="brief",
        actor_id=5,
        actor_name="Ana",
        drafts=[DraftPlan(None)],
    )
    await store.chats.set_pending_edit(-100, 0, 5, round_id=round.id, prompt_message_id=77)
    assert await store.chats.take_pending_edit(-100, 0, 5, prompt_message_id=78) is None
    taken = await store.chats.take_pending_edit(-100, 0, 5, prompt_message_id=77)
    assert taken is not None and taken.round_id == round.id
    assert await store.chats.take_pending_edit(-100, 0, 5) is None
    await store.close()


async def test_usage_and_quota_counts_follow_a_group_upgraded_to_a_supergroup(store) -> None:
    round = await new_round(store, chat_id=-5)
    await store.chats.record_usage(
        UsageEntry(round.id, -5, 1, "critic", "gpt-5", {"input_tokens": 3}, None)
    )
    await store.chats.set_pending_edit(-5, 0, 1, round_id=round.id, prompt_message_id=3)
    assert await store.chats.rounds_since("2000-01-01", 1, -5) == (1, 1)
    assert await store.chats.migrate(-5, -1005) == 1
    assert await store.chats.migrated_from(-1005) == -5
    assert await store.chats.migrated_from(-5) is None
    assert await store.chats.rounds_since("2000-01-01", 1, -1005) == (1, 1)
    [usage] = await store.chats.usage_since("2000-01-01", user_id=1)
    assert (usage.chat_id, usage.rounds, usage.images, usage.unpriced) == (-1005, 1, 0, 1)
    assert await store.chats.take_pending_edit(-1005, 0, 1) is not None
    assert await store.sessions.count(-1005, 0) == 1

"""IMAGE_RETENTION_DAYS: old image files go, rows and the images chosen at Stop stay."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.store import Store
from tests.store_data import History, make_history

NOW = datetime.now(UTC)


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "data" / "refinebot.db")
    yield store
    await store.close()


def database(store: Store, tmp_path: Path) -> Path:
    return tmp_path / "data" / "refinebot.db"


def age_images(db: Path, shas: list[str], days: float) -> None:
    """Pretend these images were made `days` before NOW."""
    stamp = (NOW - timedelta(days=days)).isoformat(timespec="milliseconds")
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "UPDATE images SET created_at = ? WHERE sha256 = ?", [(stamp, sha) for sha in shas]
        )


def image_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sha256, path, pruned_at FROM images").fetchall()
    return {sha: (path, pruned) for sha, path, pruned in rows}


async def test_old_images_are_pruned_but_rows_and_chosen_images_stay(store, tmp_path) -> None:
    db = database(store, tmp_path)
    history: History = await make_history(store)
    chosen_sha = history.shas[history.chosen_round]
    old = list(history.shas.values())[:3]  # both rounds of session 1, first of session 2
    recent = list(history.shas.values())[3]
    age_images(db, old, days=31)
    age_images(db, [recent], days=29)

    report = await store.images.prune(older_than_days=30, now=NOW)

    expected = sorted(sha for sha in old if sha != chosen_sha)
    assert sorted(report.pruned) == expected
    assert report.kept_chosen == 1
    assert report.freed_bytes == sum(
        len(history.images[r]) for r, sha in history.shas.items() if sha in expected
    )
    rows = image_rows(db)
    assert set(rows) == set(history.shas.values())  # every row is still there
    for sha, (path, pruned_at) in rows.items():
        gone = sha in expected
        assert (tmp_path / "data" / path).exists() is not gone
        assert (pruned_at is not None) is gone
    # History still reads: every round keeps its image_sha, the chosen image is readable.
    rounds = await store.rounds.of_session(history.session_ids[0])
    assert [r.image_sha for r in rounds] == [history.shas[r.id] for r in rounds]
    _, data = await store.images.read(chosen_sha)
    assert data == history.images[history.chosen_round]

    again = await store.images.prune(older_than_days=30, now=NOW)
    assert again.pruned == [] and again.freed_bytes == 0


async def test_nothing_recent_is_touched(store, tmp_path) -> None:
    db = database(store, tmp_path)
    await make_history(store)
    report = await store.images.prune(older_than_days=1)
    assert report.pruned == [] and report.kept_chosen == 0
    assert all(pruned is None for _, pruned in image_rows(db).values())


async def test_an_interrupted_prune_finishes_next_time(store, tmp_path) -> None:
    db = database(store, tmp_path)
    history = await make_history(store)
    sha = history.shas[max(history.shas)]
    with sqlite3.connect(db) as conn:  # marked, but the file was never deleted
        conn.execute("UPDATE images SET pruned_at = '2020-01-01T00:00:00.000+00:00'")
        conn.execute(
            "UPDATE images SET pruned_at = NULL WHERE sha256 != ?",
            (sha,),
        )
    path = tmp_path / "data" / image_rows(db)[sha][0]
    assert path.exists()
    report = await store.images.prune(older_than_days=30, now=NOW)
    assert report.pruned == []
    assert not path.exists()


async def test_an_image_made_again_comes_back(store, tmp_path) -> None:
    db = database(store, tmp_path)
    history = await make_history(store)
    round_id = max(history.shas)
    sha = history.shas[round_id]
    age_images(db, [sha], days=40)
    assert (await store.images.prune(older_than_days=30, now=NOW)).pruned == [sha]
    # The same bytes saved again (content-addressed) restore the file and clear the mark.
    await store.images.save(history.images[round_id], mime="image/png", width=64, height=64)
    path, pruned_at = image_rows(db)[sha]
    assert (tmp_path / "data" / path).exists() and pruned_at is None


def mark_pruned(db: Path, sha: str) -> None:
    """A pruning that marked the row and was cut short before deleting the file."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE images SET pruned_at = '2020-01-01T00:00:00.000+00:00' WHERE sha256 = ?", (sha,)
        )


async def test_content_saved_again_while_marked_keeps_its_file(store, tmp_path) -> None:
    # E.g. the same product photo sent again for a new session: it must not be deleted next.
    db = database(store, tmp_path)
    history = await make_history(store)
    round_id = max(history.shas)
    sha = history.shas[round_id]
    mark_pruned(db, sha)
    await store.images.save(history.images[round_id], mime="image/png", width=64, height=64)
    report = await store.images.prune(older_than_days=30, now=NOW)
    assert sha not in report.pruned
    path, pruned_at = image_rows(db)[sha]
    assert pruned_at is None and (tmp_path / "data" / path).exists()


async def test_an_image_chosen_after_it_was_marked_keeps_its_file(store, tmp_path) -> None:
    db = database(store, tmp_path)
    history = await make_history(store)
    round_id = max(history.shas)  # the newest round of the second session, still active
    sha = history.shas[round_id]
    mark_pruned(db, sha)
    _, data = await store.images.read(sha)  # Stop reads the file, then keeps the round
    await store.sessions.stop(history.session_ids[1], chosen_round_id=round_id)
    await store.images.prune(older_than_days=30, now=NOW)
    assert (await store.images.read(sha))[1] == data == history.images[round_id]
    assert image_rows(db)[sha][1] is None


async def test_images_of_rounds_in_flight_are_kept(store, tmp_path) -> None:
    db = database(store, tmp_path)
    history = await make_history(store)
    interrupted = max(history.shas)  # e.g. left 'critiquing' by a long outage
    await store.rounds.keep_draft(interrupted, history.drafts[interrupted], done=False)
    age_images(db, list(history.shas.values()), days=40)
    report = await store.images.prune(older_than_days=30, now=NOW)
    assert history.shas[interrupted] not in report.pruned
    assert len(report.pruned) == 2  # four images, one chosen, one in flight
    _, data = await store.images.read(history.shas[interrupted])
    assert data == history.images[interrupted]


async def test_days_must_be_positive(store) -> None:
    with pytest.raises(ValueError):
        await store.images.prune(older_than_days=0)


async def test_the_bot_schedules_retention_only_when_set(bots, make_settings) -> None:
    without = await bots.start(make_settings())
    assert without.job_queue.get_jobs_by_name("image-retention") == ()
    assert without.job_queue.get_jobs_by_name("heartbeat")
    await bots.stop(without)
    with_retention = await bots.start(make_settings(image_retention_days=30))
    (job,) = with_retention.job_queue.get_jobs_by_name("image-retention")
    assert job.job.trigger.interval.total_seconds() == 24 * 60 * 60
    await job.run(with_retention)  # runs the pruning now, against the bot's own database

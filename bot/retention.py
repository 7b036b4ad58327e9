"""Image retention (IMAGE_RETENTION_DAYS): delete old image files, keep every row.

Images are content-addressed files under `<data dir>/images/`; their rows in `images` stay, so
history, rounds and usage keep working. A pruned row gets `pruned_at` set, and its file is gone.
Images of rounds chosen at Stop (`sessions.chosen_round_id -> rounds.image_sha`) are never
pruned: they are the results people kept. Nor are images of rounds still in flight (a round
a long outage interrupted is critiqued from its stored image when the bot comes back), nor
the product photos of sessions still active (every later round is drawn from them).

Pruning uses its own short-lived SQLite connection: WAL lets it run next to the bot's.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 24 * 60 * 60.0
"""Seconds between two prunings (daily)."""
FIRST_RUN_DELAY = 30.0
"""Seconds after start-up before the first pruning."""

_CHOSEN = (
    "SELECT r.image_sha FROM sessions s JOIN rounds r ON r.id = s.chosen_round_id "
    "WHERE r.image_sha IS NOT NULL"
)
_REFERENCES = (
    "SELECT reference_sha FROM sessions WHERE reference_sha IS NOT NULL AND status = 'active'"
)
"""Product photos of sessions still going: every later round is drawn from them."""
_IN_FLIGHT = (
    "SELECT image_sha FROM rounds WHERE image_sha IS NOT NULL "
    "AND status IN ('pending', 'generating', 'critiquing')"
)
_NOT_NEEDED = (
    f"sha256 NOT IN ({_CHOSEN}) AND sha256 NOT IN ({_IN_FLIGHT}) AND sha256 NOT IN ({_REFERENCES})"
)
"""An image nobody still needs: not chosen, not in flight, no active session's product."""


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one pruning did.

    `pruned`: sha256 of every image whose row was marked pruned now (its file deleted, or
    already missing); `freed_bytes`: bytes of the files deleted; `kept_chosen`: images old
    enough to prune that were kept because a stopped session chose them.
    """

    pruned: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_chosen: int = 0


def prune_images(
    database_path: Path, older_than_days: int, *, now: datetime | None = None
) -> PruneReport:
    """Delete the files of images created more than `older_than_days` days before `now`,
    except chosen ones and those of rounds in flight; mark their rows `pruned_at`; return
    what was done.

    Rows are marked (in one transaction) before files are deleted, and files of rows marked
    earlier are deleted again if they are still there, so an interrupted run finishes next time.
    Each file is deleted only if, checked again right then, it is still marked and not needed:
    content saved again or chosen meanwhile keeps its file (and loses its mark).
    Blocking: run it in a thread from async code.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    database_path = Path(database_path)
    data_dir = database_path.parent.resolve()
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=older_than_days)).isoformat(timespec="milliseconds")
    stamp = now.isoformat(timespec="milliseconds")
    conn = sqlite3.connect(database_path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            candidates = conn.execute(
                "SELECT sha256, path FROM images WHERE pruned_at IS NULL AND created_at < ? "
                f"AND {_NOT_NEEDED}",
                (cutoff,),
            ).fetchall()
            kept = conn.execute(
                "SELECT COUNT(*) FROM images WHERE pruned_at IS NULL AND created_at < ? "
                f"AND sha256 IN ({_CHOSEN})",
                (cutoff,),
            ).fetchone()[0]
            leftovers = conn.execute(
                "SELECT sha256, path FROM images WHERE pruned_at IS NOT NULL"
            ).fetchall()
            conn.executemany(
                "UPDATE images SET pruned_at = ? WHERE sha256 = ?",
                [(stamp, sha) for sha, _ in candidates],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        freed, spared = 0, set()
        for sha, relative in candidates + leftovers:
            if not (data_dir / relative).exists():
                continue
            deleted = _delete_if_still_pruned(conn, data_dir, sha, relative)
            if deleted is None:
                spared.add(sha)
            else:
                freed += deleted
    finally:
        conn.close()
    return PruneReport([sha for sha, _ in candidates if sha not in spared], freed, int(kept))


def _delete_if_still_pruned(
    conn: sqlite3.Connection, data_dir: Path, sha: str, relative: str
) -> int | None:
    """Delete the file of an image marked pruned and return the bytes freed; or, if since it
    was marked it was saved again (mark cleared) or became needed (chosen, in flight, an
    active session's product photo), keep it, clear the mark and return None.

    The check and the deletion run under the database's write lock, which the bot's store
    takes to clear a mark when it saves the same content again: neither can slip between.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            f"SELECT pruned_at IS NOT NULL AND {_NOT_NEEDED} FROM images WHERE sha256 = ?",
            (sha,),
        ).fetchone()
        if row is not None and row[0]:
            return _delete_image_file(data_dir, relative)
        conn.execute("UPDATE images SET pruned_at = NULL WHERE sha256 = ?", (sha,))
        return None
    finally:
        conn.execute("COMMIT")


def _delete_image_file(data_dir: Path, relative: str) -> int:
    """Delete one image file inside `<data dir>/images`; return the bytes freed (0 if none)."""
    target = (data_dir / relative).resolve()
    if not target.is_relative_to(data_dir / "images"):
        log.warning("retention: not deleting %s: outside the image store", relative)
        return 0
    try:
        size = target.stat().st_size
        target.unlink()
    except FileNotFoundError:
        return 0
    return size


def schedule_retention(application: Application, settings: Settings) -> None:
    """If IMAGE_RETENTION_DAYS is set, prune shortly after start-up and then daily."""
    days = settings.image_retention_days
    if days is None:
        return
    if application.job_queue is None:
        log.warning("no job queue (install python-telegram-bot[job-queue]): no image retention")
        return

    async def prune(context: ContextTypes.DEFAULT_TYPE) -> None:
        report = await asyncio.to_thread(prune_images, settings.database_path, days)
        log.info(
            "retention: deleted %d image files (%.1f MB) older than %d days; kept %d chosen",
            len(report.pruned),
            report.freed_bytes / 1e6,
            days,
            report.kept_chosen,
        )

    application.job_queue.run_repeating(
        prune, interval=RETENTION_INTERVAL, first=FIRST_RUN_DELAY, name="image-retention"
    )

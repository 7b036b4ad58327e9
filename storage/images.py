"""Images: their rows and the content-addressed files, and pruning old files (retention).

Images are files under `<data dir>/images/<sha[:2]>/<sha>.<ext>`, not blobs: multi-megabyte
blobs would bloat the WAL and every backup of the database, and files can be pruned, served and
copied on their own. A file is written (and fsynced) before its row exists, so a row never
points at a missing image (unless retention deleted the file: then the row is marked
`pruned_at`).

Retention (IMAGE_RETENTION_DAYS) deletes old image files but keeps every row, so history,
rounds and usage keep working. Images of rounds chosen at Stop (`sessions.chosen_round_id ->
rounds.image_sha`) are never pruned: they are the results people kept. Nor are images of rounds
still in flight, their own or their drafts' (a round a long outage interrupted is finished
from its stored images when the bot comes back), nor the product photos of sessions still
active (every later round is drawn from them). Pruning runs on the store's own connection and
worker thread, one short step at a time, so other queries are served in between.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.database import Database
from storage.records import ImageRecord, PruneReport, SessionStatus
from storage.rows import RUNNING_SQL, found, image_record
from storage.schema import now_iso

log = logging.getLogger(__name__)

_File = tuple[str, str]
"""An image's sha256 and its file's path inside the data dir."""

IMAGES_DIR = "images"
"""The folder of the image files, inside the data dir."""
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
"""File name extension per MIME type (anything else: `bin`)."""

_CHOSEN = (
    "SELECT r.image_sha FROM sessions s JOIN rounds r ON r.id = s.chosen_round_id "
    "WHERE r.image_sha IS NOT NULL"
)
_REFERENCES = (
    "SELECT reference_sha FROM sessions WHERE reference_sha IS NOT NULL "
    f"AND status = '{SessionStatus.ACTIVE.value}'"
)
"""Product photos of sessions still going: every later round is drawn from them."""
_IN_FLIGHT = (
    f"SELECT image_sha FROM rounds WHERE image_sha IS NOT NULL AND status IN {RUNNING_SQL} "
    "UNION SELECT d.image_sha FROM drafts d JOIN rounds r ON r.id = d.round_id "
    f"WHERE d.image_sha IS NOT NULL AND r.status IN {RUNNING_SQL}"
)
"""Images of rounds still running, and of their drafts (a restart keeps one of them)."""
_NOT_NEEDED = (
    f"sha256 NOT IN ({_CHOSEN}) AND sha256 NOT IN ({_IN_FLIGHT}) AND sha256 NOT IN ({_REFERENCES})"
)
"""An image nobody still needs: not chosen, not in flight, no active session's product."""


def _fsync_folder(folder: Path) -> None:
    """Make a folder's entries (a file just renamed into it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def relative_path(sha: str, mime: str) -> Path:
    """Return where the image with this SHA-256 and MIME type lives, inside the data dir."""
    return Path(IMAGES_DIR) / sha[:2] / f"{sha}.{EXTENSIONS.get(mime, 'bin')}"


class Images:
    """The store's images, rows and files: `store.images`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._data_dir = database.data_dir

    async def save(
        self,
        data: bytes,
        *,
        mime: str,
        width: int,
        height: int,
        also: Callable[[str], object] | None = None,
    ) -> ImageRecord:
        """Persist the bytes (fsynced, on a thread of their own, before any row) and their
        row; return the record. Idempotent per content (the SHA-256 of `data`).

        `also(sha)`, if given, runs on the worker inside the same transaction as the row (the
        usage of the paid call that drew it, the round or draft that takes it): if it raises,
        no row is kept and the exception propagates. Content that retention marked (or
        deleted) meanwhile gets its mark cleared and its file written again.
        Raises OSError if the file cannot be written.
        """
        sha, relative, written = await asyncio.to_thread(self._write_file, data, mime)

        def work() -> tuple[ImageRecord, bool]:
            with self._db.transaction():
                revived = not written and self._unprune(sha)
                self._insert_row(sha, relative, mime, width, height, len(data), new=written)
                if also is not None:
                    also(sha)
            row = self._db.one("SELECT * FROM images WHERE sha256 = ?", (sha,))
            return image_record(found(row, f"image {sha}")), revived

        record, revived = await self._db.run(work)
        if revived:
            # Retention had marked this content for deletion and may have deleted its file
            # since we looked: write it again, now that the mark is cleared (retention checks
            # the mark inside a write transaction right before it deletes a file).
            await asyncio.to_thread(self._write_file, data, mime, replace=True)
        return record

    async def read(self, sha: str) -> tuple[ImageRecord, bytes]:
        """Return the image's record and bytes.

        Raises LookupError if there is no such image or its file is gone (pruned, deleted).
        """

        def work() -> tuple[ImageRecord, bytes]:
            row = self._db.one("SELECT * FROM images WHERE sha256 = ?", (sha,))
            record = image_record(found(row, f"image {sha}"))
            try:
                return record, (self._data_dir / record.path).read_bytes()
            except FileNotFoundError:
                raise LookupError(f"image {sha} was pruned or deleted") from None

        return await self._db.read(work)

    def _write_file(
        self, data: bytes, mime: str, *, replace: bool = False
    ) -> tuple[str, str, bool]:
        """Write the image under its SHA-256 (fsynced, atomically) unless that file exists (or
        `replace`); return (sha, relative path, whether it was written now).

        Runs on a thread of its own, so database work never queues behind an fsync.
        """
        sha = hashlib.sha256(data).hexdigest()
        relative = relative_path(sha, mime)
        target = self._data_dir / relative
        if target.exists() and not replace:
            return sha, str(relative), False
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_suffix(f"{target.suffix}.{os.getpid()}.{id(data)}.tmp")
        with open(os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_folder(target.parent)  # the rename itself survives a power cut only so
        return sha, str(relative), True

    def _unprune(self, sha: str) -> bool:
        """Clear the image's pruned mark, restarting its age; return whether it had one."""
        cursor = self._db.execute(
            "UPDATE images SET pruned_at = NULL, created_at = ? "
            "WHERE sha256 = ? AND pruned_at IS NOT NULL",
            (now_iso(), sha),
        )
        return cursor.rowcount > 0

    def _insert_row(
        self, sha: str, relative: str, mime: str, width: int, height: int, size: int, *, new: bool
    ) -> None:
        # A file written now replaces the row (clearing pruned_at, restarting its age);
        # content already on disk keeps its row as it is.
        verb = "INSERT OR REPLACE" if new else "INSERT OR IGNORE"
        self._db.execute(
            f"{verb} INTO images (sha256, path, mime, width, height, size_bytes, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sha, relative, mime, width, height, size, now_iso()),
        )

    # --- retention ----------------------------------------------------------------------------

    async def prune(self, *, older_than_days: int, now: datetime | None = None) -> PruneReport:
        """Delete the files of images created more than `older_than_days` days before `now`,
        except those still needed (chosen at Stop, of rounds in flight, active sessions'
        product photos); mark their rows `pruned_at`; return what was done.

        Rows are marked (in one transaction) before files are deleted, and files of rows marked
        earlier are deleted again if they are still there, so an interrupted run finishes next
        time. Each file is deleted only if, checked again inside the transaction that deletes
        it, it is still marked and not needed: content saved again or chosen meanwhile keeps
        its file (and loses its mark). Raises ValueError if `older_than_days` is below 1.
        """
        if older_than_days < 1:
            raise ValueError("older_than_days must be at least 1")
        now = now or datetime.now(UTC)
        cutoff = (now - timedelta(days=older_than_days)).isoformat(timespec="milliseconds")
        stamp = now.isoformat(timespec="milliseconds")
        candidates, leftovers, kept = await self._db.run(self._mark, cutoff, stamp)
        freed, spared = 0, set[str]()
        for sha, relative in candidates + leftovers:
            deleted = await self._db.run(self._delete_if_still_pruned, sha, relative)
            if deleted is None:
                spared.add(sha)
            else:
                freed += deleted
        return PruneReport([sha for sha, _ in candidates if sha not in spared], freed, kept)

    def _mark(self, cutoff: str, stamp: str) -> tuple[list[_File], list[_File], int]:
        """Mark every image older than `cutoff` and not needed as pruned at `stamp`, in one
        transaction; return (those images, the ones marked earlier, how many old images were
        kept because they were chosen)."""
        with self._db.transaction():
            candidates = self._files(
                "SELECT sha256, path FROM images WHERE pruned_at IS NULL AND created_at < ? "
                f"AND {_NOT_NEEDED}",
                (cutoff,),
            )
            kept = self._db.count(
                "SELECT COUNT(*) FROM images WHERE pruned_at IS NULL AND created_at < ? "
                f"AND sha256 IN ({_CHOSEN})",
                (cutoff,),
            )
            leftovers = self._files("SELECT sha256, path FROM images WHERE pruned_at IS NOT NULL")
            self._db.execute_many(
                "UPDATE images SET pruned_at = ? WHERE sha256 = ?",
                [(stamp, sha) for sha, _ in candidates],
            )
        return candidates, leftovers, kept

    def _files(self, sql: str, params: tuple[str, ...] = ()) -> list[_File]:
        return [(str(row[0]), str(row[1])) for row in self._db.all(sql, params)]

    def _delete_if_still_pruned(self, sha: str, relative: str) -> int | None:
        """Delete the file of an image marked pruned and return the bytes freed; or, if since
        it was marked it was saved again (mark cleared) or became needed (chosen, in flight,
        an active session's product photo), keep it, clear the mark and return None. A file
        already gone frees 0 bytes.

        The check and the deletion run in one write transaction on the worker, where `save`
        clears a mark when it stores the same content again: neither can slip between.
        """
        if not (self._data_dir / relative).exists():
            return 0
        with self._db.transaction():
            row = self._db.one(
                f"SELECT pruned_at IS NOT NULL AND {_NOT_NEEDED} FROM images WHERE sha256 = ?",
                (sha,),
            )
            if row is not None and row[0]:
                return self._delete_file(relative)
            self._db.execute("UPDATE images SET pruned_at = NULL WHERE sha256 = ?", (sha,))
            return None

    def _delete_file(self, relative: str) -> int:
        """Delete one image file inside `<data dir>/images`; return the bytes freed (0 if
        none)."""
        data_dir = self._data_dir.resolve()
        target = (data_dir / relative).resolve()
        if not target.is_relative_to(data_dir / IMAGES_DIR):
            log.warning("retention: not deleting %s: outside the image store", relative)
            return 0
        try:
            size = target.stat().st_size
            target.unlink()
        except FileNotFoundError:
            return 0
        return size

"""The campaign pack: one row per kept round and format (`pack_items`).

A pack is made of a round's kept image, one format at a time (Square, Portrait, Story,
Banner, Marketplace). Its rows are stored as pending, all of them in one transaction, before
anything is paid; each format then moves pending -> making -> done (its image, cost and check
stored together with the image row and the usage row, in one transaction) or failed (its
error). A restart finds the rows left `making` or `pending` and makes only those: a finished
format is never paid for twice. Telegram's file ids of a delivered format are kept here too,
so pressing the button again re-sends the pack without a new image. Every write is one named
transaction on the store's writer thread, and returns the rows as they now are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum

from storage.chats import insert_usage
from storage.database import Database
from storage.records import UsageEntry
from storage.schema import now_iso


class PackStatus(StrEnum):
    PENDING = "pending"
    MAKING = "making"
    DONE = "done"
    FAILED = "failed"


UNFINISHED = (PackStatus.PENDING, PackStatus.MAKING)
_UNFINISHED_SQL = "('pending', 'making')"


@dataclass(frozen=True, slots=True)
class PackItemRecord:
    """One format of a round's campaign pack, as stored."""

    id: int
    round_id: int
    format: str
    chat_id: int
    thread_id: int
    user_id: int
    status: PackStatus
    method: str | None  # outpaint, crop (the labelled fallback), edit (Marketplace)
    image_sha: str | None
    width: int | None
    height: int | None
    cost_usd: float | None
    error: str | None  # why it failed, or why its check did not pass
    check_note: str | None  # None: the check passed (or did not run)
    preview_file_id: str | None
    document_file_id: str | None
    created_at: str
    updated_at: str

    @property
    def finished(self) -> bool:
        """Whether the format is done or failed (not waiting to be made)."""
        return self.status in (PackStatus.DONE, PackStatus.FAILED)


def pack_item_record(row: sqlite3.Row) -> PackItemRecord:
    """Return a `pack_items` row as a record."""
    values = {f.name: row[f.name] for f in fields(PackItemRecord)}
    return PackItemRecord(**values | {"status": PackStatus(values["status"])})


@dataclass(frozen=True, slots=True)
class PackResult:
    """What making one format produced, to be stored with its image."""

    method: str
    width: int
    height: int
    cost_usd: float | None
    check_note: str | None


class Packs:
    """The store's campaign packs: `store.packs`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self,
        round_id: int,
        formats: Sequence[str],
        *,
        chat_id: int,
        thread_id: int,
        user_id: int,
    ) -> list[PackItemRecord]:
        """Store the round's pack as one pending row per format not stored yet (a failed one
        is set pending again), in one transaction; return every row of the round's pack.

        Raises sqlite3.IntegrityError if there is no such round.
        """

        def create_pack() -> list[PackItemRecord]:
            now = now_iso()
            with self._db.transaction():
                for name in formats:
                    self._db.execute(
                        "INSERT INTO pack_items (round_id, format, chat_id, thread_id, user_id, "
                        "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) "
                        "ON CONFLICT (round_id, format) DO UPDATE SET status = 'pending', "
                        "error = NULL, user_id = excluded.user_id, "
                        "updated_at = excluded.updated_at "
                        "WHERE status = 'failed'",
                        (round_id, name, chat_id, thread_id, user_id, now, now),
                    )
            return self._of_round(round_id)

        return await self._db.run(create_pack)

    async def of_round(self, round_id: int) -> list[PackItemRecord]:
        """Return the round's pack rows in the order they were stored (none: no pack)."""
        return await self._db.read(self._of_round, round_id)

    def _of_round(self, round_id: int) -> list[PackItemRecord]:
        rows = self._db.all("SELECT * FROM pack_items WHERE round_id = ? ORDER BY id", (round_id,))
        return [pack_item_record(row) for row in rows]

    async def get(self, item_id: int) -> PackItemRecord | None:
        """Return the pack row, or None if there is none with that id."""
        row = await self._db.read(self._db.one, "SELECT * FROM pack_items WHERE id = ?", (item_id,))
        return None if row is None else pack_item_record(row)

    async def start(self, item_id: int) -> PackItemRecord:
        """Mark the format as being made (one transaction); return it. Raises LookupError."""
        return await self._update("start_pack_item", item_id, "status = 'making'", ())

    async def retry(self, item_id: int) -> PackItemRecord:
        """Set a format that failed, or failed its check, pending again, its error, check and
        file ids cleared (one transaction); return it (unchanged otherwise). Raises
        LookupError if there is no such row."""
        again = "(status = 'failed' OR (status = 'done' AND check_note IS NOT NULL))"
        return await self._update(
            "retry_pack_item",
            item_id,
            f"error = CASE WHEN {again} THEN NULL ELSE error END, "
            f"check_note = CASE WHEN {again} THEN NULL ELSE check_note END, "
            f"preview_file_id = CASE WHEN {again} THEN NULL ELSE preview_file_id END, "
            f"document_file_id = CASE WHEN {again} THEN NULL ELSE document_file_id END, "
            f"status = CASE WHEN {again} THEN 'pending' ELSE status END",
            (),
        )

    async def fail(self, item_id: int, error: str) -> PackItemRecord:
        """Mark the format failed with `error` (one transaction); return it."""
        return await self._update(
            "fail_pack_item", item_id, "status = 'failed', error = ?", (error,)
        )

    async def remember_files(
        self, item_id: int, *, preview_file_id: str | None, document_file_id: str | None
    ) -> PackItemRecord:
        """Keep the file ids Telegram gave the format's preview and document (a None keeps
        the one stored), in one transaction; return the row."""
        return await self._update(
            "remember_pack_files",
            item_id,
            "preview_file_id = COALESCE(?, preview_file_id), "
            "document_file_id = COALESCE(?, document_file_id)",
            (preview_file_id, document_file_id),
        )

    async def _update(
        self, name: str, item_id: int, assignments: str, params: tuple[object, ...]
    ) -> PackItemRecord:
        def work() -> PackItemRecord:
            row = self._db.write_one(
                f"UPDATE pack_items SET {assignments}, updated_at = ? WHERE id = ? RETURNING *",
                (*params, now_iso(), item_id),
            )
            if row is None:
                raise LookupError(f"no pack item {item_id} ({name})")
            return pack_item_record(row)

        work.__name__ = name
        return await self._db.run(work)

    def finish_within(
        self, item_id: int, sha: str, result: PackResult, usage: UsageEntry | None
    ) -> None:
        """Mark the format done with its image `sha` (and record `usage`), inside the open
        transaction of the image's row (`Images.save(also=...)`). Worker thread only.

        Raises LookupError if there is no such row: the image row is then not kept either.
        """
        if usage is not None:
            insert_usage(self._db, usage)
        cursor = self._db.execute(
            "UPDATE pack_items SET status = 'done', image_sha = ?, method = ?, width = ?, "
            "height = ?, cost_usd = ?, check_note = ?, error = NULL, updated_at = ? WHERE id = ?",
            (
                sha,
                result.method,
                result.width,
                result.height,
                result.cost_usd,
                result.check_note,
                now_iso(),
                item_id,
            ),
        )
        if cursor.rowcount == 0:
            raise LookupError(f"no pack item {item_id}")

    async def unfinished(self) -> list[PackItemRecord]:
        """Return every format a restart left pending or being made, oldest first."""
        rows = await self._db.read(
            self._db.all,
            f"SELECT * FROM pack_items WHERE status IN {_UNFINISHED_SQL} ORDER BY id",
        )
        return [pack_item_record(row) for row in rows]

    async def made_since(self, since: str, user_id: int, chat_id: int) -> tuple[int, int]:
        """Return how many pack formats the user, and how many the chat, asked for at or
        after `since` (ISO) that drew (or may still draw) an image: done with a paid method,
        or not finished yet. Crops cost nothing and do not count."""
        counted = (
            f"created_at >= ? AND (status IN {_UNFINISHED_SQL} "
            "OR (status = 'done' AND method != 'crop'))"
        )

        def count_made() -> tuple[int, int]:
            by_user = self._db.count(
                f"SELECT COUNT(*) FROM pack_items WHERE user_id = ? AND {counted}",
                (user_id, since),
            )
            in_chat = self._db.count(
                f"SELECT COUNT(*) FROM pack_items WHERE chat_id = ? AND {counted}",
                (chat_id, since),
            )
            return by_user, in_chat

        return await self._db.read(count_made)

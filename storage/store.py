"""The Store the domain talks to: SQLite through sqlite-utils, plus the content-addressed images.

All SQLite work runs on one dedicated worker thread, so the event loop never waits on disk and
the single connection is never used by two threads at once. Every public method is a coroutine.

Images are files under `<data dir>/images/<sha[:2]>/<sha>.<ext>`, not blobs: multi-megabyte
blobs would bloat the WAL and every backup of the database, and files can be pruned, served and
copied on their own. A file is written (and fsynced) before its row exists, so a row never
points at a missing image.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from storage.records import (
    AutopilotRunRecord,
    AutopilotStatus,
    ChatSettings,
    DraftRecord,
    ImageRecord,
    PendingEdit,
    RoundRecord,
    RoundStatus,
    SessionRecord,
    SessionStatus,
    SessionSummary,
    UsageEntry,
    UsageSummary,
)
from storage.schema import migrate, now_iso

T = TypeVar("T")

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _record(cls: type[T], row: sqlite3.Row | dict[str, Any] | None) -> T | None:
    if row is None:
        return None
    data = dict(row)
    return cls(**{f.name: data[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _round(row: Any) -> RoundRecord | None:
    record = _record(RoundRecord, row)
    return replace(record, status=RoundStatus(record.status)) if record else None


def _session(row: Any) -> SessionRecord | None:
    record = _record(SessionRecord, row)
    return replace(record, status=SessionStatus(record.status)) if record else None


def _draft(row: Any) -> DraftRecord | None:
    record = _record(DraftRecord, row)
    return replace(record, status=RoundStatus(record.status)) if record else None


def _autopilot_run(row: Any) -> AutopilotRunRecord | None:
    record = _record(AutopilotRunRecord, row)
    return replace(record, status=AutopilotStatus(record.status)) if record else None


def _assignments(values: dict[str, Any], allowed: set[str]) -> tuple[str, list[Any]]:
    """Return the SET clause and parameters for an UPDATE of the given columns."""
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not updatable columns: {sorted(unknown)}")
    params = [
        str(v) if isinstance(v, RoundStatus | AutopilotStatus) else v for v in values.values()
    ]
    return ", ".join(f"{name} = ?" for name in values), params


class Store:
    """Async access to the bot's database and image files. Create it with `Store.open`."""

    def __init__(self, db: sqlite_utils.Database, data_dir: Path) -> None:
        self._db = db
        self._data_dir = data_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    # --- lifecycle ---------------------------------------------------------------------

    @classmethod
    async def open(cls, database_path: Path) -> Store:
        """Open (creating if needed) the database file, owner-readable only, migrated and in WAL."""
        return await asyncio.to_thread(cls.open_sync, database_path)

    @classmethod
    def open_sync(cls, database_path: Path) -> Store:
        """Blocking variant of `open`, for the CLI and tests."""
        database_path = Path(database_path)
        database_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not database_path.exists():
            fd = os.open(database_path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = sqlite3.connect(database_path, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        db = sqlite_utils.Database(conn)
        db.enable_wal()
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db)
        return cls(db, database_path.parent)

    async def close(self) -> None:
        """Finish queued work and close the connection."""
        await self._run(self._db.conn.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Run the block's statements as one transaction: all of them are kept, or none.

        It is begun explicitly: sqlite-utils (4.x) commits every write on its own unless a
        transaction is already open, and `with connection:` opens none.
        """
        conn = self._db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        return self._db.execute(sql, params).fetchone()

    def _count(self, sql: str, params: tuple[Any, ...]) -> int:
        """Return the first column of the one row a `SELECT COUNT(*) ...` gives."""
        return int(self._db.execute(sql, params).fetchone()[0])

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    # --- chats and sessions ------------------------------------------------------------

    async def create_session(
        self,
        chat_id: int,
        chat_type: str,
        thread_id: int,
        user_id: int,
        brief: str,
        reference_sha: str | None = None,
    ) -> SessionRecord:
        """Record the chat (if new) and a new active session; return the session.

        `reference_sha` is the stored product photo every round of the session starts from.
        """

        def work() -> SessionRecord:
            now = now_iso()
            with self._transaction():
                self._db.execute(
                    "INSERT INTO chats (id, type, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET type = excluded.type",
                    (chat_id, chat_type, now),
                )
                cursor = self._db.execute(
                    "INSERT INTO sessions (chat_id, thread_id, started_by, brief, status, "
                    "created_at, updated_at, reference_sha) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                    (chat_id, thread_id, user_id, brief, now, now, reference_sha),
                )
            return self._get_session(cursor.lastrowid)  # type: ignore[arg-type,return-value]

        return await self._run(work)

    def _get_session(self, session_id: int) -> SessionRecord | None:
        return _session(self._one("SELECT * FROM sessions WHERE id = ?", (session_id,)))

    async def get_session(self, session_id: int) -> SessionRecord | None:
        """Return the session, or None if there is none with that id."""
        return await self._run(self._get_session, session_id)

    async def stop_session(self, session_id: int, chosen_round_id: int) -> SessionRecord:
        """Mark the session stopped with its chosen round; return it."""

        def work() -> SessionRecord:
            with self._transaction():
                self._db.execute(
                    "UPDATE sessions SET status = 'stopped', chosen_round_id = ?, updated_at = ? "
                    "WHERE id = ?",
                    (chosen_round_id, now_iso(), session_id),
                )
            return self._get_session(session_id)  # type: ignore[return-value]

        return await self._run(work)

    async def chat_sessions(
        self, chat_id: int, thread_id: int, limit: int = 10, offset: int = 0
    ) -> list[SessionSummary]:
        """Return the scope's sessions, newest first, with round counts and best scores."""

        def work() -> list[SessionSummary]:
            rows = self._all(
                "SELECT s.*, COUNT(r.id) AS n_rounds, MAX(r.score) AS best_score "
                "FROM sessions s LEFT JOIN rounds r ON r.session_id = s.id "
                "WHERE s.chat_id = ? AND s.thread_id = ? "
                "GROUP BY s.id ORDER BY s.id DESC LIMIT ? OFFSET ?",
                (chat_id, thread_id, limit, offset),
            )
            return [
                SessionSummary(_session(row), row["n_rounds"], row["best_score"])  # type: ignore[arg-type]
                for row in rows
            ]

        return await self._run(work)

    async def count_sessions(self, chat_id: int, thread_id: int) -> int:
        """Return how many sessions the scope has."""
        return await self._run(
            self._count,
            "SELECT COUNT(*) FROM sessions WHERE chat_id = ? AND thread_id = ?",
            (chat_id, thread_id),
        )

    # --- rounds --------------------------------------------------------------------------

    async def create_round(
        self,
        session_id: int,
        parent_round_id: int | None,
        prompt: str,
        action: str,
        acted_by: int,
        acted_by_name: str,
    ) -> RoundRecord:
        """Record a new pending round (numbered after the session's last); return it."""

        def work() -> RoundRecord:
            with self._transaction():
                row = self._one(
                    "SELECT COALESCE(MAX(number), 0) FROM rounds WHERE session_id = ?",
                    (session_id,),
                )
                number = (row[0] if row else 0) + 1
                cursor = self._db.execute(
                    "INSERT INTO rounds (session_id, parent_round_id, number, prompt, action, "
                    "acted_by, acted_by_name, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (
                        session_id,
                        parent_round_id,
                        number,
                        prompt,
                        action,
                        acted_by,
                        acted_by_name,
                        now_iso(),
                    ),
                )
                self._db.execute(
                    "UPDATE sessions SET updated_at = ? WHERE id = ?", (now_iso(), session_id)
                )
            return self._get_round(cursor.lastrowid)  # type: ignore[arg-type,return-value]

        return await self._run(work)

    def _get_round(self, round_id: int) -> RoundRecord | None:
        return _round(self._one("SELECT * FROM rounds WHERE id = ?", (round_id,)))

    async def get_round(self, round_id: int) -> RoundRecord | None:
        """Return the round, or None if there is none with that id."""
        return await self._run(self._get_round, round_id)

    async def round_with_context(
        self, round_id: int
    ) -> tuple[RoundRecord, SessionRecord, ChatSettings] | None:
        """Return the round, its session and its chat's settings in one trip, or None if there
        is no such round."""

        def work() -> tuple[RoundRecord, SessionRecord, ChatSettings] | None:
            round = self._get_round(round_id)
            session = self._get_session(round.session_id) if round else None
            if round is None or session is None:
                return None
            return round, session, self._chat_settings(session.chat_id)

        return await self._run(work)

    async def update_round(self, round_id: int, **values: Any) -> RoundRecord:
        """Set the given columns of the round; return the updated round."""
        allowed = {f.name for f in fields(RoundRecord)} - {"id", "session_id", "created_at"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not round columns: {sorted(unknown)}")

        def work() -> RoundRecord:
            with self._transaction():
                return self._update_round(round_id, values)

        return await self._run(work)

    def _update_round(self, round_id: int, values: dict[str, Any]) -> RoundRecord:
        assignments = ", ".join(f"{name} = ?" for name in values)
        params = [str(v) if isinstance(v, RoundStatus) else v for v in values.values()]
        row = self._db.execute(
            f"UPDATE rounds SET {assignments} WHERE id = ? RETURNING *", (*params, round_id)
        ).fetchone()
        return _round(row)  # type: ignore[return-value]

    async def session_rounds(self, session_id: int) -> list[RoundRecord]:
        """Return the session's rounds in order."""
        rows = await self._run(
            self._all, "SELECT * FROM rounds WHERE session_id = ? ORDER BY number", (session_id,)
        )
        return [_round(row) for row in rows]  # type: ignore[misc]

    async def running_rounds(self) -> list[RoundRecord]:
        """Return every round left pending, generating or critiquing."""
        rows = await self._run(
            self._all,
            "SELECT * FROM rounds WHERE status IN ('pending', 'generating', 'critiquing') "
            "ORDER BY id",
        )
        return [_round(row) for row in rows]  # type: ignore[misc]

    # --- autopilot runs and their drafts ----------------------------------------------------

    async def create_autopilot_run(
        self,
        session_id: int,
        start_round_id: int | None,
        rounds: int,
        drafts: int,
        threshold: int,
        started_by: int,
    ) -> AutopilotRunRecord:
        """Record a running autopilot run of the session; return it."""

        def work() -> AutopilotRunRecord:
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO autopilot_runs (session_id, start_round_id, rounds, drafts, "
                    "threshold, status, started_by, created_at) "
                    "VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                    (session_id, start_round_id, rounds, drafts, threshold, started_by, now_iso()),
                )
            return self._get_autopilot_run(cursor.lastrowid)  # type: ignore[arg-type,return-value]

        return await self._run(work)

    def _get_autopilot_run(self, run_id: int) -> AutopilotRunRecord | None:
        return _autopilot_run(self._one("SELECT * FROM autopilot_runs WHERE id = ?", (run_id,)))

    async def get_autopilot_run(self, run_id: int) -> AutopilotRunRecord | None:
        """Return the autopilot run, or None if there is none with that id."""
        return await self._run(self._get_autopilot_run, run_id)

    async def update_autopilot_run(self, run_id: int, **values: Any) -> AutopilotRunRecord:
        """Set the given columns of the run; return the updated run."""
        allowed = {f.name for f in fields(AutopilotRunRecord)} - {"id", "session_id", "created_at"}
        assignments, params = _assignments(values, allowed)

        def work() -> AutopilotRunRecord:
            with self._transaction():
                self._db.execute(
                    f"UPDATE autopilot_runs SET {assignments} WHERE id = ?", (*params, run_id)
                )
            return self._get_autopilot_run(run_id)  # type: ignore[return-value]

        return await self._run(work)

    async def interrupt_autopilot_runs(self) -> int:
        """Mark every run (and draft) a crash or restart left running; return how many runs.

        A draft already drawn keeps its image (done, without a critique); the others failed.
        """

        def work() -> int:
            now = now_iso()
            with self._transaction():
                self._db.execute(
                    "UPDATE drafts SET status = CASE WHEN image_sha IS NULL THEN 'failed' "
                    "ELSE 'done' END, error_kind = 'interrupted', "
                    "error = 'interrupted by a restart', finished_at = ? "
                    "WHERE status IN ('pending', 'generating', 'critiquing')",
                    (now,),
                )
                return self._db.execute(
                    "UPDATE autopilot_runs SET status = 'interrupted', finished_at = ? "
                    "WHERE status = 'running'",
                    (now,),
                ).rowcount

        return await self._run(work)

    async def create_draft(self, round_id: int, number: int, seed: int | None) -> DraftRecord:
        """Record draft `number` of the round as generating; return it."""

        def work() -> DraftRecord:
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO drafts (round_id, number, seed, status, created_at) "
                    "VALUES (?, ?, ?, 'generating', ?)",
                    (round_id, number, seed, now_iso()),
                )
            return _draft(self._one("SELECT * FROM drafts WHERE id = ?", (cursor.lastrowid,)))  # type: ignore[return-value]

        return await self._run(work)

    async def update_draft(self, draft_id: int, **values: Any) -> DraftRecord:
        """Set the given columns of the draft; return the updated draft."""
        allowed = {f.name for f in fields(DraftRecord)} - {"id", "round_id", "created_at"}
        assignments, params = _assignments(values, allowed)

        def work() -> DraftRecord:
            with self._transaction():
                self._db.execute(
                    f"UPDATE drafts SET {assignments} WHERE id = ?", (*params, draft_id)
                )
            return _draft(self._one("SELECT * FROM drafts WHERE id = ?", (draft_id,)))  # type: ignore[return-value]

        return await self._run(work)

    async def round_drafts(self, round_id: int) -> list[DraftRecord]:
        """Return the round's drafts in order (none for a round drawn once)."""
        rows = await self._run(
            self._all, "SELECT * FROM drafts WHERE round_id = ? ORDER BY number", (round_id,)
        )
        return [_draft(row) for row in rows]  # type: ignore[misc]

    # --- images ---------------------------------------------------------------------------

    async def save_image(
        self,
        data: bytes,
        mime: str,
        width: int,
        height: int,
        usage: UsageEntry | None = None,
        *,
        round_id: int | None = None,
        round_values: Mapping[str, Any] | None = None,
    ) -> ImageRecord:
        """Persist the bytes (fsynced, on a worker thread of their own) and their row, and the
        paid call that drew them if `usage` is given; return the record. Idempotent per
        content.

        With `round_id`, the round takes the image (its image_sha, and `round_values`) in the
        same transaction: a crash never leaves a stored, paid image that its round lacks.
        """
        sha, relative, written = await asyncio.to_thread(self._write_image_file, data, mime)

        def work() -> tuple[ImageRecord, bool]:
            with self._transaction():
                revived = not written and self._unprune(sha)
                self._insert_image_row(sha, relative, mime, width, height, len(data), written)
                if usage is not None:
                    self._insert_usage(usage)
                if round_id is not None:
                    self._update_round(round_id, {"image_sha": sha, **(round_values or {})})
            row = self._one("SELECT * FROM images WHERE sha256 = ?", (sha,))
            return _record(ImageRecord, row), revived  # type: ignore[return-value]

        record, revived = await self._run(work)
        if revived:
            # Retention had marked this content for deletion and may have deleted its file
            # since we looked: write it again, now that the mark is cleared (retention checks
            # the mark under the database's write lock right before it deletes a file).
            await asyncio.to_thread(self._write_image_file, data, mime, replace=True)
        return record

    def _unprune(self, sha: str) -> bool:
        """Clear the image's pruned mark, restarting its age; return whether it had one."""
        return (
            self._db.execute(
                "UPDATE images SET pruned_at = NULL, created_at = ? "
                "WHERE sha256 = ? AND pruned_at IS NOT NULL",
                (now_iso(), sha),
            ).rowcount
            > 0
        )

    def _write_image_file(
        self, data: bytes, mime: str, *, replace: bool = False
    ) -> tuple[str, str, bool]:
        """Write the image under its SHA-256 (fsynced, atomically) unless that file exists (or
        `replace`); return (sha, relative path, whether it was written now).

        Runs on a worker thread of its own, so database work never queues behind an fsync.
        """
        sha = hashlib.sha256(data).hexdigest()
        relative = Path("images") / sha[:2] / f"{sha}.{_EXTENSIONS.get(mime, 'bin')}"
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
        return sha, str(relative), True

    def _insert_image_row(
        self, sha: str, relative: str, mime: str, width: int, height: int, size: int, new: bool
    ) -> None:
        # A file written now replaces the row (clearing pruned_at, restarting its age);
        # content already on disk keeps its row as it is.
        verb = "INSERT OR REPLACE" if new else "INSERT OR IGNORE"
        self._db.execute(
            f"{verb} INTO images (sha256, path, mime, width, height, size_bytes, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sha, relative, mime, width, height, size, now_iso()),
        )

    async def read_image(self, sha: str) -> tuple[ImageRecord, bytes]:
        """Return the image's record and bytes; raise LookupError if it is gone."""

        def work() -> tuple[ImageRecord, bytes]:
            record = _record(
                ImageRecord, self._one("SELECT * FROM images WHERE sha256 = ?", (sha,))
            )
            if record is None:
                raise LookupError(f"no image {sha}")
            try:
                return record, (self._data_dir / record.path).read_bytes()
            except FileNotFoundError:
                raise LookupError(f"image {sha} was pruned or deleted") from None

        return await self._run(work)

    # --- pending edits ------------------------------------------------------------------------

    async def set_pending_edit(
        self, chat_id: int, thread_id: int, user_id: int, round_id: int, prompt_message_id: int
    ) -> None:
        """Remember that the user's next message in this scope is an edit of the round."""
        await self._run(
            self._write,
            "INSERT OR REPLACE INTO pending_edits (chat_id, thread_id, user_id, round_id, "
            "prompt_message_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (chat_id, thread_id, user_id, round_id, prompt_message_id, now_iso()),
        )

    async def take_pending_edit(
        self, chat_id: int, thread_id: int, user_id: int, prompt_message_id: int | None = None
    ) -> PendingEdit | None:
        """Remove and return the user's pending edit in this scope, if any.

        With `prompt_message_id`, only an edit prompted by that message is taken.
        """

        def work() -> PendingEdit | None:
            key: tuple[int, ...] = (chat_id, thread_id, user_id)
            where = "chat_id = ? AND thread_id = ? AND user_id = ?"
            if prompt_message_id is not None:
                key += (prompt_message_id,)
                where += " AND prompt_message_id = ?"
            with self._transaction():
                row = self._one(f"SELECT * FROM pending_edits WHERE {where}", key)
                self._db.execute(f"DELETE FROM pending_edits WHERE {where}", key)
            return _record(PendingEdit, row)

        return await self._run(work)

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._transaction():
            self._db.execute(sql, params)

    # --- chat settings and Telegram files -----------------------------------------------------

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        """Return the chat's settings (defaults if it never changed any)."""
        return await self._run(self._chat_settings, chat_id)

    def _chat_settings(self, chat_id: int) -> ChatSettings:
        row = self._one("SELECT * FROM chat_settings WHERE chat_id = ?", (chat_id,))
        return _record(ChatSettings, row) or ChatSettings(chat_id)

    async def save_chat_settings(self, settings: ChatSettings) -> ChatSettings:
        """Store the chat's settings; return them as stored."""
        await self._run(
            self._write,
            "INSERT OR REPLACE INTO chat_settings (chat_id, image_format, quality, language, "
            "press_policy, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                settings.chat_id,
                settings.image_format,
                settings.quality,
                settings.language,
                settings.press_policy,
                now_iso(),
            ),
        )
        return await self.chat_settings(settings.chat_id)

    async def file_id(self, sha: str, kind: str) -> str | None:
        """Return the Telegram file_id of this content sent as `kind`, if it was sent before."""
        row = await self._run(
            self._one,
            "SELECT file_id FROM telegram_files WHERE sha256 = ? AND kind = ?",
            (sha, kind),
        )
        return row[0] if row else None

    async def remember_file_id(self, sha: str, kind: str, file_id: str) -> None:
        """Remember the file_id Telegram gave this content, for re-sending it by id."""
        await self._run(
            self._write,
            "INSERT OR REPLACE INTO telegram_files (sha256, kind, file_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (sha, kind, file_id, now_iso()),
        )

    async def round_by_message(self, chat_id: int, message_id: int) -> RoundRecord | None:
        """Return the round shown by this message of this chat, if any."""
        row = await self._run(
            self._one,
            "SELECT r.* FROM rounds r JOIN sessions s ON s.id = r.session_id "
            "WHERE r.message_id = ? AND s.chat_id = ?",
            (message_id, chat_id),
        )
        return _round(row)

    # --- usage ------------------------------------------------------------------------------------

    async def record_usage(self, usage: UsageEntry) -> None:
        """Record one paid call (an image or a critique), what it used and its estimated cost."""

        def work() -> None:
            with self._transaction():
                self._insert_usage(usage)

        await self._run(work)

    def _insert_usage(self, usage: UsageEntry) -> None:
        self._db.execute(
            "INSERT INTO usage (round_id, chat_id, user_id, kind, model, units, cost_usd, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                usage.round_id,
                usage.chat_id,
                usage.user_id,
                usage.kind,
                usage.model,
                json.dumps(usage.units),
                usage.cost_usd,
                now_iso(),
            ),
        )

    async def rounds_since(self, since: str, user_id: int, chat_id: int) -> tuple[int, int]:
        """Return how many rounds the user, and how many the chat, started at or after `since`
        (ISO), in one trip."""

        def work() -> tuple[int, int]:
            by_user = self._count(
                "SELECT COUNT(*) FROM rounds WHERE acted_by = ? AND created_at >= ?",
                (user_id, since),
            )
            in_chat = self._count(
                "SELECT COUNT(*) FROM rounds r JOIN sessions s ON s.id = r.session_id "
                "WHERE s.chat_id = ? AND r.created_at >= ?",
                (chat_id, since),
            )
            return by_user, in_chat

        return await self._run(work)

    async def usage_since(self, since: str, user_id: int | None = None) -> list[UsageSummary]:
        """Return rounds, images and estimated cost since `since`, per chat and user.

        With `user_id`, only that user's usage.
        """
        where = "WHERE created_at >= ?" + (" AND user_id = ?" if user_id is not None else "")
        params: tuple[Any, ...] = (since,) if user_id is None else (since, user_id)
        rows = await self._run(
            self._all,
            "SELECT chat_id, user_id, COUNT(DISTINCT round_id) AS rounds, "
            "SUM(kind = 'image') AS images, SUM(cost_usd) AS cost_usd, "
            "SUM(cost_usd IS NULL) AS unpriced "
            f"FROM usage {where} GROUP BY chat_id, user_id ORDER BY cost_usd DESC",
            params,
        )
        return [UsageSummary(**dict(row)) for row in rows]

    async def chat_migrated_from(self, chat_id: int) -> int | None:
        """Return the id of the group this supergroup was upgraded from, if it was."""
        row = await self._run(self._one, "SELECT migrated_from FROM chats WHERE id = ?", (chat_id,))
        return row[0] if row else None

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Move every session of a group upgraded to a supergroup, and remember where the
        supergroup came from; return how many sessions moved."""

        def work() -> int:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO chats (id, type, created_at) SELECT ?, 'supergroup', ? "
                    "WHERE NOT EXISTS (SELECT 1 FROM chats WHERE id = ?)",
                    (new_chat_id, now_iso(), new_chat_id),
                )
                self._db.execute(
                    "UPDATE chats SET migrated_from = ? WHERE id = ?", (old_chat_id, new_chat_id)
                )
                moved = self._db.execute(
                    "UPDATE sessions SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
                ).rowcount
                self._db.execute(
                    "UPDATE pending_edits SET chat_id = ? WHERE chat_id = ?",
                    (new_chat_id, old_chat_id),
                )
                self._db.execute(
                    "UPDATE usage SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
                )
            return moved

        return await self._run(work)

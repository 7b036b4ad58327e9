"""Sessions (one brief refined round after round in one chat scope) and autopilot runs."""

from __future__ import annotations

from storage.database import Database
from storage.deliveries import delivery_key, mark_delivered, owe
from storage.records import (
    AutopilotRunRecord,
    AutopilotStatus,
    DeliveryKind,
    SessionRecord,
    SessionStatus,
    SessionSummary,
)
from storage.rows import found, maybe, run_record, session_record
from storage.schema import now_iso


class Sessions:
    """The store's sessions and their autopilot runs: `store.sessions`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self,
        chat_id: int,
        *,
        chat_type: str,
        thread_id: int,
        user_id: int,
        brief: str,
        reference_sha: str | None = None,
    ) -> SessionRecord:
        """Record the chat (if new; its type updated) and a new active session of the scope
        (`chat_id`, `thread_id`), started by `user_id`, in one transaction; return the session.

        `reference_sha` is the stored product photo every round of the session starts from.
        Raises sqlite3.IntegrityError if there is no image `reference_sha`.
        """

        def work() -> SessionRecord:
            now = now_iso()
            with self._db.transaction():
                self._db.execute(
                    "INSERT INTO chats (id, type, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET type = excluded.type",
                    (chat_id, chat_type, now),
                )
                row = self._db.one(
                    "INSERT INTO sessions (chat_id, thread_id, started_by, brief, status, "
                    "created_at, updated_at, reference_sha) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING *",
                    (
                        chat_id,
                        thread_id,
                        user_id,
                        brief,
                        SessionStatus.ACTIVE,
                        now,
                        now,
                        reference_sha,
                    ),
                )
            return session_record(found(row, "session"))

        return await self._db.run(work)

    async def get(self, session_id: int) -> SessionRecord | None:
        """Return the session, or None if there is none with that id."""
        row = await self._db.read(
            self._db.one, "SELECT * FROM sessions WHERE id = ?", (session_id,)
        )
        return maybe(session_record, row)

    async def stop(self, session_id: int, *, chosen_round_id: int) -> SessionRecord:
        """Mark the session stopped with its chosen round, and owe the chat that round's
        full-resolution document, in one transaction; return the session.

        Raises LookupError if there is no such session.
        """

        def work() -> SessionRecord:
            with self._db.transaction():
                row = self._db.one(
                    "UPDATE sessions SET status = ?, chosen_round_id = ?, updated_at = ? "
                    "WHERE id = ? RETURNING *",
                    (SessionStatus.STOPPED, chosen_round_id, now_iso(), session_id),
                )
                session = session_record(found(row, f"session {session_id}"))
                owe(self._db, DeliveryKind.DOCUMENT, chosen_round_id)
            return session

        return await self._db.run(work)

    async def delivered(self, session_id: int, *, message_id: int) -> SessionRecord:
        """Remember the message that delivered the stopped session's full-resolution image
        (the document owed is delivered), in one transaction; return the session.

        Raises LookupError if there is no such session.
        """

        def work() -> SessionRecord:
            with self._db.transaction():
                row = self._db.one(
                    "UPDATE sessions SET final_message_id = ? WHERE id = ? RETURNING *",
                    (message_id, session_id),
                )
                session = session_record(found(row, f"session {session_id}"))
                if session.chosen_round_id is not None:
                    key = delivery_key(DeliveryKind.DOCUMENT, session.chosen_round_id)
                    mark_delivered(self._db, key, message_id=message_id)
            return session

        return await self._db.run(work)

    async def of_chat(
        self, chat_id: int, thread_id: int, *, limit: int = 10, offset: int = 0
    ) -> list[SessionSummary]:
        """Return a page of the scope's sessions (`limit` of them after the first `offset`),
        newest first, with their round counts and best scores."""
        rows = await self._db.read(
            self._db.all,
            "SELECT s.*, COUNT(r.id) AS n_rounds, MAX(r.score) AS best_score, "
            "COUNT(r.edit_of) AS n_edits "
            "FROM sessions s LEFT JOIN rounds r ON r.session_id = s.id "
            "WHERE s.chat_id = ? AND s.thread_id = ? "
            "GROUP BY s.id ORDER BY s.id DESC LIMIT ? OFFSET ?",
            (chat_id, thread_id, limit, offset),
        )
        return [
            SessionSummary(session_record(row), row["n_rounds"], row["best_score"], row["n_edits"])
            for row in rows
        ]

    async def count(self, chat_id: int, thread_id: int) -> int:
        """Return how many sessions the scope has."""
        return await self._db.read(
            self._db.count,
            "SELECT COUNT(*) FROM sessions WHERE chat_id = ? AND thread_id = ?",
            (chat_id, thread_id),
        )

    # --- autopilot runs -------------------------------------------------------------------

    async def create_run(
        self,
        session_id: int,
        *,
        start_round_id: int | None,
        rounds: int,
        drafts: int,
        threshold: int,
        started_by: int,
    ) -> AutopilotRunRecord:
        """Record a running autopilot run of the session (at most `rounds` rounds of `drafts`
        drafts, stopping at score `threshold`, from `start_round_id` or the brief); return it.

        Raises sqlite3.IntegrityError if the session (or the start round) does not exist.
        """
        row = await self._db.run(
            self._db.write_one,
            "INSERT INTO autopilot_runs (session_id, start_round_id, rounds, drafts, "
            "threshold, status, started_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING *",
            (
                session_id,
                start_round_id,
                rounds,
                drafts,
                threshold,
                AutopilotStatus.RUNNING,
                started_by,
                now_iso(),
            ),
        )
        return run_record(found(row, "autopilot run"))

    async def get_run(self, run_id: int) -> AutopilotRunRecord | None:
        """Return the autopilot run, or None if there is none with that id."""
        row = await self._db.read(
            self._db.one, "SELECT * FROM autopilot_runs WHERE id = ?", (run_id,)
        )
        return maybe(run_record, row)

    async def finish_run(
        self,
        run_id: int,
        *,
        status: AutopilotStatus,
        stop_reason: str,
        best_round_id: int | None,
    ) -> AutopilotRunRecord:
        """Record how the run ended (`status`, why, and the best round it found) and when,
        owing the chat that best round, in one transaction; return the run.

        Raises LookupError if there is no such run, ValueError if `status` is `running`.
        """
        if status is AutopilotStatus.RUNNING:
            raise ValueError("a finished run cannot be running")

        def work() -> AutopilotRunRecord:
            with self._db.transaction():
                row = self._db.one(
                    "UPDATE autopilot_runs SET status = ?, stop_reason = ?, best_round_id = ?, "
                    "finished_at = ? WHERE id = ? RETURNING *",
                    (status, stop_reason, best_round_id, now_iso(), run_id),
                )
                run = run_record(found(row, f"autopilot run {run_id}"))
                if best_round_id is not None:
                    owe(self._db, DeliveryKind.ROUND, best_round_id)
            return run

        return await self._db.run(work)

    async def progress_shown(self, run_id: int, message_id: int) -> None:
        """Remember the message that shows the run's progress (a restart ends it)."""
        await self._db.run(
            self._db.write,
            "UPDATE autopilot_runs SET progress_message_id = ? WHERE id = ?",
            (message_id, run_id),
        )

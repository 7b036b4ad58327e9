"""Rounds and their drafts. Every round draws its images as drafts and keeps one of them.

A manual round is a round with one draft; an autopilot round draws `draft_count` drafts in
parallel and keeps the best. A round is stored as pending, with its pending drafts, before
anything is paid for. Every write here is one transaction on the store's worker thread, and
returns the row as it now is.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.chats import read_settings
from storage.database import Database
from storage.deliveries import owe
from storage.drafts import check_ending, end_unfinished, insert_drafts
from storage.records import (
    AutopilotStatus,
    ChatSettings,
    DeliveryKind,
    DraftPlan,
    DraftRecord,
    RoundRecord,
    RoundStatus,
    SessionRecord,
)
from storage.rows import RUNNING_SQL, draft_record, found, maybe, round_record, session_record
from storage.schema import now_iso


class Rounds:
    """The store's rounds and their drafts: `store.rounds`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- creating and reading ------------------------------------------------------------

    async def create(
        self,
        session_id: int,
        *,
        parent_id: int | None,
        prompt: str,
        action: str,
        actor_id: int,
        actor_name: str,
        drafts: Sequence[DraftPlan],
        autopilot_id: int | None = None,
    ) -> RoundRecord:
        """Record a new pending round of the session, numbered after its last, with one
        pending draft per plan (numbered from 1, `draft_count` = how many), and touch the
        session's updated_at, in one transaction; return the round. A round of one draft is
        of that draft's kind from the start (an edit of `edit_of`, or a redraw); a round of
        several takes the kind of the draft it keeps.

        Raises ValueError if `drafts` is empty, sqlite3.IntegrityError if the session (or the
        parent round, the round edited, or the autopilot run) does not exist.
        """
        if not drafts:
            raise ValueError("a round draws at least one draft")
        only = drafts[0] if len(drafts) == 1 else DraftPlan(None)

        def work() -> RoundRecord:
            now = now_iso()
            with self._db.transaction():
                number = 1 + self._db.count(
                    "SELECT COALESCE(MAX(number), 0) FROM rounds WHERE session_id = ?",
                    (session_id,),
                )
                row = found(
                    self._db.one(
                        "INSERT INTO rounds (session_id, parent_round_id, number, prompt, action, "
                        "acted_by, acted_by_name, status, created_at, autopilot_id, draft_count, "
                        "edit_of, instruction) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                        (
                            session_id,
                            parent_id,
                            number,
                            prompt,
                            action,
                            actor_id,
                            actor_name,
                            RoundStatus.PENDING,
                            now,
                            autopilot_id,
                            len(drafts),
                            only.edit_of,
                            only.instruction,
                        ),
                    ),
                    "round",
                )
                insert_drafts(self._db, int(row["id"]), drafts, now)
                self._db.execute(
                    "UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id)
                )
            return round_record(row)

        return await self._db.run(work)

    async def get(self, round_id: int) -> RoundRecord | None:
        """Return the round, or None if there is none with that id."""
        row = await self._db.read(self._db.one, "SELECT * FROM rounds WHERE id = ?", (round_id,))
        return maybe(round_record, row)

    async def drafts(self, round_id: int) -> list[DraftRecord]:
        """Return the round's drafts in number order (none if there is no such round, or it
        was created by the deprecated `Store.create_round`)."""
        rows = await self._db.read(
            self._db.all, "SELECT * FROM drafts WHERE round_id = ? ORDER BY number", (round_id,)
        )
        return [draft_record(row) for row in rows]

    async def with_context(
        self, round_id: int
    ) -> tuple[RoundRecord, SessionRecord, ChatSettings] | None:
        """Return the round, its session and its chat's settings in one trip, or None if
        there is no such round."""

        def work() -> tuple[RoundRecord, SessionRecord, ChatSettings] | None:
            row = self._db.one("SELECT * FROM rounds WHERE id = ?", (round_id,))
            round = maybe(round_record, row)
            if round is None:
                return None
            row = self._db.one("SELECT * FROM sessions WHERE id = ?", (round.session_id,))
            session = maybe(session_record, row)
            if session is None:
                return None
            return round, session, read_settings(self._db, session.chat_id)

        return await self._db.read(work)

    async def of_session(self, session_id: int) -> list[RoundRecord]:
        """Return the session's rounds in number order."""
        rows = await self._db.read(
            self._db.all, "SELECT * FROM rounds WHERE session_id = ? ORDER BY number", (session_id,)
        )
        return [round_record(row) for row in rows]

    async def running(self) -> list[RoundRecord]:
        """Return every round left pending, generating or critiquing (a restart finishes
        them), oldest first."""
        rows = await self._db.read(
            self._db.all, f"SELECT * FROM rounds WHERE status IN {RUNNING_SQL} ORDER BY id"
        )
        return [round_record(row) for row in rows]

    async def by_message(self, chat_id: int, message_id: int) -> RoundRecord | None:
        """Return the round shown by this message of this chat, if any."""
        row = await self._db.read(
            self._db.one,
            "SELECT r.* FROM rounds r JOIN sessions s ON s.id = r.session_id "
            "WHERE r.message_id = ? AND s.chat_id = ?",
            (message_id, chat_id),
        )
        return maybe(round_record, row)

    # --- a round's life ---------------------------------------------------------------------

    async def start(self, round_id: int) -> RoundRecord:
        """Mark the round, and its drafts still pending, generating; return the round.

        Raises LookupError if there is no such round.
        """

        def work() -> RoundRecord:
            with self._db.transaction():
                self._db.execute(
                    "UPDATE drafts SET status = ? WHERE round_id = ? AND status = ?",
                    (RoundStatus.GENERATING, round_id, RoundStatus.PENDING),
                )
                row = self._db.one(
                    "UPDATE rounds SET status = ? WHERE id = ? RETURNING *",
                    (RoundStatus.GENERATING, round_id),
                )
                return round_record(found(row, f"round {round_id}"))

        return await self._db.run(work)

    async def keep_draft(self, round_id: int, draft_id: int, *, done: bool) -> RoundRecord:
        """Make the draft the round's kept one, in one transaction: the round takes its image,
        generate_ms, critique, score, fidelity, critique_ms and error (image_at now if the
        round had no image yet); the draft is kept, the round's other drafts are not. With
        `done` the round is done (finished now); else it is critiquing (its kept image is
        still to be critiqued, e.g. after a restart). Return the round.

        Raises LookupError if the draft is not one of the round's, ValueError if it has no
        image.
        """

        def work() -> RoundRecord:
            with self._db.transaction():
                row = self._db.one(
                    "SELECT * FROM drafts WHERE id = ? AND round_id = ?", (draft_id, round_id)
                )
                draft = draft_record(found(row, f"draft {draft_id} of round {round_id}"))
                if draft.image_sha is None:
                    raise ValueError(f"draft {draft_id} has no image to keep")
                self._db.execute(
                    "UPDATE drafts SET kept = (id = ?) WHERE round_id = ?", (draft_id, round_id)
                )
                status = RoundStatus.DONE if done else RoundStatus.CRITIQUING
                now = now_iso()
                row = self._db.one(
                    "UPDATE rounds SET image_sha = ?, "
                    "image_at = CASE WHEN image_sha IS NULL THEN ? ELSE image_at END, "
                    "generate_ms = ?, critique = ?, score = ?, fidelity = ?, critique_ms = ?, "
                    "error_kind = ?, error = ?, status = ?, finished_at = ?, "
                    "edit_of = ?, instruction = ?, kind_note = ?, size_note = ? "
                    "WHERE id = ? RETURNING *",
                    (
                        draft.image_sha,
                        now,
                        draft.generate_ms,
                        draft.critique,
                        draft.score,
                        draft.fidelity,
                        draft.critique_ms,
                        draft.error_kind,
                        draft.error,
                        status,
                        now if done else None,
                        draft.edit_of,
                        draft.instruction,
                        draft.kind_note,
                        draft.size_note,
                        round_id,
                    ),
                )
                return round_record(found(row, f"round {round_id}"))

        return await self._db.run(work)

    async def fail(
        self, round_id: int, *, status: RoundStatus, error_kind: str, error: str
    ) -> RoundRecord:
        """End the round with an error, finished now: `status` failed (it has no image) or
        done (an image without a critique); its unfinished drafts fail with it, in the same
        transaction. Return the round.

        Raises LookupError if there is no such round, ValueError for any other status.
        """
        check_ending(status)

        def work() -> RoundRecord:
            now = now_iso()
            with self._db.transaction():
                end_unfinished(
                    self._db, round_id=round_id, error_kind=error_kind, error=error, now=now
                )
                row = self._db.one(
                    "UPDATE rounds SET status = ?, error_kind = ?, error = ?, finished_at = ? "
                    "WHERE id = ? RETURNING *",
                    (status, error_kind, error, now, round_id),
                )
                return round_record(found(row, f"round {round_id}"))

        return await self._db.run(work)

    async def cancel(self, round_id: int) -> RoundRecord:
        """Cancel the round and its unfinished drafts, finished now, in one transaction;
        return the round.

        Raises LookupError if there is no such round.
        """

        def work() -> RoundRecord:
            now = now_iso()
            with self._db.transaction():
                self._db.execute(
                    "UPDATE drafts SET status = ?, finished_at = ? "
                    f"WHERE round_id = ? AND status IN {RUNNING_SQL}",
                    (RoundStatus.CANCELLED, now, round_id),
                )
                row = self._db.one(
                    "UPDATE rounds SET status = ?, finished_at = ? WHERE id = ? RETURNING *",
                    (RoundStatus.CANCELLED, now, round_id),
                )
                return round_record(found(row, f"round {round_id}"))

        return await self._db.run(work)

    async def shown(self, round_id: int, message_id: int) -> RoundRecord:
        """Record the message that shows the round (its photo, for buttons on it); return it.

        Raises LookupError if there is no such round.
        """
        row = await self._db.run(
            self._db.write_one,
            "UPDATE rounds SET message_id = ? WHERE id = ? RETURNING *",
            (message_id, round_id),
        )
        return round_record(found(row, f"round {round_id}"))

    # --- drafts ---------------------------------------------------------------------------------

    async def critique_draft(
        self, draft_id: int, *, critique: str, score: int, fidelity: int | None, critique_ms: int
    ) -> DraftRecord:
        """Store the draft's critique (JSON), score and fidelity: it is done, finished now,
        with no error; return it.

        Raises LookupError if there is no such draft.
        """
        row = await self._db.run(
            self._db.write_one,
            "UPDATE drafts SET critique = ?, score = ?, fidelity = ?, critique_ms = ?, "
            "status = ?, error_kind = NULL, error = NULL, finished_at = ? "
            "WHERE id = ? RETURNING *",
            (critique, score, fidelity, critique_ms, RoundStatus.DONE, now_iso(), draft_id),
        )
        return draft_record(found(row, f"draft {draft_id}"))

    async def fail_draft(
        self, draft_id: int, *, status: RoundStatus, error_kind: str, error: str
    ) -> DraftRecord:
        """End the draft with an error, finished now: `status` failed (it has no image) or
        done (an image without a critique); return it.

        Raises LookupError if there is no such draft, ValueError for any other status.
        """
        check_ending(status)
        row = await self._db.run(
            self._db.write_one,
            "UPDATE drafts SET status = ?, error_kind = ?, error = ?, finished_at = ? "
            "WHERE id = ? RETURNING *",
            (status, error_kind, error, now_iso(), draft_id),
        )
        return draft_record(found(row, f"draft {draft_id}"))

    async def cancel_draft(self, draft_id: int) -> DraftRecord:
        """Cancel the draft, finished now, unless it already finished (then it is returned as
        it is); return it.

        Raises LookupError if there is no such draft.
        """

        def work() -> DraftRecord:
            with self._db.transaction():
                self._db.execute(
                    f"UPDATE drafts SET status = ?, finished_at = ? "
                    f"WHERE id = ? AND status IN {RUNNING_SQL}",
                    (RoundStatus.CANCELLED, now_iso(), draft_id),
                )
                row = self._db.one("SELECT * FROM drafts WHERE id = ?", (draft_id,))
                return draft_record(found(row, f"draft {draft_id}"))

        return await self._db.run(work)

    # --- after a restart ----------------------------------------------------------------------

    async def interrupt_unfinished(self) -> int:
        """Mark every draft and autopilot run a crash or restart left running, in one
        transaction; return how many runs.

        A draft already drawn keeps its image (done, without a critique); the others failed;
        both with error_kind 'interrupted'. Runs end interrupted, and the chat is owed each
        one's ending (storage/deliveries.py). Rounds themselves are left as they are: a
        restart finishes them (`running`).
        """

        def work() -> int:
            now = now_iso()
            with self._db.transaction():
                end_unfinished(
                    self._db,
                    round_id=None,
                    error_kind="interrupted",
                    error="interrupted by a restart",
                    now=now,
                )
                runs = self._db.all(
                    "UPDATE autopilot_runs SET status = ?, finished_at = ? WHERE status = ? "
                    "RETURNING id",
                    (AutopilotStatus.INTERRUPTED, now, AutopilotStatus.RUNNING),
                )
                for (run_id,) in runs:
                    owe(self._db, DeliveryKind.AUTOPILOT, int(run_id))
                return len(runs)

        return await self._db.run(work)

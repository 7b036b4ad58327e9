"""DEPRECATED: the Store's old flat API, kept only for bot/refine/service.py,
bot/refine/autopilot.py and bot/cli/refine.py until they switch to the named writes.

Everything here delegates to the parts (`store.sessions`, `store.rounds`, `store.images`,
`store.chats`), except the `**values` column writes (`update_round`, `update_draft`,
`update_autopilot_run`) and the old `create_round` / `create_draft`, which have no
counterpart in the new API: a round created here has no drafts (as before migration 7), and
an autopilot adds them one by one with `create_draft`. Delete this module, and the two mixins
from `Store`'s bases, once nothing calls them.
"""

# to be removed when refine/ switches to the named writes

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from storage.chats import Chats, insert_usage
from storage.database import Database
from storage.images import Images
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
    UsageEntry,
)
from storage.rounds import Rounds
from storage.rows import draft_record, found, round_record, run_record
from storage.schema import now_iso
from storage.sessions import Sessions

_FIXED = {"id", "session_id", "round_id", "created_at"}


def _update(
    database: Database,
    table: str,
    record: type[Any],
    row_id: int,
    values: Mapping[str, Any],
    *,
    check: bool = True,
) -> sqlite3.Row:
    """Set the given columns of one row (no transaction of its own); return the row.

    Raises ValueError for a column the record has not (or may not change), unless not
    `check` (then sqlite3.OperationalError for a column the table has not, as the old
    `save_image(round_values=)` did), LookupError if there is no such row.
    """
    unknown = set(values) - ({f.name for f in fields(record)} - _FIXED)
    if check and unknown:
        raise ValueError(f"not updatable {table} columns: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in values)
    params = [
        str(v) if isinstance(v, RoundStatus | AutopilotStatus) else v for v in values.values()
    ]
    rows = database.all(
        f"UPDATE {table} SET {assignments} WHERE id = ? RETURNING *", (*params, row_id)
    )
    return found(rows[0] if rows else None, f"{table} row {row_id}")


class LegacyWrites:
    """DEPRECATED writes of the old flat Store API (to be removed, see the module)."""

    _database: Database
    sessions: Sessions
    rounds: Rounds
    images: Images
    chats: Chats

    async def create_session(
        self,
        chat_id: int,
        chat_type: str,
        thread_id: int,
        user_id: int,
        brief: str,
        reference_sha: str | None = None,
    ) -> SessionRecord:
        """Deprecated: `store.sessions.create`."""
        return await self.sessions.create(
            chat_id,
            chat_type=chat_type,
            thread_id=thread_id,
            user_id=user_id,
            brief=brief,
            reference_sha=reference_sha,
        )

    async def stop_session(self, session_id: int, chosen_round_id: int) -> SessionRecord:
        """Deprecated: `store.sessions.stop`."""
        return await self.sessions.stop(session_id, chosen_round_id=chosen_round_id)

    async def create_round(
        self,
        session_id: int,
        parent_round_id: int | None,
        prompt: str,
        action: str,
        acted_by: int,
        acted_by_name: str,
    ) -> RoundRecord:
        """Deprecated (`store.rounds.create` also creates the drafts): a pending round,
        without drafts, numbered after the session's last."""

        def work() -> RoundRecord:
            db, now = self._database, now_iso()
            with db.transaction():
                number = 1 + db.count(
                    "SELECT COALESCE(MAX(number), 0) FROM rounds WHERE session_id = ?",
                    (session_id,),
                )
                rows = db.all(
                    "INSERT INTO rounds (session_id, parent_round_id, number, prompt, action, "
                    "acted_by, acted_by_name, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                    (
                        session_id,
                        parent_round_id,
                        number,
                        prompt,
                        action,
                        acted_by,
                        acted_by_name,
                        RoundStatus.PENDING,
                        now,
                    ),
                )
                db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            return round_record(rows[0])

        return await self._database.run(work)

    async def update_round(self, round_id: int, **values: Any) -> RoundRecord:
        """Deprecated (use the named writes of `store.rounds`): set the given columns."""
        return round_record(await self._write("rounds", RoundRecord, round_id, values))

    async def create_autopilot_run(
        self,
        session_id: int,
        start_round_id: int | None,
        rounds: int,
        drafts: int,
        threshold: int,
        started_by: int,
    ) -> AutopilotRunRecord:
        """Deprecated: `store.sessions.create_run`."""
        return await self.sessions.create_run(
            session_id,
            start_round_id=start_round_id,
            rounds=rounds,
            drafts=drafts,
            threshold=threshold,
            started_by=started_by,
        )

    async def update_autopilot_run(self, run_id: int, **values: Any) -> AutopilotRunRecord:
        """Deprecated (use `store.sessions.finish_run`): set the given columns."""
        row = await self._write("autopilot_runs", AutopilotRunRecord, run_id, values)
        return run_record(row)

    async def interrupt_autopilot_runs(self) -> int:
        """Deprecated: `store.rounds.interrupt_unfinished`."""
        return await self.rounds.interrupt_unfinished()

    async def create_draft(self, round_id: int, number: int, seed: int | None) -> DraftRecord:
        """Deprecated (`store.rounds.create` creates the drafts): draft `number` of the round,
        generating."""

        def work() -> DraftRecord:
            with self._database.transaction():
                rows = self._database.all(
                    "INSERT INTO drafts (round_id, number, seed, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING *",
                    (round_id, number, seed, RoundStatus.GENERATING, now_iso()),
                )
            return draft_record(rows[0])

        return await self._database.run(work)

    async def update_draft(self, draft_id: int, **values: Any) -> DraftRecord:
        """Deprecated (use the named writes of `store.rounds`): set the given columns."""
        return draft_record(await self._write("drafts", DraftRecord, draft_id, values))

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
        """Deprecated (`store.images.save`, `store.save_draft_image`): the image, its usage
        and, with `round_id`, the round taking it (and `round_values`), in one transaction."""
        database = self._database

        def within(sha: str) -> None:
            if usage is not None:
                insert_usage(database, usage)
            if round_id is not None:
                values = {"image_sha": sha, **(round_values or {})}
                _update(database, "rounds", RoundRecord, round_id, values, check=False)

        return await self.images.save(data, mime=mime, width=width, height=height, also=within)

    async def record_usage(self, usage: UsageEntry) -> None:
        """Deprecated: `store.chats.record_usage`."""
        await self.chats.record_usage(usage)

    async def set_pending_edit(
        self, chat_id: int, thread_id: int, user_id: int, round_id: int, prompt_message_id: int
    ) -> None:
        """Deprecated: `store.chats.set_pending_edit`."""
        await self.chats.set_pending_edit(
            chat_id, thread_id, user_id, round_id=round_id, prompt_message_id=prompt_message_id
        )

    async def take_pending_edit(
        self, chat_id: int, thread_id: int, user_id: int, prompt_message_id: int | None = None
    ) -> PendingEdit | None:
        """Deprecated: `store.chats.take_pending_edit`."""
        return await self.chats.take_pending_edit(
            chat_id, thread_id, user_id, prompt_message_id=prompt_message_id
        )

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Deprecated: `store.chats.migrate`."""
        return await self.chats.migrate(old_chat_id, new_chat_id)

    async def _write(
        self, table: str, record: type[Any], row_id: int, values: Mapping[str, Any]
    ) -> sqlite3.Row:
        def work() -> sqlite3.Row:
            with self._database.transaction():
                return _update(self._database, table, record, row_id, values)

        return await self._database.run(work)


class LegacyReads:
    """DEPRECATED reads of the old flat Store API (to be removed, see the module)."""

    sessions: Sessions
    rounds: Rounds
    images: Images
    chats: Chats

    async def get_session(self, session_id: int) -> SessionRecord | None:
        """Deprecated: `store.sessions.get`."""
        return await self.sessions.get(session_id)

    async def get_round(self, round_id: int) -> RoundRecord | None:
        """Deprecated: `store.rounds.get`."""
        return await self.rounds.get(round_id)

    async def round_with_context(
        self, round_id: int
    ) -> tuple[RoundRecord, SessionRecord, ChatSettings] | None:
        """Deprecated: `store.rounds.with_context`."""
        return await self.rounds.with_context(round_id)

    async def session_rounds(self, session_id: int) -> list[RoundRecord]:
        """Deprecated: `store.rounds.of_session`."""
        return await self.rounds.of_session(session_id)

    async def running_rounds(self) -> list[RoundRecord]:
        """Deprecated: `store.rounds.running`."""
        return await self.rounds.running()

    async def round_drafts(self, round_id: int) -> list[DraftRecord]:
        """Deprecated: `store.rounds.drafts`."""
        return await self.rounds.drafts(round_id)

    async def read_image(self, sha: str) -> tuple[ImageRecord, bytes]:
        """Deprecated: `store.images.read`."""
        return await self.images.read(sha)

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        """Deprecated: `store.chats.settings`."""
        return await self.chats.settings(chat_id)

    async def rounds_since(self, since: str, user_id: int, chat_id: int) -> tuple[int, int]:
        """Deprecated: `store.chats.rounds_since`."""
        return await self.chats.rounds_since(since, user_id, chat_id)

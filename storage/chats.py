"""What the store keeps per chat besides sessions: settings, pending edits, Telegram file ids,
usage (paid calls) and the counts quotas need, and where a supergroup came from."""

from __future__ import annotations

import json

from storage.database import Database, Params
from storage.records import ChatSettings, PendingEdit, UsageEntry, UsageSummary
from storage.rows import RUNNING_SQL, maybe, pending_edit_record, settings_record
from storage.schema import now_iso


def read_settings(database: Database, chat_id: int) -> ChatSettings:
    """Return the chat's settings (defaults if it never changed any). Worker thread only."""
    row = database.one("SELECT * FROM chat_settings WHERE chat_id = ?", (chat_id,))
    return maybe(settings_record, row) or ChatSettings(chat_id)


def insert_usage(database: Database, usage: UsageEntry) -> None:
    """Insert one usage row, inside the caller's transaction. Worker thread only.

    Raises sqlite3.IntegrityError if its round does not exist.
    """
    database.execute(
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


_COUNTS_FOR_QUOTA = (
    f"(r.image_sha IS NOT NULL OR r.status IN {RUNNING_SQL} OR EXISTS "
    "(SELECT 1 FROM usage u WHERE u.round_id = r.id AND u.kind = 'image'))"
)
"""A round the daily quota counts: it drew an image, was billed for one, or is under way."""


class Chats:
    """Per-chat settings, pending edits, file ids, usage and upgrades: `store.chats`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- settings --------------------------------------------------------------------------

    async def settings(self, chat_id: int) -> ChatSettings:
        """Return the chat's settings (defaults if it never changed any)."""
        return await self._db.read(read_settings, self._db, chat_id)

    async def save_settings(self, settings: ChatSettings) -> ChatSettings:
        """Store the chat's settings (all of them, replacing the old); return them as stored."""

        def work() -> ChatSettings:
            self._db.write(
                "INSERT OR REPLACE INTO chat_settings (chat_id, image_format, quality, "
                "language, press_policy, updated_at, marketplace) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    settings.chat_id,
                    settings.image_format,
                    settings.quality,
                    settings.language,
                    settings.press_policy,
                    now_iso(),
                    settings.marketplace,
                ),
            )
            return read_settings(self._db, settings.chat_id)

        return await self._db.run(work)

    # --- pending edits -----------------------------------------------------------------------

    async def set_pending_edit(
        self, chat_id: int, thread_id: int, user_id: int, *, round_id: int, prompt_message_id: int
    ) -> None:
        """Remember that the user's next message in this scope is an edit of the round,
        prompted by message `prompt_message_id` (replacing an edit pending before), and that
        the user's reply to that message always is (`edit_prompt`).

        Raises sqlite3.IntegrityError if there is no such round.
        """

        def work() -> None:
            now = now_iso()
            with self._db.transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO pending_edits (chat_id, thread_id, user_id, "
                    "round_id, prompt_message_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (chat_id, thread_id, user_id, round_id, prompt_message_id, now),
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO edit_prompts (chat_id, message_id, user_id, "
                    "round_id, created_at) VALUES (?, ?, ?, ?, ?)",
                    (chat_id, prompt_message_id, user_id, round_id, now),
                )

        await self._db.run(work)

    async def take_pending_edit(
        self, chat_id: int, thread_id: int, user_id: int, *, prompt_message_id: int | None = None
    ) -> PendingEdit | None:
        """Remove and return the user's pending edit in this scope; None if there is none.

        With `prompt_message_id`, only an edit prompted by that message is taken.
        """
        where = "chat_id = ? AND thread_id = ? AND user_id = ?"
        key: Params = (chat_id, thread_id, user_id)
        if prompt_message_id is not None:
            where += " AND prompt_message_id = ?"
            key = (*key, prompt_message_id)
        row = await self._db.run(
            self._db.write_one, f"DELETE FROM pending_edits WHERE {where} RETURNING *", key
        )
        return maybe(pending_edit_record, row)

    async def edit_prompt(
        self, chat_id: int, message_id: int, user_id: int, *, since: str
    ) -> PendingEdit | None:
        """Return the Edit prompt `message_id` of the chat if it asked `user_id` at or after
        `since` (ISO), as a pending edit; None otherwise."""
        row = await self._db.read(
            self._db.one,
            "SELECT chat_id, 0 AS thread_id, user_id, round_id, message_id AS prompt_message_id, "
            "created_at FROM edit_prompts WHERE chat_id = ? AND message_id = ? AND user_id = ? "
            "AND created_at >= ?",
            (chat_id, message_id, user_id, since),
        )
        return maybe(pending_edit_record, row)

    # --- Telegram file ids ---------------------------------------------------------------------

    async def file_id(self, sha: str, kind: str) -> str | None:
        """Return the Telegram file_id of this content sent as `kind`, if it was sent before."""
        row = await self._db.read(
            self._db.one,
            "SELECT file_id FROM telegram_files WHERE sha256 = ? AND kind = ?",
            (sha, kind),
        )
        return None if row is None else str(row[0])

    async def remember_file_id(self, sha: str, kind: str, file_id: str) -> None:
        """Remember the file_id Telegram gave this content, for re-sending it by id."""
        await self._db.run(
            self._db.write,
            "INSERT OR REPLACE INTO telegram_files (sha256, kind, file_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (sha, kind, file_id, now_iso()),
        )

    # --- usage and quotas ----------------------------------------------------------------------

    async def record_usage(self, entry: UsageEntry) -> None:
        """Record one paid call (an image or a critique), what it used and its estimated cost.

        Raises sqlite3.IntegrityError if its round does not exist.
        """

        def work() -> None:
            with self._db.transaction():
                insert_usage(self._db, entry)

        await self._db.run(work)

    async def usage_since(self, since: str, *, user_id: int | None = None) -> list[UsageSummary]:
        """Return rounds, images and estimated cost since `since` (ISO), per chat and user,
        costliest first. With `user_id`, only that user's usage."""
        where = "WHERE created_at >= ?" + (" AND user_id = ?" if user_id is not None else "")
        params: Params = (since,) if user_id is None else (since, user_id)
        rows = await self._db.read(
            self._db.all,
            "SELECT chat_id, user_id, COUNT(DISTINCT round_id) AS rounds, "
            "SUM(kind = 'image') AS images, SUM(cost_usd) AS cost_usd, "
            "SUM(cost_usd IS NULL) AS unpriced "
            f"FROM usage {where} GROUP BY chat_id, user_id ORDER BY cost_usd DESC",
            params,
        )
        return [UsageSummary(**dict(row)) for row in rows]

    async def rounds_since(self, since: str, user_id: int, chat_id: int) -> tuple[int, int]:
        """Return how many rounds the user, and how many the chat, started at or after
        `since` (ISO), in one trip: what the daily quotas count. A round counts when it drew
        an image, or was billed for one (a paid image that turned out unusable), or is still
        under way; one that failed without an image (a rate limit, an outage) does not."""

        def work() -> tuple[int, int]:
            by_user = self._db.count(
                f"SELECT COUNT(*) FROM rounds r WHERE r.acted_by = ? AND r.created_at >= ? "
                f"AND {_COUNTS_FOR_QUOTA}",
                (user_id, since),
            )
            in_chat = self._db.count(
                "SELECT COUNT(*) FROM rounds r JOIN sessions s ON s.id = r.session_id "
                f"WHERE s.chat_id = ? AND r.created_at >= ? AND {_COUNTS_FOR_QUOTA}",
                (chat_id, since),
            )
            return by_user, in_chat

        return await self._db.read(work)

    # --- groups upgraded to supergroups ----------------------------------------------------

    async def migrated_from(self, chat_id: int) -> int | None:
        """Return the id of the group this supergroup was upgraded from, if it was."""
        row = await self._db.read(
            self._db.one, "SELECT migrated_from FROM chats WHERE id = ?", (chat_id,)
        )
        return None if row is None or row[0] is None else int(row[0])

    async def migrate(self, old_chat_id: int, new_chat_id: int) -> int:
        """Move every session, pending edit and usage row of a group upgraded to a
        supergroup, and remember where the supergroup came from, in one transaction; return
        how many sessions moved."""

        def work() -> int:
            with self._db.transaction():
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
                for table in ("pending_edits", "usage"):
                    self._db.execute(
                        f"UPDATE {table} SET chat_id = ? WHERE chat_id = ?",
                        (new_chat_id, old_chat_id),
                    )
            return moved

        return await self._db.run(work)

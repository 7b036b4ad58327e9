"""The outbox: what a chat must still be sent, so that nothing paid for is lost in transit.

A delivery is owed in the same transaction as what makes it owed (a round's image stored, a
session stopped, an autopilot run finished or interrupted) and marked delivered when Telegram
confirms it (or when it can never be: the chat is gone, Telegram refuses it in every form).
What is still owed at a restart is sent then; while the bot runs it is tried again and again.
Each key is owed once at a time: owing it again (a run showing its best round anew) reopens it.
"""

from __future__ import annotations

import sqlite3

from storage.database import Database
from storage.records import DeliveryKind, DeliveryRecord
from storage.schema import now_iso


def delivery_key(kind: DeliveryKind, target_id: int) -> str:
    """Return the key of the delivery of `kind` for the round (or autopilot run) `target_id`."""
    return f"{kind.value}:{target_id}"


def owe(database: Database, kind: DeliveryKind, target_id: int) -> None:
    """Inside the caller's transaction: owe the chat the delivery of `kind` for the round
    (for AUTOPILOT: the autopilot run) `target_id`. Worker thread only."""
    round_id, autopilot_id = (
        (None, target_id) if kind is DeliveryKind.AUTOPILOT else (target_id, None)
    )
    database.execute(
        "INSERT INTO deliveries (key, kind, round_id, autopilot_id, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, "
        "attempts = 0, delivered_at = NULL, message_id = NULL",
        (delivery_key(kind, target_id), kind, round_id, autopilot_id, now_iso()),
    )


def mark_delivered(database: Database, key: str, *, message_id: int | None) -> None:
    """Inside the caller's transaction: the delivery `key` is made (see
    `Deliveries.delivered`). Worker thread only."""
    database.execute(
        "UPDATE deliveries SET delivered_at = ?, message_id = ? "
        "WHERE key = ? AND delivered_at IS NULL",
        (now_iso(), message_id, key),
    )


def _record(row: sqlite3.Row) -> DeliveryRecord:
    return DeliveryRecord(
        key=row["key"],
        kind=DeliveryKind(row["kind"]),
        round_id=row["round_id"],
        autopilot_id=row["autopilot_id"],
        created_at=row["created_at"],
        attempts=row["attempts"],
    )


class Deliveries:
    """The store's outbox (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def owe(self, kind: DeliveryKind, target_id: int) -> None:
        """Owe the chat the delivery of `kind` for round (or autopilot run) `target_id`."""

        def work() -> None:
            with self._db.transaction():
                owe(self._db, kind, target_id)

        await self._db.run(work)

    async def owed(self) -> list[DeliveryRecord]:
        """Return every delivery not yet made, oldest first."""
        rows = await self._db.read(
            self._db.all,
            "SELECT key, kind, round_id, autopilot_id, created_at, attempts FROM deliveries "
            "WHERE delivered_at IS NULL ORDER BY created_at, key",
        )
        return [_record(row) for row in rows]

    async def is_owed(self, kind: DeliveryKind, target_id: int) -> bool:
        """Return whether that delivery is owed (not yet made)."""
        found = await self._db.read(
            self._db.count,
            "SELECT COUNT(*) FROM deliveries WHERE key = ? AND delivered_at IS NULL",
            (delivery_key(kind, target_id),),
        )
        return found > 0

    async def tried(self, key: str) -> None:
        """Count one more attempt that did not get through."""
        await self._db.run(
            self._db.write, "UPDATE deliveries SET attempts = attempts + 1 WHERE key = ?", (key,)
        )

    async def delivered(self, key: str, *, message_id: int | None) -> None:
        """Mark the delivery made (`message_id`: the message that made it; None when it can
        never be made). Marking one that is not owed changes nothing."""

        def work() -> None:
            with self._db.transaction():
                mark_delivered(self._db, key, message_id=message_id)

        await self._db.run(work)

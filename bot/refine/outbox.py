"""What the chats are still owed, for the chat side to send: the domain half of the outbox.

The store owes a delivery in the transaction that makes it owed (storage/deliveries.py). While
a run is shown in its chat, its view delivers what the run owes and marks it delivered; what a
view could not deliver (Telegram unreachable for minutes, a restart, a crash) is found here by
the redelivery pass (bot/chat/redelivery.py), which runs at start and every few seconds.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from bot.refine.errors import SessionBusy
from bot.refine.models import Scope, StopResult
from bot.refine.reservations import Reservations
from bot.refine.rules import quality_of
from storage.deliveries import delivery_key
from storage.records import (
    AutopilotRunRecord,
    DeliveryKind,
    DeliveryRecord,
    RoundRecord,
    RoundStatus,
    SessionRecord,
)
from storage.store import Store

log = logging.getLogger(__name__)

TERMINAL_CHAT_ID = 0
"""The chat id of `python -m bot refine`'s sessions (no Telegram chat has it)."""


@dataclass(frozen=True, slots=True)
class OwedDelivery:
    """One delivery to make now, with what it shows.

    ROUND: `round` with its photo, critique and buttons; DOCUMENT: Stop's document of
    `round`; AUTOPILOT: the interrupted `run`'s progress message ended and its best finished
    round (`round`, None when it finished none) shown.
    """

    key: str
    kind: DeliveryKind
    session: SessionRecord
    scope: Scope
    round: RoundRecord | None
    run: AutopilotRunRecord | None = None
    attempts: int = 0


class Outbox:
    """Finds what is owed and records what was delivered (see the module docstring)."""

    def __init__(self, store: Store, reservations: Reservations) -> None:
        """`reservations`: the runs under way (what a session with a run owes is its own
        view's to deliver; a delivery holds its session as a run does)."""
        self._store = store
        self._reservations = reservations
        self._showing: Counter[int] = Counter()

    @contextlib.contextmanager
    def delivering(self, owed: OwedDelivery) -> Iterator[bool]:
        """Hold the delivery's session while the block delivers it (a button pressed
        meanwhile gets "already working", so Stop cannot send its document twice); yield
        False, holding nothing, if a run or another delivery holds it already."""
        try:
            self._reservations.reserve(owed.session.id, owed.scope, steered_by=None)
        except SessionBusy:
            yield False
            return
        try:
            yield True
        finally:
            self._reservations.release(owed.session.id)

    @contextlib.contextmanager
    def showing(self, session_id: int) -> Iterator[None]:
        """While the block runs, a view is showing a run of the session: what the session
        owes is left to it."""
        self._showing[session_id] += 1
        try:
            yield
        finally:
            self._showing[session_id] -= 1
            if not self._showing[session_id]:
                del self._showing[session_id]

    async def owed(self) -> list[OwedDelivery]:
        """Return what is owed and no view is delivering, oldest first. A delivery that can
        never be made (its round or session is gone) is marked delivered and left out."""
        found = []
        for record in await self._store.deliveries.owed():
            try:
                owed = await self._resolve(record)
            except LookupError as error:
                log.warning("delivery %s can never be made: %s", record.key, error)
                await self.delivered(record.key, message_id=None)
                continue
            if owed.scope.chat_id == TERMINAL_CHAT_ID:  # `python -m bot refine` showed it
                await self.delivered(record.key, message_id=None)
                continue
            session_id = owed.session.id
            if self._reservations.is_busy(session_id) or session_id in self._showing:
                continue
            if owed.kind is DeliveryKind.ROUND and owed.round and owed.round.status.running:
                continue  # a run (or a restart's resume) still finishes it
            found.append(owed)
        return found

    async def _resolve(self, record: DeliveryRecord) -> OwedDelivery:
        run = None
        if record.kind is DeliveryKind.AUTOPILOT:
            assert record.autopilot_id is not None
            run = await self._store.sessions.get_run(record.autopilot_id)
            if run is None:
                raise LookupError(f"autopilot run {record.autopilot_id}")
            session = await self._session(run.session_id)
            round = await self._best_finished(run)
        else:
            assert record.round_id is not None
            round = await self._store.rounds.get(record.round_id)
            if round is None:
                raise LookupError(f"round {record.round_id}")
            session = await self._session(round.session_id)
        scope = Scope(session.chat_id, session.thread_id)
        return OwedDelivery(
            record.key, record.kind, session, scope, round, run, attempts=record.attempts
        )

    async def _session(self, session_id: int) -> SessionRecord:
        session = await self._store.sessions.get(session_id)
        if session is None:
            raise LookupError(f"session {session_id}")
        return session

    async def _best_finished(self, run: AutopilotRunRecord) -> RoundRecord | None:
        """Return the best round the run finished with an image (a round still running is
        finished, and shown, by the restart's resume), or None."""
        rounds = [
            r
            for r in await self._store.rounds.of_session(run.session_id)
            if r.autopilot_id == run.id and r.status is RoundStatus.DONE and r.image_sha
        ]
        return max(rounds, key=lambda r: (quality_of(r) or 0, r.number), default=None)

    async def kept_image(self, owed: OwedDelivery) -> StopResult:
        """Return what Stop's owed document shows: the kept round and its original.

        Raises LookupError when the image is gone (pruned): the document can never be sent.
        """
        assert owed.round is not None and owed.round.image_sha is not None
        record, image = await self._store.images.read(owed.round.image_sha)
        rounds = await self._store.rounds.of_session(owed.session.id)
        size = (record.width, record.height)
        return StopResult(owed.session, owed.round, image, record.mime, len(rounds), size)

    async def delivered(self, key: str, *, message_id: int | None) -> None:
        """Record that the delivery was made by message `message_id` (None: it never can
        be: the chat is gone, or Telegram refuses it in every form). Never raises: a mark
        the store cannot write is logged, and the next pass finds the delivery made already
        (its caption edit is "not modified")."""
        try:
            await self._store.deliveries.delivered(key, message_id=message_id)
        except Exception:
            log.exception("delivery %s was made but could not be marked", key)

    async def round_delivered(self, round_id: int, *, message_id: int | None) -> None:
        """Record that the round is shown in its final form (photo, critique, buttons)."""
        await self.delivered(delivery_key(DeliveryKind.ROUND, round_id), message_id=message_id)

    async def not_delivered(self, key: str) -> None:
        """Count an attempt that did not get through (it is tried again); never raises."""
        try:
            await self._store.deliveries.tried(key)
        except Exception:
            log.exception("delivery %s: its attempt could not be counted", key)

    async def shown(self, round_id: int, message_id: int) -> None:
        """Remember the message that shows the round (for the buttons on it, and replies to
        it); never raises (a write that fails is logged: the buttons carry the round's id)."""
        try:
            await self._store.rounds.shown(round_id, message_id)
        except Exception:
            log.exception("round %s: its message %s could not be stored", round_id, message_id)

    async def progress_shown(self, run_id: int, message_id: int) -> None:
        """Remember the message showing an autopilot run's progress (a restart ends it);
        never raises (a write that fails is logged)."""
        try:
            await self._store.sessions.progress_shown(run_id, message_id)
        except Exception:
            log.exception("autopilot run %s: its progress message could not be stored", run_id)

"""Which sessions have a round or run under way, who may cancel it, and its task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.refine.errors import NotYourSession, SessionBusy
from bot.refine.models import Actor, Scope


@dataclass(slots=True)
class Reservation:
    """A session's run under way: where it runs, who alone may steer it, its task."""

    scope: Scope
    steered_by: int | None  # who alone may steer (and cancel) it; None: anyone in the chat
    task: asyncio.Task[Any] | None = None
    cancel_requested: bool = False


class Reservations:
    """One run at a time per session, in this process."""

    def __init__(self) -> None:
        self._running: dict[int, Reservation] = {}

    def reserve(self, session_id: int, scope: Scope, steered_by: int | None) -> Reservation:
        """Reserve the session for one run; return the reservation.

        Raises SessionBusy if a run of the session is pending or under way.
        """
        # No await between the check and the reservation: two presses cannot both pass.
        if session_id in self._running:
            raise SessionBusy()
        reservation = self._running[session_id] = Reservation(scope, steered_by)
        return reservation

    def get(self, session_id: int) -> Reservation:
        """Return the session's reservation. Raises KeyError if it has none."""
        return self._running[session_id]

    def release(self, session_id: int) -> None:
        """End the session's reservation, if it has one."""
        self._running.pop(session_id, None)

    def is_busy(self, session_id: int) -> bool:
        """Return whether a run of the session is pending or under way."""
        return session_id in self._running

    def cancel(self, scope: Scope, actor: Actor) -> int:
        """Cancel every run in this scope that the actor may steer; return how many.

        A run whose task has not started is cancelled as it starts. Raises NotYourSession
        when all that runs there is someone else's.
        """
        cancelled = 0
        others = 0
        for running in list(self._running.values()):
            if running.scope != scope:
                continue
            if running.steered_by not in (None, actor.user_id):
                others += 1
                continue
            if running.task is None:
                running.cancel_requested = True
            elif not running.task.done():
                running.task.cancel()
            cancelled += 1
        if others and not cancelled:
            raise NotYourSession()
        return cancelled

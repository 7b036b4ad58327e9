"""The record of one run while it runs: its rounds, the one under way, the best so far, and
how each round and the run end in the store.

A store that cannot write (a full or read-only disk) never stops a round from ending: the
record is then kept as it would have been stored, and the run still reports its end.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace

from bot.backends.errors import BackendError, Internal
from bot.refine.drafts import DraftMaker
from bot.refine.models import PendingRun, RoundOutcome, RunOutcome
from bot.refine.reports import log_round_end, log_run_end
from bot.refine.rules import RUN_STATUS, STOP_CANCELLED, STOP_GONE, critique_of, quality_of
from storage.records import AutopilotStatus, RoundRecord, RoundStatus
from storage.store import Store

log = logging.getLogger(__name__)


class RunLedger:
    """What a run has done so far, and its writes of how rounds and the run ended."""

    def __init__(self, *, store: Store, pending: PendingRun, drafts: DraftMaker) -> None:
        self._store = store
        self._pending = pending
        self._drafts = drafts
        self.rounds: list[RoundOutcome] = []
        """The rounds that finished, in order."""
        self.last: RoundOutcome | None = None
        """The last round that ended, a cancelled one included."""
        self.open: RoundRecord | None = pending.round
        """The round begun and not ended yet, if any."""
        self.best_quality: int | None = quality_of(pending.start)
        self.best: RoundRecord | None = pending.start if self.best_quality is not None else None
        """The best round so far (the start round counts), with its quality."""
        self.error: BackendError | None = None
        """Why the run stopped early, when a round failed."""

    def consider(self, round: RoundRecord, quality: int) -> bool:
        """Make the round the best so far if it beats it; return whether it did."""
        if self.best_quality is not None and quality <= self.best_quality:
            return False
        self.best, self.best_quality = round, quality
        return True

    def ended(self, outcome: RoundOutcome, *, finished: bool = False) -> RoundOutcome:
        """Note the round as ended (and, `finished`, as one of the run's rounds) and log the
        line that ends it; return it."""
        self.open = None
        self.last = outcome
        if finished:
            self.rounds.append(outcome)
        log_round_end(outcome, chat_id=self._pending.session.chat_id)
        return outcome

    async def failed(
        self, round: RoundRecord, status: RoundStatus, error: BackendError
    ) -> RoundRecord:
        """Store that the round ended with `error`; return it. A store that cannot write does
        not stop the round's end: the round is returned as it would have been stored."""
        try:
            return await self._store.rounds.fail(
                round.id, status=status, error_kind=error.kind, error=str(error)
            )
        except Exception:
            log.exception("round %s: its end could not be stored", round.id)
            return replace(round, status=status, error_kind=error.kind, error=str(error))

    async def cancel_open(self) -> None:
        """Store the round under way (if any) as cancelled, with its unfinished drafts."""
        if self.open is None:
            return
        try:
            round = await self._store.rounds.cancel(self.open.id)
        except Exception:
            log.exception("round %s: its cancellation could not be stored", self.open.id)
            round = replace(self.open, status=RoundStatus.CANCELLED)
        self.ended(RoundOutcome(round, cancelled=True))

    async def end_open_internally(self) -> None:
        """Finish a round the bot itself broke (a bug, a full disk), so the chat is told: an
        image already stored is kept, with its buttons; without one, it can be retried."""
        if self.open is None:
            return
        kept = self.open.image_sha is not None
        with contextlib.suppress(Exception):  # what the store has, if it can say
            kept = (await self._store.rounds.get(self.open.id) or self.open).image_sha is not None
        error = Internal("critic" if kept else "image")
        status = RoundStatus.DONE if kept else RoundStatus.FAILED
        self.ended(RoundOutcome(await self.failed(self.open, status, error), error=error))

    async def finish(self, reason: str) -> RunOutcome:
        """Store how the run ended (a round left open is cancelled, or ended as the bot's
        own failure); return its outcome, with the best round across the run."""
        pending = self._pending
        if reason in (STOP_CANCELLED, STOP_GONE):
            await self.cancel_open()
        elif self.open is not None:
            await self.end_open_internally()
        best, run = self.best, None
        try:  # the best round as stored now (its message id); a store that fails loses that
            best = await self._store.rounds.get(self.best.id) if self.best else None
            if pending.run is not None:
                run = await self._store.sessions.finish_run(
                    pending.run.id,
                    status=RUN_STATUS.get(reason, AutopilotStatus.FAILED),
                    stop_reason=reason,
                    best_round_id=best.id if best else None,
                )
        except Exception:
            log.exception("%s: its end could not be stored", pending.name)
        outcome = RunOutcome(
            pending=pending,
            rounds=tuple(self.rounds),
            last=self.last,
            best=best,
            best_critique=critique_of(best) if best else None,
            stop_reason=reason,
            error=self.error,
            images=self._drafts.images,
            cost_usd=sum(self._drafts.costs) if self._drafts.costs else None,
            run=run,
        )
        if run is not None:
            log_run_end(outcome)
        return outcome

"""One engine for every round: a run of R rounds x D drafts.

A manual round is a run of 1 x 1 whose image is shown as soon as it is stored; an autopilot
run draws each round's drafts at the same time from one prompt (each with its own seed where
the backend honours seeds), has the critic judge every draft, and keeps the best one: the
round's image, critique and score are that draft's, and the next round starts from its
suggested revision. A run stops early when a round reaches the threshold score, or when two
rounds in a row did not beat the best so far; its result is the best round of the whole run
(the round it started from included), never simply the last one.

Order of work in a round (ARCHITECTURE.md): the round and its drafts are stored as pending
before any paid call; an image is stored (with its usage) before anyone is shown it; a
critique is stored as soon as it arrives. Ranking uses `Critique.quality`: the score, capped
by the product fidelity when the session started from a photo.

Cancelling the run's task (/cancel) stops it at once: drafts in flight are cancelled, none is
started after that, and the best round so far is still the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from bot.backends.errors import Internal, Interrupted
from bot.refine.drafts import DraftMaker
from bot.refine.errors import AudienceGone, QuotaExceeded
from bot.refine.history import round_image
from bot.refine.ledger import RunLedger
from bot.refine.models import (
    DraftOutcome,
    PendingRun,
    RoundOutcome,
    RunListener,
    RunOutcome,
    RunProgress,
)
from bot.refine.rules import (
    PATIENCE,
    STOP_ERROR,
    STOP_GONE,
    STOP_NO_IMPROVEMENT,
    STOP_QUOTA,
    STOP_ROUNDS,
    STOP_THRESHOLD,
    best_draft,
    critique_of,
    draft_plans,
)
from bot.refine.steps import CriticContext, PaidSteps
from bot.refine.tasks import background, notify
from storage.records import DraftRecord, RoundRecord, RoundStatus
from storage.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")


class Runner:
    """Runs one pending run (`loop`) or finishes one a restart interrupted (`resume`), telling
    the listener; `finish` stores how it ended. Made and driven by RefineService."""

    def __init__(
        self,
        *,
        store: Store,
        steps: PaidSteps,
        pending: PendingRun,
        listener: RunListener,
        check_quota: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._steps = steps
        self._pending = pending
        self._plan = pending.plan
        self._listener = listener
        self._check_quota = check_quota
        self._drafts = DraftMaker(store=store, steps=steps, pending=pending, listener=listener)
        self._ledger = RunLedger(store=store, pending=pending, drafts=self._drafts)
        self._gone = False
        self._reference_jpeg: asyncio.Task[bytes | None] | None = None

    # --- the run ------------------------------------------------------------------------------

    async def loop(self) -> str:
        """Run rounds until a stop rule holds; return the stop reason."""
        pending, plan = self._pending, self._plan
        try:
            await notify(self._listener.progress(self._progress("start")))
            self._drafts.reference = await self._steps.reference_of(pending.session)
            self._reference_jpeg = background(self._small_reference())
            parent = pending.start
            prompt = pending.round.prompt if pending.round else _first_prompt(pending)
            stale = 0
            for index in range(1, plan.rounds + 1):
                if index > 1:
                    try:
                        await self._check_quota()
                    except QuotaExceeded:
                        return STOP_QUOTA
                result = await self._round(index, parent, prompt)
                if self._gone:
                    raise AudienceGone()
                critique, ledger = result.critique, self._ledger
                if result.round.image_sha is None or critique is None:
                    ledger.error = result.error
                    if ledger.best is None and result.round.image_sha is not None:
                        ledger.best = result.round  # an image, even unjudged, beats none
                    await notify(self._listener.progress(self._progress("done", index)))
                    return STOP_ERROR
                stale = 0 if ledger.consider(result.round, critique.quality) else stale + 1
                await notify(self._listener.progress(self._progress("done", index, result.round)))
                best_quality = ledger.best_quality or 0
                if plan.threshold is not None and best_quality >= plan.threshold:
                    return STOP_THRESHOLD
                if stale >= PATIENCE:
                    return STOP_NO_IMPROVEMENT
                parent, prompt = result.round, critique.revised_prompt
            return STOP_ROUNDS
        except AudienceGone:
            log.info("%s: chat %s is gone; stopping", pending.name, pending.scope.chat_id)
            return STOP_GONE
        finally:
            if self._reference_jpeg is not None:
                self._reference_jpeg.cancel()

    async def _small_reference(self) -> bytes | None:
        if self._drafts.reference is None:
            return None
        return await self._steps.critic_image(self._drafts.reference)

    async def _round(self, index: int, parent: RoundRecord | None, prompt: str) -> RoundOutcome:
        """Draw and judge the round's drafts in parallel; keep the best; return the round."""
        round = await self._begin_round(index, parent, prompt)
        finished: list[DraftOutcome] = []
        context = background(self._critic_context(round))
        try:
            await notify(self._listener.progress(self._progress("round", index, round)))
            drafts = await self._store.rounds.drafts(round.id)
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._draft(index, round, draft, context, finished))
                    for draft in drafts
                ]
        except BaseException:
            await asyncio.shield(self._ledger.cancel_open())
            raise
        finally:
            context.cancel()
        return await self._keep_best(round, [task.result() for task in tasks])

    async def _begin_round(
        self, index: int, parent: RoundRecord | None, prompt: str
    ) -> RoundRecord:
        """Return the round `index` marked generating: the pending one, or a new one."""
        pending = self._pending
        if index == 1 and pending.round is not None:
            round_id = pending.round.id
        else:
            drafts = draft_plans(
                session_id=pending.session.id,
                drafts=self._plan.drafts,
                strategy=self._plan.strategy,
                source=self._ledger.best,
                can_edit=self._steps.can_edit,
            )
            created = await self._store.rounds.create(
                pending.session.id,
                parent_id=parent.id if parent else None,
                prompt=prompt,
                action="auto",
                actor_id=pending.actor.user_id,
                actor_name=pending.actor.name,
                drafts=drafts,
                autopilot_id=pending.run.id if pending.run else None,
            )
            round_id = created.id
        self._ledger.open = await self._store.rounds.start(round_id)
        return self._ledger.open

    async def _critic_context(self, round: RoundRecord) -> CriticContext:
        """Read what the critic sees besides the image, while the image is drawn."""
        assert self._reference_jpeg is not None
        return await self._steps.critic_context(
            self._pending.session, round.id, await asyncio.shield(self._reference_jpeg)
        )

    # --- one draft ----------------------------------------------------------------------------

    async def _draft(
        self,
        index: int,
        round: RoundRecord,
        draft: DraftRecord,
        context: Awaitable[CriticContext],
        finished: list[DraftOutcome],
    ) -> DraftOutcome:
        outcome = await self._drafts.draw_and_judge(round, draft, context)
        finished.append(outcome)
        try:
            await notify(
                self._listener.progress(self._progress("draft", index, round, len(finished)))
            )
        except AudienceGone:  # not raised here: it would cancel the other drafts' critiques
            self._gone = True
        return outcome

    # --- the end of a round -------------------------------------------------------------------

    async def _keep_best(self, round: RoundRecord, drafts: list[DraftOutcome]) -> RoundOutcome:
        """Store the round as its best draft (or as failed when no draft has an image)."""
        best = best_draft(drafts)
        errors = [d.error for d in drafts if d.error is not None]
        costs = [d.cost_usd for d in drafts if d.cost_usd is not None]
        cost = sum(costs) if costs else None
        if best is None:
            unsaved = next((d for d in drafts if d.unsaved is not None), None)
            failure = unsaved.error if unsaved else errors[0] if errors else Internal("image")
            assert failure is not None
            round = await self._ledger.failed(round, RoundStatus.FAILED, failure)
            return self._ledger.ended(
                RoundOutcome(
                    round,
                    None,
                    failure,
                    cost_usd=cost,
                    drafts=tuple(drafts),
                    unsaved=unsaved.unsaved if unsaved else None,
                ),
                finished=True,
            )
        round = await self._store.rounds.keep_draft(round.id, best.draft.id, done=True)
        kept = replace(best, draft=replace(best.draft, kept=1))
        drafts = [kept if d is best else d for d in drafts]
        error = None if best.critique else best.error or (errors[0] if errors else None)
        return self._ledger.ended(
            RoundOutcome(
                round,
                best.critique,
                error,
                cost_usd=cost,
                drafts=tuple(drafts),
                kept=best.draft.number,
            ),
            finished=True,
        )

    # --- after a restart ----------------------------------------------------------------------

    async def resume(self) -> str:
        """Finish the pending round a restart interrupted, as far as it can be without paying
        twice: a kept image is shown (unless it was) and critiqued again; a round without one
        fails, ready for a Retry. Returns the stop reason."""
        round = self._pending.round
        assert round is not None
        image = await round_image(self._store, round)
        drafts = await self._store.rounds.drafts(round.id)
        kept = next((d for d in drafts if d.kept and d.image_sha == round.image_sha), None)
        if image is None or kept is None:
            error = self._ledger.error = Interrupted("image")
            failed = await self._ledger.failed(round, RoundStatus.FAILED, error)
            self._ledger.ended(RoundOutcome(failed, error=error), finished=True)
            return STOP_ERROR
        try:
            if round.message_id is None:
                message_id = await notify(self._listener.image_ready(round, image))
                if message_id is not None:
                    round = await self._store.rounds.shown(round.id, message_id)
            jpeg = await self._steps.critic_image(image)
            context = self._resumed_context(round)
            outcome = await self._drafts.critiqued(
                kept, self._drafts.judge(round, kept, jpeg, context), None
            )
        except AudienceGone:
            await self._ledger.cancel_open()
            return STOP_GONE
        result = await self._keep_best(round, [outcome])
        if result.critique is None:
            self._ledger.error = result.error
            return STOP_ERROR
        return STOP_ROUNDS

    async def _resumed_context(self, round: RoundRecord) -> CriticContext:
        """Read what the critic sees besides the image of a resumed round. Raises
        ReferenceExpired when the product photo is gone (the critique then fails)."""
        reference = await self._steps.reference_of(self._pending.session)
        small = await self._steps.critic_image(reference) if reference else None
        return await self._steps.critic_context(self._pending.session, round.id, small)

    async def finish(self, reason: str) -> RunOutcome:
        """Store how the run ended; return its outcome (see `RunLedger.finish`)."""
        return await self._ledger.finish(reason)

    # --- helpers ------------------------------------------------------------------------------

    def _progress(
        self,
        stage: str,
        index: int = 0,
        round: RoundRecord | None = None,
        drafts_finished: int = 0,
    ) -> RunProgress:
        return RunProgress(
            plan=self._plan,
            stage=stage,
            round_index=index,
            round=round,
            drafts_finished=drafts_finished,
            images=self._drafts.images,
            best=self._ledger.best,
            best_quality=self._ledger.best_quality,
        )


def _first_prompt(pending: PendingRun) -> str:
    """Return the prompt an autopilot run starts from: its start round's suggestion, or the
    session's brief."""
    if pending.start is None:
        return pending.session.brief
    critique = critique_of(pending.start)
    return critique.revised_prompt if critique else pending.start.prompt

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

from bot.backends.errors import BackendError, Internal, Interrupted
from bot.refine.drafts import DraftMaker
from bot.refine.errors import AudienceGone, QuotaExceeded
from bot.refine.models import (
    DraftOutcome,
    PendingRun,
    RoundOutcome,
    RunListener,
    RunOutcome,
    RunProgress,
)
from bot.refine.reports import log_round_end, log_run_end
from bot.refine.rules import (
    PATIENCE,
    RUN_STATUS,
    STOP_CANCELLED,
    STOP_ERROR,
    STOP_GONE,
    STOP_NO_IMPROVEMENT,
    STOP_QUOTA,
    STOP_ROUNDS,
    STOP_THRESHOLD,
    best_draft,
    critique_of,
    draft_plans,
    quality_of,
)
from bot.refine.steps import CriticContext, PaidSteps
from bot.refine.tasks import background, notify
from storage.records import AutopilotStatus, DraftRecord, RoundRecord, RoundStatus
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
        self._rounds: list[RoundOutcome] = []
        self._last: RoundOutcome | None = None
        self._open: RoundRecord | None = pending.round  # a round begun and not ended yet
        self._best_quality: int | None = quality_of(pending.start)
        self._best: RoundRecord | None = pending.start if self._best_quality is not None else None
        self._drafts = DraftMaker(store=store, steps=steps, pending=pending, listener=listener)
        self._error: BackendError | None = None
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
                critique = result.critique
                if result.round.image_sha is None or critique is None:
                    self._error = result.error
                    if self._best is None and result.round.image_sha is not None:
                        self._best = result.round  # an image, even unjudged, beats none
                    await notify(self._listener.progress(self._progress("done", index)))
                    return STOP_ERROR
                if self._best_quality is None or critique.quality > self._best_quality:
                    self._best, self._best_quality, stale = result.round, critique.quality, 0
                else:
                    stale += 1
                await notify(self._listener.progress(self._progress("done", index, result.round)))
                if plan.threshold is not None and self._best_quality >= plan.threshold:
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
            await asyncio.shield(self._cancel_open())
            raise
        finally:
            context.cancel()
        result = await self._keep_best(round, [task.result() for task in tasks])
        self._rounds.append(result)
        return result

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
                source=self._best,
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
        self._open = await self._store.rounds.start(round_id)
        return self._open

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
            failure = errors[0] if errors else Internal("image")
            round = await self._store.rounds.fail(
                round.id, status=RoundStatus.FAILED, error_kind=failure.kind, error=str(failure)
            )
            return self._ended(
                RoundOutcome(round, None, failure, cost_usd=cost, drafts=tuple(drafts))
            )
        round = await self._store.rounds.keep_draft(round.id, best.draft.id, done=True)
        kept = replace(best, draft=replace(best.draft, kept=1))
        drafts = [kept if d is best else d for d in drafts]
        error = None if best.critique else best.error or (errors[0] if errors else None)
        return self._ended(
            RoundOutcome(
                round,
                best.critique,
                error,
                cost_usd=cost,
                drafts=tuple(drafts),
                kept=best.draft.number,
            )
        )

    def _ended(self, outcome: RoundOutcome) -> RoundOutcome:
        """Note the round as ended and log the line that ends it; return it."""
        self._open = None
        self._last = outcome
        log_round_end(outcome, chat_id=self._pending.session.chat_id)
        return outcome

    async def _cancel_open(self) -> None:
        """Store the round under way (if any) as cancelled, with its unfinished drafts."""
        if self._open is not None:
            round = await self._store.rounds.cancel(self._open.id)
            self._ended(RoundOutcome(round, cancelled=True))

    async def _end_open_internally(self) -> None:
        """Finish a round the bot itself broke (a bug, a full disk), so the chat is told: an
        image already stored is kept, with its buttons; without one, it can be retried."""
        if self._open is None:
            return
        round = await self._store.rounds.get(self._open.id)
        kept = round is not None and round.image_sha is not None
        error = Internal("critic" if kept else "image")
        status = RoundStatus.DONE if kept else RoundStatus.FAILED
        round = await self._store.rounds.fail(
            self._open.id, status=status, error_kind=error.kind, error=str(error)
        )
        self._ended(RoundOutcome(round, error=error))

    # --- after a restart ----------------------------------------------------------------------

    async def resume(self) -> str:
        """Finish the pending round a restart interrupted, as far as it can be without paying
        twice: a kept image is shown (unless it was) and critiqued again; a round without one
        fails, ready for a Retry. Returns the stop reason."""
        round = self._pending.round
        assert round is not None
        image = await self._stored_image(round)
        drafts = await self._store.rounds.drafts(round.id)
        kept = next((d for d in drafts if d.kept and d.image_sha == round.image_sha), None)
        if image is None or kept is None:
            error = Interrupted("image")
            failed = await self._store.rounds.fail(
                round.id, status=RoundStatus.FAILED, error_kind=error.kind, error=str(error)
            )
            self._rounds.append(self._ended(RoundOutcome(failed, error=error)))
            self._error = error
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
            await self._cancel_open()
            return STOP_GONE
        result = await self._keep_best(round, [outcome])
        self._rounds.append(result)
        if result.critique is None:
            self._error = result.error
            return STOP_ERROR
        return STOP_ROUNDS

    async def _resumed_context(self, round: RoundRecord) -> CriticContext:
        """Read what the critic sees besides the image of a resumed round. Raises
        ReferenceExpired when the product photo is gone (the critique then fails)."""
        reference = await self._steps.reference_of(self._pending.session)
        small = await self._steps.critic_image(reference) if reference else None
        return await self._steps.critic_context(self._pending.session, round.id, small)

    async def _stored_image(self, round: RoundRecord) -> bytes | None:
        if round.image_sha is None:
            return None
        try:
            return (await self._store.images.read(round.image_sha))[1]
        except LookupError:
            return None

    # --- the end ------------------------------------------------------------------------------

    async def finish(self, reason: str) -> RunOutcome:
        """Store how the run ended (a round left open is cancelled, or ended as the bot's
        own failure); return its outcome, with the best round across the run."""
        pending = self._pending
        if reason in (STOP_CANCELLED, STOP_GONE):
            await self._cancel_open()
        elif self._open is not None:
            await self._end_open_internally()
        best = await self._store.rounds.get(self._best.id) if self._best else None
        run = None
        if pending.run is not None:
            run = await self._store.sessions.finish_run(
                pending.run.id,
                status=RUN_STATUS.get(reason, AutopilotStatus.FAILED),
                stop_reason=reason,
                best_round_id=best.id if best else None,
            )
        outcome = RunOutcome(
            pending=pending,
            rounds=tuple(self._rounds),
            last=self._last,
            best=best,
            best_critique=critique_of(best) if best else None,
            stop_reason=reason,
            error=self._error,
            images=self._drafts.images,
            cost_usd=sum(self._drafts.costs) if self._drafts.costs else None,
            run=run,
        )
        if run is not None:
            log_run_end(outcome)
        return outcome

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
            best=self._best,
            best_quality=self._best_quality,
        )


def _first_prompt(pending: PendingRun) -> str:
    """Return the prompt an autopilot run starts from: its start round's suggestion, or the
    session's brief."""
    if pending.start is None:
        return pending.session.brief
    critique = critique_of(pending.start)
    return critique.revised_prompt if critique else pending.start.prompt

"""Autopilot: up to N rounds without asking, K drafts per round drawn in parallel.

Each round draws its drafts at the same time from one prompt (each with its own seed where
the backend honours seeds), has the critic judge every draft, and keeps the best one: the
round's image, critique and score are that draft's, and the next round starts from its
suggested revision. The run stops early when a round reaches the threshold score, or when
two rounds in a row did not beat the best so far; at the end the best round of the whole run
(the round it started from included) is the result, never simply the last one.

Ranking uses `Critique.quality`: the score, capped by the product fidelity when the session
started from a photo. Every draft is stored (table `drafts`) with its image and critique;
usage is recorded per draft against its round, so `/usage` counts every image paid for.

Cancelling the run's task (/cancel) stops it at once: drafts in flight are cancelled, none
is started after that, and the best round so far is still the result.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.backends.critique import Critique
from bot.backends.errors import BackendError, Internal
from bot.refine.errors import AudienceGone, QuotaExceeded
from bot.refine.models import (
    AutopilotListener,
    AutopilotOutcome,
    AutopilotProgress,
    AutopilotRound,
    DraftOutcome,
    PendingAutopilot,
    RoundOutcome,
)
from bot.refine.service import (
    _log_round_end,
    _notify,
    critique_of,
    draft_seed,
    suggestion_of,
)
from storage.records import AutopilotStatus, RoundRecord, RoundStatus
from storage.schema import now_iso

if TYPE_CHECKING:
    from bot.refine.service import RefineService
    from storage.store import Store

log = logging.getLogger(__name__)

PATIENCE = 2
"""Rounds in a row without beating the best so far that end a run."""

STOP_THRESHOLD = "threshold"
STOP_NO_IMPROVEMENT = "no_improvement"
STOP_ROUNDS = "rounds"
STOP_CANCELLED = "cancelled"
STOP_GONE = "gone"
STOP_ERROR = "error"
STOP_QUOTA = "quota"

_STATUS_OF = {
    STOP_THRESHOLD: AutopilotStatus.DONE,
    STOP_NO_IMPROVEMENT: AutopilotStatus.DONE,
    STOP_ROUNDS: AutopilotStatus.DONE,
    STOP_QUOTA: AutopilotStatus.DONE,
    STOP_CANCELLED: AutopilotStatus.CANCELLED,
    STOP_GONE: AutopilotStatus.CANCELLED,
    STOP_ERROR: AutopilotStatus.FAILED,
}


def quality_of(round: RoundRecord | None) -> int | None:
    """Return the figure rounds are ranked by (see `Critique.quality`), or None if unjudged."""
    critique = critique_of(round) if round is not None else None
    return critique.quality if critique is not None else None


def best_draft(drafts: list[DraftOutcome]) -> DraftOutcome | None:
    """Return the draft a round keeps: the best judged one (quality, then score, then the
    lowest number), else the first with an image, else None."""
    judged = [d for d in drafts if d.critique is not None and d.draft.image_sha is not None]
    if judged:
        return max(
            judged,
            key=lambda d: (d.critique.quality, d.critique.score, -d.draft.number),  # type: ignore[union-attr]
        )
    drawn = [d for d in drafts if d.draft.image_sha is not None]
    return drawn[0] if drawn else None


class AutopilotRunner:
    """Runs one pending autopilot run. Made and driven by `RefineService.run_autopilot`."""

    def __init__(
        self,
        service: RefineService,
        store: Store,
        pending: PendingAutopilot,
        listener: AutopilotListener,
    ) -> None:
        self._service = service
        self._store = store
        self._pending = pending
        self._listener = listener
        self._rounds: list[AutopilotRound] = []
        self._best_quality: int | None = quality_of(pending.start)
        self._best: RoundRecord | None = pending.start if self._best_quality is not None else None
        self._images = 0
        self._costs: list[float] = []
        self._error: BackendError | None = None
        self._gone = False

    # --- the loop ------------------------------------------------------------------------------

    async def loop(self) -> str:
        """Run rounds until a stop rule holds; return the stop reason."""
        pending, plan = self._pending, self._pending.plan
        try:
            await _notify(self._listener.progress(self._progress("start")))
            reference = await self._service.reference_of(pending.session)
            reference_jpeg = await self._service.reference_jpeg(reference)
            parent = pending.start
            prompt = suggestion_of(parent) if parent is not None else pending.session.brief
            stale = 0
            for index in range(1, plan.rounds + 1):
                if index > 1:
                    try:
                        await self._service._check_quota(pending.scope, pending.actor)
                    except QuotaExceeded:
                        return STOP_QUOTA
                result = await self._round(index, parent, prompt, reference, reference_jpeg)
                self._rounds.append(result)
                if self._gone:
                    raise AudienceGone()
                if result.round.image_sha is None or result.critique is None:
                    self._error = result.error
                    if self._best is None and result.round.image_sha is not None:
                        self._best = result.round  # an image, even unjudged, beats none
                    await _notify(self._listener.progress(self._progress("done", index)))
                    return STOP_ERROR
                quality = result.critique.quality
                if self._best_quality is None or quality > self._best_quality:
                    self._best, self._best_quality, stale = result.round, quality, 0
                else:
                    stale += 1
                await _notify(self._listener.progress(self._progress("done", index, result.round)))
                if self._best_quality >= plan.threshold:
                    return STOP_THRESHOLD
                if stale >= PATIENCE:
                    return STOP_NO_IMPROVEMENT
                parent, prompt = result.round, result.critique.revised_prompt
            return STOP_ROUNDS
        except AudienceGone:
            log.info(
                "autopilot %s: chat %s is gone; stopping", pending.run.id, pending.scope.chat_id
            )
            return STOP_GONE

    async def _round(
        self,
        index: int,
        parent: RoundRecord | None,
        prompt: str,
        reference: bytes | None,
        reference_jpeg: bytes | None,
    ) -> AutopilotRound:
        """Draw and judge the round's drafts in parallel; keep the best; return the round."""
        pending = self._pending
        round = await self._store.create_round(
            pending.session.id,
            parent.id if parent else None,
            prompt,
            "auto",
            pending.actor.user_id,
            pending.actor.name,
        )
        round = await self._store.update_round(
            round.id,
            autopilot_id=pending.run.id,
            draft_count=pending.plan.drafts,
            status=RoundStatus.GENERATING,
        )
        finished: list[DraftOutcome] = []
        try:
            await _notify(self._listener.progress(self._progress("round", index, round)))
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        self._draft(index, round, number, reference, reference_jpeg, finished)
                    )
                    for number in range(1, pending.plan.drafts + 1)
                ]
        except BaseException:
            await asyncio.shield(self._cancel_round(round))
            raise
        drafts = [task.result() for task in tasks]
        result = await self._keep_best(round, drafts)
        costs = [d.cost_usd for d in drafts if d.cost_usd is not None]
        cost = sum(costs) if costs else None
        _log_round_end(
            pending.session,
            RoundOutcome(result.round, result.critique, result.error, cost_usd=cost),
        )
        return result

    async def _draft(
        self,
        index: int,
        round: RoundRecord,
        number: int,
        reference: bytes | None,
        reference_jpeg: bytes | None,
        finished: list[DraftOutcome],
    ) -> DraftOutcome:
        outcome = await self._draw_and_judge(round, number, reference, reference_jpeg)
        finished.append(outcome)
        try:
            await _notify(
                self._listener.progress(self._progress("draft", index, round, len(finished)))
            )
        except AudienceGone:  # not raised here: it would cancel the other drafts' critiques
            self._gone = True
        return outcome

    async def _draw_and_judge(
        self, round: RoundRecord, number: int, reference: bytes | None, reference_jpeg: bytes | None
    ) -> DraftOutcome:
        session, actor = self._pending.session, self._pending.actor
        draft = await self._store.create_draft(round.id, number, draft_seed(session.id, number))
        try:
            try:
                drawn = await self._service.draw(
                    session,
                    round.id,
                    actor,
                    round.prompt,
                    draft.seed,
                    reference,
                    self._service.image_options(self._pending.settings),
                )
            except Exception as failure:
                error = _backend_error(failure, "image")
                log.warning("round %s draft %s: image failed: %s", round.id, number, error)
                draft = await self._store.update_draft(
                    draft.id,
                    status=RoundStatus.FAILED,
                    error_kind=error.kind,
                    error=str(error),
                    finished_at=now_iso(),
                )
                return DraftOutcome(draft, error=error)
            self._images += 1
            self._spent(drawn.cost_usd)
            draft = await self._store.update_draft(
                draft.id,
                image_sha=drawn.sha256,
                generate_ms=drawn.generate_ms,
                status=RoundStatus.CRITIQUING,
            )
            try:
                judged = await self._service.judge(
                    session,
                    round.id,
                    actor,
                    round.prompt,
                    drawn.jpeg,
                    reference_jpeg,
                    self._service.critique_language(self._pending),
                )
            except Exception as failure:
                error = _backend_error(failure, "critic")
                log.warning("round %s draft %s: critique failed: %s", round.id, number, error)
                draft = await self._store.update_draft(
                    draft.id,
                    status=RoundStatus.DONE,
                    error_kind=error.kind,
                    error=str(error),
                    finished_at=now_iso(),
                )
                return DraftOutcome(draft, error=error, cost_usd=drawn.cost_usd)
            self._spent(judged.cost_usd)
            draft = await self._store.update_draft(
                draft.id,
                critique=judged.critique.model_dump_json(),
                score=judged.critique.score,
                fidelity=judged.critique.fidelity,
                critique_ms=judged.critique_ms,
                status=RoundStatus.DONE,
                finished_at=now_iso(),
            )
            costs = [c for c in (drawn.cost_usd, judged.cost_usd) if c is not None]
            return DraftOutcome(draft, judged.critique, cost_usd=sum(costs) if costs else None)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._store.update_draft(
                    draft.id, status=RoundStatus.CANCELLED, finished_at=now_iso()
                )
            )
            raise

    async def _keep_best(self, round: RoundRecord, drafts: list[DraftOutcome]) -> AutopilotRound:
        """Store the round as its best draft (or as failed when no draft has an image)."""
        best = best_draft(drafts)
        errors = [d.error for d in drafts if d.error is not None]
        if best is None:
            error = errors[0] if errors else None
            round = await self._store.update_round(
                round.id,
                status=RoundStatus.FAILED,
                error_kind=error.kind if error else "error",
                error=str(error) if error else "no draft finished",
                finished_at=now_iso(),
            )
            return AutopilotRound(round, None, tuple(drafts), error)
        critique: Critique | None = best.critique
        draft = best.draft
        values: dict[str, object] = {
            "image_sha": draft.image_sha,
            "image_at": now_iso(),
            "generate_ms": draft.generate_ms,
            "status": RoundStatus.DONE,
            "finished_at": now_iso(),
        }
        if critique is not None:
            values |= {
                "critique": critique.model_dump_json(),
                "score": critique.score,
                "fidelity": critique.fidelity,
                "critique_ms": draft.critique_ms,
                "error_kind": None,
                "error": None,
            }
        else:
            error = best.error or (errors[0] if errors else None)
            values |= {
                "error_kind": error.kind if error else "error",
                "error": str(error) if error else "no critique",
            }
        round = await self._store.update_round(round.id, **values)
        kept = await self._store.update_draft(draft.id, kept=1)
        drafts = [
            DraftOutcome(kept, d.critique, d.error, d.cost_usd) if d is best else d for d in drafts
        ]
        error = None if critique else best.error
        return AutopilotRound(round, critique, tuple(drafts), error, kept=draft.number)

    async def _cancel_round(self, round: RoundRecord) -> None:
        await self._store.update_round(
            round.id, status=RoundStatus.CANCELLED, finished_at=now_iso()
        )

    # --- the end --------------------------------------------------------------------------------

    async def finish(self, reason: str) -> AutopilotOutcome:
        """Store how the run ended; return its outcome (the best round across the run)."""
        pending = self._pending
        best = await self._store.get_round(self._best.id) if self._best else None
        run = await self._store.update_autopilot_run(
            pending.run.id,
            status=_STATUS_OF.get(reason, AutopilotStatus.FAILED),
            stop_reason=reason,
            best_round_id=best.id if best else None,
            finished_at=now_iso(),
        )
        log.info(
            "autopilot end chat=%s session=%s run=%s reason=%s rounds=%s images=%s best=%s "
            "quality=%s cost_usd=%s",
            pending.session.chat_id,
            pending.session.id,
            run.id,
            reason,
            len(self._rounds),
            self._images,
            best.number if best else "-",
            self._best_quality if self._best_quality is not None else "-",
            f"{sum(self._costs):.4f}" if self._costs else "unknown",
        )
        return AutopilotOutcome(
            run=run,
            session=pending.session,
            plan=pending.plan,
            start=pending.start,
            rounds=tuple(self._rounds),
            best=best,
            best_critique=critique_of(best) if best else None,
            stop_reason=reason,
            error=self._error,
            images=self._images,
            cost_usd=sum(self._costs) if self._costs else None,
        )

    # --- helpers -----------------------------------------------------------------------------

    def _spent(self, cost: float | None) -> None:
        if cost is not None:
            self._costs.append(cost)

    def _progress(
        self,
        stage: str,
        index: int = 0,
        round: RoundRecord | None = None,
        drafts_finished: int = 0,
    ) -> AutopilotProgress:
        return AutopilotProgress(
            plan=self._pending.plan,
            stage=stage,
            round_index=index,
            round=round,
            drafts_finished=drafts_finished,
            images=self._images,
            best=self._best,
            best_quality=self._best_quality,
        )


def _backend_error(failure: Exception, service: str) -> BackendError:
    """Return the failure of a draft's `service` step as a BackendError: a provider's as it is,
    anything else (a bug, a full disk) as Internal, its traceback logged, so the draft ends as
    failed like any other and the run goes on."""
    if isinstance(failure, BackendError):
        return failure
    log.error("%s step failed on the bot's side", service, exc_info=failure)
    return Internal(service)

"""One draft of a round, start to end: drawn, stored (and shown at once for a manual
round), judged and stored again. A failure of either paid step ends the draft, never the run:
the round then keeps another draft, or ends without an image."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import replace

from bot.backends.base import Preview
from bot.backends.errors import BackendError, BadOutput, EditsUnsupported, Internal, NotStored
from bot.refine.errors import AudienceGone, ReferenceExpired
from bot.refine.models import DraftOutcome, PendingRun, RunListener
from bot.refine.steps import (
    CriticContext,
    Drawn,
    Judged,
    Judgement,
    PaidSteps,
    UnusableImage,
    image_usage,
)
from bot.refine.tasks import background, notify
from storage.records import DraftRecord, RoundRecord, RoundStatus
from storage.store import Store

log = logging.getLogger(__name__)

REDRAWN_NO_EDITS = "no_edits"
"""Why an edit was drawn afresh: the image server cannot edit pictures."""
REDRAWN_PICTURE_GONE = "picture_gone"
"""Why an edit was drawn afresh: the picture to edit is no longer stored."""


class DraftMaker:
    """Makes the drafts of one run and tallies what they cost."""

    def __init__(
        self, *, store: Store, steps: PaidSteps, pending: PendingRun, listener: RunListener
    ) -> None:
        self._store = store
        self._steps = steps
        self._pending = pending
        self._listener = listener
        self.reference: bytes | None = None
        """The session's product photo, once the run has read it (None for a text brief)."""
        self.images = 0
        """Images drawn and stored (paid for) so far."""
        self.costs: list[float] = []
        """The estimated cost of every paid call so far that has one."""
        # Previews being shown; held only so the loop's weak references are not the last.
        self._previews: set[asyncio.Task[None]] = set()

    def spent(self, cost: float | None) -> None:
        """Count a paid call's estimated cost (None: unknown)."""
        if cost is not None:
            self.costs.append(cost)

    async def draw_and_judge(
        self, round: RoundRecord, draft: DraftRecord, context: Awaitable[CriticContext]
    ) -> DraftOutcome:
        """Draw the draft, store it (its round takes it at once when the plan shows each
        image, and it is shown while the critic looks), judge it; return how it ended. A
        failure of either step ends the draft, never the run."""
        try:
            try:
                drawn, redrawn_because = await self._draw(round, draft)
            except Exception as failure:
                return await self._draft_failed(draft, failure, "image")
            if redrawn_because is not None:
                draft = replace(draft, edit_of=None, instruction=None, kind_note=redrawn_because)
            # The critic starts on the checked image at once; storing and showing it run
            # alongside (the photo still goes out only once the image is stored).
            judging = background(self.judge(round, draft, drawn.jpeg, context))
            try:
                try:
                    draft = await self._store_drawn(round, draft, drawn, redrawn_because)
                except Exception as failure:
                    log.error("round %s: a paid image could not be stored", round.id, exc_info=True)
                    failed = await self._draft_failed(
                        draft, NotStored("image", str(failure)), "image"
                    )
                    return replace(failed, unsaved=drawn.image.data, cost_usd=drawn.cost_usd)
                shown = None
                if self._pending.plan.shows_each_image:
                    shown = asyncio.create_task(self._show(round, draft, drawn.image.data))
                try:
                    return await self.critiqued(draft, judging, drawn.cost_usd)
                finally:
                    if shown is not None:
                        await shown
            finally:
                judging.cancel()  # only if storing failed or the draft was cancelled
        except asyncio.CancelledError:
            await asyncio.shield(self._store.rounds.cancel_draft(draft.id))
            raise

    async def _draw(self, round: RoundRecord, draft: DraftRecord) -> tuple[Drawn, str | None]:
        """Draw the draft: an edit of the picture of round `draft.edit_of`, or a new picture
        from the round's prompt. An edit that cannot be made is drawn afresh; return the
        image and why it was (REDRAWN_*), or None. Raises BackendError."""
        options = self._steps.image_options(self._pending.settings)
        preview = self._previewer(round) if self._pending.plan.shows_each_image else None
        note = None
        if draft.edit_of is not None and draft.instruction is not None:
            picture = await self._steps.picture_of(draft.edit_of) if self._steps.can_edit else None
            if picture is not None:
                try:
                    edited = await self._steps.edit(
                        round.prompt,
                        instruction=draft.instruction,
                        image=picture,
                        seed=draft.seed,
                        reference=self.reference,
                        options=options,
                        actor=self._pending.actor,
                        preview=preview,
                    )
                    return edited, None
                except EditsUnsupported:
                    pass
            note = REDRAWN_NO_EDITS if not self._steps.can_edit else REDRAWN_PICTURE_GONE
            log.info("round %s draft %s: redrawn (%s)", round.id, draft.number, note)
        drawn = await self._steps.draw(
            round.prompt,
            seed=draft.seed,
            reference=self.reference,
            options=options,
            actor=self._pending.actor,
            preview=preview,
        )
        return drawn, note

    def _previewer(self, round: RoundRecord) -> Preview:
        """Return the callback the backend hands partial images to: each is passed to the
        listener in a task of its own, so the stream (and the final image) never waits for
        the chat. Previews are never stored."""

        def show(image: bytes) -> None:
            task = background(self._preview(round, image))
            self._previews.add(task)
            task.add_done_callback(self._previews.discard)

        return show

    async def _preview(self, round: RoundRecord, image: bytes) -> None:
        try:
            await notify(self._listener.preview(round, image))
        except AudienceGone:
            log.info("round %s: chat is gone; the preview was not shown", round.id)

    async def _store_drawn(
        self, round: RoundRecord, draft: DraftRecord, drawn: Drawn, redrawn_because: str | None
    ) -> DraftRecord:
        """Store the drawn image and its usage (the round takes it too when the plan shows
        each image); return the draft as stored."""
        pending = self._pending
        size_note = None if drawn.size_note is None else str(drawn.size_note)
        if size_note is not None:
            log.warning("round %s draft %s: the image is %s", round.id, draft.number, size_note)
        image = await self._store.save_draft_image(
            draft.id,
            data=drawn.image.data,
            mime=drawn.info.mime,
            width=drawn.info.width,
            height=drawn.info.height,
            usage=drawn.usage(round.id, pending.session, pending.actor),
            generate_ms=drawn.generate_ms,
            round_takes_it=self._pending.plan.shows_each_image,
            redrawn_because=redrawn_because,
            size_note=size_note,
        )
        self.images += 1
        self.spent(drawn.cost_usd)
        return replace(
            draft,
            image_sha=image.sha256,
            generate_ms=drawn.generate_ms,
            status=RoundStatus.CRITIQUING,
            size_note=size_note,
        )

    async def judge(
        self,
        round: RoundRecord,
        draft: DraftRecord,
        jpeg: bytes,
        context: Awaitable[CriticContext],
    ) -> Judged:
        """Have the critic judge the draft's image (`jpeg`) in the chat's language."""
        pending = self._pending
        judgement = Judgement(
            pending.session,
            round.id,
            pending.actor,
            round.prompt,
            jpeg,
            pending.settings.language or pending.actor.language,
            edit_of=draft.edit_of,
            instruction=draft.instruction,
        )
        return await self._steps.judge(judgement, await context)

    async def critiqued(
        self, draft: DraftRecord, judging: Awaitable[Judged], spent: float | None
    ) -> DraftOutcome:
        """Store the critique `judging` brings on the drawn draft; return how it ended (a
        critic failure leaves the draft done without a critique). `spent`: the image's cost."""
        try:
            judged = await judging
        except Exception as failure:
            return await self._draft_failed(draft, failure, "critic", spent)
        self.spent(judged.cost_usd)
        critique = judged.critique
        draft = await self._store.rounds.critique_draft(
            draft.id,
            critique=critique.model_dump_json(),
            score=critique.score,
            fidelity=critique.fidelity,
            critique_ms=judged.critique_ms,
        )
        costs = [c for c in (spent, judged.cost_usd) if c is not None]
        return DraftOutcome(draft, critique, cost_usd=sum(costs) if costs else None)

    async def _draft_failed(
        self, draft: DraftRecord, failure: Exception, step: str, spent: float | None = None
    ) -> DraftOutcome:
        """End the draft with the failure of its `step` ("image" or "critic"); return it. An
        image billed but unusable still has its usage recorded (/usage shows what was paid)."""
        error = _backend_error(failure, step)
        log.warning("round %s draft %s: %s failed: %s", draft.round_id, draft.number, step, error)
        status = RoundStatus.DONE if draft.image_sha else RoundStatus.FAILED
        try:
            if isinstance(failure, UnusableImage):
                await self._record_unusable(draft, failure)
            draft = await self._store.rounds.fail_draft(
                draft.id, status=status, error_kind=error.kind, error=str(error)
            )
        except Exception:  # a store that cannot write: the run still ends, and says so
            log.exception(
                "round %s draft %s: the failure could not be stored", draft.round_id, draft.number
            )
            draft = replace(draft, status=status, error_kind=error.kind, error=str(error))
        return DraftOutcome(draft, error=error, cost_usd=spent)

    async def _record_unusable(self, draft: DraftRecord, failure: UnusableImage) -> None:
        pending = self._pending
        usage = image_usage(failure.image, draft.round_id, pending.session, pending.actor)
        await self._store.chats.record_usage(usage)
        self.spent(usage.cost_usd)

    async def _show(self, round: RoundRecord, draft: DraftRecord, image: bytes) -> None:
        """Show the stored image and store the id of the message that shows it (so a restart
        finishes that message, not a new one). A chat that is gone only loses the show: the
        critique is under way and the round is stored either way."""
        shown = replace(
            round,
            image_sha=draft.image_sha,
            generate_ms=draft.generate_ms,
            status=draft.status,
            size_note=draft.size_note,
        )
        try:
            message_id = await notify(self._listener.image_ready(shown, image))
        except AudienceGone:
            log.info("round %s: chat is gone; the image was not shown", round.id)
            return
        if message_id is not None:
            await self._store.rounds.shown(round.id, message_id)


def _backend_error(failure: Exception, step: str) -> BackendError:
    """Return the failure of a draft's `step` as a BackendError: a provider's as it is, a
    product photo gone as the critic's bad output, anything else (a bug, a full disk) as
    Internal, its traceback logged, so the draft ends like any other and the run goes on."""
    if isinstance(failure, BackendError):
        return failure
    if isinstance(failure, ReferenceExpired):
        return BadOutput("critic", "the product photo is gone")
    log.error("%s step failed on the bot's side", step, exc_info=failure)
    return Internal(step)

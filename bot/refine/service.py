"""The refinement loop: sessions of rounds, each drawn, stored, critiqued and stored again.

Order of work in a round (the contract in ARCHITECTURE.md): the round is stored as pending
before any paid call; the image bytes are stored before the listener may show them; the
critique is stored as soon as it arrives. One round at a time per session: a second request
while one runs gets `SessionBusy` and starts nothing. Looking things up (sessions, the contact
sheet, usage, settings) is bot/refine/history.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.backends.base import (
    Critic,
    CritiqueRequest,
    EarlierCritique,
    GeneratedImage,
    ImageGenerator,
)
from bot.backends.critique import Critique
from bot.backends.errors import BackendError, BadOutput, Internal, Interrupted
from bot.backends.formats import ImageOptions
from bot.images import (
    ImageInfo,
    InvalidImage,
    ReferencePhoto,
    critic_jpeg,
    prepare,
)
from bot.refine.errors import (
    AudienceGone,
    AutopilotPlanInvalid,
    BriefTooLong,
    EmptyBrief,
    ImageExpired,
    NotYourSession,
    QuotaExceeded,
    ReferenceExpired,
    RoundNotFound,
    RoundNotReady,
    SessionBusy,
    SessionStopped,
)
from bot.refine.history import round_image, start_of_day
from bot.refine.models import (
    MAX_BRIEF_CHARS,
    Actor,
    AutopilotListener,
    AutopilotOutcome,
    AutopilotPlan,
    DraftOutcome,
    PendingAutopilot,
    PendingRound,
    QuotaPolicy,
    RoundListener,
    RoundOutcome,
    Scope,
    StopResult,
)
from bot.refine.pricing import estimate_cost
from storage.records import (
    ChatSettings,
    DraftRecord,
    PendingEdit,
    RoundRecord,
    RoundStatus,
    SessionRecord,
    SessionStatus,
    UsageEntry,
)
from storage.schema import now_iso
from storage.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

EDIT_PROMPT_TTL = timedelta(hours=1)
"""How long after pressing Edit the next message still counts as the revision."""

EARLIER_CRITIQUES = 5
"""How many of the session's previous critiques the critic sees."""


def clean_brief(text: str | None) -> str:
    """Return the brief stripped of surrounding space; raise EmptyBrief or BriefTooLong."""
    text = (text or "").strip()
    if not text:
        raise EmptyBrief()
    if len(text) > MAX_BRIEF_CHARS:
        raise BriefTooLong()
    return text


def session_seed(session_id: int) -> int:
    """Return the session's image seed: one per session, so that where a backend honours
    seeds, a revised prompt changes what the critique asked for, not the whole composition."""
    return (session_id * 2_654_435_761) % 4_294_967_294 + 1


def draft_seed(session_id: int, number: int) -> int:
    """Return the seed of draft `number` (1-based) of an autopilot round: draft 1 keeps the
    session's seed, the others differ from it (and from each other) but stay fixed too."""
    return (session_seed(session_id) - 1 + (number - 1) * 7_919) % 4_294_967_294 + 1


def fidelity_first(critique: Critique) -> Critique:
    """Return the critique with a low product fidelity named as its top problem."""
    if not critique.low_fidelity:
        return critique
    top = f"The product differs from your photo (fidelity {critique.fidelity}/10)"
    return critique.model_copy(update={"problems": [top, *critique.problems]})


def critique_of(round: RoundRecord | DraftRecord) -> Critique | None:
    """Return the round's (or draft's) stored critique, or None if it has none."""
    return Critique.model_validate_json(round.critique) if round.critique else None


def suggestion_of(round: RoundRecord) -> str:
    """Return the prompt Accept would use: the critic's revision, else the round's own prompt."""
    critique = critique_of(round)
    return critique.revised_prompt if critique else round.prompt


@dataclass(frozen=True, slots=True)
class Drawn:
    """An image drawn and stored for a round (or one of its drafts), and what it cost."""

    data: bytes
    sha256: str
    cost_usd: float | None
    generate_ms: int
    jpeg: bytes  # what the critic sees


@dataclass(frozen=True, slots=True)
class _Checked:
    """A drawn image that decoded, not stored yet: what `_keep` stores."""

    image: GeneratedImage
    info: ImageInfo
    jpeg: bytes
    generate_ms: int


@dataclass(frozen=True, slots=True)
class Judged:
    """A critique of an image, stored usage included, and what it cost."""

    critique: Critique
    cost_usd: float | None
    critique_ms: int


@dataclass(frozen=True, slots=True)
class AutopilotDefaults:
    """The autopilot's defaults (AUTOPILOT_* settings) and how far `/auto N` may go."""

    rounds: int = 3
    drafts: int = 2
    threshold: int = 8
    max_rounds: int = 10
    max_drafts: int = 6


@dataclass(slots=True)
class _Running:
    scope: Scope
    steered_by: int | None  # who alone may steer (and cancel) it; None: anyone in the chat
    task: asyncio.Task[RoundOutcome] | None = None
    cancel_requested: bool = False


class RefineService:
    """Starts, continues, stops and cancels refinement sessions. Knows nothing of Telegram.

    Starting a round has two steps, so callers can answer quickly and run the slow part in
    the background: `begin_*` checks the request, reserves the session and stores the round
    as pending; `run` draws and critiques it and always releases the session.
    """

    def __init__(
        self,
        store: Store,
        generator: ImageGenerator,
        critic: Critic,
        critic_max_side: int = 768,
        quota: QuotaPolicy | None = None,
        default_format: str = "square",
        *,
        max_rounds_in_flight: int,
        autopilot: AutopilotDefaults | None = None,
    ) -> None:
        """`max_rounds_in_flight` (MAX_ROUNDS_IN_FLIGHT): rounds and autopilot runs drawn and
        critiqued at once across all chats; later ones wait their turn, so a burst never floods
        the provider's rate limit, the bot's memory (each holds its images) or its event loop."""
        self._store = store
        self._generator = generator
        self._critic = critic
        self._critic_max_side = critic_max_side
        self._quota = quota or QuotaPolicy()
        self._default_format = default_format
        self.autopilot_defaults = autopilot or AutopilotDefaults()
        self._running: dict[int, _Running] = {}
        self._slots = asyncio.Semaphore(max_rounds_in_flight)

    # --- beginning a round -------------------------------------------------------------------

    async def begin_start(
        self, scope: Scope, actor: Actor, brief: str, reference: ReferencePhoto | None = None
    ) -> PendingRound:
        """Open a session for the brief with its first round pending.

        With `reference` (a user's product photo, checked by `bot.images.prepare_reference`),
        every round of the session keeps that product and changes the scene around it.
        """
        brief = clean_brief(brief)
        await self._check_quota(scope, actor)
        settings = await self._store.chat_settings(scope.chat_id)
        session = await self._new_session(scope, actor, brief, reference)
        return await self._begin(session, None, brief, "brief", actor, scope, settings)

    async def _new_session(
        self, scope: Scope, actor: Actor, brief: str, reference: ReferencePhoto | None
    ) -> SessionRecord:
        reference_sha = None
        if reference is not None:
            stored = await self._store.save_image(
                reference.data, "image/jpeg", reference.width, reference.height
            )
            reference_sha = stored.sha256
        return await self._store.create_session(
            scope.chat_id, scope.chat_type, scope.thread_id, actor.user_id, brief, reference_sha
        )

    async def begin_accept(self, round_id: int, scope: Scope, actor: Actor) -> PendingRound:
        """Pend the next round from the round's suggested revision."""
        round, session, settings = await self._continuable(round_id, scope, actor)
        await self._check_quota(scope, actor)
        return await self._begin(
            session, round, suggestion_of(round), "accept", actor, scope, settings
        )

    async def begin_edit(
        self, round_id: int, scope: Scope, actor: Actor, prompt: str
    ) -> PendingRound:
        """Pend the next round from the user's own revision of the round."""
        prompt = clean_brief(prompt)
        round, session, settings = await self._continuable(round_id, scope, actor)
        await self._check_quota(scope, actor)
        return await self._begin(session, round, prompt, "edit", actor, scope, settings)

    async def begin_retry(self, round_id: int, scope: Scope, actor: Actor) -> PendingRound:
        """Pend a new try of a round that produced no image (failed or interrupted)."""
        round, session, settings = await self._round_in_scope(round_id, scope)
        if session.status is SessionStatus.STOPPED:
            raise SessionStopped()
        if round.status is not RoundStatus.FAILED:
            raise RoundNotReady()
        self._check_press_policy(session, settings, actor)
        await self._check_quota(scope, actor)
        parent_id = round.parent_round_id
        parent = await self._store.get_round(parent_id) if parent_id else None
        return await self._begin(session, parent, round.prompt, "retry", actor, scope, settings)

    async def _begin(
        self,
        session: SessionRecord,
        parent: RoundRecord | None,
        prompt: str,
        action: str,
        actor: Actor,
        scope: Scope,
        settings: ChatSettings,
    ) -> PendingRound:
        await self.reference_of(session)  # refuse now if the product photo is gone
        self._reserve(session, scope, settings)
        try:
            round = await self._store.create_round(
                session.id, parent.id if parent else None, prompt, action, actor.user_id, actor.name
            )
        except BaseException:
            self._running.pop(session.id, None)
            raise
        return PendingRound(session, round, actor, scope, settings)

    @staticmethod
    def _check_press_policy(session: SessionRecord, settings: ChatSettings, actor: Actor) -> None:
        """Raise NotYourSession if the chat's settings keep the actor's hands off the session."""
        if settings.press_policy == "starter" and actor.user_id != session.started_by:
            raise NotYourSession()

    def _reserve(self, session: SessionRecord, scope: Scope, settings: ChatSettings) -> None:
        # No await between the check and the reservation: two presses cannot both pass.
        if self.is_busy(session.id):
            raise SessionBusy()
        steered_by = session.started_by if settings.press_policy == "starter" else None
        self._running[session.id] = _Running(scope, steered_by)

    async def _check_quota(self, scope: Scope, actor: Actor) -> None:
        quota = self._quota
        exempt = quota.exempt_user_ids is None or actor.user_id in quota.exempt_user_ids
        if exempt or not (quota.rounds_per_user_per_day or quota.rounds_per_chat_per_day):
            return
        now = datetime.now(UTC)
        since = start_of_day(now).isoformat(timespec="milliseconds")
        resets_at = start_of_day(now) + timedelta(days=1)
        by_user, in_chat = await self._store.rounds_since(since, actor.user_id, scope.chat_id)
        checks = [
            ("user", quota.rounds_per_user_per_day, by_user),
            ("chat", quota.rounds_per_chat_per_day, in_chat),
        ]
        for name, limit, started in checks:
            if limit and started >= limit:
                raise QuotaExceeded(name, limit, resets_at)

    # --- running it -----------------------------------------------------------------------------

    async def run(self, pending: PendingRound, listener: RoundListener) -> RoundOutcome:
        """Draw and critique the pending round, telling the listener; release the session.

        A /cancel while it runs ends it with `cancelled=True` (the round is stored as
        cancelled); cancelling the caller itself propagates as usual.
        """
        session_id = pending.session.id
        running = self._running[session_id]
        try:
            if running.cancel_requested:
                outcome = await self._cancelled(pending.round)
            else:
                outcome = await self._run_task(pending, listener, running)
        finally:
            self._running.pop(session_id, None)
        _log_round_end(pending.session, outcome)
        return outcome

    async def _run_task(
        self, pending: PendingRound, listener: RoundListener, running: _Running
    ) -> RoundOutcome:
        running.task = asyncio.create_task(self._execute(pending, listener))
        try:
            return await running.task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if running.task.cancelled() and not (current and current.cancelling()):
                cancelled = await self._store.get_round(pending.round.id)
                return RoundOutcome(cancelled or pending.round, cancelled=True)
            raise

    async def _cancelled(self, round: RoundRecord) -> RoundOutcome:
        round = await self._store.update_round(
            round.id, status=RoundStatus.CANCELLED, finished_at=now_iso()
        )
        return RoundOutcome(round, cancelled=True)

    async def _execute(self, pending: PendingRound, listener: RoundListener) -> RoundOutcome:
        try:
            # A /cancel while the round waits its turn ends it here too.
            return await self._in_turn(lambda: self._draw_and_critique(pending, listener))
        except asyncio.CancelledError:
            await asyncio.shield(self._cancelled(pending.round))
            raise
        except AudienceGone:
            log.info("round %s: chat %s is gone; stopping", pending.round.id, pending.scope.chat_id)
            return await self._cancelled(pending.round)
        except Exception:
            log.exception("round %s failed on the bot's side", pending.round.id)
            return await self._failed_internally(pending.round.id)

    async def _failed_internally(self, round_id: int) -> RoundOutcome:
        """Finish a round the bot itself broke (a bug, a full disk), so the chat is told: an
        image already stored is kept, with its buttons; without one, the round can be retried.
        An error of the store's own propagates."""
        round = await self._store.get_round(round_id)
        kept = round is not None and round.image_sha is not None
        if kept:
            return await self._ended_with(round_id, Internal("critic"), RoundStatus.DONE)
        return await self._ended_with(round_id, Internal("image"), RoundStatus.FAILED)

    async def _ended_with(
        self,
        round_id: int,
        error: BackendError,
        status: RoundStatus,
        cost_usd: float | None = None,
    ) -> RoundOutcome:
        """Store that the round ended with `status` because of `error`; return the outcome
        (`cost_usd`: what it spent all the same)."""
        round = await self._store.update_round(
            round_id, status=status, error_kind=error.kind, error=str(error), finished_at=now_iso()
        )
        return RoundOutcome(round, error=error, cost_usd=cost_usd)

    async def _draw_and_critique(
        self, pending: PendingRound, listener: RoundListener
    ) -> RoundOutcome:
        session, actor = pending.session, pending.actor
        round = await self._store.update_round(pending.round.id, status=RoundStatus.GENERATING)
        await _notify(listener.generating(round))
        reference = await self.reference_of(session)
        # What the critic sees besides the image is read while the image is drawn.
        context = _background(self._critic_context(session, round.id, reference))
        try:
            drawn = await self._draw_checked(
                round.prompt,
                session_seed(session.id),
                reference,
                self.image_options(pending.settings),
            )
        except BaseException as error:
            context.cancel()
            if not isinstance(error, BackendError):
                raise
            log.warning("round %s: image failed: %s", round.id, error)
            return await self._ended_with(round.id, error, RoundStatus.FAILED)
        # The critic starts on the checked image at once; storing and showing it run alongside
        # (the photo still goes out only once the image is stored).
        judging = _background(self._judge_round(pending, round, drawn.jpeg, context))
        try:
            kept = {
                "image_at": now_iso(),
                "generate_ms": drawn.generate_ms,
                "status": RoundStatus.CRITIQUING,
            }
            stored = await self._keep(drawn, session, round.id, actor, kept)
            round = replace(round, image_sha=stored.sha256, **kept)  # as the store now has it
            shown = asyncio.create_task(self._show(listener, round, stored.data))
            try:
                outcome = await self._critique(pending, round, judging, listener, stored.cost_usd)
            finally:
                message_id = await shown
        finally:
            judging.cancel()  # only if storing failed or the round was cancelled
        return replace(outcome, round=replace(outcome.round, message_id=message_id))

    async def _show(self, listener: RoundListener, round: RoundRecord, image: bytes) -> int | None:
        """Show the stored image and store the id of the message that shows it (so a restart
        finishes that message, not a new one); return the id. A chat that is gone only loses
        the show: the critique is under way and the round is stored either way."""
        try:
            message_id = await _notify(listener.image_ready(round, image))
        except AudienceGone:
            log.info("round %s: chat is gone; the image was not shown", round.id)
            return None
        if message_id is not None:
            await self._store.update_round(round.id, message_id=message_id)
        return message_id

    def image_options(self, settings: ChatSettings) -> ImageOptions:
        """Return the image options a chat's settings ask for (configured defaults otherwise)."""
        return ImageOptions(settings.image_format or self._default_format, settings.quality)

    @staticmethod
    def critique_language(pending: PendingRound | PendingAutopilot) -> str | None:
        """Return the language the critique is written in: the chat's choice, else the
        actor's own Telegram language."""
        return pending.settings.language or pending.actor.language

    async def _critic_context(
        self, session: SessionRecord, round_id: int, reference: bytes | None = None
    ) -> tuple[tuple[EarlierCritique, ...], bytes | None]:
        """Return what the critic sees of a round besides its image: the session's earlier
        critiques and the product photo's JPEG (None without one). `reference`: the product
        photo if the caller has read it already.

        Raises ReferenceExpired when the photo's file is gone.
        """
        earlier = await self._earlier_critiques(session.id, round_id)
        if reference is None:
            reference = await self.reference_of(session)
        return earlier, await self.reference_jpeg(reference)

    async def _judge_round(
        self,
        pending: PendingRound,
        round: RoundRecord,
        jpeg: bytes,
        context: Awaitable[tuple[tuple[EarlierCritique, ...], bytes | None]],
    ) -> Judged:
        """Critique the round's image (as the critic's JPEG) with its `_critic_context`, in the
        chat's language. Raises BackendError or ReferenceExpired."""
        earlier, reference_jpeg = await context
        return await self.judge(
            pending.session,
            round.id,
            pending.actor,
            round.prompt,
            jpeg,
            reference_jpeg,
            self.critique_language(pending),
            earlier,
        )

    async def _critique(
        self,
        pending: PendingRound,
        round: RoundRecord,
        judging: Awaitable[Judged],
        listener: RoundListener,
        spent: float | None = None,
    ) -> RoundOutcome:
        """Finish the round with the critique `judging` brings; `spent` is its image's cost."""
        await _notify(listener.critiquing(round))
        try:
            judged = await judging
        except (BackendError, ReferenceExpired) as failure:
            error = (
                failure
                if isinstance(failure, BackendError)
                else BadOutput("critic", "the product photo is gone")
            )
            log.warning("round %s: critique failed: %s", round.id, error)
            return await self._ended_with(round.id, error, RoundStatus.DONE, spent)
        round = await self._store.update_round(
            round.id,
            critique=judged.critique.model_dump_json(),
            score=judged.critique.score,
            fidelity=judged.critique.fidelity,
            critique_ms=judged.critique_ms,
            status=RoundStatus.DONE,
            error_kind=None,
            error=None,
            finished_at=now_iso(),
        )
        costs = [cost for cost in (spent, judged.cost_usd) if cost is not None]
        return RoundOutcome(round, critique=judged.critique, cost_usd=sum(costs) if costs else None)

    # --- the two paid steps, shared with the autopilot ---------------------------------------

    async def draw(
        self,
        session: SessionRecord,
        round_id: int,
        actor: Actor,
        prompt: str,
        seed: int | None,
        reference: bytes | None = None,
        options: ImageOptions | None = None,
    ) -> Drawn:
        """Draw one image for the round, store it and its usage (one trip to the store);
        return it with the critic's JPEG, made in the same decode that checked the image.

        Raises BackendError (an unusable image is BadOutput).
        """
        drawn = await self._draw_checked(prompt, seed, reference, options)
        return await self._keep(drawn, session, round_id, actor)

    async def _draw_checked(
        self,
        prompt: str,
        seed: int | None,
        reference: bytes | None,
        options: ImageOptions | None,
    ) -> _Checked:
        """Draw one image and check it, making the critic's JPEG in the same decode; nothing
        is stored yet. Raises BackendError (an unusable image is BadOutput)."""
        started = time.monotonic()
        try:
            image = await self._generator.generate(
                prompt, seed=seed, options=options, reference=reference
            )
            info, jpeg = await asyncio.to_thread(prepare, image.data, self._critic_max_side)
        except InvalidImage as error:
            raise BadOutput("image", str(error)) from error
        return _Checked(image, info, jpeg, int((time.monotonic() - started) * 1000))

    async def _keep(
        self,
        drawn: _Checked,
        session: SessionRecord,
        round_id: int,
        actor: Actor,
        round_values: Mapping[str, Any] | None = None,
    ) -> Drawn:
        """Store a checked image and its usage in one trip to the store; return it as Drawn.
        With `round_values`, the round takes the image (and those values) in the same trip."""
        image, info = drawn.image, drawn.info
        cost = estimate_cost(image.model, image.usage)
        usage = UsageEntry(
            round_id, session.chat_id, actor.user_id, "image", image.model, image.usage, cost
        )
        stored = await self._store.save_image(
            image.data,
            info.mime,
            info.width,
            info.height,
            usage=usage,
            round_id=round_id if round_values is not None else None,
            round_values=round_values,
        )
        return Drawn(image.data, stored.sha256, cost, drawn.generate_ms, drawn.jpeg)

    async def judge(
        self,
        session: SessionRecord,
        round_id: int,
        actor: Actor,
        prompt: str,
        jpeg: bytes,
        reference_jpeg: bytes | None = None,
        language: str | None = None,
        earlier: tuple[EarlierCritique, ...] | None = None,
    ) -> Judged:
        """Critique one image of the round, given as the critic's JPEG (against the product
        photo's small JPEG, if any), in `language`, with the session's `earlier` critiques
        (read here if None); store the usage; return the critique with a low fidelity named
        first.

        Raises BackendError.
        """
        started = time.monotonic()
        if earlier is None:
            earlier = await self._earlier_critiques(session.id, round_id)
        result = await self._critic.critique(
            CritiqueRequest(
                brief=session.brief,
                prompt=prompt,
                image_jpeg=jpeg,
                earlier=earlier,
                reference_jpeg=reference_jpeg,
                language=language,
            )
        )
        cost = estimate_cost(result.model, result.usage)
        await self._store.record_usage(
            UsageEntry(
                round_id, session.chat_id, actor.user_id, "critic", result.model, result.usage, cost
            )
        )
        elapsed = int((time.monotonic() - started) * 1000)
        return Judged(fidelity_first(result.critique), cost, elapsed)

    async def reference_of(self, session: SessionRecord) -> bytes | None:
        """Return the session's product photo (JPEG bytes), or None for a text brief.

        Raises ReferenceExpired when the photo's file is gone.
        """
        if session.reference_sha is None:
            return None
        try:
            return (await self._store.read_image(session.reference_sha))[1]
        except LookupError:
            raise ReferenceExpired() from None

    async def reference_jpeg(self, reference: bytes | None) -> bytes | None:
        """Return the small JPEG of the product photo the critic sees, or None."""
        if reference is None:
            return None
        return await asyncio.to_thread(critic_jpeg, reference, self._critic_max_side)

    # --- autopilot ---------------------------------------------------------------------------

    def autopilot_plan(self, rounds: int | None = None, drafts: int | None = None) -> AutopilotPlan:
        """Return the plan for a run of `rounds` x `drafts` (defaults from the settings).

        Raises AutopilotPlanInvalid outside 1..max_rounds or 1..max_drafts.
        """
        defaults = self.autopilot_defaults
        rounds = defaults.rounds if rounds is None else rounds
        drafts = defaults.drafts if drafts is None else drafts
        if not 1 <= rounds <= defaults.max_rounds:
            raise AutopilotPlanInvalid("rounds", 1, defaults.max_rounds)
        if not 1 <= drafts <= defaults.max_drafts:
            raise AutopilotPlanInvalid("drafts", 1, defaults.max_drafts)
        return AutopilotPlan(rounds, drafts, defaults.threshold)

    async def begin_autopilot(
        self,
        scope: Scope,
        actor: Actor,
        *,
        round_id: int | None = None,
        brief: str | None = None,
        reference: ReferencePhoto | None = None,
        rounds: int | None = None,
        drafts: int | None = None,
    ) -> PendingAutopilot:
        """Check an autopilot request, reserve the session and store the run as running.

        It continues from the round `round_id`, or opens a session for `brief` (with its
        product photo `reference`, if any). Pass the result to `run_autopilot`.
        """
        plan = self.autopilot_plan(rounds, drafts)
        start: RoundRecord | None = None
        session: SessionRecord | None = None
        if round_id is not None:
            start, session, settings = await self._continuable(round_id, scope, actor)
        else:
            brief = clean_brief(brief)
            settings = await self._store.chat_settings(scope.chat_id)
        await self._check_quota(scope, actor)
        if session is None:
            session = await self._new_session(scope, actor, brief or "", reference)
        await self.reference_of(session)  # refuse now if the product photo is gone
        self._reserve(session, scope, settings)
        try:
            run = await self._store.create_autopilot_run(
                session.id,
                start.id if start else None,
                plan.rounds,
                plan.drafts,
                plan.threshold,
                actor.user_id,
            )
        except BaseException:
            self._running.pop(session.id, None)
            raise
        return PendingAutopilot(session, run, start, plan, actor, scope, settings)

    async def run_autopilot(
        self, pending: PendingAutopilot, listener: AutopilotListener
    ) -> AutopilotOutcome:
        """Run the autopilot (see bot/refine/autopilot.py), telling the listener; release the
        session. A /cancel ends it with stop reason "cancelled" and the best round so far."""
        from bot.refine.autopilot import AutopilotRunner  # it builds on this module

        session_id = pending.session.id
        running = self._running[session_id]
        runner = AutopilotRunner(self, self._store, pending, listener)
        try:
            if running.cancel_requested:
                return await runner.finish("cancelled")
            running.task = asyncio.create_task(self._in_turn(runner.loop))
            try:
                reason = await running.task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if running.task.cancelled() and not (current and current.cancelling()):
                    return await runner.finish("cancelled")
                raise
            except Exception:
                log.exception("autopilot run %s failed on the bot's side", pending.run.id)
                return await asyncio.shield(runner.finish("error"))
            return await runner.finish(reason)
        finally:
            self._running.pop(session_id, None)

    async def _in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work()` once one of the round slots is free."""
        async with self._slots:
            return await work()

    async def shown(self, round_id: int, message_id: int) -> None:
        """Remember the message that shows the round (the best image of an autopilot run)."""
        await self._store.update_round(round_id, message_id=message_id)

    # --- after a restart ----------------------------------------------------------------------

    async def interrupted_rounds(self) -> list[PendingRound]:
        """Reserve and return every round a crash or restart left running.

        Pass each to `resume`: rounds with a stored image are critiqued and delivered (never
        drawn again); rounds without one are marked failed, ready for a Retry.
        """
        interrupted = []
        runs = await self._store.interrupt_autopilot_runs()
        if runs:
            log.info("%d autopilot runs were interrupted by a restart", runs)
        for round in await self._store.running_rounds():
            session = await self._store.get_session(round.session_id)
            if session is None or self.is_busy(session.id):
                continue
            if round.autopilot_id is not None and round.image_sha is None:
                round = await self._adopt_drawn_draft(round)
            scope = Scope(session.chat_id, session.thread_id)
            settings = await self._store.chat_settings(session.chat_id)
            self._reserve(session, scope, settings)
            actor = Actor(round.acted_by, round.acted_by_name)
            interrupted.append(PendingRound(session, round, actor, scope, settings))
        return interrupted

    async def _adopt_drawn_draft(self, round: RoundRecord) -> RoundRecord:
        """Give an autopilot round cut short its best draft already drawn (paid for), to be
        critiqued again and shown like any resumed round; the round as it was if none was."""
        from bot.refine.autopilot import best_draft  # it builds on this module

        drafts = await self._store.round_drafts(round.id)
        kept = best_draft([DraftOutcome(d, critique_of(d)) for d in drafts])
        if kept is None:
            return round
        best = kept.draft
        await self._store.update_draft(best.id, kept=1)
        return await self._store.update_round(
            round.id,
            image_sha=best.image_sha,
            image_at=now_iso(),
            generate_ms=best.generate_ms,
            status=RoundStatus.CRITIQUING,
        )

    async def resume(self, pending: PendingRound, listener: RoundListener) -> RoundOutcome:
        """Finish an interrupted round as far as it can be without paying twice."""
        try:
            outcome = await self._resume(pending, listener)
        except Exception:
            log.exception("round %s failed on the bot's side", pending.round.id)
            outcome = await self._failed_internally(pending.round.id)
        finally:
            self._running.pop(pending.session.id, None)
        _log_round_end(pending.session, outcome)
        return outcome

    async def _resume(self, pending: PendingRound, listener: RoundListener) -> RoundOutcome:
        round = pending.round
        image = await round_image(self._store, round)
        if image is None:
            failed = await self._store.update_round(
                round.id,
                status=RoundStatus.FAILED,
                error_kind="interrupted",
                error="interrupted by a restart",
                finished_at=now_iso(),
            )
            return RoundOutcome(failed, error=Interrupted("image"))
        try:
            if round.message_id is None:
                message_id = await _notify(listener.image_ready(round, image))
                if message_id is not None:
                    round = await self._store.update_round(round.id, message_id=message_id)
            jpeg = await asyncio.to_thread(critic_jpeg, image, self._critic_max_side)
            return await self._critique(
                pending,
                round,
                self._judge_round(
                    pending, round, jpeg, self._critic_context(pending.session, round.id)
                ),
                listener,
            )
        except AudienceGone:
            return await self._cancelled(round)

    # --- other commands --------------------------------------------------------------------------

    async def prepare_edit(
        self, round_id: int, scope: Scope, actor: Actor
    ) -> tuple[RoundRecord, str]:
        """Check the round can be edited; return it and the suggestion to prefill."""
        round, _session, _settings = await self._continuable(round_id, scope, actor)
        return round, suggestion_of(round)

    async def remember_edit(
        self, round_id: int, scope: Scope, actor: Actor, prompt_message_id: int
    ) -> None:
        """Make the actor's next message in this scope an edit of the round."""
        await self._store.set_pending_edit(
            scope.chat_id, scope.thread_id, actor.user_id, round_id, prompt_message_id
        )

    async def take_edit(
        self, scope: Scope, actor: Actor, reply_to: int | None = None
    ) -> PendingEdit | None:
        """Remove and return the actor's pending edit in this scope, if there is one.

        With `reply_to`, only an edit whose prompt is that message is taken (group replies).
        An edit prompt older than EDIT_PROMPT_TTL is dropped: by then a message is a new brief.
        """
        pending = await self._store.take_pending_edit(
            scope.chat_id, scope.thread_id, actor.user_id, prompt_message_id=reply_to
        )
        if pending is None or datetime.fromisoformat(pending.created_at) < (
            datetime.now(UTC) - EDIT_PROMPT_TTL
        ):
            return None
        return pending

    async def stop(self, round_id: int, scope: Scope, actor: Actor) -> StopResult:
        """End the session keeping this round; return it with its full-resolution image.

        Stop on the round a stopped session kept returns it again, so a delivery that failed
        can be asked for once more.
        """
        round, session, settings = await self._round_in_scope(round_id, scope)
        again = session.status is SessionStatus.STOPPED and session.chosen_round_id == round.id
        if not again:
            self._ensure_continuable(round, session)
        self._check_press_policy(session, settings, actor)
        if self.is_busy(session.id):
            raise SessionBusy()
        try:  # read first: a session is only stopped when its image can be delivered
            record, image = await self._store.read_image(round.image_sha)  # type: ignore[arg-type]
        except LookupError:
            raise ImageExpired() from None
        if not again:
            session = await self._store.stop_session(session.id, round.id)
        rounds = await self._store.session_rounds(session.id)
        return StopResult(session, round, image, record.mime, len(rounds))

    async def cancel(self, scope: Scope, actor: Actor) -> int:
        """Cancel every round running in this scope that the actor may steer; return how many
        were cancelled. Raises NotYourSession when all that runs there is someone else's."""
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

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Follow a group upgraded to a supergroup; return how many sessions moved."""
        return await self._store.migrate_chat(old_chat_id, new_chat_id)

    async def _round_in_scope(
        self, round_id: int, scope: Scope
    ) -> tuple[RoundRecord, SessionRecord, ChatSettings]:
        """Return the round, its session and the chat's settings (one trip to the store); raise
        RoundNotFound unless the round belongs to the scope."""
        found = await self._store.round_with_context(round_id)
        if found is None:
            raise RoundNotFound()
        round, session, settings = found
        if (session.chat_id, session.thread_id) != (scope.chat_id, scope.thread_id):
            raise RoundNotFound()
        return round, session, settings

    def is_busy(self, session_id: int) -> bool:
        """Return whether a round of the session is pending or running now."""
        return session_id in self._running

    @staticmethod
    def _ensure_continuable(round: RoundRecord, session: SessionRecord) -> None:
        """Raise SessionStopped or RoundNotReady unless the round can be continued or kept."""
        if session.status is SessionStatus.STOPPED:
            raise SessionStopped()
        if round.status is not RoundStatus.DONE or round.image_sha is None:
            raise RoundNotReady()

    async def _continuable(
        self, round_id: int, scope: Scope, actor: Actor
    ) -> tuple[RoundRecord, SessionRecord, ChatSettings]:
        round, session, settings = await self._round_in_scope(round_id, scope)
        self._ensure_continuable(round, session)
        self._check_press_policy(session, settings, actor)
        return round, session, settings

    async def _earlier_critiques(
        self, session_id: int, round_id: int
    ) -> tuple[EarlierCritique, ...]:
        rounds = await self._store.session_rounds(session_id)
        earlier = [
            EarlierCritique(r.number, r.prompt, critique)
            for r in rounds
            if r.id != round_id and (critique := critique_of(r)) is not None
        ]
        return tuple(earlier[-EARLIER_CRITIQUES:])


def _log_round_end(session: SessionRecord, outcome: RoundOutcome) -> None:
    """Log the one line that ends a round: ids, how it ended, timings and estimated cost."""
    round = outcome.round
    cost = f"{outcome.cost_usd:.4f}" if outcome.cost_usd is not None else "unknown"
    log.info(
        "round end chat=%s session=%s round=%s number=%s status=%s error=%s score=%s "
        "generate_ms=%s critique_ms=%s cost_usd=%s",
        session.chat_id,
        session.id,
        round.id,
        round.number,
        round.status,
        round.error_kind or "-",
        round.score if round.score is not None else "-",
        round.generate_ms if round.generate_ms is not None else "-",
        round.critique_ms if round.critique_ms is not None else "-",
        cost,
    )


def _background(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start `work` as a task whose failure is never reported as "never retrieved" (whoever
    awaits it sees the error; a task cancelled unawaited has nobody to tell)."""
    task = asyncio.create_task(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


async def _notify(call: Awaitable[T]) -> T | None:
    """Await a listener callback; a failing chat must never lose a paid, stored round.

    AudienceGone passes through: the chat is gone, so the round should stop paying.
    """
    try:
        return await call
    except (asyncio.CancelledError, AudienceGone):
        raise
    except Exception:
        log.exception("round listener failed")
        return None

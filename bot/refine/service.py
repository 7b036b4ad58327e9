"""The refine facade the handlers use: begin a run, run it, stop, cancel, and the Edit prompt.

Starting a run has two steps, so callers can answer quickly and run the slow part in the
background: `begin_*` checks the request, reserves the session and stores what will run as
pending (a manual round's round, an autopilot run's record); `run` draws and critiques it
(bot/refine/engine.py) and always releases the session. One run at a time per session: a
second request while one runs gets `SessionBusy` and starts nothing. Looking things up
(sessions, the contact sheet, usage, settings) is bot/refine/history.py. Knows nothing of
Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from bot.backends.base import Critic, ImageGenerator
from bot.images import ReferencePhoto
from bot.refine import checks, edit_prompts, recovery
from bot.refine.engine import Runner
from bot.refine.errors import (
    ImageExpired,
)
from bot.refine.models import (
    MANUAL_ROUND,
    Actor,
    AutopilotDefaults,
    NextRound,
    PendingRun,
    QuotaPolicy,
    RunListener,
    RunOutcome,
    Scope,
    StopResult,
)
from bot.refine.outbox import Outbox
from bot.refine.reservations import Reservations
from bot.refine.rules import (
    STOP_CANCELLED,
    STOP_ERROR,
    accepted,
    autopilot_plan,
    clean_brief,
    edit_suggestion,
    edited,
    redrawn,
    retried,
    session_seed,
)
from bot.refine.steps import PaidSteps
from storage.records import (
    ChatSettings,
    DraftPlan,
    PendingEdit,
    RoundRecord,
    SessionRecord,
)
from storage.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")


class RefineService:
    """Begins, runs, stops and cancels refinement runs in sessions."""

    def __init__(
        self,
        *,
        store: Store,
        generator: ImageGenerator,
        critic: Critic,
        max_rounds_in_flight: int,
        critic_max_side: int = 768,
        quota: QuotaPolicy | None = None,
        default_format: str = "square",
        autopilot: AutopilotDefaults | None = None,
        safety_key: bytes = b"",
    ) -> None:
        """`max_rounds_in_flight` (MAX_ROUNDS_IN_FLIGHT): runs drawn and critiqued at once
        across all chats; later ones wait their turn, so a burst never floods the provider's
        rate limit, the bot's memory (each holds its images) or its event loop. `safety_key`:
        the secret users' safety identifiers are hashed with (steps.py)."""
        self._store = store
        self._steps = PaidSteps(
            store=store,
            generator=generator,
            critic=critic,
            critic_max_side=critic_max_side,
            default_format=default_format,
            safety_key=safety_key,
        )
        self._quota = quota or QuotaPolicy()
        self.autopilot_defaults = autopilot or AutopilotDefaults()
        self._reservations = Reservations()
        self.outbox = Outbox(store, self._reservations)
        """What the chats are still owed (bot/refine/outbox.py)."""
        self._slots = asyncio.Semaphore(max_rounds_in_flight)

    # --- beginning a run ---------------------------------------------------------------------

    async def begin_start(
        self, scope: Scope, actor: Actor, brief: str, reference: ReferencePhoto | None = None
    ) -> PendingRun:
        """Open a session for the brief with its first round pending.

        With `reference` (a user's product photo, checked by `bot.images.prepare_reference`),
        every round of the session keeps that product and changes the scene around it.
        """
        brief = clean_brief(brief)
        await self._check_quota(scope, actor)
        settings = await self._store.chats.settings(scope.chat_id)
        session = await self._new_session(scope, actor, brief, reference)
        first = NextRound(brief, "brief")
        return await self._begin_round(session, None, first, actor, scope, settings)

    async def begin_accept(self, round_id: int, scope: Scope, actor: Actor) -> PendingRun:
        """Pend the next round as the round's critique suggests: an edit of its picture, or
        a redraw from its revised prompt."""
        round, session, settings = await checks.continuable(self._store, round_id, scope, actor)
        await self._check_quota(scope, actor)
        return await self._begin_round(session, round, accepted(round), actor, scope, settings)

    async def begin_edit(
        self, round_id: int, scope: Scope, actor: Actor, instruction: str
    ) -> PendingRun:
        """Pend an edit of the round's picture: the user's own words say what to change."""
        instruction = clean_brief(instruction)
        round, session, settings = await checks.continuable(self._store, round_id, scope, actor)
        await self._check_quota(scope, actor)
        next_round = edited(round, instruction)
        return await self._begin_round(session, round, next_round, actor, scope, settings)

    async def begin_redraw(self, round_id: int, scope: Scope, actor: Actor) -> PendingRun:
        """Pend a new picture from the round's suggested prompt (a fresh composition)."""
        round, session, settings = await checks.continuable(self._store, round_id, scope, actor)
        await self._check_quota(scope, actor)
        return await self._begin_round(session, round, redrawn(round), actor, scope, settings)

    async def begin_retry(self, round_id: int, scope: Scope, actor: Actor) -> PendingRun:
        """Pend a new try of a round that produced no image (failed or interrupted)."""
        round, session, settings = await checks.retryable(self._store, round_id, scope, actor)
        await self._check_quota(scope, actor)
        parent_id = round.parent_round_id
        parent = await self._store.rounds.get(parent_id) if parent_id else None
        return await self._begin_round(session, parent, retried(round), actor, scope, settings)

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
        strategy: str = "critic",
    ) -> PendingRun:
        """Check an autopilot request, reserve the session and store the run as running.

        It continues from the round `round_id`, or opens a session for `brief` (with its
        product photo `reference`, if any); its drafts follow `strategy` (rules.STRATEGIES).
        """
        plan = autopilot_plan(self.autopilot_defaults, rounds, drafts, strategy)
        start: RoundRecord | None = None
        session: SessionRecord | None = None
        if round_id is not None:
            start, session, settings = await checks.continuable(self._store, round_id, scope, actor)
        else:
            brief = clean_brief(brief)
            settings = await self._store.chats.settings(scope.chat_id)
        await self._check_quota(scope, actor)
        if session is None:
            session = await self._new_session(scope, actor, brief or "", reference)
        await self._steps.reference_of(session)  # refuse now if the product photo is gone

        async def store_run() -> PendingRun:
            assert session is not None and plan.threshold is not None
            run = await self._store.sessions.create_run(
                session.id,
                start_round_id=start.id if start else None,
                rounds=plan.rounds,
                drafts=plan.drafts,
                threshold=plan.threshold,
                started_by=actor.user_id,
            )
            return PendingRun(session, actor, scope, settings, plan, start=start, run=run)

        return await self._reserved(session, scope, settings, store_run)

    async def _begin_round(
        self,
        session: SessionRecord,
        parent: RoundRecord | None,
        next_round: NextRound,
        actor: Actor,
        scope: Scope,
        settings: ChatSettings,
    ) -> PendingRun:
        await self._steps.reference_of(session)  # refuse now if the product photo is gone
        draft = DraftPlan(session_seed(session.id), next_round.edit_of, next_round.instruction)

        async def store_round() -> PendingRun:
            round = await self._store.rounds.create(
                session.id,
                parent_id=parent.id if parent else None,
                prompt=next_round.prompt,
                action=next_round.action,
                actor_id=actor.user_id,
                actor_name=actor.name,
                drafts=[draft],
            )
            return PendingRun(session, actor, scope, settings, MANUAL_ROUND, round=round)

        return await self._reserved(session, scope, settings, store_round)

    async def _reserved(
        self,
        session: SessionRecord,
        scope: Scope,
        settings: ChatSettings,
        store_pending: Callable[[], Awaitable[PendingRun]],
    ) -> PendingRun:
        """Reserve the session, then store what will run; the reservation is released again
        if storing fails. Raises SessionBusy."""
        self._reservations.reserve(session.id, scope, checks.steered_by(session, settings))
        try:
            return await store_pending()
        except BaseException:
            self._reservations.release(session.id)
            raise

    async def _new_session(
        self, scope: Scope, actor: Actor, brief: str, reference: ReferencePhoto | None
    ) -> SessionRecord:
        reference_sha = None
        if reference is not None:
            stored = await self._store.images.save(
                reference.data, mime="image/jpeg", width=reference.width, height=reference.height
            )
            reference_sha = stored.sha256
        return await self._store.sessions.create(
            scope.chat_id,
            chat_type=scope.chat_type,
            thread_id=scope.thread_id,
            user_id=actor.user_id,
            brief=brief,
            reference_sha=reference_sha,
        )

    async def _check_quota(self, scope: Scope, actor: Actor) -> None:
        await checks.check_quota(self._store, self._quota, scope, actor)

    # --- running it ------------------------------------------------------------------------------

    async def run(self, pending: PendingRun, listener: RunListener) -> RunOutcome:
        """Run the pending run, telling the listener; release the session.

        A /cancel while it runs (or waits its turn) ends it with stop reason "cancelled" and
        the best round so far; cancelling the caller itself propagates as usual. A failure
        of the bot's own ends the round under way (kept with its buttons if it has an image,
        else ready for a Retry) with stop reason "error".
        """
        runner = self._runner(pending, listener)
        reservation = self._reservations.get(pending.session.id)
        try:
            if reservation.cancel_requested:
                return await runner.finish(STOP_CANCELLED)
            reservation.task = asyncio.create_task(self._in_turn(runner.loop))
            try:
                reason = await reservation.task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if reservation.task.cancelled() and not (current and current.cancelling()):
                    return await asyncio.shield(runner.finish(STOP_CANCELLED))
                raise
            except Exception:
                log.exception("%s failed on the bot's side", pending.name)
                return await asyncio.shield(runner.finish(STOP_ERROR))
            return await runner.finish(reason)
        finally:
            self._reservations.release(pending.session.id)

    async def _in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work()` once one of the round slots is free."""
        async with self._slots:
            return await work()

    def _runner(self, pending: PendingRun, listener: RunListener) -> Runner:
        return Runner(
            store=self._store,
            steps=self._steps,
            pending=pending,
            listener=listener,
            check_quota=lambda: self._check_quota(pending.scope, pending.actor),
        )

    # --- after a restart ----------------------------------------------------------------------

    async def interrupted_runs(self) -> list[PendingRun]:
        """Reserve and return every round a crash or restart left running, as a pending run
        to pass to `resume`."""
        return await recovery.reserve_interrupted(self._store, self._reservations)

    async def resume(self, pending: PendingRun, listener: RunListener) -> RunOutcome:
        """Finish an interrupted round as far as it can be without paying twice (a stored
        image is critiqued and shown, never drawn again; a round without one is marked
        failed, ready for a Retry); release the session."""
        runner = self._runner(pending, listener)
        try:
            try:
                reason = await runner.resume()
            except Exception:
                log.exception("%s failed on the bot's side", pending.name)
                return await runner.finish(STOP_ERROR)
            return await runner.finish(reason)
        finally:
            self._reservations.release(pending.session.id)

    # --- the Edit prompt ---------------------------------------------------------------------

    async def prepare_edit(
        self, round_id: int, scope: Scope, actor: Actor
    ) -> tuple[RoundRecord, str]:
        """Check the round can be edited; return it and the change to suggest."""
        round, _session, _settings = await checks.continuable(self._store, round_id, scope, actor)
        return round, edit_suggestion(round)

    async def remember_edit(
        self, round_id: int, scope: Scope, actor: Actor, prompt_message_id: int
    ) -> None:
        """Make the actor's next message in this scope an edit of the round."""
        await edit_prompts.remember(self._store, round_id, scope, actor, prompt_message_id)

    async def take_edit(
        self, scope: Scope, actor: Actor, reply_to: int | None = None
    ) -> PendingEdit | None:
        """Remove and return the actor's pending edit in this scope (see
        `edit_prompts.take`), if there is one."""
        return await edit_prompts.take(self._store, scope, actor, reply_to)

    # --- the end of a session, /cancel, chat upgrades ----------------------------------------

    @contextlib.asynccontextmanager
    async def stop(self, round_id: int, scope: Scope, actor: Actor) -> AsyncIterator[StopResult]:
        """End the session keeping this round; yield it with its full-resolution image, the
        session held (a second press meanwhile gets SessionBusy) until the caller has
        delivered it.

        Stop on the round a stopped session kept yields it again, so a delivery that failed
        can be asked for once more (`StopResult.already_delivered` says if it did not fail).
        Raises RoundNotFound, SessionStopped, RoundNotReady, NotYourSession, SessionBusy or
        ImageExpired.
        """
        round, session, settings = await checks.round_in_scope(self._store, round_id, scope)
        again = checks.keepable(round, session, settings, actor)
        self._reservations.reserve(session.id, scope, checks.steered_by(session, settings))
        try:
            assert round.image_sha is not None  # checked by keepable
            try:  # read first: a session is only stopped when its image can be delivered
                record, image = await self._store.images.read(round.image_sha)
            except LookupError:
                raise ImageExpired() from None
            if not again:
                session = await self._store.sessions.stop(session.id, chosen_round_id=round.id)
            rounds = await self._store.rounds.of_session(session.id)
            size = (record.width, record.height)
            yield StopResult(session, round, image, record.mime, len(rounds), size)
        finally:
            self._reservations.release(session.id)

    async def delivered(self, result: StopResult, message_id: int) -> None:
        """Remember that Stop's image went out (Stop again then re-sends nothing)."""
        await self._store.sessions.delivered(result.session.id, message_id=message_id)

    async def cancel(self, scope: Scope, actor: Actor) -> int:
        """Cancel every run in this scope that the actor may steer; return how many were
        cancelled. Raises NotYourSession when all that runs there is someone else's."""
        return self._reservations.cancel(scope, actor)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """Follow a group upgraded to a supergroup; return how many sessions moved."""
        return await self._store.chats.migrate(old_chat_id, new_chat_id)

    def is_busy(self, session_id: int) -> bool:
        """Return whether a run of the session is pending or under way."""
        return self._reservations.is_busy(session_id)

"""After a restart: the rounds a crash or restart left running, ready to be finished."""

from __future__ import annotations

import logging

from bot.refine.checks import steered_by
from bot.refine.models import MANUAL_ROUND, Actor, DraftOutcome, PendingRun, Scope
from bot.refine.reservations import Reservations
from bot.refine.rules import best_draft, critique_of
from storage.records import RoundRecord, SessionRecord
from storage.store import Store

log = logging.getLogger(__name__)


async def interrupted_rounds(store: Store) -> list[tuple[SessionRecord, RoundRecord]]:
    """Mark the drafts and autopilot runs a restart left running as interrupted; return every
    round left running with its session. A round cut short after drafts were drawn (paid
    for) keeps the best of them, to be critiqued again and shown like any resumed round."""
    runs = await store.rounds.interrupt_unfinished()
    if runs:
        log.info("%d autopilot runs were interrupted by a restart", runs)
    found = []
    for round in await store.rounds.running():
        session = await store.sessions.get(round.session_id)
        if session is None:
            continue
        if round.image_sha is None:
            round = await _adopt_drawn_draft(store, round)
        found.append((session, round))
    return found


async def _adopt_drawn_draft(store: Store, round: RoundRecord) -> RoundRecord:
    """Give a round cut short its best draft already drawn; the round as it was if none was."""
    drafts = await store.rounds.drafts(round.id)
    kept = best_draft([DraftOutcome(d, critique_of(d)) for d in drafts])
    if kept is None:
        return round
    return await store.rounds.keep_draft(round.id, kept.draft.id, done=False)


async def reserve_interrupted(store: Store, reservations: Reservations) -> list[PendingRun]:
    """Reserve and return every round a crash or restart left running (of a session no
    run holds now), each as a pending run of its own."""
    interrupted = []
    for session, round in await interrupted_rounds(store):
        if reservations.is_busy(session.id):
            continue
        pending = await pending_resume(store, session, round)
        reservations.reserve(session.id, pending.scope, steered_by(session, pending.settings))
        interrupted.append(pending)
    return interrupted


async def pending_resume(store: Store, session: SessionRecord, round: RoundRecord) -> PendingRun:
    """Return the interrupted round as a pending run of its own, in its session's scope."""
    scope = Scope(session.chat_id, session.thread_id)
    settings = await store.chats.settings(session.chat_id)
    actor = Actor(round.acted_by, round.acted_by_name)
    return PendingRun(session, actor, scope, settings, MANUAL_ROUND, round=round)

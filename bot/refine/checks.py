"""The checks a request passes before it may start a round: scope, state, press policy and
daily quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.refine.errors import (
    NotYourSession,
    QuotaExceeded,
    RoundNotFound,
    RoundNotReady,
    SessionStopped,
)
from bot.refine.history import start_of_day
from bot.refine.models import Actor, QuotaPolicy, Scope
from storage.records import ChatSettings, RoundRecord, RoundStatus, SessionRecord, SessionStatus
from storage.store import Store


async def round_in_scope(
    store: Store, round_id: int, scope: Scope
) -> tuple[RoundRecord, SessionRecord, ChatSettings]:
    """Return the round, its session and the chat's settings (one trip to the store).

    Raises RoundNotFound unless the round belongs to the scope.
    """
    found = await store.rounds.with_context(round_id)
    if found is None:
        raise RoundNotFound()
    round, session, settings = found
    if (session.chat_id, session.thread_id) != (scope.chat_id, scope.thread_id):
        raise RoundNotFound()
    return round, session, settings


def ensure_continuable(round: RoundRecord, session: SessionRecord) -> None:
    """Raise SessionStopped or RoundNotReady unless the round can be continued or kept."""
    if session.status is SessionStatus.STOPPED:
        raise SessionStopped()
    if round.status is not RoundStatus.DONE or round.image_sha is None:
        raise RoundNotReady()


def check_press_policy(session: SessionRecord, settings: ChatSettings, actor: Actor) -> None:
    """Raise NotYourSession if the chat's settings keep the actor's hands off the session."""
    if settings.press_policy == "starter" and actor.user_id != session.started_by:
        raise NotYourSession()


def steered_by(session: SessionRecord, settings: ChatSettings) -> int | None:
    """Return who alone may steer the session's runs (None: anyone in the chat)."""
    return session.started_by if settings.press_policy == "starter" else None


async def continuable(
    store: Store, round_id: int, scope: Scope, actor: Actor
) -> tuple[RoundRecord, SessionRecord, ChatSettings]:
    """Return the round, its session and the chat's settings if the actor may continue
    from the round. Raises RoundNotFound, SessionStopped, RoundNotReady or NotYourSession."""
    round, session, settings = await round_in_scope(store, round_id, scope)
    ensure_continuable(round, session)
    check_press_policy(session, settings, actor)
    return round, session, settings


async def retryable(
    store: Store, round_id: int, scope: Scope, actor: Actor
) -> tuple[RoundRecord, SessionRecord, ChatSettings]:
    """Return the round, its session and the chat's settings if the actor may retry the
    round (it drew no image). Raises RoundNotFound, SessionStopped, RoundNotReady or
    NotYourSession."""
    round, session, settings = await round_in_scope(store, round_id, scope)
    if session.status is SessionStatus.STOPPED:
        raise SessionStopped()
    if round.status is not RoundStatus.FAILED:
        raise RoundNotReady()
    check_press_policy(session, settings, actor)
    return round, session, settings


def keepable(
    round: RoundRecord, session: SessionRecord, settings: ChatSettings, actor: Actor
) -> bool:
    """Check the actor may end the session keeping the round; return whether the session
    already ended keeping it (Stop again re-delivers it). Raises SessionStopped,
    RoundNotReady or NotYourSession."""
    again = session.status is SessionStatus.STOPPED and session.chosen_round_id == round.id
    if not again:
        ensure_continuable(round, session)
    check_press_policy(session, settings, actor)
    if round.image_sha is None:
        raise RoundNotReady()
    return again


async def check_quota(
    store: Store, quota: QuotaPolicy, scope: Scope, actor: Actor, *, adding: int = 1
) -> None:
    """Raise QuotaExceeded if the actor (or the chat) has no room today for `adding` more
    images: rounds and the campaign packs' paid formats both count."""
    exempt = quota.exempt_user_ids is None or actor.user_id in quota.exempt_user_ids
    if exempt or not (quota.rounds_per_user_per_day or quota.rounds_per_chat_per_day):
        return
    now = datetime.now(UTC)
    since = start_of_day(now).isoformat(timespec="milliseconds")
    resets_at = start_of_day(now) + timedelta(days=1)
    by_user, in_chat = await store.chats.rounds_since(since, actor.user_id, scope.chat_id)
    pack_user, pack_chat = await store.packs.made_since(since, actor.user_id, scope.chat_id)
    checks = [
        ("user", quota.rounds_per_user_per_day, by_user + pack_user),
        ("chat", quota.rounds_per_chat_per_day, in_chat + pack_chat),
    ]
    for name, limit, started in checks:
        if limit and started + adding > limit:
            raise QuotaExceeded(name, limit, resets_at)

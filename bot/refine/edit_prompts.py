"""The Edit prompt: after Edit is pressed, the presser's next message in that scope (or, in a
group, their reply to the prompt) is the revision of the round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.refine.models import Actor, Scope
from storage.records import PendingEdit
from storage.store import Store

EDIT_PROMPT_TTL = timedelta(hours=1)
"""How long after pressing Edit the next message still counts as the revision."""


async def remember(
    store: Store, round_id: int, scope: Scope, actor: Actor, prompt_message_id: int
) -> None:
    """Make the actor's next message in this scope an edit of the round."""
    await store.chats.set_pending_edit(
        scope.chat_id,
        thread_id=scope.thread_id,
        user_id=actor.user_id,
        round_id=round_id,
        prompt_message_id=prompt_message_id,
    )


async def take(
    store: Store, scope: Scope, actor: Actor, reply_to: int | None = None
) -> PendingEdit | None:
    """Remove and return the actor's pending edit in this scope, if there is one.

    With `reply_to`, only an edit whose prompt is that message is taken (group replies); a
    reply to an Edit prompt the actor was asked counts even after the pending edit was
    dropped (a /new in between).
    An edit prompt older than EDIT_PROMPT_TTL is dropped: by then a message is a new brief.
    """
    pending = await store.chats.take_pending_edit(
        scope.chat_id,
        thread_id=scope.thread_id,
        user_id=actor.user_id,
        prompt_message_id=reply_to,
    )
    oldest = datetime.now(UTC) - EDIT_PROMPT_TTL
    if pending is None and reply_to is not None:  # dropped meanwhile (/new): the reply counts
        since = oldest.isoformat(timespec="milliseconds")
        return await store.chats.edit_prompt(scope.chat_id, reply_to, actor.user_id, since=since)
    if pending is None or datetime.fromisoformat(pending.created_at) < oldest:
        return None
    return pending

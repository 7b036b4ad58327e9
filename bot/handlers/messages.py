"""Plain messages: a new brief (private chats), the answer to an edit prompt, and the service
message of a group upgraded to a supergroup. Photos are in bot/handlers/photos.py."""

from __future__ import annotations

import logging

from telegram import Message, MessageEntity, Update
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.commands import begin_brief, start_brief
from bot.handlers.common import actor_of, reply, scope_of, services
from bot.handlers.rounds import launch_round
from bot.refine.errors import RefineError
from bot.refine.models import Actor, Scope

log = logging.getLogger(__name__)


async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message: an Edit, a new brief, or (group chatter) nothing.

    - A reply to the bot's edit prompt, or to one of its round photos, edits that round.
    - In a private chat any other text is a new brief.
    - In a group, a message that mentions the bot (`@bot brief`) is a new brief; all other
      chatter is ignored.
    """
    message = update.effective_message
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    replied = message.reply_to_message
    if (
        replied is not None
        and replied.from_user is not None
        and replied.from_user.id == context.bot.id
    ):
        round_id = await _round_to_edit(context, scope, actor, replied.message_id)
        if round_id is not None:
            await _edit(update, context, round_id)
            return
    if not scope.is_group:
        edit = await refine.take_edit(scope, actor)
        if edit is not None:
            await _edit(update, context, edit.round_id)
        else:  # the pending edit, if any, is taken already
            await begin_brief(update, context, message.text or "")
        return
    brief = mentioned_brief(message, context.bot.username)
    if brief is not None:
        await start_brief(update, context, brief)


async def _round_to_edit(
    context: ContextTypes.DEFAULT_TYPE, scope: Scope, actor: Actor, replied_id: int
) -> int | None:
    """Return the round a reply to the bot's message edits: its edit prompt's, or its photo's."""
    refine = services(context).refine
    edit = await refine.take_edit(scope, actor, reply_to=replied_id)
    if edit is not None:
        return edit.round_id
    round = await services(context).history.round_shown_by(scope, replied_id)
    return round.id if round is not None else None


async def _edit(update: Update, context: ContextTypes.DEFAULT_TYPE, round_id: int) -> None:
    message = update.effective_message
    try:
        pending = await services(context).refine.begin_edit(
            round_id, scope_of(update), actor_of(update), message.text or ""
        )
    except RefineError as error:
        await reply(message, views.refusal_text(error))
        return
    launch_round(update, context, pending, asked_by=message)


def mentioned_brief(message: Message, bot_username: str) -> str | None:
    """Return the brief of a message that mentions the bot (the text without the mention),
    or None if the bot is not mentioned."""
    text = message.text or ""
    mention = f"@{bot_username}".lower()
    # parse_entities maps Telegram's UTF-16 offsets to the mention's text.
    for value in message.parse_entities([MessageEntity.MENTION]).values():
        if value.lower() == mention:
            start = text.find(value)
            return (text[:start] + text[start + len(value) :]).strip()
    return None


async def other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything else in a private chat (stickers, voice, unknown commands): point to /help."""
    await reply(update.effective_message, views.UNKNOWN_MESSAGE)


async def migrated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup: move its sessions to the new chat id."""
    message = update.effective_message
    if message.migrate_to_chat_id:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    moved = await services(context).refine.migrate_chat(old, new)
    log.info("chat %s migrated to %s: %d sessions moved", old, new, moved)

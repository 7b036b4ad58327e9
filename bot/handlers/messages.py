"""Plain messages: a new brief (private chats), the answer to an edit prompt, and the service
message of a group upgraded to a supergroup. Photos are in bot/handlers/photos.py."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.commands import start_brief
from bot.handlers.common import actor_of, is_group, reply, scope_of, services
from bot.handlers.rounds import launch_round
from bot.refine.errors import RefineError

log = logging.getLogger(__name__)


async def text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edit prompt's answer becomes the next round; otherwise, in private, a new brief.

    In groups only a reply to the bot's edit prompt counts; other chatter is ignored.
    """
    message = update.effective_message
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    group = is_group(update.effective_chat)
    replied = message.reply_to_message.message_id if message.reply_to_message else None
    if group and replied is None:
        return
    edit = await refine.take_edit(scope, actor, reply_to=replied if group else None)
    if edit is None:
        if not group:
            await start_brief(update, context, message.text or "")
        return
    try:
        pending = await refine.begin_edit(edit.round_id, scope, actor, message.text or "")
    except RefineError as error:
        await reply(message, views.refusal_text(error))
        return
    launch_round(update, context, pending, reply_to=message)


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

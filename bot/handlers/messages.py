"""Plain messages: a new brief (private chats), the answer to an edit prompt, photos."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.commands import start_brief
from bot.handlers.common import actor_of, is_group, reply, scope_of, services
from bot.handlers.rounds import run_round


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
    pending = await refine.take_edit(scope, actor, reply_to=replied if group else None)
    if pending is not None:
        await run_round(
            update,
            context,
            lambda presenter: refine.edit(pending.round_id, scope, actor, message.text, presenter),
            reply_to=message,
        )
    elif not group:
        await start_brief(update, context, message.text or "")


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Photo briefs are not supported yet: say so, and how to describe the product instead."""
    await reply(update.effective_message, views.PHOTO_NOT_SUPPORTED)


async def other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anything else in a private chat (stickers, voice, unknown commands): point to /help."""
    await reply(update.effective_message, views.UNKNOWN_MESSAGE)

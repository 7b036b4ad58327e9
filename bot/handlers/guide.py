"""How the bot explains itself: /start, /help, and a pointer to /help for anything it can't
use in a private chat (stickers, voice, unknown commands)."""

from __future__ import annotations

from telegram import Update

from bot.chat.context import BotContext
from bot.chat.updates import message_of, reply
from bot.ui.help import HELP, START, UNKNOWN_MESSAGE


async def start_command(update: Update, context: BotContext) -> None:
    """/start: a greeting and the help text."""
    await reply(message_of(update), START)


async def help_command(update: Update, context: BotContext) -> None:
    """/help: what the bot does and how to steer it."""
    await reply(message_of(update), HELP)


async def other_message(update: Update, context: BotContext) -> None:
    """Anything else in a private chat: say what to send instead."""
    await reply(message_of(update), UNKNOWN_MESSAGE)

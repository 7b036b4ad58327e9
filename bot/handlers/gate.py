"""What every update passes through or ends in: the access gate (first, in group -1), the
supergroup-migration notice, the answer to a button no handler recognises, and the
last-resort error handler."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Message, Update
from telegram.error import Conflict, TelegramError
from telegram.ext import Application, ApplicationHandlerStop

from bot.access import is_allowed
from bot.chat.context import BotContext
from bot.chat.updates import answer_quietly, is_group, message_of, query_of, scope_of, thread_kwargs
from bot.services import Services
from bot.ui.refusals import ACCESS_DENIED, ACCESS_DENIED_TOAST, INVALID_BUTTON, SORRY, STORE_BUSY
from storage.database import StoreBusy

log = logging.getLogger(__name__)


async def gatekeeper(update: Update, context: BotContext) -> None:
    """Stop every update from someone not allowed (ApplicationHandlerStop), telling them how
    to get access. In groups, plain chatter from strangers is dropped silently; commands get
    the answer."""
    if await _allowed(update, context.services):
        return
    try:
        await _refuse(update)
    except Exception:  # the gate stays shut whatever happens to the refusal
        log.warning("could not refuse an update from a stranger", exc_info=True)
    raise ApplicationHandlerStop


async def _allowed(update: Update, services: Services) -> bool:
    """Return whether the update may pass; a supergroup's former group is looked up only when
    nothing else allows it."""
    user_id = update.effective_user.id if update.effective_user else None
    chat_id = update.effective_chat.id if update.effective_chat else None
    if is_allowed(services.settings, user_id, chat_id) or _is_upgrade(update.effective_message):
        return True
    if chat_id is None:
        return False
    upgraded_from = await services.history.upgraded_from(chat_id)
    return is_allowed(services.settings, user_id, chat_id, upgraded_from)


def _is_upgrade(message: Message | None) -> bool:
    """Return whether the message is Telegram's notice of a group's upgrade to a supergroup:
    it only moves that chat's own history, so it passes whoever the upgrading admin is."""
    return message is not None and bool(message.migrate_to_chat_id or message.migrate_from_chat_id)


async def _refuse(update: Update) -> None:
    """Tell someone not allowed how to get access (silence for chatter in groups)."""
    user, chat, message = update.effective_user, update.effective_chat, update.effective_message
    if update.callback_query is not None:
        await answer_quietly(update.callback_query, ACCESS_DENIED_TOAST)
    elif message is not None and user is not None:
        text = message.text or ""
        if not is_group(chat) or text.startswith("/"):
            await message.reply_text(ACCESS_DENIED.format(user_id=user.id))


async def migrated(update: Update, context: BotContext) -> None:
    """A group became a supergroup: move its sessions to the new chat id."""
    message = message_of(update)
    if message.migrate_to_chat_id:
        old, new = message.chat_id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat_id
    else:
        return
    moved = await context.services.refine.migrate_chat(old, new)
    log.info("chat %s migrated to %s: %d sessions moved", old, new, moved)


async def stale_button(update: Update, context: BotContext) -> None:
    """A press no button handler's pattern matched (forged, or from an older version)."""
    await answer_quietly(query_of(update), INVALID_BUTTON)


_CONFLICT = "stopped_by_conflict"
"""The bot_data key set when a 409 Conflict stopped the application."""


def stopped_by_conflict(application: Application[Any, Any, Any, Any, Any, Any]) -> bool:
    """Whether the application stopped because another bot polls with the same token."""
    return bool(application.bot_data.get(_CONFLICT))


async def on_error(update: object, context: BotContext) -> None:
    """Log the failure and, where there is a chat, say sorry without any technical detail.

    A 409 Conflict from getUpdates (another process polls with this token) stops the bot with
    one log line: polling on would fight the other process every few seconds."""
    if isinstance(context.error, Conflict):
        if not stopped_by_conflict(context.application):
            log.error("Telegram: %s; stopping", context.error.message)
            context.application.bot_data[_CONFLICT] = True
            context.application.stop_running()
        return
    busy = isinstance(context.error, StoreBusy)
    if busy:  # another process holds the database's write lock: not a bug of the bot's
        log.warning("database busy: %s", context.error)
    else:
        log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    text = STORE_BUSY if busy else SORRY
    if update.callback_query is not None:
        await answer_quietly(update.callback_query, text)
        return
    scope = scope_of(update)
    try:
        await context.bot.send_message(scope.chat_id, text, **thread_kwargs(scope))
    except TelegramError as error:
        log.debug("could not say sorry: %s", error)

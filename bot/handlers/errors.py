"""The gatekeeper every update passes first, and the last-resort error handler."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import views
from bot.access import is_allowed
from bot.handlers.buttons import answer_quietly
from bot.handlers.common import HTML, is_group, scope_of, services, thread_kwargs
from bot.services import Services

log = logging.getLogger(__name__)

SORRY = "Something went wrong on my side. Your images are safe; please try again."


async def gatekeeper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop every update from someone not allowed, telling them how to get access.

    In groups, plain chatter from strangers is dropped silently; commands get the answer.
    """
    if await _allowed(update, services(context)):
        return
    try:
        await _refuse(update)
    except Exception:  # the gate stays shut whatever happens to the refusal
        log.warning("could not refuse an update from a stranger", exc_info=True)
    raise ApplicationHandlerStop


async def _allowed(update: Update, svc: Services) -> bool:
    """Return whether the update may pass; a supergroup's former group is looked up only when
    nothing else allows it."""
    user_id = update.effective_user.id if update.effective_user else None
    chat_id = update.effective_chat.id if update.effective_chat else None
    if is_allowed(svc.settings, user_id, chat_id) or _is_upgrade(update.effective_message):
        return True
    if chat_id is None:
        return False
    return is_allowed(svc.settings, user_id, chat_id, await svc.history.upgraded_from(chat_id))


def _is_upgrade(message: Message | None) -> bool:
    """Return whether the message is Telegram's notice of a group's upgrade to a supergroup:
    it only moves that chat's own history, so it passes whoever the upgrading admin is."""
    return message is not None and bool(message.migrate_to_chat_id or message.migrate_from_chat_id)


async def _refuse(update: Update) -> None:
    """Tell someone not allowed how to get access (silence for chatter in groups)."""
    user, chat = update.effective_user, update.effective_chat
    if update.callback_query is not None:
        await answer_quietly(update.callback_query, views.ACCESS_DENIED_TOAST)
    elif update.effective_message is not None and user is not None:
        text = update.effective_message.text or ""
        if not is_group(chat) or text.startswith("/"):
            await update.effective_message.reply_text(
                views.ACCESS_DENIED.format(user_id=user.id), parse_mode=HTML
            )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure and, where there is a chat, say sorry without any technical detail."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.callback_query is not None:
        await answer_quietly(update.callback_query, SORRY)
        return
    scope = scope_of(update)
    try:
        await context.bot.send_message(scope.chat_id, SORRY, **thread_kwargs(scope))
    except TelegramError as error:
        log.debug("could not say sorry: %s", error)

"""Small translations between Telegram updates and the domain's values."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Chat, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.refine.models import Actor, Scope
from bot.services import Services

log = logging.getLogger(__name__)

HTML = ParseMode.HTML


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """Return the process's Services (put in bot_data by the application's post_init)."""
    return context.application.bot_data["services"]


def is_group(chat: Chat | None) -> bool:
    return chat is not None and chat.type in (Chat.GROUP, Chat.SUPERGROUP)


def scope_of(update: Update) -> Scope:
    """Return the (chat, forum topic) the update belongs to."""
    chat = update.effective_chat
    assert chat is not None
    message = update.effective_message
    thread_id = 0
    if message is not None and message.is_topic_message and message.message_thread_id:
        thread_id = message.message_thread_id
    return Scope(chat.id, thread_id, chat.type)


def actor_of(update: Update) -> Actor:
    """Return who acted: the chat an anonymous admin or channel posted as, else the user."""
    message = update.effective_message
    sender = message.sender_chat if message is not None and not update.callback_query else None
    user = update.effective_user
    language = user.language_code if user is not None else None
    if sender is not None:
        return Actor(sender.id, sender.title or str(sender.id), language)
    if user is not None:
        return Actor(user.id, user.first_name or user.username or str(user.id), language)
    raise ValueError("update has no sender")


def thread_kwargs(scope: Scope) -> dict[str, Any]:
    """Return the send_* keyword that keeps a reply in the update's forum topic."""
    return {"message_thread_id": scope.thread_id} if scope.thread_id else {}


async def reply(message: Message, text: str, **kwargs: Any) -> Message:
    """Reply to the message in its chat and topic, as HTML."""
    return await message.reply_text(text, parse_mode=HTML, do_quote=False, **kwargs)


def is_not_modified(error: BadRequest) -> bool:
    """Return whether Telegram refused an edit only because nothing changed."""
    return "message is not modified" in error.message.lower()

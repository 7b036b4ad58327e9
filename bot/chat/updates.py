"""Reading an update (where, who, which message or press, the command's arguments) and
answering it (a reply, a toast, the pressed message replaced), shared by all handlers.

Every text is HTML: the Application's Defaults set parse_mode for every send and edit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, Chat, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError

from bot.chat.context import BotContext
from bot.refine.errors import RefineError
from bot.refine.models import Actor, Scope
from bot.ui.callbacks import ROUND_ACTIONS, SESSION_ACTIONS, ButtonPress, decode_callback
from bot.ui.refusals import INVALID_BUTTON, refusal_toast

log = logging.getLogger(__name__)

PressHandler = Callable[[Update, BotContext, ButtonPress, Scope], Awaitable[None]]
"""A button action: given the decoded press and where it happened."""
UpdateHandler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]
"""What PTB calls for an update."""


def is_group(chat: Chat | None) -> bool:
    """Return whether the chat is a group or a supergroup."""
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


def message_of(update: Update) -> Message:
    """Return the update's message (the only kind of update message handlers get)."""
    message = update.effective_message
    if message is None:
        raise ValueError("update has no message")
    return message


def query_of(update: Update) -> CallbackQuery:
    """Return the update's button press (the only kind CallbackQueryHandlers get)."""
    query = update.callback_query
    if query is None:
        raise ValueError("update is no button press")
    return query


def pressed_message(query: CallbackQuery) -> Message:
    """Return the message whose button was pressed. A press on a message too old for Telegram
    to send along still has it, with only its chat and id (`is_accessible` is False)."""
    message = query.message
    if not isinstance(message, Message):
        raise ValueError("the press has no message (an inline-mode button)")
    return message


def argument_text(text: str | None) -> str:
    """Return what follows the command word, keeping the user's line breaks."""
    command, _space, rest = (text or "").strip().partition(" ")
    if not rest and "\n" in command:
        rest = command.partition("\n")[2]
    return rest.strip()


def thread_kwargs(scope: Scope) -> dict[str, Any]:
    """Return the send_* keyword that keeps a reply in the update's forum topic."""
    return {"message_thread_id": scope.thread_id} if scope.thread_id else {}


async def reply(message: Message, text: str, **kwargs: Any) -> Message:
    """Send the HTML text to the message's chat and topic, without quoting it."""
    return await message.reply_text(text, do_quote=False, **kwargs)


def is_not_modified(error: BadRequest) -> bool:
    """Return whether Telegram refused an edit only because nothing changed."""
    return "message is not modified" in error.message.lower()


async def answer_quietly(query: CallbackQuery, text: str | None = None) -> None:
    """Answer the query (with a toast if `text`); a query too old to answer is not an error."""
    try:
        await query.answer(text)
    except TelegramError as error:
        log.debug("could not answer callback query: %s", error)


async def replace_pressed(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup) -> None:
    """Replace the pressed message's text and keyboard (a quiet no-op if nothing changed)."""
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as error:
        if not is_not_modified(error):
            raise


async def scope_of_press(update: Update, context: BotContext, press: ButtonPress) -> Scope:
    """Return where the press happened. Telegram sends a press on a message more than about
    two days old without the message, so without its forum topic: such a press takes the topic
    of the round or session it names (in the same chat; other chats' stay out of reach)."""
    scope = scope_of(update)
    message = query_of(update).message
    if message is None or message.is_accessible:
        return scope
    history = context.services.history
    if press.action in ROUND_ACTIONS:
        return await history.scope_of_round(press.number, scope)
    if press.action in SESSION_ACTIONS:
        return await history.scope_of_session(press.number, scope)
    return scope


def press_handler(handle: PressHandler) -> UpdateHandler:
    """Return the CallbackQueryHandler callback running the button action `handle`.

    The callback decodes the press (stale or forged data is answered "no longer valid"),
    finds where it happened (also for a press on an aged message) and answers a domain
    refusal as a toast; `handle` answers the query itself once its quick checks pass.
    """

    async def on_press(update: Update, context: BotContext) -> None:
        query = query_of(update)
        press = decode_callback(query.data)
        if press is None:
            await answer_quietly(query, INVALID_BUTTON)
            return
        try:
            scope = await scope_of_press(update, context, press)
            await handle(update, context, press, scope)
        except RefineError as error:
            await answer_quietly(query, refusal_toast(error))

    on_press.__name__ = on_press.__qualname__ = handle.__name__
    on_press.__doc__ = handle.__doc__
    return on_press

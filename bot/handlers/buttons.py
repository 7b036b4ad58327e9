"""Inline button presses. The query is answered first, then the slow work runs.

Round buttons: Accept, Edit, Stop, Retry, Auto. Browsing: history pages, a session's rounds,
its contact sheet. Settings: one choice per press.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import (
    CallbackQuery,
    ChatMember,
    ForceReply,
    InlineKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.auto import launch_autopilot
from bot.handlers.commands import send_contact_sheet
from bot.handlers.common import (
    HTML,
    actor_of,
    is_not_modified,
    scope_of,
    services,
    thread_kwargs,
)
from bot.handlers.rounds import launch_round
from bot.handlers.uploads import send_image
from bot.refine.errors import NotChatAdmin, RefineError
from bot.refine.models import Scope

log = logging.getLogger(__name__)

INVALID_BUTTON = "This button is no longer valid."

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE, views.ButtonPress, Scope], Awaitable[None]]


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    press = views.decode_callback(query.data)
    if press is None:
        await answer_quietly(query, INVALID_BUTTON)
        return
    try:
        scope = await _scope_of_press(update, context, press)
        await _HANDLERS[press.action](update, context, press, scope)
    except RefineError as error:
        await answer_quietly(query, views.refusal_text(error))


async def _scope_of_press(
    update: Update, context: ContextTypes.DEFAULT_TYPE, press: views.ButtonPress
) -> Scope:
    """Return where the press happened. Telegram sends a press on a message more than about
    two days old without the message, so without its forum topic: such a press takes the topic
    of the round or session it names (in the same chat; other chats' stay out of reach)."""
    scope = scope_of(update)
    message = update.callback_query.message
    if message is None or message.is_accessible:
        return scope
    history = services(context).history
    if press.action in views.ROUND_ACTIONS:
        return await history.scope_of_round(press.number, scope)
    if press.action in (views.SESSION, views.GALLERY):
        return await history.scope_of_session(press.number, scope)
    return scope


async def _next_round(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    refine = services(context).refine
    actor = actor_of(update)
    if press.action == views.ACCEPT:
        pending = await refine.begin_accept(press.number, scope, actor)
    else:
        pending = await refine.begin_retry(press.number, scope, actor)
    launch_round(update, context, pending)
    await answer_quietly(update.callback_query, f"Working on round {pending.round.number}…")


async def _autopilot(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    refine = services(context).refine
    pending = await refine.begin_autopilot(scope, actor_of(update), round_id=press.number)
    images = pending.plan.max_images
    await answer_quietly(update.callback_query, f"Autopilot: at most {images} images…")
    launch_autopilot(update, context, pending, asked_by=update.callback_query.message)


async def _ask_for_edit(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    query = update.callback_query
    refine = services(context).refine
    actor = actor_of(update)
    round, suggestion = await refine.prepare_edit(press.number, scope, actor)
    await answer_quietly(query)
    prompt = await query.message.reply_text(
        views.edit_prompt_text(round.number + 1, suggestion, scope.is_group, actor),
        parse_mode=HTML,
        do_quote=True,
        reply_markup=ForceReply(selective=True) if scope.is_group else None,
        **thread_kwargs(scope),
    )
    await refine.remember_edit(round.id, scope, actor, prompt.message_id)


async def _stop(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    query = update.callback_query
    refine = services(context).refine
    result = await refine.stop(press.number, scope, actor_of(update))
    await answer_quietly(query, "Sending the full-resolution image…")
    extension = result.mime.rpartition("/")[2].replace("jpeg", "jpg")
    try:
        await send_image(
            context.bot,
            services(context).history,
            scope.chat_id,
            result.image,
            result.round.image_sha,  # type: ignore[arg-type]
            kind="document",
            filename=f"refinebot-{result.session.id}-round-{result.round.number}.{extension}",
            caption=views.stop_caption(result.round, result.round_count),
            parse_mode=HTML,
            reply_markup=views.gallery_keyboard(result.session.id),
            reply_parameters=ReplyParameters(
                query.message.message_id, allow_sending_without_reply=True
            ),
            **thread_kwargs(scope),
        )
    except TelegramError as error:  # the keyboard stays, so Stop can ask for it again
        log.warning("round %s: the full-resolution image was not sent: %s", press.number, error)
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(
                scope.chat_id, views.STOP_NOT_SENT, **thread_kwargs(scope)
            )
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as error:
        if not is_not_modified(error):
            log.warning("could not remove the keyboard: %s", error)


async def _history_page(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    page = press.number - 1
    summaries, total = await services(context).history.sessions_page(
        scope, page, views.HISTORY_PAGE_SIZE
    )
    await answer_quietly(update.callback_query)
    await _show(
        update.callback_query,
        views.history_page_text(summaries, page, total),
        views.history_keyboard(summaries, page, total),
    )


async def _session(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    session, rounds = await services(context).history.session_detail(press.number, scope)
    await answer_quietly(update.callback_query)
    await _show(
        update.callback_query,
        views.session_text(session, rounds),
        views.session_keyboard(session),
    )


async def _gallery(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    await answer_quietly(update.callback_query, "Drawing the contact sheet…")
    try:
        await send_contact_sheet(context.bot, services(context).history, scope, press.number)
    except RefineError as error:
        await context.bot.send_message(
            scope.chat_id, views.refusal_text(error), parse_mode=HTML, **thread_kwargs(scope)
        )


async def _setting(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    press: views.ButtonPress,
    scope: Scope,
) -> None:
    svc = services(context)
    if scope.is_group and not await _is_chat_admin(update, context):
        raise NotChatAdmin()
    name, _equals, value = press.value.partition("=")
    chosen = await svc.history.choose_setting(scope.chat_id, name, value)
    await answer_quietly(update.callback_query, "Saved: it applies from the next round.")
    default_format = svc.settings.image_format
    await _show(
        update.callback_query,
        views.settings_text(chosen, default_format, scope.is_group),
        views.settings_keyboard(chosen, default_format, scope.is_group),
    )


async def _is_chat_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether the presser administers the group (anonymous admins press as the group)."""
    user = update.effective_user
    if user is None:
        return False
    try:
        member = await context.bot.get_chat_member(update.effective_chat.id, user.id)
    except TelegramError as error:
        log.warning("could not check chat admin: %s", error)
        return False
    return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)


async def _show(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup) -> None:
    """Replace the pressed message's text and keyboard (a quiet no-op if nothing changed)."""
    try:
        await query.edit_message_text(text, parse_mode=HTML, reply_markup=keyboard)
    except BadRequest as error:
        if not is_not_modified(error):
            raise


async def answer_quietly(query: CallbackQuery, text: str | None = None) -> None:
    """Answer the query (with a toast if `text`); a query too old to answer is not an error."""
    try:
        await query.answer(text)
    except TelegramError as error:
        log.debug("could not answer callback query: %s", error)


_HANDLERS: dict[str, Handler] = {
    views.ACCEPT: _next_round,
    views.RETRY: _next_round,
    views.EDIT: _ask_for_edit,
    views.STOP: _stop,
    views.AUTO: _autopilot,
    views.HISTORY: _history_page,
    views.SESSION: _session,
    views.GALLERY: _gallery,
    views.SETTING: _setting,
}

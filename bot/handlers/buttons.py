"""Accept / Edit / Stop / Retry / Auto presses. The query is answered first, then the work runs."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, ForceReply, InputFile, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.auto import launch_autopilot
from bot.handlers.common import HTML, actor_of, is_group, is_not_modified, scope_of, services
from bot.handlers.rounds import launch_round
from bot.refine.errors import RefineError

log = logging.getLogger(__name__)

INVALID_BUTTON = "This button is no longer valid."


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    press = views.decode_callback(query.data)
    if press is None:
        await answer_quietly(query, INVALID_BUTTON)
        return
    try:
        if press.action == views.EDIT:
            await _ask_for_edit(update, context, press.round_id)
        elif press.action == views.STOP:
            await _stop(update, context, press.round_id)
        elif press.action == views.AUTO:
            await _autopilot(update, context, press.round_id)
        else:
            await _next_round(update, context, press)
    except RefineError as error:
        await answer_quietly(query, views.refusal_text(error))


async def _next_round(
    update: Update, context: ContextTypes.DEFAULT_TYPE, press: views.ButtonPress
) -> None:
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    if press.action == views.ACCEPT:
        pending = await refine.begin_accept(press.round_id, scope, actor)
    else:
        pending = await refine.begin_retry(press.round_id, scope, actor)
    await answer_quietly(update.callback_query, f"Working on round {pending.round.number}…")
    launch_round(update, context, pending, reply_to=update.callback_query.message)


async def _autopilot(update: Update, context: ContextTypes.DEFAULT_TYPE, round_id: int) -> None:
    refine = services(context).refine
    pending = await refine.begin_autopilot(scope_of(update), actor_of(update), round_id=round_id)
    images = pending.plan.max_images
    await answer_quietly(update.callback_query, f"Autopilot: at most {images} images…")
    launch_autopilot(update, context, pending, reply_to=update.callback_query.message)


async def _ask_for_edit(update: Update, context: ContextTypes.DEFAULT_TYPE, round_id: int) -> None:
    query = update.callback_query
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    round, suggestion = await refine.prepare_edit(round_id, scope)
    await answer_quietly(query)
    group = is_group(update.effective_chat)
    prompt = await query.message.reply_text(
        views.edit_prompt_text(round.number + 1, suggestion, group),
        parse_mode=HTML,
        do_quote=True,
        reply_markup=ForceReply(selective=True) if group else None,
    )
    await refine.remember_edit(round.id, scope, actor, prompt.message_id)


async def _stop(update: Update, context: ContextTypes.DEFAULT_TYPE, round_id: int) -> None:
    query = update.callback_query
    result = await services(context).refine.stop(round_id, scope_of(update))
    await answer_quietly(query, "Sending the full-resolution image…")
    extension = result.mime.rpartition("/")[2].replace("jpeg", "jpg")
    filename = f"refinebot-{result.session.id}-round-{result.round.number}.{extension}"
    await query.message.reply_document(
        InputFile(result.image, filename=filename),
        caption=views.stop_caption(result.round, result.round_count),
        parse_mode=HTML,
        do_quote=True,
    )
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as error:
        if not is_not_modified(error):
            log.warning("could not remove the keyboard: %s", error)


async def answer_quietly(query: CallbackQuery, text: str | None = None) -> None:
    """Answer the query (with a toast if `text`); a query too old to answer is not an error."""
    try:
        await query.answer(text)
    except TelegramError as error:
        log.debug("could not answer callback query: %s", error)

"""Accept / Edit / Stop presses. The query is answered first, then the slow work runs."""

from __future__ import annotations

import logging

from telegram import ForceReply, InputFile, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.common import HTML, actor_of, is_group, is_not_modified, scope_of, services
from bot.handlers.rounds import run_round
from bot.refine.errors import RefineError, SessionBusy

log = logging.getLogger(__name__)

INVALID_BUTTON = "This button is no longer valid."


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    press = views.decode_callback(query.data)
    if press is None:
        await query.answer(INVALID_BUTTON)
        return
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    try:
        round, session = await refine.round_in_scope(press.round_id, scope)
        if refine.is_busy(session.id):
            raise SessionBusy()
        if press.action == views.ACCEPT:
            refine.ensure_continuable(round, session)
            await query.answer(f"Working on round {round.number + 1}…")
            await run_round(
                update,
                context,
                lambda presenter: refine.accept(round.id, scope, actor, presenter),
                reply_to=query.message,
            )
        elif press.action == views.EDIT:
            await _ask_for_edit(update, context, round.id)
        else:
            await _stop(update, context, round.id)
    except RefineError as error:
        await _answer_quietly(query, views.refusal_text(error))


async def _ask_for_edit(update: Update, context: ContextTypes.DEFAULT_TYPE, round_id: int) -> None:
    query = update.callback_query
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    round, suggestion = await refine.prepare_edit(round_id, scope)
    await query.answer()
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
    await query.answer("Sending the full-resolution image…")
    extension = result.mime.rpartition("/")[2].replace("jpeg", "jpg")
    await query.message.reply_document(
        InputFile(
            result.image,
            filename=f"refinebot-{result.session.id}-round-{result.round.number}.{extension}",
        ),
        caption=views.stop_caption(result.round, result.round_count),
        parse_mode=HTML,
        do_quote=True,
    )
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as error:
        if not is_not_modified(error):
            log.warning("could not remove the keyboard: %s", error)


async def _answer_quietly(query, text: str) -> None:  # type: ignore[no-untyped-def]
    """Answer the query with a toast; a query answered already or too old is not an error."""
    try:
        await query.answer(text)
    except TelegramError as error:
        log.debug("could not answer callback query: %s", error)

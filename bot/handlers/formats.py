"""The campaign pack's buttons: 📐 All formats, its ✅ confirm, and 🔁 Retry of one format.

📐 on a finished round (Stop's document, the session view) answers with the cost message and
✅, or, when the pack is made already, re-sends it by file id. ✅ stores the pack as pending
and makes it in the background; the albums follow. Handlers stay thin: the domain is
bot/refine/packs.py, the sending bot/chat/pack_view.py.
"""

from __future__ import annotations

import logging

from telegram import ReplyParameters, Update
from telegram.error import TelegramError

from bot.chat.context import BotContext
from bot.chat.pack_view import deliver, make_and_deliver
from bot.chat.updates import (
    actor_of,
    answer_quietly,
    press_handler,
    pressed_message,
    query_of,
    thread_kwargs,
)
from bot.refine.errors import SessionBusy
from bot.refine.models import Scope
from bot.refine.packs import PackService
from bot.ui.callbacks import ButtonPress
from bot.ui.packs import (
    MAKING_TOAST,
    NOTHING_TO_MAKE,
    RESENDING_TOAST,
    making_text,
    offer_keyboard,
    offer_text,
)

log = logging.getLogger(__name__)


def _packs(context: BotContext) -> PackService:
    packs = context.services.packs
    assert packs is not None  # built with the services
    return packs


@press_handler
async def formats(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """📐 All formats: the cost message with ✅, or the stored pack sent again."""
    packs = _packs(context)
    query = query_of(update)
    offer = await packs.offer(press.number, scope, actor_of(update))
    if offer.in_progress:
        raise SessionBusy()
    if offer.ready:
        await answer_quietly(query, RESENDING_TOAST if offer.stored else NOTHING_TO_MAKE)
        await deliver(context.bot, packs, scope, offer.round, offer.session, offer.stored)
        return
    await answer_quietly(query)
    await context.bot.send_message(
        scope.chat_id,
        offer_text(offer),
        reply_markup=offer_keyboard(offer),
        reply_parameters=ReplyParameters(
            pressed_message(query).message_id, allow_sending_without_reply=True
        ),
        **thread_kwargs(scope),
    )


@press_handler
async def confirm(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """✅ on the cost message: make the pack in the background, then send its albums."""
    packs = _packs(context)
    query = query_of(update)
    pending = await packs.begin(press.number, scope, actor_of(update))
    await answer_quietly(query, MAKING_TOAST)
    try:  # the ✅ goes: a second press could not make the pack twice anyway
        await query.edit_message_text(making_text(len(pending.items)))
    except TelegramError as error:
        log.info("could not edit the cost message: %s", error)
    context.application.create_task(
        make_and_deliver(context.bot, packs, pending), update=update, name="pack"
    )


@press_handler
async def retry(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """🔁 Retry <format>: that format alone made again, then sent."""
    packs = _packs(context)
    pending = await packs.begin_retry(press.number, scope, actor_of(update))
    await answer_quietly(query_of(update), MAKING_TOAST)
    context.application.create_task(
        make_and_deliver(context.bot, packs, pending, only_pending=True),
        update=update,
        name="pack-retry",
    )

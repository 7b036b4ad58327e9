"""The buttons under a round: ✅ Accept, ✏️ Edit, ⏹ Stop, 🔁 Retry and 🔁 Auto, one handler each.

Each is registered for its own callback data (bot/ui/callbacks.py) and wrapped by
`press_handler`: the press is decoded, its scope found (also on a message too old for Telegram
to send along), and a domain refusal answered as a toast. The query is answered as soon as the
quick checks pass, before the slow work; rounds run as background tasks.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import CallbackQuery, ForceReply, Message, ReplyParameters, Update
from telegram.error import BadRequest, TelegramError

from bot.chat.context import BotContext
from bot.chat.launch import launch
from bot.chat.updates import (
    actor_of,
    answer_quietly,
    is_not_modified,
    press_handler,
    pressed_message,
    query_of,
    thread_kwargs,
)
from bot.chat.uploads import send_image
from bot.refine.models import PendingRun, Scope, StopResult
from bot.ui.autopilot import autopilot_toast
from bot.ui.callbacks import ButtonPress
from bot.ui.packs import stop_keyboard
from bot.ui.rounds import (
    ALREADY_SENT,
    SENDING_FULL_RESOLUTION,
    STOP_NOT_SENT,
    edit_prompt_text,
    stop_caption,
    working_on_round_toast,
)

log = logging.getLogger(__name__)


async def _launch_round(update: Update, context: BotContext, pending: PendingRun) -> None:
    """Launch the pending manual round; the press's toast names it."""
    assert pending.round is not None  # a manual round is stored as pending at once
    launch(update, context, pending)
    await answer_quietly(query_of(update), working_on_round_toast(pending.round.number))


@press_handler
async def accept(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """✅ Accept: the next round as the pressed round's critique suggests (an edit of its
    picture, or a new picture from the revised prompt)."""
    pending = await context.services.refine.begin_accept(press.number, scope, actor_of(update))
    await _launch_round(update, context, pending)


@press_handler
async def redraw(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """🎨 Redraw: a new picture (a fresh composition) from the pressed round's suggestion."""
    pending = await context.services.refine.begin_redraw(press.number, scope, actor_of(update))
    await _launch_round(update, context, pending)


@press_handler
async def retry(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """🔁 Retry: the round that produced no image, run again."""
    pending = await context.services.refine.begin_retry(press.number, scope, actor_of(update))
    await _launch_round(update, context, pending)


@press_handler
async def auto(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """🔁 Auto: the autopilot continues from the pressed round; the toast says the most images
    it can pay for."""
    query = query_of(update)
    refine = context.services.refine
    pending = await refine.begin_autopilot(scope, actor_of(update), round_id=press.number)
    await answer_quietly(query, autopilot_toast(pending.plan.max_images))
    asked_by = query.message if isinstance(query.message, Message) else None
    launch(update, context, pending, asked_by=asked_by)


@press_handler
async def edit(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """✏️ Edit: ask for the user's own prompt (the suggestion to copy), as a reply to the
    round; in groups a selective force-reply opens the presser's reply field."""
    query = query_of(update)
    refine = context.services.refine
    actor = actor_of(update)
    round, suggestion = await refine.prepare_edit(press.number, scope, actor)
    await answer_quietly(query)
    prompt = await pressed_message(query).reply_text(
        edit_prompt_text(round.number + 1, suggestion, scope.is_group, actor),
        do_quote=True,
        reply_markup=ForceReply(selective=True) if scope.is_group else None,
        **thread_kwargs(scope),
    )
    await refine.remember_edit(round.id, scope, actor, prompt.message_id)


@press_handler
async def stop(update: Update, context: BotContext, press: ButtonPress, scope: Scope) -> None:
    """⏹ Stop: keep the pressed round and send its full-resolution image as a document, then
    remove the round's keyboard. If the upload fails the keyboard stays, so Stop can ask
    again."""
    query = query_of(update)
    # The session is held until the document is out: a second press gets "already working".
    refine = context.services.refine
    async with refine.stop(press.number, scope, actor_of(update)) as result:
        if result.already_delivered:  # a second press: the document is above already
            await answer_quietly(query, ALREADY_SENT)
            return
        await answer_quietly(query, SENDING_FULL_RESOLUTION)
        sent = await _send_full_resolution(context, query, scope, result)
        if sent is None:
            return
        await refine.delivered(result, sent.message_id)
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as error:
        if not is_not_modified(error):
            log.warning("could not remove the keyboard: %s", error)


async def _send_full_resolution(
    context: BotContext, query: CallbackQuery, scope: Scope, result: StopResult
) -> Message | None:
    """Send the kept round's original as a document; return its message, or None if it did
    not go out (the chat is then told to press Stop again)."""
    extension = result.mime.rpartition("/")[2].replace("jpeg", "jpg")
    assert result.round.image_sha is not None  # a round that can be kept has its image
    try:
        return await send_image(
            context.bot,
            context.services.history,
            scope.chat_id,
            result.image,
            result.round.image_sha,
            kind="document",
            filename=f"refinebot-{result.session.id}-round-{result.round.number}.{extension}",
            caption=stop_caption(result.round, result.round_count),
            reply_markup=stop_keyboard(result.session.id, result.round.id),
            reply_parameters=ReplyParameters(
                pressed_message(query).message_id, allow_sending_without_reply=True
            ),
            **thread_kwargs(scope),
        )
    except TelegramError as error:
        log.warning("round %s: the full-resolution image was not sent: %s", result.round.id, error)
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(scope.chat_id, STOP_NOT_SENT, **thread_kwargs(scope))
        return None

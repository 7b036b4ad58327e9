"""The redelivery pass: sends what the chats are still owed (bot/refine/outbox.py).

It runs once the bot has started (after the restart's rounds are resumed) and then every
REDELIVERY_EVERY seconds, so a round whose photo, critique or buttons never arrived (Telegram
unreachable for minutes, a restart, a crash), Stop's document an upload or a shutdown cut
short, and an autopilot run a restart interrupted, reach their chat within seconds of
Telegram answering again. A delivery that can never be made (the chat is gone, Telegram
refuses it in every form, its image was pruned) is marked so and not tried again.
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import BadRequest, NetworkError

from bot.chat.context import BotContext, services_of
from bot.chat.kept_image import send_kept_image
from bot.chat.messenger import Messenger
from bot.chat.round_view import RoundView
from bot.chat.updates import is_not_modified
from bot.refine.errors import AudienceGone
from bot.refine.outbox import OwedDelivery
from bot.services import Services
from bot.ui.autopilot import autopilot_interrupted_text
from storage.records import DeliveryKind, RoundRecord, RoundStatus

log = logging.getLogger(__name__)

REDELIVERY_EVERY = 10.0
"""Seconds between passes: a delivery Telegram could not take is tried again this often."""


async def redeliver(context: BotContext) -> None:
    """Make every delivery owed that no view is making, one after the other, until the bot
    stops (a job: never raises)."""
    services = services_of(context.application)
    try:
        owed = await services.outbox.owed()
    except Exception:
        log.exception("could not read the deliveries owed")
        return
    for delivery in owed:
        if not context.application.running:
            return  # shutting down: the rest stays owed for the next start
        with services.outbox.delivering(delivery) as ours:
            if ours:
                await _deliver(context.bot, services, delivery)


async def _deliver(bot: Bot, services: Services, delivery: OwedDelivery) -> None:
    """Make one delivery; record that it was made, can never be, or is still owed."""
    outbox = services.outbox
    try:
        if delivery.kind is DeliveryKind.DOCUMENT:
            made = await _send_document(bot, services, delivery)
        elif delivery.kind is DeliveryKind.AUTOPILOT:
            made = await _end_autopilot(bot, services, delivery)
        else:
            made = await _show_round(bot, services, delivery)
    except (AudienceGone, LookupError) as error:
        log.info("delivery %s can never be made: %r", delivery.key, error)
        await outbox.delivered(delivery.key, message_id=None)
    except BadRequest as error:
        log.warning("Telegram refuses delivery %s: %s", delivery.key, error)
        await outbox.delivered(delivery.key, message_id=None)
    except NetworkError as error:
        log.info("delivery %s still owed (%s)", delivery.key, error)
        await outbox.not_delivered(delivery.key)
    except Exception:  # one broken delivery must not hold up the others
        log.exception("delivery %s failed", delivery.key)
        await outbox.not_delivered(delivery.key)
    else:
        if not made:
            await outbox.not_delivered(delivery.key)


async def _show_round(bot: Bot, services: Services, delivery: OwedDelivery) -> bool:
    """Show the owed round in its final form; return whether it is shown. Raises
    AudienceGone, or LookupError when its image is gone."""
    round = delivery.round
    assert round is not None
    if round.status is RoundStatus.CANCELLED or round.image_sha is None:
        await services.outbox.delivered(delivery.key, message_id=None)  # nothing to show
        return True
    image = await services.history.image_of(round)
    if image is None:
        raise LookupError(f"the image of round {round.id} is gone")
    return await _show_stored(bot, services, delivery, round, image)


async def _show_stored(
    bot: Bot, services: Services, delivery: OwedDelivery, round: RoundRecord, image: bytes
) -> bool:
    """Show a stored round with its critique and buttons; return whether it is shown."""
    messenger = Messenger(bot, delivery.scope, services.history)
    view = RoundView(
        messenger,
        group=delivery.scope.is_group,
        outbox=services.outbox,
        photo_message_id=round.message_id,
    )
    log.info("delivering round %s to chat %s", round.id, delivery.scope.chat_id)
    return await view.show_stored(round, image) is not None


async def _send_document(bot: Bot, services: Services, delivery: OwedDelivery) -> bool:
    """Send Stop's owed document; return True (raises TelegramError if it did not go out,
    LookupError if its image is gone)."""
    result = await services.outbox.kept_image(delivery)
    log.info("delivering the kept image of session %s", delivery.session.id)
    message = await send_kept_image(bot, services.history, delivery.scope, result)
    await services.refine.delivered(result, message.message_id)
    return True


async def _end_autopilot(bot: Bot, services: Services, delivery: OwedDelivery) -> bool:
    """End an interrupted run's progress message and show its best finished round; return
    whether both are done."""
    run, best = delivery.run, delivery.round
    assert run is not None
    messenger = Messenger(bot, delivery.scope, services.history)
    text = autopilot_interrupted_text(best)
    if run.progress_message_id is None:
        await messenger.send_text(text)
    else:
        try:
            await messenger.edit_text(run.progress_message_id, text)
        except BadRequest as error:
            if not is_not_modified(error):
                log.info("progress message of run %s not edited (%s); sending anew", run.id, error)
                await messenger.send_text(text)
    if best is None:
        await services.outbox.delivered(delivery.key, message_id=run.progress_message_id)
        return True
    image = await services.history.image_of(best)
    if image is None:
        raise LookupError(f"the image of round {best.id} is gone")
    shown = await _show_stored(bot, services, delivery, best, image)
    if shown:
        await services.outbox.delivered(delivery.key, message_id=run.progress_message_id)
    return shown

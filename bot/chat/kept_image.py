"""Stop's delivery: the kept round's original, full resolution, as a document."""

from __future__ import annotations

from typing import Any

from telegram import Bot, Message, ReplyParameters

from bot.chat.updates import thread_kwargs
from bot.chat.uploads import DeliveryMemory, send_image
from bot.refine.models import Scope, StopResult
from bot.ui.packs import stop_keyboard
from bot.ui.rounds import stop_caption


async def send_kept_image(
    bot: Bot,
    memory: DeliveryMemory,
    scope: Scope,
    result: StopResult,
    *,
    reply_to: int | None = None,
) -> Message:
    """Send the kept round's original as a document (answering message `reply_to`, if
    given) with the session's summary and its buttons (contact sheet, all formats); return
    the message.

    Raises TelegramError when it did not go out.
    """
    extension = result.mime.rpartition("/")[2].replace("jpeg", "jpg")
    assert result.round.image_sha is not None  # a round that can be kept has its image
    answering: dict[str, Any] = (
        {"reply_parameters": ReplyParameters(reply_to, allow_sending_without_reply=True)}
        if reply_to is not None
        else {}
    )
    return await send_image(
        bot,
        memory,
        scope.chat_id,
        result.image,
        result.round.image_sha,
        kind="document",
        filename=f"refinebot-{result.session.id}-round-{result.round.number}.{extension}",
        caption=stop_caption(result.round, result.round_count, result.size),
        reply_markup=stop_keyboard(result.session.id, result.round.id),
        **answering,
        **thread_kwargs(scope),
    )

"""A round's live preview in the chat: the first partial image as the round's photo, then the
final image in its place (editMessageMedia), so the preview costs one message at most.

The preview is optional: it goes out only when the chat has room for it and for the round's
own messages (the preview, the final image's edit and the caption edit) without anything
waiting (`MessageRateLimiter.has_room`: 30 a second, 20 a minute in a group), never waits out
Telegram being unreachable, and any failure only drops it. The final image's edit is what a
round must deliver: it is retried like the photo (`Messenger.deliver`).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, InputFile, InputMediaPhoto, Message, ReplyParameters
from telegram.error import TelegramError

from bot.backends.base import image_mime
from bot.chat.messenger import Messenger
from bot.chat.updates import thread_kwargs
from bot.chat.uploads import DeliveryMemory
from bot.rate_limit import MessageRateLimiter
from bot.refine.models import Scope
from storage.records import RoundRecord

log = logging.getLogger(__name__)

ROUND_MESSAGES_WITH_PREVIEW = 3
"""What a round with a preview sends: the preview photo, the final image's edit, the
critique's caption edit (without one: the photo and the caption edit)."""


class PreviewSender:
    """Sends, replaces and deletes a round's preview photo in one scope."""

    def __init__(
        self,
        bot: Bot,
        messenger: Messenger,
        scope: Scope,
        deliveries: DeliveryMemory,
        *,
        asked_by: Message | None = None,
    ) -> None:
        self._bot = bot
        self._messenger = messenger
        self._scope = scope
        self._deliveries = deliveries
        self._asked_by = asked_by.message_id if asked_by else None

    def has_room(self) -> bool:
        """Return whether the chat can take the preview and the round's other messages now
        without any of them waiting (always, without the bot's MessageRateLimiter)."""
        limiter = getattr(self._bot, "rate_limiter", None)
        if not isinstance(limiter, MessageRateLimiter):
            return True
        return limiter.has_room(self._messenger.chat_id, ROUND_MESSAGES_WITH_PREVIEW)

    async def send(self, round: RoundRecord, image: bytes, caption: str) -> Message | None:
        """Send the partial image as a photo without buttons, answering the message that
        asked; return the message, or None when Telegram did not take it (logged). Raises
        AudienceGone when the chat is gone."""
        options: dict[str, Any] = {"caption": caption, **thread_kwargs(self._scope)}
        if self._asked_by is not None:
            options["reply_parameters"] = ReplyParameters(
                self._asked_by, allow_sending_without_reply=True
            )
        upload = InputFile(image, filename=f"round-{round.number}-preview.{_extension(image)}")
        try:
            return await self._messenger.call(
                lambda chat_id: self._bot.send_photo(chat_id, upload, **options)
            )
        except TelegramError as error:
            log.info("the preview of round %s was not shown: %s", round.id, error)
            return None

    async def replace(
        self, message_id: int, round: RoundRecord, image: bytes, caption: str
    ) -> Message:
        """Put the final image in the preview's message (no buttons yet) and remember its
        file id; return the message. Raises TelegramError (the caller sends the photo the
        usual way instead), or AudienceGone when the chat is gone."""
        name = f"round-{round.number}.{_extension(image)}"
        media = InputMediaPhoto(InputFile(image, filename=name), caption=caption)
        edited = await self._messenger.deliver(
            lambda chat_id: self._bot.edit_message_media(
                media, chat_id=chat_id, message_id=message_id
            )
        )
        if not isinstance(edited, Message):  # only for inline messages, which are not used
            raise TelegramError("editMessageMedia answered no message")
        if edited.photo and round.image_sha is not None:
            await self._deliveries.remember_delivery(
                round.image_sha, "photo", edited.photo[-1].file_id
            )
        return edited

    async def delete(self, message_id: int) -> None:
        """Delete a preview that is no longer wanted; never raises (a preview left behind
        only costs a look)."""
        try:
            await self._messenger.call(
                lambda chat_id: self._bot.delete_message(chat_id, message_id)
            )
        except Exception as error:  # AudienceGone included: nothing more to tidy there
            log.info("could not delete preview message %s: %s", message_id, error)


def _extension(image: bytes) -> str:
    return image_mime(image).rpartition("/")[2].replace("jpeg", "jpg")

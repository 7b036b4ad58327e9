"""Sending to one scope (a chat, or a forum topic in it) while a run is shown there.

A group upgraded to a supergroup is followed to its new id once; a chat the bot can no longer
write to (blocked, removed) raises AudienceGone so the domain stops paying for it. Other
Telegram failures are the caller's to log: the round is already stored.

Captions and texts are fitted to Telegram's limits before they are sent (bot/ui/text.py), but
Telegram has the last word: a caption it still refuses as too long is sent again as the
`Fallback`'s much shorter caption (then none at all), with the keyboard each time, and the
rest follows as text messages, split again if Telegram refuses one of them as too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup, InputFile, Message, ReplyParameters
from telegram.constants import ChatAction, ReactionEmoji
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, TelegramError

from bot.backends.base import image_mime
from bot.chat.captions import CaptionSteps, Fallback, is_too_long
from bot.chat.updates import thread_kwargs
from bot.chat.uploads import DeliveryMemory, send_image
from bot.images import telegram_preview
from bot.refine.errors import AudienceGone
from bot.refine.models import Scope
from bot.ui.text import TEXT_LIMIT, split_html, visible_length
from storage.records import RoundRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

IMAGE_NOT_SHOWN = (
    "⚠️ Telegram would not show round {number}'s image here (not as a photo, not as a file). "
    "It is kept: /gallery shows it, and Stop sends it when Telegram takes it."
)
"""What a round says when Telegram refuses its image in every form."""

SMALLEST_PART = 256  # a text refused as too long is halved down to parts this size
DELIVERY_BACKOFF_FIRST = 0.5
DELIVERY_BACKOFF_CAP = 10.0
DELIVERY_PATIENCE = 15.0
"""Seconds a round retries its photo and critique while Telegram is unreachable; then the
redelivery pass (bot/chat/redelivery.py) takes over, so no slot is held for an outage."""

CHAT_ACTION_EVERY = 4.5
"""Telegram shows a chat action for about five seconds."""
ACKNOWLEDGE = ReactionEmoji.EYES
"""The reaction that tells whoever sent a brief or an edit that the bot is on it."""


class Messenger:
    """Sends, edits and reacts in one scope, answering the message that asked (if any)."""

    def __init__(
        self,
        bot: Bot,
        scope: Scope,
        deliveries: DeliveryMemory,
        *,
        asked_by: Message | None = None,
    ) -> None:
        self._bot = bot
        self._scope = scope
        self._deliveries = deliveries
        self._asked_by = asked_by.message_id if asked_by else None
        self._keep_alive: asyncio.Task[None] | None = None
        # Held only so the event loop's weak reference is not the task's last one.
        self._reaction: asyncio.Task[None] | None = None
        self.gone = False
        """Whether the chat turned out to be gone (nothing more is sent there)."""

    @property
    def chat_id(self) -> int:
        return self._scope.chat_id

    async def call(self, send: Callable[[int], Awaitable[T]], *, patient: bool = False) -> T:
        """Return `send(chat_id)`, following a chat migration once. Raises AudienceGone
        when the chat is gone, TelegramError otherwise. `patient` (what a round must
        deliver: its photo, its critique and buttons): Telegram unreachable is waited out,
        retrying with backoff (capped at DELIVERY_BACKOFF_CAP s) for up to DELIVERY_PATIENCE
        s, so the chat gets it within seconds of Telegram answering again."""
        delay, waited = DELIVERY_BACKOFF_FIRST, 0.0
        while True:
            try:
                return await self._call_once(send)
            except NetworkError as error:  # TimedOut included: a duplicate beats a lost photo
                if isinstance(error, BadRequest) or not patient or waited >= DELIVERY_PATIENCE:
                    raise
                log.info("Telegram unreachable (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, DELIVERY_BACKOFF_CAP)

    async def deliver(self, send: Callable[[int], Awaitable[T]]) -> T:
        """`call(send, patient=True)`, for what a round must deliver."""
        return await self.call(send, patient=True)

    async def _call_once(self, send: Callable[[int], Awaitable[T]]) -> T:
        try:
            return await send(self._scope.chat_id)
        except ChatMigrated as moved:
            log.info("chat %s moved to %s", self._scope.chat_id, moved.new_chat_id)
            self._scope = replace(self._scope, chat_id=moved.new_chat_id)
            return await send(self._scope.chat_id)
        except Forbidden as error:
            self.gone = True
            raise AudienceGone() from error

    def _answering(self) -> dict[str, Any]:
        """Return the send options that make a message answer the one that asked, if any."""
        if self._asked_by is None:
            return {}
        reply = ReplyParameters(self._asked_by, allow_sending_without_reply=True)
        return {"reply_parameters": reply}

    async def send_text(self, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message:
        """Send an HTML text to the scope; return the message."""
        return await self.deliver(
            lambda chat_id: self._bot.send_message(
                chat_id,
                text,
                reply_markup=keyboard,
                **self._answering(),
                **thread_kwargs(self._scope),
            )
        )

    async def edit_text(
        self, message_id: int, text: str, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        """Edit a text message of the scope."""
        await self.deliver(
            lambda chat_id: self._bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard
            )
        )

    async def edit_caption(
        self,
        message_id: int,
        caption: str,
        keyboard: InlineKeyboardMarkup | None,
        *,
        fallback: Fallback | None = None,
    ) -> None:
        """Edit a photo's caption and keyboard. A caption Telegram refuses as too long is
        replaced by the fallback's (then by none), the keyboard kept, and the fallback's texts
        follow below the photo."""
        steps = CaptionSteps(caption, fallback)
        await steps.send(
            lambda text: self.deliver(
                lambda chat_id: self._bot.edit_message_caption(
                    chat_id=chat_id, message_id=message_id, caption=text, reply_markup=keyboard
                )
            )
        )
        if steps.shortened and fallback is not None:
            await self.send_texts(fallback.texts, below=message_id)

    async def send_texts(self, texts: list[str], *, below: int | None = None) -> None:
        """Send HTML texts in order, each answering message `below` if given (the photo they
        belong to); a text Telegram refuses as too long is split and sent in parts. Logs
        other failures; raises AudienceGone when the chat is gone."""
        pending = list(texts)
        while pending:
            text = pending.pop(0)
            try:
                await self._send_below(text, below)
            except BadRequest as error:
                length = visible_length(text)
                if not is_too_long(error) or length <= SMALLEST_PART:
                    log.warning("could not send a text below message %s: %s", below, error)
                    return
                limit = min(TEXT_LIMIT, max(length // 2, SMALLEST_PART))
                log.warning("Telegram refused a text as too long (%s); splitting it", error)
                pending[:0] = split_html(text, limit)
            except TelegramError as error:
                log.warning("could not send a text below message %s: %s", below, error)
                return

    async def _send_below(self, text: str, below: int | None) -> Message:
        """Send one HTML text answering message `below` (else the message that asked)."""
        answering = (
            {"reply_parameters": ReplyParameters(below, allow_sending_without_reply=True)}
            if below is not None
            else self._answering()
        )
        return await self.call(
            lambda chat_id: self._bot.send_message(
                chat_id, text, **answering, **thread_kwargs(self._scope)
            )
        )

    async def send_unstored_photo(
        self,
        round: RoundRecord,
        image: bytes,
        caption: str,
        keyboard: InlineKeyboardMarkup | None,
    ) -> Message:
        """Upload an image the bot could not store (no file id is remembered for it) as a
        photo, a JPEG preview of it if Telegram refuses the original; return the message.
        Raises TelegramError, or AudienceGone when the chat is gone."""
        options: dict[str, Any] = dict(
            caption=caption,
            reply_markup=keyboard,
            **self._answering(),
            **thread_kwargs(self._scope),
        )
        name = f"round-{round.number}"
        try:
            return await self.call(
                lambda chat_id: self._bot.send_photo(
                    chat_id, InputFile(image, filename=name), **options
                )
            )
        except BadRequest:
            preview = await asyncio.to_thread(telegram_preview, image)
            return await self.call(
                lambda chat_id: self._bot.send_photo(
                    chat_id, InputFile(preview, filename=f"{name}.jpg"), **options
                )
            )

    async def send_photo(
        self,
        round: RoundRecord,
        image: bytes,
        caption: str,
        keyboard: InlineKeyboardMarkup | None,
        *,
        fallback: Fallback | None = None,
    ) -> Message | None:
        """Send the round's image as a photo (by file_id if Telegram has it already); if
        Telegram refuses it (too big, extreme size), send a JPEG preview instead; return the
        message, or None if neither went out. The original always goes out at Stop, as a
        document. A caption Telegram refuses as too long is replaced by the fallback's (then
        by none), the keyboard kept, and the fallback's texts follow below the photo."""
        sha = round.image_sha
        assert sha is not None
        steps = CaptionSteps(caption, fallback)

        def options(text: str | None) -> dict[str, Any]:
            return dict(
                caption=text,
                reply_markup=keyboard,
                **self._answering(),
                **thread_kwargs(self._scope),
            )

        message: Message | None
        try:
            message = await steps.send(
                lambda text: self.deliver(
                    lambda chat_id: send_image(
                        self._bot,
                        self._deliveries,
                        chat_id,
                        image,
                        sha,
                        kind="photo",
                        filename=f"round-{round.number}",
                        **options(text),
                    )
                )
            )
        except BadRequest as error:
            log.warning("Telegram refused the image of round %s: %s", round.id, error)
            message = await self._send_preview(round, image, steps, options)
        except TelegramError as error:
            log.warning("could not send photo of round %s: %s", round.id, error)
            return None
        if message is not None and steps.shortened and fallback is not None:
            await self.send_texts(fallback.texts, below=message.message_id)
        return message

    async def _send_preview(
        self,
        round: RoundRecord,
        image: bytes,
        steps: CaptionSteps,
        options: Callable[[str | None], dict[str, Any]],
    ) -> Message | None:
        """Send a JPEG preview of the round's image (its captions tried in turn); return the
        message, or None if it did not go out."""
        preview = await asyncio.to_thread(telegram_preview, image)
        try:
            return await steps.send(
                lambda text: self.call(
                    lambda chat_id: self._bot.send_photo(
                        chat_id,
                        InputFile(preview, filename=f"round-{round.number}.jpg"),
                        **options(text),
                    )
                )
            )
        except BadRequest as error:  # refused too (PHOTO_INVALID_DIMENSIONS): as a document
            log.warning("Telegram refused the preview of round %s: %s", round.id, error)
        except TelegramError as error:
            log.warning("could not send a preview of round %s: %s", round.id, error)
            return None
        return await self._send_as_document(round, image, steps, options)

    async def _send_as_document(
        self,
        round: RoundRecord,
        image: bytes,
        steps: CaptionSteps,
        options: Callable[[str | None], dict[str, Any]],
    ) -> Message | None:
        """Send the round's image as a document (a file Telegram does not resize), its
        keyboard with it; if even that is refused, a text with the keyboard that says where
        the image is. Return the message, or None if nothing went out."""
        assert round.image_sha is not None
        sha = round.image_sha
        extension = image_mime(image).rpartition("/")[2].replace("jpeg", "jpg")
        try:
            return await steps.send(
                lambda text: self.deliver(
                    lambda chat_id: send_image(
                        self._bot,
                        self._deliveries,
                        chat_id,
                        image,
                        sha,
                        kind="document",
                        filename=f"round-{round.number}.{extension}",
                        **options(text),
                    )
                )
            )
        except BadRequest as error:
            log.warning("Telegram refused round %s as a document too: %s", round.id, error)
        except TelegramError as error:
            log.warning("could not send round %s as a document: %s", round.id, error)
            return None
        keyboard = options(None).get("reply_markup")
        try:
            return await self.send_text(IMAGE_NOT_SHOWN.format(number=round.number), keyboard)
        except TelegramError as error:
            log.warning("could not say where round %s is: %s", round.id, error)
            return None

    # --- what is not a message: reactions and chat actions ------------------------------------

    def acknowledge(self) -> None:
        """React to the message that asked, if any, without waiting for Telegram (the round
        may wait its turn first). Telegram does not count a reaction as a message."""
        if self._asked_by is not None:
            self._reaction = asyncio.create_task(self._react(self._asked_by))

    async def _react(self, message_id: int) -> None:
        """React to the message (a chat may not allow reactions: fine); never raises."""
        try:
            await self.call(
                lambda chat_id: self._bot.set_message_reaction(chat_id, message_id, ACKNOWLEDGE)
            )
        except (TelegramError, AudienceGone) as error:  # the chat action reports a gone chat
            log.debug("could not react to message %s: %s", message_id, error)

    async def chat_action(self) -> None:
        """Send "sending a photo…" once; raise AudienceGone if the chat is gone."""
        try:
            await self.call(
                lambda chat_id: self._bot.send_chat_action(
                    chat_id, ChatAction.UPLOAD_PHOTO, **thread_kwargs(self._scope)
                )
            )
        except TelegramError as error:
            log.debug("chat action failed: %s", error)

    def keep_chat_action(self, first_after: float = 0.0) -> None:
        """Keep the chat action alive (from `first_after` seconds on) until
        `stop_chat_action`; does nothing if it is kept alive already."""
        if self._keep_alive is None:
            self._keep_alive = asyncio.create_task(self._chat_action_loop(first_after))

    async def stop_chat_action(self) -> None:
        """Stop the chat action kept alive, if any."""
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep_alive
            self._keep_alive = None

    async def _chat_action_loop(self, first_after: float) -> None:
        await asyncio.sleep(first_after)
        while not self.gone:
            with contextlib.suppress(AudienceGone):
                await self.chat_action()
            await asyncio.sleep(CHAT_ACTION_EVERY)

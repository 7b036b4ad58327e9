"""Sending to one scope (a chat, or a forum topic in it) while a run is shown there.

A group upgraded to a supergroup is followed to its new id once; a chat the bot can no longer
write to (blocked, removed) raises AudienceGone so the domain stops paying for it. Other
Telegram failures are the caller's to log: the round is already stored.
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
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot.chat.updates import thread_kwargs
from bot.chat.uploads import DeliveryMemory, send_image
from bot.images import telegram_preview
from bot.refine.errors import AudienceGone
from bot.refine.models import Scope
from storage.records import RoundRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

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

    async def call(self, send: Callable[[int], Awaitable[T]]) -> T:
        """Return `send(chat_id)`, following a chat migration once. Raises AudienceGone
        when the chat is gone, TelegramError otherwise."""
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
        return await self.call(
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
        await self.call(
            lambda chat_id: self._bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard
            )
        )

    async def edit_caption(
        self, message_id: int, caption: str, keyboard: InlineKeyboardMarkup | None
    ) -> None:
        """Edit a photo's caption and keyboard."""
        await self.call(
            lambda chat_id: self._bot.edit_message_caption(
                chat_id=chat_id, message_id=message_id, caption=caption, reply_markup=keyboard
            )
        )

    async def send_photo(
        self,
        round: RoundRecord,
        image: bytes,
        caption: str,
        keyboard: InlineKeyboardMarkup | None,
    ) -> Message | None:
        """Send the round's image as a photo (by file_id if Telegram has it already); if
        Telegram refuses it (too big, extreme size), send a JPEG preview instead; return the
        message, or None if neither went out. The original always goes out at Stop, as a
        document."""
        sha = round.image_sha
        assert sha is not None
        options: dict[str, Any] = dict(
            caption=caption,
            reply_markup=keyboard,
            **self._answering(),
            **thread_kwargs(self._scope),
        )
        try:
            return await self.call(
                lambda chat_id: send_image(
                    self._bot,
                    self._deliveries,
                    chat_id,
                    image,
                    sha,
                    kind="photo",
                    filename=f"round-{round.number}",
                    **options,
                )
            )
        except BadRequest as error:
            log.warning("Telegram refused the image of round %s: %s", round.id, error)
        except TelegramError as error:
            log.warning("could not send photo of round %s: %s", round.id, error)
            return None
        preview = await asyncio.to_thread(telegram_preview, image)
        try:
            return await self.call(
                lambda chat_id: self._bot.send_photo(
                    chat_id, InputFile(preview, filename=f"round-{round.number}.jpg"), **options
                )
            )
        except TelegramError as error:
            log.warning("could not send a preview of round %s: %s", round.id, error)
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

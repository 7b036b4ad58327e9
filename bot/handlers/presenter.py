"""Shows a running round in the chat: progress, the image as soon as it exists, the critique.

A round a message asked for gets a 👀 reaction on that message at once (even while it waits
its turn), and its photo answers it; a button press already got its toast. A chat action
("sending a photo…") stays alive while the image is drawn. The photo's caption says the
critic is looking, then becomes the critique with the Accept / Edit / Stop keyboard. So a
round costs Telegram two messages (the photo and one caption edit): the flood limit of 30 a
second is what caps a busy bot's rounds per second.

Telegram failures never lose the round (it is already stored): they are logged, except that
a chat the bot can no longer write to (blocked, removed) raises AudienceGone so the domain
stops paying for it, and a group upgraded to a supergroup is followed to its new id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup, InputFile, Message, ReplyParameters
from telegram.constants import ChatAction, ReactionEmoji
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot import views
from bot.handlers.common import HTML, is_not_modified, thread_kwargs
from bot.handlers.uploads import DeliveryMemory, send_image
from bot.images import telegram_preview
from bot.refine.errors import AudienceGone
from bot.refine.models import RoundOutcome, Scope
from storage.records import RoundRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

CHAT_ACTION_EVERY = 4.5
"""Telegram shows a chat action for about five seconds."""
ACKNOWLEDGE = ReactionEmoji.EYES
"""The reaction that tells whoever sent a brief or an edit that the bot is on it."""
JUST_ASKED = 1.0
"""Seconds after a message or press in which its chat is surely still there: a round that
starts this soon does not ask Telegram first (one round trip less before the paid call)."""


class RoundPresenter:
    """A RoundListener that renders one round in one chat."""

    def __init__(
        self,
        bot: Bot,
        scope: Scope,
        deliveries: DeliveryMemory,
        *,
        group: bool,
        asked_by: Message | None = None,
        photo_message_id: int | None = None,
    ) -> None:
        """`asked_by`: the message that started the round (a brief, an edit), if any; it gets
        the reaction, and what the round shows answers it."""
        self._bot = bot
        self._deliveries = deliveries
        self._scope = scope
        self._group = group
        self._asked_by = asked_by.message_id if asked_by else None
        self._photo_message_id = photo_message_id
        self._image: bytes | None = None
        self._keep_alive: asyncio.Task[None] | None = None
        # Held only so the event loop's weak reference is not the task's last one.
        self._reaction: asyncio.Task[None] | None = None
        self._gone = False
        self._created = time.monotonic()

    def _answering(self) -> dict[str, Any]:
        """Return the send options that make a message answer the one that asked, if any."""
        if self._asked_by is None:
            return {}
        reply = ReplyParameters(self._asked_by, allow_sending_without_reply=True)
        return {"reply_parameters": reply}

    async def _send_text(self, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message:
        """Send an HTML text to the scope, as an answer to the message that asked (if any)."""
        return await self._call(
            lambda chat_id: self._bot.send_message(
                chat_id,
                text,
                parse_mode=HTML,
                reply_markup=keyboard,
                **self._answering(),
                **thread_kwargs(self._scope),
            )
        )

    async def _call(self, send: Callable[[int], Awaitable[T]]) -> T:
        """Call `send(chat_id)`, following a chat migration once; a lost chat is AudienceGone."""
        try:
            return await send(self._scope.chat_id)
        except ChatMigrated as moved:
            log.info("chat %s moved to %s", self._scope.chat_id, moved.new_chat_id)
            self._scope = replace(self._scope, chat_id=moved.new_chat_id)
            return await send(self._scope.chat_id)
        except Forbidden as error:
            self._gone = True
            raise AudienceGone() from error

    def acknowledge(self) -> None:
        """React to the message that asked, if any, without waiting for Telegram (the round
        may wait its turn first). Telegram does not count a reaction as a message."""
        if self._asked_by is not None:
            self._reaction = asyncio.create_task(self._react(self._asked_by))

    # --- RoundListener -------------------------------------------------------------------

    async def generating(self, round: RoundRecord) -> None:
        """Show the chat action (kept alive until the photo is out; not a message either).
        A round that waited its turn first makes sure its chat is still there: raises
        AudienceGone if it is gone, before anything is paid for."""
        if time.monotonic() - self._created < JUST_ASKED:
            self._keep_alive = asyncio.create_task(self._chat_action_loop())
            return
        await self._chat_action()
        self._keep_alive = asyncio.create_task(self._chat_action_loop(CHAT_ACTION_EVERY))

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        await self.stop_chat_action()  # the photo is what it announced
        self._image = image
        message = await self._send_photo(round, views.critiquing_caption(round), None)
        if message is None:
            return None
        self._photo_message_id = message.message_id
        return message.message_id

    async def critiquing(self, round: RoundRecord) -> None:
        """Nothing to do: the photo's caption already says so."""

    # --- the end of the round ----------------------------------------------------------------

    async def finish(self, outcome: RoundOutcome) -> None:
        """Show how the round ended; always stops the chat action; never raises."""
        await self.stop_chat_action()
        if self._gone:
            return
        round = outcome.round
        try:
            if outcome.cancelled and self._photo_message_id is not None:
                await self._edit_caption(round, views.cancelled_caption(round), None)
            elif outcome.cancelled:
                await self._show_text(views.cancelled_text(round), None)
            elif round.image_sha is None:
                await self._show_text(
                    views.failed_text(round, outcome.error), views.retry_keyboard(round.id)
                )
            else:
                caption = views.round_caption(round, outcome.critique, outcome.error, self._group)
                await self._show_round(round, caption)
        except AudienceGone:
            log.info("chat %s is gone; round %s not shown", self._scope.chat_id, round.id)

    async def stop_chat_action(self) -> None:
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep_alive
            self._keep_alive = None

    async def _edit_caption(
        self, round: RoundRecord, caption: str, keyboard: InlineKeyboardMarkup | None
    ) -> bool:
        """Edit the round photo's caption; return False if the photo message is not there."""
        try:
            await self._call(
                lambda chat_id: self._bot.edit_message_caption(
                    chat_id=chat_id,
                    message_id=self._photo_message_id,
                    caption=caption,
                    parse_mode=HTML,
                    reply_markup=keyboard,
                )
            )
        except BadRequest as error:
            if is_not_modified(error):
                return True
            log.warning("could not caption round %s: %s", round.id, error)
            return "not found" not in error.message.lower()
        except TelegramError as error:
            log.warning("could not caption round %s: %s", round.id, error)
        return True

    async def _show_round(self, round: RoundRecord, caption: str) -> None:
        keyboard = views.round_keyboard(round.id)
        if self._photo_message_id is not None and await self._edit_caption(
            round, caption, keyboard
        ):
            return
        if self._image is None:
            return
        # The photo never arrived (or its message vanished): send it once more, complete.
        await self._send_photo(round, caption, keyboard)

    async def _send_photo(
        self, round: RoundRecord, caption: str, keyboard: InlineKeyboardMarkup | None
    ) -> Message | None:
        """Send the round's image as a photo (by file_id if Telegram has it already); if
        Telegram refuses it (too big, extreme size), send a JPEG preview instead. The original
        always goes out at Stop, as a document."""
        image, sha = self._image, round.image_sha
        assert image is not None and sha is not None
        options: dict[str, Any] = dict(
            caption=caption,
            parse_mode=HTML,
            reply_markup=keyboard,
            **self._answering(),
            **thread_kwargs(self._scope),
        )
        try:
            return await self._call(
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
            return await self._call(
                lambda chat_id: self._bot.send_photo(
                    chat_id, InputFile(preview, filename=f"round-{round.number}.jpg"), **options
                )
            )
        except TelegramError as error:
            log.warning("could not send a preview of round %s: %s", round.id, error)
            return None

    async def _show_text(self, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
        try:
            await self._send_text(text, keyboard)
        except TelegramError as error:
            log.warning("could not show round result: %s", error)

    async def _chat_action(self) -> None:
        """Send the chat action once; raise AudienceGone if the chat is gone."""
        try:
            await self._call(
                lambda chat_id: self._bot.send_chat_action(
                    chat_id, ChatAction.UPLOAD_PHOTO, **thread_kwargs(self._scope)
                )
            )
        except TelegramError as error:
            log.debug("chat action failed: %s", error)

    async def _react(self, message_id: int) -> None:
        """React to the message (a chat may not allow reactions: fine); never raises."""
        try:
            await self._call(
                lambda chat_id: self._bot.set_message_reaction(chat_id, message_id, ACKNOWLEDGE)
            )
        except (TelegramError, AudienceGone) as error:  # the chat action reports a gone chat
            log.debug("could not react to message %s: %s", message_id, error)

    async def _chat_action_loop(self, first_after: float = 0.0) -> None:
        await asyncio.sleep(first_after)
        while not self._gone:
            with contextlib.suppress(AudienceGone):
                await self._chat_action()
            await asyncio.sleep(CHAT_ACTION_EVERY)

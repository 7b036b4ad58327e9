"""Shows a running round in the chat: progress, the image as soon as it exists, the critique.

One status message moves through generating → critiquing and is replaced by the photo; the
photo's caption is then edited to the critique with the Accept / Edit / Stop keyboard. A
chat action stays alive while the round runs. Telegram failures are logged, never raised:
the round itself is already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot, InlineKeyboardMarkup, InputFile, Message
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot import views
from bot.handlers.common import HTML, is_not_modified, thread_kwargs
from bot.refine.models import RoundOutcome, Scope
from storage.records import RoundRecord

log = logging.getLogger(__name__)

CHAT_ACTION_EVERY = 4.5
"""Telegram shows a chat action for about five seconds."""


class RoundPresenter:
    """A RoundListener that renders one round in one chat."""

    def __init__(self, bot: Bot, scope: Scope, *, group: bool, reply_to: Message | None) -> None:
        self._bot = bot
        self._scope = scope
        self._group = group
        self._reply_to = reply_to
        self._status: Message | None = None
        self._photo_message_id: int | None = None
        self._image: bytes | None = None
        self._keep_alive: asyncio.Task[None] | None = None

    # --- RoundListener -------------------------------------------------------------------

    async def generating(self, round: RoundRecord) -> None:
        self._keep_alive = asyncio.create_task(self._chat_action_loop())
        text = views.status_text(round, "generating")
        try:
            if self._reply_to is not None:
                self._status = await self._reply_to.reply_text(text, do_quote=True)
            else:
                self._status = await self._bot.send_message(
                    self._scope.chat_id, text, **thread_kwargs(self._scope)
                )
        except TelegramError as error:
            log.warning("could not send status for round %s: %s", round.id, error)

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        self._image = image
        try:
            message = await self._bot.send_photo(
                self._scope.chat_id,
                InputFile(image, filename=f"round-{round.number}.png"),
                caption=views.critiquing_caption(round),
                parse_mode=HTML,
                **thread_kwargs(self._scope),
            )
        except TelegramError as error:
            log.warning("could not send photo of round %s: %s", round.id, error)
            return None
        self._photo_message_id = message.message_id
        await self._delete_status()
        return message.message_id

    async def critiquing(self, round: RoundRecord) -> None:
        """Nothing to do: the photo's caption already says so."""

    # --- the end of the round ----------------------------------------------------------------

    async def finish(self, outcome: RoundOutcome) -> None:
        """Show how the round ended; always stops the chat action."""
        await self.stop_chat_action()
        round = outcome.round
        if outcome.cancelled and self._photo_message_id is not None:
            await self._edit_caption(round, f"<b>Round {round.number}</b> · ⏹ cancelled", None)
        elif outcome.cancelled:
            await self._show_text(f"⏹ Round {round.number} cancelled.")
        elif round.image_sha is None:
            error = outcome.error
            text = views.failed_text(round, error) if error else "⚠️ That round failed."
            await self._show_text(text)
        else:
            caption = views.round_caption(round, outcome.critique, outcome.error, self._group)
            await self._show_round(round, caption)

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
            await self._bot.edit_message_caption(
                chat_id=self._scope.chat_id,
                message_id=self._photo_message_id,
                caption=caption,
                parse_mode=HTML,
                reply_markup=keyboard,
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
        try:
            await self._bot.send_photo(
                self._scope.chat_id,
                InputFile(self._image, filename=f"round-{round.number}.png"),
                caption=caption,
                parse_mode=HTML,
                reply_markup=keyboard,
                **thread_kwargs(self._scope),
            )
        except TelegramError as error:
            log.warning("could not send round %s: %s", round.id, error)
        await self._delete_status()

    async def _show_text(self, text: str) -> None:
        try:
            if self._status is not None:
                await self._status.edit_text(text, parse_mode=HTML)
            else:
                await self._bot.send_message(
                    self._scope.chat_id, text, parse_mode=HTML, **thread_kwargs(self._scope)
                )
        except TelegramError as error:
            log.warning("could not show round result: %s", error)

    async def _delete_status(self) -> None:
        if self._status is None:
            return
        status, self._status = self._status, None
        try:
            await status.delete()
        except TelegramError as error:
            log.debug("could not delete status message: %s", error)

    async def _chat_action_loop(self) -> None:
        while True:
            try:
                await self._bot.send_chat_action(
                    self._scope.chat_id, ChatAction.UPLOAD_PHOTO, **thread_kwargs(self._scope)
                )
            except TelegramError as error:
                log.debug("chat action failed: %s", error)
            await asyncio.sleep(CHAT_ACTION_EVERY)

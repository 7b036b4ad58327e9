"""Shows a manual round in the chat: progress, the image as soon as it exists, the critique.

A round a message asked for gets a 👀 reaction on that message at once (even while it waits
its turn), and its photo answers it; a button press already got its toast. A chat action
("sending a photo…") stays alive while the image is drawn. The photo's caption says the
critic is looking, then becomes the critique with the Accept / Edit / Stop keyboard. So a
round costs Telegram two messages (the photo and one caption edit): the flood limit of 30 a
second is what caps a busy bot's rounds per second.

Telegram failures never lose the round (it is already stored): they are logged, except that
a chat the bot can no longer write to raises AudienceGone so the domain stops paying for it.
A round with an image is owed to its chat (bot/refine/outbox.py) until its photo shows the
critique and the buttons; what the view could not deliver, the redelivery pass does
(bot/chat/redelivery.py), which also uses `show_stored` to show a stored round anew.
A caption Telegram refuses as too long never costs the round its buttons: the photo gets a
short caption (score and "the critique is below") with the keyboard, and the whole critique
follows as text (`Fallback`, bot/chat/messenger.py).

With a backend that streams, the first partial image is the round's photo at once ("Round N ·
drawing…", no buttons) and the final image replaces it in that message (`PreviewSender`,
bot/chat/previews.py): one message more at most. A preview is skipped when the chat has no
room for it, dropped when it comes after the final image (deleted if it was on its way), and
a final image Telegram will not put in its place goes out as today's photo.
"""

from __future__ import annotations

import logging
import time

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from bot.chat.captions import Fallback
from bot.chat.messenger import CHAT_ACTION_EVERY, IMAGE_NOT_SHOWN, Messenger
from bot.chat.previews import PreviewSender
from bot.chat.updates import is_not_modified
from bot.refine.errors import AudienceGone
from bot.refine.models import RunOutcome, RunProgress
from bot.refine.outbox import Outbox
from bot.refine.rules import critique_of
from bot.ui import rounds as ui
from bot.ui.text import TEXT_LIMIT, fit_html
from storage.records import RoundRecord

log = logging.getLogger(__name__)

JUST_ASKED = 1.0
"""Seconds after a message or press in which its chat is surely still there: a round that
starts this soon does not ask Telegram first (one round trip less before the paid call)."""


class RoundView:
    """A RunListener that renders one manual round (a run of 1 x 1) in one chat."""

    def __init__(
        self,
        messenger: Messenger,
        *,
        group: bool,
        outbox: Outbox,
        photo_message_id: int | None = None,
        previews: PreviewSender | None = None,
    ) -> None:
        """`photo_message_id`: the message already showing the round (a resumed round);
        `previews`: how partial images are shown (None: they are not)."""
        self._messenger = messenger
        self._previews = previews
        self._preview_id: int | None = None  # the preview's message, until the final replaces it
        self._preview_tried = False  # one preview a round at most
        self._finished = False  # `finish` ran: a preview landing now is too late
        self._group = group
        self._outbox = outbox
        self._photo_message_id = photo_message_id
        self._image: bytes | None = None
        self._shown_as_text = False  # Telegram took the image in no form: a text says so
        self._created = time.monotonic()

    async def progress(self, progress: RunProgress) -> None:
        """When the round begins drawing, show the chat action (kept alive until the photo is
        out; not a message either). A round that waited its turn first makes sure its chat is
        still there: raises AudienceGone if it is gone, before anything is paid for."""
        if progress.stage != "round":
            return
        if time.monotonic() - self._created < JUST_ASKED:
            self._messenger.keep_chat_action()
            return
        await self._messenger.chat_action()
        self._messenger.keep_chat_action(CHAT_ACTION_EVERY)

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        """Send the photo, captioned "the critic is looking"; return its message id (None:
        not shown; nothing is sent to a chat that turned out gone, at its preview say)."""
        await self._messenger.stop_chat_action()  # the photo is what it announced
        self._image = image
        if self._messenger.gone:
            return None
        replaced = await self._replace_preview(round, image)
        if replaced is not None:
            return replaced
        message = await self._messenger.send_photo(round, image, ui.critiquing_caption(round), None)
        if message is None:
            return None
        self._photo_message_id = message.message_id
        self._shown_as_text = message.photo == () and message.document is None
        return message.message_id

    async def preview(self, round: RoundRecord, image: bytes) -> None:
        """Show the round's first partial image as its photo, captioned "drawing…", unless
        the final image is there already, a preview was tried, or the chat has no room for
        it. One that lands after the final image went out on its own is deleted."""
        if self._previews is None or self._preview_tried or self._image is not None:
            return
        self._preview_tried = True
        if not self._previews.has_room():
            log.info("round %s: no preview (the chat's message budget is busy)", round.id)
            return
        message = await self._previews.send(round, image, ui.drawing_caption(round))
        if message is None:
            return
        if self._image is not None or self._finished:  # too late: the round moved on
            await self._previews.delete(message.message_id)
            return
        self._preview_id = message.message_id
        await self._messenger.stop_chat_action()  # the chat sees the picture forming

    async def _replace_preview(self, round: RoundRecord, image: bytes) -> int | None:
        """Put the final image in the preview's message; return its id, or None when there
        is no preview or Telegram would not (the preview is deleted, the photo sent anew)."""
        if self._previews is None or self._preview_id is None:
            return None
        preview_id, self._preview_id = self._preview_id, None
        try:
            await self._previews.replace(preview_id, round, image, ui.critiquing_caption(round))
        except TelegramError as error:
            log.warning("could not put round %s's image in its preview: %s", round.id, error)
            await self._previews.delete(preview_id)
            return None
        self._photo_message_id = preview_id
        self._shown_as_text = False
        return preview_id

    async def _drop_preview(self) -> None:
        """Delete a preview the final image never replaced (the round failed or was
        cancelled): its "drawing…" would stay behind."""
        if self._previews is not None and self._preview_id is not None:
            preview_id, self._preview_id = self._preview_id, None
            await self._previews.delete(preview_id)

    async def stop_chat_action(self) -> None:
        await self._messenger.stop_chat_action()

    async def finish(self, outcome: RunOutcome) -> None:
        """Show how the round ended; always stops the chat action; never raises. A round
        with an image is marked delivered once its chat has it in its final form."""
        await self._messenger.stop_chat_action()
        self._finished = self._preview_tried = True
        await self._drop_preview()
        last = outcome.last
        if last is None:
            return
        round = last.round
        delivered: int | None = None
        try:
            if self._messenger.gone:
                raise AudienceGone()
            if last.cancelled and self._photo_message_id is not None:
                await self._edit_caption(round, ui.cancelled_caption(round), None)
                delivered = self._photo_message_id
            elif last.cancelled:
                await self._show_text(ui.cancelled_text(round), None)
            elif round.image_sha is None and last.unsaved is not None:
                await self._show_unsaved(round, last.unsaved, last.error)
            elif round.image_sha is None:
                await self._show_text(
                    ui.failed_text(round, last.error), ui.retry_keyboard(round.id)
                )
            else:
                delivered = await self._show_round(round, last.critique, last.error)
                if delivered is None:
                    return  # still owed: the redelivery pass tries again
        except AudienceGone:
            log.info("chat %s is gone; round %s not shown", self._messenger.chat_id, round.id)
        if round.image_sha is not None:
            await self._outbox.round_delivered(round.id, message_id=delivered)

    async def show_stored(self, round: RoundRecord, image: bytes) -> int | None:
        """Show a finished round from the store (its photo, critique and buttons), on its
        photo message if it has one; return the message that shows it, or None if Telegram
        could not be reached. Marks the round delivered when shown. Raises AudienceGone."""
        self._image = image
        delivered = await self._show_round(round, critique_of(round), None)
        if delivered is not None:
            await self._outbox.round_delivered(round.id, message_id=delivered)
        return delivered

    async def _show_unsaved(
        self, round: RoundRecord, image: bytes, error: BackendError | None
    ) -> None:
        """Show a paid image the bot could not store: it is the user's all the same, with a
        Retry (it has no buttons of its own: nothing about it could be kept)."""
        text = ui.failed_text(round, error)
        try:
            await self._messenger.send_unstored_photo(
                round, image, text, ui.retry_keyboard(round.id)
            )
        except TelegramError as error_sending:
            log.warning("could not show the unsaved image of round %s: %s", round.id, error_sending)
            await self._show_text(text, ui.retry_keyboard(round.id))

    async def _edit_caption(
        self,
        round: RoundRecord,
        caption: str,
        keyboard: InlineKeyboardMarkup | None,
        fallback: Fallback | None = None,
    ) -> bool | None:
        """Edit the round photo's caption; return True if it shows the caption now, False
        if the photo message cannot be edited (gone: send the photo anew), None if Telegram
        could not be reached."""
        assert self._photo_message_id is not None
        try:
            await self._messenger.edit_caption(
                self._photo_message_id, caption, keyboard, fallback=fallback
            )
        except BadRequest as error:
            if is_not_modified(error):
                return True
            log.warning("could not caption round %s: %s", round.id, error)
            return False
        except TelegramError as error:
            log.warning("could not caption round %s: %s", round.id, error)
            return None
        return True

    async def _show_round(
        self, round: RoundRecord, critique: Critique | None, error: BackendError | None
    ) -> int | None:
        """Show the round with its critique and buttons; return the message that shows it,
        or None if it could not be shown now."""
        caption = ui.round_caption(round, critique, error, self._group)
        fallback = Fallback(
            ui.short_round_caption(round, critique, error, self._group),
            ui.critique_texts(round, critique, error, self._group),
        )
        keyboard = ui.round_keyboard(round.id)
        if self._photo_message_id is not None:
            if self._shown_as_text:
                # Telegram took the image in no form: the message saying so gets the critique.
                edited = await self._edit_shown_text(round, fallback.texts, keyboard)
            else:
                edited = await self._edit_caption(round, caption, keyboard, fallback)
            if edited is not False:
                return self._photo_message_id if edited else None
        if self._image is None:
            return None
        # The photo never arrived (or its message vanished): send it once more, complete.
        message = await self._messenger.send_photo(
            round, self._image, caption, keyboard, fallback=fallback
        )
        if message is None:
            return None
        self._photo_message_id = message.message_id
        await self._outbox.shown(round.id, message.message_id)
        return message.message_id

    async def _edit_shown_text(
        self, round: RoundRecord, texts: list[str], keyboard: InlineKeyboardMarkup
    ) -> bool | None:
        """Put the critique and buttons on the text that says Telegram took no form of the
        image; return as `_edit_caption` does."""
        assert self._photo_message_id is not None
        text = IMAGE_NOT_SHOWN.format(number=round.number) + "\n\n" + texts[0]
        try:
            await self._messenger.edit_text(
                self._photo_message_id, fit_html(text, TEXT_LIMIT), keyboard
            )
        except BadRequest as error:
            log.warning("could not show round %s: %s", round.id, error)
            return is_not_modified(error)
        except TelegramError as error:
            log.warning("could not show round %s: %s", round.id, error)
            return None
        return True

    async def _show_text(self, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
        try:
            await self._messenger.send_text(text, keyboard)
        except TelegramError as error:
            log.warning("could not show round result: %s", error)

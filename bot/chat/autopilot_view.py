"""Shows an autopilot run in the chat: one progress message edited as the run goes, then the
best image of the run with the usual buttons, and the session's contact sheet below it.

The progress message first says the most images the run can pay for; it is edited at the
start and the end of every round ("Round 2/3 · best 7/10"), never followed by a stream of
messages. /cancel stops the run; the best round so far is still shown. Telegram failures are
logged, never raised, except a chat the bot can no longer write to (AudienceGone stops the
run). Telegram refusing the best image's caption as too long costs it neither the image nor
its buttons: it gets a short caption and the whole critique follows as text.
"""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from bot.chat.captions import Fallback
from bot.chat.messenger import Messenger
from bot.chat.updates import is_not_modified
from bot.chat.uploads import send_contact_sheet
from bot.refine.errors import AudienceGone, RefineError
from bot.refine.history import ChatHistory
from bot.refine.models import RunOutcome, RunProgress
from bot.refine.outbox import Outbox
from bot.ui import autopilot as ui
from bot.ui.rounds import critique_texts, retry_keyboard, round_keyboard
from storage.records import RoundRecord

log = logging.getLogger(__name__)


class AutopilotView:
    """A RunListener that keeps one progress message up to date, then shows the run's best
    image with the round keyboard."""

    def __init__(
        self,
        messenger: Messenger,
        *,
        bot: Bot,
        outbox: Outbox,
        history: ChatHistory,
        group: bool,
        run_id: int | None,
    ) -> None:
        """`run_id`: the autopilot run shown (its progress message is remembered)."""
        self._messenger = messenger
        self._bot = bot
        self._outbox = outbox
        self._history = history
        self._group = group
        self._run_id = run_id
        self._progress_id: int | None = None
        self._progress_text = ""

    async def progress(self, progress: RunProgress) -> None:
        if progress.stage == "draft":
            return  # one edit at the start and the end of each round is enough
        text = ui.autopilot_progress_text(progress)
        if self._progress_id is None:
            await self._send_progress(text)
            self._messenger.keep_chat_action()
            return
        await self._edit_progress(text)

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        """Nothing to show: a run shows only its best image, at the end."""
        return None

    async def preview(self, round: RoundRecord, image: bytes) -> None:
        """Nothing to show: no partial images are asked for where drafts are not shown."""

    async def stop_chat_action(self) -> None:
        await self._messenger.stop_chat_action()

    async def finish(self, outcome: RunOutcome) -> None:
        """Show how the run ended, then the best image and the session's contact sheet;
        never raises a Telegram error."""
        await self._messenger.stop_chat_action()
        if self._messenger.gone:
            return
        failed = outcome.failed_round if outcome.best is None else None
        keyboard = retry_keyboard(failed.id) if failed is not None else None
        text = ui.autopilot_final_text(outcome)
        if self._progress_id is None:
            await self._send_progress(text, keyboard, quiet=True)
        else:
            await self._edit_progress(text, keyboard, quiet=True)
        best = outcome.best
        image = await self._history.image_of(best) if best is not None else None
        if best is None or image is None or self._messenger.gone:
            return
        error = outcome.error if outcome.best_critique is None else None
        critique = outcome.best_critique
        caption = ui.autopilot_best_caption(best, critique, error, self._group)
        fallback = Fallback(
            ui.autopilot_best_short_caption(best, critique, error, self._group),
            critique_texts(best, critique, error, self._group),
        )
        try:
            message = await self._messenger.send_photo(
                best, image, caption, round_keyboard(best.id), fallback=fallback
            )
        except AudienceGone:  # nobody to show it to
            await self._outbox.round_delivered(best.id, message_id=None)
            return
        if message is None:
            return  # still owed: the redelivery pass tries again
        await self._outbox.shown(best.id, message.message_id)
        await self._outbox.round_delivered(best.id, message_id=message.message_id)
        if len(outcome.rounds) > 1:  # a run of one image has no contact sheet
            await self._send_contact_sheet(outcome)

    async def _send_contact_sheet(self, outcome: RunOutcome) -> None:
        pending = outcome.pending
        try:
            await send_contact_sheet(self._bot, self._history, pending.scope, pending.session.id)
        except (RefineError, TelegramError) as error:
            log.warning("no contact sheet after %s: %s", pending.name, error)

    async def _send_progress(
        self, text: str, keyboard: InlineKeyboardMarkup | None = None, *, quiet: bool = False
    ) -> None:
        try:
            message = await self._messenger.send_text(text, keyboard)
        except TelegramError as error:
            log.warning("could not send autopilot progress: %s", error)
            return
        except AudienceGone:
            if quiet:
                return
            raise
        self._progress_id = message.message_id
        self._progress_text = text
        if self._run_id is not None:
            await self._outbox.progress_shown(self._run_id, message.message_id)

    async def _edit_progress(
        self, text: str, keyboard: InlineKeyboardMarkup | None = None, *, quiet: bool = False
    ) -> None:
        if text == self._progress_text and keyboard is None:
            return
        assert self._progress_id is not None
        try:
            await self._messenger.edit_text(self._progress_id, text, keyboard)
            self._progress_text = text
        except BadRequest as error:
            if not is_not_modified(error):
                log.warning("could not edit autopilot progress: %s", error)
        except TelegramError as error:
            log.warning("could not edit autopilot progress: %s", error)
        except AudienceGone:
            if not quiet:
                raise

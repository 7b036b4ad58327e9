"""The autopilot in the chat: `/auto [rounds] [brief]` and the 🔁 Auto button (bot/handlers/
buttons.py), one progress message edited as the run goes, then the best image of the run with
the usual buttons.

The progress message first says the most images the run can pay for; it is edited at the
start and the end of every round ("Round 2/3 · best 7/10"), never followed by a stream of
messages. /cancel stops the run; the best round so far is still shown.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bot import views
from bot.handlers.commands import argument_text, send_contact_sheet
from bot.handlers.common import (
    HTML,
    actor_of,
    is_not_modified,
    reply,
    scope_of,
    services,
)
from bot.handlers.presenter import RoundPresenter
from bot.handlers.uploads import DeliveryMemory
from bot.refine.errors import AudienceGone, RefineError
from bot.refine.models import AutopilotOutcome, AutopilotProgress, PendingAutopilot, Scope

log = logging.getLogger(__name__)


def parse_auto_arguments(text: str) -> tuple[int | None, str]:
    """Return (rounds, brief) from `/auto` arguments: `3`, `3 red saree`, `red saree`, or ''.

    A first word made of digits is the number of rounds; the rest is a brief.
    """
    first, _space, rest = text.strip().partition(" ")
    if first.isascii() and first.isdigit():
        return int(first), rest.strip()
    return None, text.strip()


async def auto_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/auto [rounds] [brief]`: with a brief, a new session on autopilot; without, the
    autopilot continues from the newest finished round of the chat's newest session."""
    message = update.effective_message
    rounds, brief = parse_auto_arguments(argument_text(message.text))
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    try:
        if brief:
            await refine.take_edit(scope, actor)
            pending = await refine.begin_autopilot(scope, actor, brief=brief, rounds=rounds)
        else:
            latest = await services(context).history.latest_round(scope)
            pending = await refine.begin_autopilot(scope, actor, round_id=latest.id, rounds=rounds)
    except RefineError as error:
        await reply(message, views.refusal_text(error))
        return
    launch_autopilot(update, context, pending, asked_by=message)


def launch_autopilot(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    pending: PendingAutopilot,
    asked_by: Message | None = None,
) -> None:
    """Run the pending autopilot as a background task of the application, shown in the chat
    (answering `asked_by`, the message that started it, if any)."""
    presenter = AutopilotPresenter(
        context.bot,
        pending.scope,
        services(context).history,
        group=pending.scope.is_group,
        asked_by=asked_by,
    )
    context.application.create_task(
        _run_and_show(context.application, pending, presenter),
        update=update,
        name=f"autopilot-{pending.run.id}",
    )


async def _run_and_show(
    application: Application, pending: PendingAutopilot, presenter: AutopilotPresenter
) -> None:
    svc = application.bot_data["services"]
    try:
        outcome = await svc.refine.run_autopilot(pending, presenter)
    finally:
        await presenter.stop_chat_action()
    image = await svc.history.image_of(outcome.best) if outcome.best is not None else None
    message_id = await presenter.finish_run(outcome, image)
    if message_id is not None and outcome.best is not None:
        await svc.refine.shown(outcome.best.id, message_id)
        # The session's contact sheet, below the best image (a run of one image has none).
        if len(outcome.rounds) > 1:
            try:
                await send_contact_sheet(
                    application.bot, svc.history, pending.scope, pending.session.id
                )
            except (RefineError, TelegramError) as error:
                log.warning("no contact sheet after autopilot run %s: %s", pending.run.id, error)


class AutopilotPresenter(RoundPresenter):
    """An AutopilotListener that keeps one progress message up to date, then shows the best
    image of the run with the round keyboard. Telegram failures are logged, never raised,
    except a chat the bot can no longer write to (AudienceGone stops the run)."""

    def __init__(
        self,
        bot: Bot,
        scope: Scope,
        deliveries: DeliveryMemory,
        *,
        group: bool,
        asked_by: Message | None = None,
    ) -> None:
        super().__init__(bot, scope, deliveries, group=group, asked_by=asked_by)
        self._progress_id: int | None = None
        self._progress_text = ""

    async def progress(self, progress: AutopilotProgress) -> None:
        if progress.stage == "draft":
            return  # one edit at the start and the end of each round is enough
        text = views.autopilot_progress_text(progress)
        if self._progress_id is None:
            await self._send_progress(text)
            if self._keep_alive is None:
                self._keep_alive = asyncio.create_task(self._chat_action_loop())
            return
        await self._edit_progress(text)

    async def finish_run(self, outcome: AutopilotOutcome, image: bytes | None) -> int | None:
        """Show how the run ended, then the best image; return the photo's message id."""
        await self.stop_chat_action()
        if self._gone:
            return None
        failed = outcome.failed_round if outcome.best is None else None
        keyboard = views.retry_keyboard(failed.id) if failed is not None else None
        text = views.autopilot_final_text(outcome)
        if self._progress_id is None:
            await self._send_progress(text, keyboard, quiet=True)
        else:
            await self._edit_progress(text, keyboard, quiet=True)
        best = outcome.best
        if best is None or image is None or self._gone:
            return None
        error = outcome.error if outcome.best_critique is None else None
        caption = views.autopilot_best_caption(best, outcome.best_critique, error, self._group)
        self._image = image
        try:
            message = await self._send_photo(best, caption, views.round_keyboard(best.id))
        except AudienceGone:  # nobody to show it to
            return None
        return message.message_id if message is not None else None

    async def _send_progress(
        self, text: str, keyboard: InlineKeyboardMarkup | None = None, *, quiet: bool = False
    ) -> None:
        try:
            message = await self._send_text(text, keyboard)
        except TelegramError as error:
            log.warning("could not send autopilot progress: %s", error)
            return
        except AudienceGone:
            if quiet:
                return
            raise
        self._progress_id = message.message_id
        self._progress_text = text

    async def _edit_progress(
        self, text: str, keyboard: InlineKeyboardMarkup | None = None, *, quiet: bool = False
    ) -> None:
        if text == self._progress_text and keyboard is None:
            return
        try:
            await self._call(
                lambda chat_id: self._bot.edit_message_text(
                    text,
                    chat_id=chat_id,
                    message_id=self._progress_id,
                    parse_mode=HTML,
                    reply_markup=keyboard,
                )
            )
            self._progress_text = text
        except BadRequest as error:
            if not is_not_modified(error):
                log.warning("could not edit autopilot progress: %s", error)
        except TelegramError as error:
            log.warning("could not edit autopilot progress: %s", error)
        except AudienceGone:
            if not quiet:
                raise

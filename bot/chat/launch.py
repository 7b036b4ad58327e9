"""Runs a pending run in the background while a view shows it in the chat.

Handlers only begin a run (quick: checks, reservation, a pending row) and call `launch`, so
the chat's next update is never stuck behind seconds of model time. A manual round is shown
by a RoundView, an autopilot run by an AutopilotView; both are run and finished the same way.
"""

from __future__ import annotations

import logging
from typing import Protocol

from telegram import Message, Update

from bot.chat.autopilot_view import AutopilotView
from bot.chat.context import BotContext, services_of
from bot.chat.messenger import Messenger
from bot.chat.previews import PreviewSender
from bot.chat.round_view import RoundView
from bot.refine.models import PendingRun, RunListener, RunOutcome
from bot.services import Services

log = logging.getLogger(__name__)


class RunView(RunListener, Protocol):
    """A RunListener that also shows how the run ended."""

    async def stop_chat_action(self) -> None: ...

    async def finish(self, outcome: RunOutcome) -> None: ...


def launch(
    update: Update,
    context: BotContext,
    pending: PendingRun,
    *,
    asked_by: Message | None = None,
) -> None:
    """Run the pending run as a background task of the application, shown in the chat.

    `asked_by`: the message that started it (a brief, an edit, the pressed message of an
    Auto button); a manual round's press has none: its toast answers it.
    """
    services = context.services
    messenger = Messenger(context.bot, pending.scope, services.history, asked_by=asked_by)
    view: RunView
    if pending.plan.autopilot:
        view = AutopilotView(
            messenger,
            bot=context.bot,
            outbox=services.outbox,
            history=services.history,
            group=pending.scope.is_group,
            run_id=pending.run.id if pending.run else None,
        )
    else:
        messenger.acknowledge()
        previews = PreviewSender(
            context.bot, messenger, pending.scope, services.history, asked_by=asked_by
        )
        view = RoundView(
            messenger, group=pending.scope.is_group, outbox=services.outbox, previews=previews
        )
    context.application.create_task(
        _run_and_show(services, pending, view), update=update, name=pending.name
    )


async def _run_and_show(services: Services, pending: PendingRun, view: RunView) -> None:
    with services.outbox.showing(pending.session.id):
        try:
            outcome = await services.refine.run(pending, view)
        finally:
            await view.stop_chat_action()
        await view.finish(outcome)


async def resume_interrupted(context: BotContext) -> None:
    """Finish the rounds a crash or restart left running: deliver paid images, offer Retry."""
    services = services_of(context.application)
    for pending in await services.refine.interrupted_runs():
        round = pending.round
        assert round is not None
        log.info("resuming round %s in chat %s", round.id, pending.scope.chat_id)
        messenger = Messenger(context.bot, pending.scope, services.history)
        view = RoundView(
            messenger,
            group=pending.scope.is_group,
            outbox=services.outbox,
            photo_message_id=round.message_id,
        )
        try:
            with services.outbox.showing(pending.session.id):
                outcome = await services.refine.resume(pending, view)
                await view.finish(outcome)
        except Exception:  # one broken round must not strand the others
            log.exception("could not resume round %s", round.id)
        finally:
            await view.stop_chat_action()

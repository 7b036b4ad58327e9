"""Runs a pending round in the background while a presenter shows it in the chat.

Handlers only begin a round (quick: checks, reservation, a pending row) and return, so
the chat's next update is never stuck behind seconds of model time.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.ext import Application, ContextTypes

from bot.handlers.common import services
from bot.handlers.presenter import RoundPresenter
from bot.refine.models import PendingRound

log = logging.getLogger(__name__)


def launch_round(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    pending: PendingRound,
    asked_by: Message | None = None,
) -> None:
    """Run the pending round as a background task of the application, shown in the chat.

    `asked_by`: the message that started the round (a button press has none: its toast
    answers it).
    """
    presenter = RoundPresenter(
        context.bot,
        pending.scope,
        services(context).history,
        group=pending.scope.is_group,
        asked_by=asked_by,
    )
    presenter.acknowledge()
    context.application.create_task(
        _run_and_show(context.application, pending, presenter),
        update=update,
        name=f"round-{pending.round.id}",
    )


async def _run_and_show(
    application: Application, pending: PendingRound, presenter: RoundPresenter
) -> None:
    refine = application.bot_data["services"].refine
    try:
        outcome = await refine.run(pending, presenter)
    finally:
        await presenter.stop_chat_action()
    await presenter.finish(outcome)


async def resume_interrupted(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Finish the rounds a crash or restart left running: deliver paid images, offer Retry."""
    refine, history = services(context).refine, services(context).history
    for pending in await refine.interrupted_rounds():
        log.info("resuming round %s in chat %s", pending.round.id, pending.scope.chat_id)
        presenter = RoundPresenter(
            context.bot,
            pending.scope,
            history,
            group=pending.scope.is_group,
            photo_message_id=pending.round.message_id,
        )
        try:
            outcome = await refine.resume(pending, presenter)
            await presenter.finish(outcome)
        except Exception:  # one broken round must not strand the others
            log.exception("could not resume round %s", pending.round.id)
        finally:
            await presenter.stop_chat_action()

"""Runs a domain round from a handler, with a presenter showing it in the chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.common import HTML, is_group, scope_of, thread_kwargs
from bot.handlers.presenter import RoundPresenter
from bot.refine.errors import RefineError
from bot.refine.models import RoundOutcome

RoundStarter = Callable[[RoundPresenter], Awaitable[RoundOutcome]]


async def run_round(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    start: RoundStarter,
    reply_to: Message | None = None,
) -> None:
    """Run `start(presenter)` and show its outcome; a domain refusal becomes a chat message."""
    scope = scope_of(update)
    presenter = RoundPresenter(
        context.bot, scope, group=is_group(update.effective_chat), reply_to=reply_to
    )
    try:
        outcome = await start(presenter)
    except RefineError as error:
        await context.bot.send_message(
            scope.chat_id, views.refusal_text(error), parse_mode=HTML, **thread_kwargs(scope)
        )
        return
    finally:
        await presenter.stop_chat_action()
    await presenter.finish(outcome)

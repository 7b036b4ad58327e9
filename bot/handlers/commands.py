"""/start, /help, /new, /history, /cancel and /usage."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import views
from bot.access import is_admin
from bot.handlers.common import actor_of, reply, scope_of, services
from bot.handlers.rounds import launch_round
from bot.refine.errors import RefineError


def _argument_text(text: str | None) -> str:
    """Return what follows the command word, keeping the user's line breaks."""
    _command, _space, rest = (text or "").strip().partition(" ")
    if not rest and "\n" in _command:
        rest = _command.partition("\n")[2]
    return rest.strip()


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update.effective_message, views.START)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update.effective_message, views.HELP)


async def new(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    brief = _argument_text(message.text)
    if not brief:
        await reply(message, views.NEW_USAGE)
        return
    await start_brief(update, context, brief)


async def start_brief(update: Update, context: ContextTypes.DEFAULT_TYPE, brief: str) -> None:
    """Start a new session from the brief in the update's chat (dropping a pending edit)."""
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    await refine.take_edit(scope, actor)
    try:
        pending = await refine.begin_start(scope, actor, brief)
    except RefineError as error:
        await reply(update.effective_message, views.refusal_text(error))
        return
    launch_round(update, context, pending, reply_to=update.effective_message)


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    entries = await services(context).refine.history(scope_of(update))
    await reply(update.effective_message, views.history_text(entries))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    refine = services(context).refine
    scope = scope_of(update)
    cancelled = await refine.cancel(scope)
    dropped_edit = await refine.take_edit(scope, actor_of(update))
    if cancelled:
        return  # the round's own message says it was cancelled
    text = "✏️ Edit cancelled." if dropped_edit else views.NOTHING_TO_CANCEL
    await reply(update.effective_message, text)


async def usage(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Today's rounds, images and estimated cost: one's own, and every chat's for admins."""
    svc = services(context)
    actor = actor_of(update)
    own = await svc.refine.usage_today(actor.user_id)
    everyone = await svc.refine.usage_today() if is_admin(svc.settings, actor.user_id) else None
    await reply(update.effective_message, views.usage_text(own, everyone))

"""/start, /help, /new, /history, /cancel and /usage."""

from __future__ import annotations

from telegram import Bot, Update
from telegram.ext import ContextTypes

from bot import views
from bot.access import is_admin
from bot.handlers.common import HTML, actor_of, reply, scope_of, services, thread_kwargs
from bot.handlers.rounds import launch_round
from bot.handlers.uploads import send_image
from bot.refine.errors import RefineError
from bot.refine.history import ChatHistory
from bot.refine.models import Scope


def argument_text(text: str | None) -> str:
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
    brief = argument_text(message.text)
    if not brief:
        await reply(message, views.NEW_USAGE)
        return
    await start_brief(update, context, brief)


async def start_brief(update: Update, context: ContextTypes.DEFAULT_TYPE, brief: str) -> None:
    """Start a new session from the brief in the update's chat, dropping a pending edit."""
    await services(context).refine.take_edit(scope_of(update), actor_of(update))
    await begin_brief(update, context, brief)


async def begin_brief(update: Update, context: ContextTypes.DEFAULT_TYPE, brief: str) -> None:
    """Start a new session from the brief in the update's chat."""
    try:
        pending = await services(context).refine.begin_start(
            scope_of(update), actor_of(update), brief
        )
    except RefineError as error:
        await reply(update.effective_message, views.refusal_text(error))
        return
    launch_round(update, context, pending, asked_by=update.effective_message)


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The chat's sessions, newest first, a page at a time (◀ ▶), each one button away."""
    summaries, total = await services(context).history.sessions_page(
        scope_of(update), 0, views.HISTORY_PAGE_SIZE
    )
    await reply(
        update.effective_message,
        views.history_page_text(summaries, 0, total),
        reply_markup=views.history_keyboard(summaries, 0, total) if summaries else None,
    )


def _session_number(text: str) -> int:
    """Return the session number the text names; 0 (no session's) for digits that are not a
    plain number an id can be, such as "²" or twenty of them."""
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    return 0


async def gallery(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A contact sheet of the chat's latest session (or of `/gallery <session number>`)."""
    argument = argument_text(update.effective_message.text).lstrip("#")
    session_id = _session_number(argument) if argument[:1].isdigit() else None
    try:
        await send_contact_sheet(
            context.bot, services(context).history, scope_of(update), session_id
        )
    except RefineError as error:
        await reply(update.effective_message, views.refusal_text(error))


async def send_contact_sheet(
    bot: Bot, history: ChatHistory, scope: Scope, session_id: int | None
) -> None:
    """Render (off the event loop) and send a session's contact sheet to the scope.

    Raises NothingToShow when the session has no image yet.
    """
    sheet = await history.contact_sheet(scope, session_id)
    await send_image(
        bot,
        history,
        scope.chat_id,
        sheet.png,
        sheet.sha256,
        kind="photo",
        filename=f"session-{sheet.session.id}.png",
        caption=views.gallery_caption(sheet),
        parse_mode=HTML,
        **thread_kwargs(scope),
    )


async def settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The chat's settings as an inline menu."""
    svc = services(context)
    scope = scope_of(update)
    current = await svc.history.chat_settings(scope.chat_id)
    default_format = svc.settings.image_format
    await reply(
        update.effective_message,
        views.settings_text(current, default_format, scope.is_group),
        reply_markup=views.settings_keyboard(current, default_format, scope.is_group),
    )


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    try:
        cancelled = await refine.cancel(scope, actor)
    except RefineError as error:
        await reply(update.effective_message, views.refusal_text(error))
        return
    dropped_edit = await refine.take_edit(scope, actor)
    if cancelled:
        return  # the round's own message says it was cancelled
    text = "✏️ Edit cancelled." if dropped_edit else views.NOTHING_TO_CANCEL
    await reply(update.effective_message, text)


async def usage(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Today's rounds, images and estimated cost: one's own, and every chat's for admins."""
    svc = services(context)
    actor = actor_of(update)
    own = await svc.history.usage_today(actor.user_id)
    everyone = await svc.history.usage_today() if is_admin(svc.settings, actor.user_id) else None
    await reply(update.effective_message, views.usage_text(own, everyone))

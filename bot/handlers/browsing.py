"""Looking back at the chat: /history (its sessions, a page at a time, each one button away),
a session's rounds, /gallery and the 🖼 button (a session's contact sheet), and /usage."""

from __future__ import annotations

from telegram import Update

from bot.access import is_admin
from bot.chat.context import BotContext
from bot.chat.updates import (
    actor_of,
    answer_quietly,
    argument_text,
    message_of,
    press_handler,
    query_of,
    replace_pressed,
    reply,
    scope_of,
    thread_kwargs,
)
from bot.chat.uploads import send_contact_sheet
from bot.refine.errors import RefineError
from bot.refine.models import Scope
from bot.ui.browse import (
    DRAWING_CONTACT_SHEET,
    HISTORY_PAGE_SIZE,
    history_keyboard,
    history_page_text,
    pack_round,
    session_keyboard,
    session_text,
    usage_text,
)
from bot.ui.callbacks import ButtonPress
from bot.ui.refusals import refusal_text


async def history_command(update: Update, context: BotContext) -> None:
    """/history: the chat's sessions, newest first, a page at a time (◀ ▶)."""
    summaries, total = await context.services.history.sessions_page(
        scope_of(update), 0, HISTORY_PAGE_SIZE
    )
    await reply(
        message_of(update),
        history_page_text(summaries, 0, total),
        reply_markup=history_keyboard(summaries, 0, total) if summaries else None,
    )


@press_handler
async def history_page_button(
    update: Update, context: BotContext, press: ButtonPress, scope: Scope
) -> None:
    """◀ Newer / Older ▶ / ◀ Sessions: the pressed message becomes that page of /history."""
    page = press.number - 1
    summaries, total = await context.services.history.sessions_page(scope, page, HISTORY_PAGE_SIZE)
    query = query_of(update)
    await answer_quietly(query)
    await replace_pressed(
        query, history_page_text(summaries, page, total), history_keyboard(summaries, page, total)
    )


@press_handler
async def session_button(
    update: Update, context: BotContext, press: ButtonPress, scope: Scope
) -> None:
    """A session on a /history page: the pressed message becomes that session's rounds."""
    session, rounds = await context.services.history.session_detail(press.number, scope)
    query = query_of(update)
    await answer_quietly(query)
    keyboard = session_keyboard(session, pack_round(session, rounds))
    await replace_pressed(query, session_text(session, rounds), keyboard)


def _session_number(text: str) -> int:
    """Return the session number the text names; 0 (no session's) for digits that are not a
    plain number an id can be, such as "²" or twenty of them."""
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    return 0


async def gallery_command(update: Update, context: BotContext) -> None:
    """/gallery [#session]: a contact sheet of that session, or of the chat's latest."""
    message = message_of(update)
    argument = argument_text(message.text).lstrip("#")
    session_id = _session_number(argument) if argument[:1].isdigit() else None
    try:
        await send_contact_sheet(
            context.bot, context.services.history, scope_of(update), session_id
        )
    except RefineError as error:
        await reply(message, refusal_text(error))


@press_handler
async def gallery_button(
    update: Update, context: BotContext, press: ButtonPress, scope: Scope
) -> None:
    """🖼 Contact sheet: the session's contact sheet, sent to the scope (a session with no
    image yet gets the refusal as a message, the toast being spent already)."""
    await answer_quietly(query_of(update), DRAWING_CONTACT_SHEET)
    try:
        await send_contact_sheet(context.bot, context.services.history, scope, press.number)
    except RefineError as error:
        await context.bot.send_message(scope.chat_id, refusal_text(error), **thread_kwargs(scope))


async def usage_command(update: Update, context: BotContext) -> None:
    """/usage: today's rounds, images and estimated cost: one's own, and every chat's for
    admins."""
    services = context.services
    actor = actor_of(update)
    own = await services.history.usage_today(actor.user_id)
    admin = is_admin(services.settings, actor.user_id)
    everyone = await services.history.usage_today() if admin else None
    await reply(message_of(update), usage_text(own, everyone))

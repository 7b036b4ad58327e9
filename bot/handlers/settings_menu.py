"""The chat's settings: /settings shows the menu, each button press saves one choice (in
groups only the chat's admins may), and the menu shows it ticked."""

from __future__ import annotations

import logging

from telegram import ChatMember, Update
from telegram.error import TelegramError

from bot.chat.context import BotContext
from bot.chat.updates import (
    answer_quietly,
    message_of,
    press_handler,
    query_of,
    replace_pressed,
    reply,
    scope_of,
)
from bot.refine.errors import NotChatAdmin
from bot.refine.models import Scope
from bot.ui.callbacks import ButtonPress
from bot.ui.settings import SAVED, settings_keyboard, settings_text

log = logging.getLogger(__name__)


async def settings_command(update: Update, context: BotContext) -> None:
    """/settings: the chat's settings as an inline menu."""
    services = context.services
    scope = scope_of(update)
    current = await services.history.chat_settings(scope.chat_id)
    default_format = services.settings.image_format
    await reply(
        message_of(update),
        settings_text(current, default_format, scope.is_group),
        reply_markup=settings_keyboard(current, default_format, scope.is_group),
    )


@press_handler
async def setting_button(
    update: Update, context: BotContext, press: ButtonPress, scope: Scope
) -> None:
    """A choice in the menu: save it (raises NotChatAdmin for a group's non-admin), then show
    the menu with it ticked."""
    services = context.services
    if scope.is_group and not await _is_chat_admin(update, context):
        raise NotChatAdmin()
    name, _equals, value = press.value.partition("=")
    chosen = await services.history.choose_setting(scope.chat_id, name, value)
    query = query_of(update)
    await answer_quietly(query, SAVED)
    default_format = services.settings.image_format
    await replace_pressed(
        query,
        settings_text(chosen, default_format, scope.is_group),
        settings_keyboard(chosen, default_format, scope.is_group),
    )


async def _is_chat_admin(update: Update, context: BotContext) -> bool:
    """Return whether the presser administers the group (anonymous admins press as the
    group); False if Telegram can't say."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return False
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError as error:
        log.warning("could not check chat admin: %s", error)
        return False
    return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)

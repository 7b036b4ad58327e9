"""Composition root: the Application, its handlers (all registered here), and its services."""

from __future__ import annotations

import logging

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.chat import redelivery
from bot.chat.context import BotApplication, BotContext, attach_services, detach_services
from bot.chat.launch import resume_interrupted
from bot.chat.pack_view import resume_packs
from bot.chat.updates import UpdateHandler
from bot.config import Settings
from bot.handlers import briefs, browsing, formats, gate, guide, round_buttons, settings_menu
from bot.health import schedule_heartbeat
from bot.rate_limit import MessageRateLimiter
from bot.retention import schedule_retention
from bot.services import Services, build_services
from bot.telegram_request import AiohttpRequest
from bot.ui import callbacks
from bot.update_order import PerChatUpdateProcessor

log = logging.getLogger(__name__)

PRIVATE_COMMANDS = [
    BotCommand("new", "Start a new image from a description"),
    BotCommand("auto", "Refine on autopilot: /auto [rounds] [description]"),
    BotCommand("history", "Your sessions and their rounds"),
    BotCommand("gallery", "A contact sheet of the latest session"),
    BotCommand("settings", "Format, quality, critique language"),
    BotCommand("usage", "Today's rounds and estimated cost"),
    BotCommand("cancel", "Stop the running round or autopilot"),
    BotCommand("help", "How this bot works"),
]
GROUP_COMMANDS = [
    BotCommand("new", "Start a new image from a description"),
    BotCommand("auto", "Refine on autopilot: /auto [rounds] [description]"),
    BotCommand("history", "This chat's sessions and their rounds"),
    BotCommand("gallery", "A contact sheet of the latest session"),
    BotCommand("settings", "This chat's format, language and who may press"),
    BotCommand("cancel", "Stop the running round or autopilot"),
    BotCommand("help", "How this bot works"),
]


def bot_api_request(connection_pool_size: int, read_timeout: float = 30.0) -> AiohttpRequest:
    """Return the HTTP client for Bot API calls (getUpdates has its own, with one connection).

    Messages are paced to ~30/s, but under load each call holds its connection for many
    event-loop turns, and button answers and chat actions share the pool: with 16 connections,
    answers queued for seconds at 200 busy chats (bench/).
    """
    return AiohttpRequest(
        connection_pool_size=connection_pool_size,
        read_timeout=read_timeout,
        write_timeout=60.0,
        connect_timeout=10.0,
        pool_timeout=10.0,
        media_write_timeout=120.0,
    )


def build_application(settings: Settings, services: Services | None = None) -> BotApplication:
    """Return the configured Application; services are built in post_init unless given.

    Handlers, error handlers and jobs get a BotContext (`context.services`); every text is
    sent as HTML (Defaults). Updates of different chats are processed concurrently and each
    chat's in order; rounds run as background tasks, so seconds of model time never hold up
    any chat's updates.
    """
    owns_services = services is None

    async def post_init(application: BotApplication) -> None:
        attach_services(application, services or await build_services(settings))
        await application.bot.set_my_commands(PRIVATE_COMMANDS, BotCommandScopeAllPrivateChats())
        await application.bot.set_my_commands(GROUP_COMMANDS, BotCommandScopeAllGroupChats())
        schedule_heartbeat(application, settings)
        schedule_retention(application, settings)
        # Runs once the application has started, so it never delays start-up.
        assert application.job_queue is not None  # python-telegram-bot[job-queue]
        application.job_queue.run_once(resume_interrupted, when=0)
        application.job_queue.run_repeating(
            redelivery.redeliver, interval=redelivery.REDELIVERY_EVERY, first=0.5
        )
        application.job_queue.run_once(resume_packs, when=0)  # campaign packs half made

    async def post_shutdown(application: BotApplication) -> None:
        built = detach_services(application)
        if owns_services and built is not None:
            await built.close()

    application = (
        ApplicationBuilder()
        .context_types(ContextTypes(context=BotContext))
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .concurrent_updates(PerChatUpdateProcessor())
        .rate_limiter(MessageRateLimiter(max_retries=3))
        .request(bot_api_request(connection_pool_size=64))
        .get_updates_request(bot_api_request(connection_pool_size=1, read_timeout=40.0))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    register_handlers(application)
    return application


def register_handlers(application: BotApplication) -> None:
    """Register every handler, in one visible place; the first that matches an update wins.

    The gate runs first (group -1) and stops strangers' updates. Only new messages count:
    editing an old message must not start (and bill) a round. Each button action has its own
    handler, matched on its callback data; a press none matches is answered "no longer valid".
    """
    new = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE
    application.add_handler(TypeHandler(Update, gate.gatekeeper), group=-1)
    commands: dict[str, UpdateHandler] = {
        "start": guide.start_command,
        "help": guide.help_command,
        "new": briefs.new_command,
        "auto": briefs.auto_command,
        "history": browsing.history_command,
        "cancel": briefs.cancel_command,
        "usage": browsing.usage_command,
        "gallery": browsing.gallery_command,
        "settings": settings_menu.settings_command,
    }
    for command, callback in commands.items():
        application.add_handler(CommandHandler(command, callback, filters=new))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, gate.migrated))
    buttons: dict[str, UpdateHandler] = {
        callbacks.ACCEPT: round_buttons.accept,
        callbacks.EDIT: round_buttons.edit,
        callbacks.STOP: round_buttons.stop,
        callbacks.RETRY: round_buttons.retry,
        callbacks.AUTO: round_buttons.auto,
        callbacks.REDRAW: round_buttons.redraw,
        callbacks.HISTORY: browsing.history_page_button,
        callbacks.SESSION: browsing.session_button,
        callbacks.GALLERY: browsing.gallery_button,
        callbacks.SETTING: settings_menu.setting_button,
        callbacks.FORMATS: formats.formats,
        callbacks.FORMATS_CONFIRM: formats.confirm,
        callbacks.FORMAT_RETRY: formats.retry,
    }
    for action, callback in buttons.items():
        pattern = callbacks.callback_pattern(action)
        application.add_handler(CallbackQueryHandler(callback, pattern=pattern))
    application.add_handler(CallbackQueryHandler(gate.stale_button))
    application.add_handler(
        MessageHandler(new & filters.TEXT & ~filters.COMMAND, briefs.text_message)
    )
    photo_files = (
        filters.PHOTO
        | filters.Document.IMAGE
        | filters.Document.FileExtension("heic")
        | filters.Document.FileExtension("heif")
    )
    application.add_handler(MessageHandler(new & photo_files, briefs.photo_message))
    application.add_handler(MessageHandler(new & private, guide.other_message))
    application.add_error_handler(gate.on_error)

"""Composition root: the Application, its handlers (all registered here), and its services."""

from __future__ import annotations

import logging

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.handlers import auto, buttons, commands, errors, messages, photos, rounds
from bot.health import schedule_heartbeat
from bot.rate_limit import MessageRateLimiter
from bot.retention import schedule_retention
from bot.services import Services, build_services
from bot.telegram_request import AiohttpRequest
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


def build_application(settings: Settings, services: Services | None = None) -> Application:
    """Return the configured Application; services are built in post_init unless given.

    Updates of different chats are processed concurrently and each chat's in order; rounds
    run as background tasks, so seconds of model time never hold up any chat's updates.
    """
    owns_services = services is None

    async def post_init(application: Application) -> None:
        application.bot_data["services"] = services or await build_services(settings)
        await application.bot.set_my_commands(PRIVATE_COMMANDS, BotCommandScopeAllPrivateChats())
        await application.bot.set_my_commands(GROUP_COMMANDS, BotCommandScopeAllGroupChats())
        schedule_heartbeat(application, settings)
        schedule_retention(application, settings)
        # Runs once the application has started, so it never delays start-up.
        application.job_queue.run_once(rounds.resume_interrupted, when=0)

    async def post_shutdown(application: Application) -> None:
        built = application.bot_data.pop("services", None)
        if owns_services and built is not None:
            await built.close()

    application = (
        ApplicationBuilder()
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


def register_handlers(application: Application) -> None:
    """Register every handler, in one visible place.

    Only new messages count: editing an old message must not start (and bill) a round.
    """
    new = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE
    application.add_handler(TypeHandler(Update, errors.gatekeeper), group=-1)
    application.add_handler(CommandHandler("start", commands.start, filters=new))
    application.add_handler(CommandHandler("help", commands.help_command, filters=new))
    application.add_handler(CommandHandler("new", commands.new, filters=new))
    application.add_handler(CommandHandler("auto", auto.auto_command, filters=new))
    application.add_handler(CommandHandler("history", commands.history, filters=new))
    application.add_handler(CommandHandler("cancel", commands.cancel, filters=new))
    application.add_handler(CommandHandler("usage", commands.usage, filters=new))
    application.add_handler(CommandHandler("gallery", commands.gallery, filters=new))
    application.add_handler(CommandHandler("settings", commands.settings, filters=new))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, messages.migrated))
    application.add_handler(CallbackQueryHandler(buttons.button))
    application.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, messages.text))
    photo_files = (
        filters.PHOTO
        | filters.Document.IMAGE
        | filters.Document.FileExtension("heic")
        | filters.Document.FileExtension("heif")
    )
    application.add_handler(MessageHandler(new & photo_files, photos.photo))
    application.add_handler(MessageHandler(new & private, messages.other))
    application.add_error_handler(errors.on_error)

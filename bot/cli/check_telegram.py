"""The Telegram and Webhook checks of `python -m bot check`: getMe, getWebhookInfo.

python-telegram-bot is imported by the checks, so that a broken configuration is reported
before any SDK is loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.cli.check_result import CHECK_TIMEOUT, CheckResult
from bot.config import Settings

if TYPE_CHECKING:
    from telegram import Bot

WEBHOOK_ERROR_WINDOW = timedelta(hours=1)
"""A webhook delivery error Telegram reports counts as current for this long."""


def _telegram_bot(settings: Settings, seconds: float) -> Bot:
    from telegram import Bot

    from bot.telegram_request import AiohttpRequest

    # The bot's own transport, so that a proxy or certificate problem shows up here too.
    request = AiohttpRequest(
        connect_timeout=seconds, read_timeout=seconds, write_timeout=seconds, pool_timeout=seconds
    )
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        base_file_url=settings.telegram_file_base_url,
        request=request,
        get_updates_request=request,
    )


async def check_telegram(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """getMe with the configured token and base URL."""
    from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut

    bot = _telegram_bot(settings, seconds)
    try:
        await bot.initialize()  # opens the connection pool and asks getMe
        me = bot.bot
    except InvalidToken:
        return CheckResult(
            "Telegram",
            False,
            "the token was rejected",
            "copy it again from @BotFather (/mybots → API Token) into TELEGRAM_BOT_TOKEN",
        )
    except TimedOut:
        return CheckResult(
            "Telegram",
            False,
            f"no answer from {settings.telegram_api_base_url} within {seconds:.0f} s",
            "check the network, a firewall or proxy, and TELEGRAM_API_BASE_URL",
        )
    except NetworkError as error:
        return CheckResult(
            "Telegram",
            False,
            f"cannot reach {settings.telegram_api_base_url} ({error.message})",
            "check the network, a firewall or proxy, and TELEGRAM_API_BASE_URL",
        )
    except TelegramError as error:
        return CheckResult(
            "Telegram", False, error.message, "check TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE_URL"
        )
    finally:
        await bot.shutdown()
    return CheckResult("Telegram", True, f"@{me.username}")


async def check_webhook(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """getWebhookInfo: fails when Telegram reports a recent error delivering to the webhook."""
    from telegram.error import TelegramError

    bot = _telegram_bot(settings, seconds)
    try:
        await bot.request.initialize()
        info = await bot.get_webhook_info()
    except TelegramError as error:
        return CheckResult(
            "Webhook", False, f"getWebhookInfo failed ({error.message})", "see the Telegram check"
        )
    finally:
        await bot.shutdown()
    error_date = info.last_error_date
    if (
        info.last_error_message
        and error_date
        and (datetime.now(UTC) - error_date < WEBHOOK_ERROR_WINDOW)
    ):
        minutes = int((datetime.now(UTC) - error_date).total_seconds() // 60)
        return CheckResult(
            "Webhook",
            False,
            f"Telegram could not deliver to {info.url} {minutes} min ago: "
            f"{info.last_error_message}",
            "check the reverse proxy, its TLS certificate, and that it forwards "
            f"{settings.webhook_url_path} to WEBHOOK_LISTEN:WEBHOOK_PORT",
        )
    if info.url == settings.webhook_url:
        return CheckResult(
            "Webhook", True, f"Telegram delivers to {info.url} ({info.pending_update_count} queued)"
        )
    return CheckResult(
        "Webhook", True, f"{settings.webhook_url} (Telegram is told when the bot starts)"
    )

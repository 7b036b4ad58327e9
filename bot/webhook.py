"""Webhook mode: how the Application listens for updates when WEBHOOK_URL is set.

Telegram posts each update to WEBHOOK_URL with the header `X-Telegram-Bot-Api-Secret-Token`;
python-telegram-bot's webhook server (tornado) answers 403 to any request without the right
secret, so only Telegram can feed the bot. TLS is the reverse proxy's job: the local server
speaks plain HTTP on WEBHOOK_LISTEN:WEBHOOK_PORT.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.config import Settings

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_options(settings: Settings) -> dict[str, Any]:
    """Return the keyword arguments for `Application.run_webhook` / `Updater.start_webhook`.

    Only valid in webhook mode (`settings.webhook_mode`); the secret is included in clear, so
    never log the result.
    """
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise ValueError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": settings.webhook_url_path,
        "webhook_url": settings.webhook_url,
        "secret_token": settings.webhook_secret.get_secret_value(),
        "allowed_updates": Update.ALL_TYPES,
    }


def run(application: Application, settings: Settings) -> None:
    """Run the Application until a stop signal: by webhook if WEBHOOK_URL is set, else polling.

    Either way, start-up registers the mode with Telegram: `run_webhook` calls setWebhook with
    the URL and secret; `run_polling` calls deleteWebhook first, so switching back is a restart.
    """
    # bootstrap_retries=-1: a Bot API that is unreachable at start-up is waited for (PTB retries
    # with backoff); a rejected token still stops at once with InvalidToken.
    if settings.webhook_mode:
        application.run_webhook(**webhook_options(settings), bootstrap_retries=-1)
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1)

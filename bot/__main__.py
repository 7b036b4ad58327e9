"""`python -m bot`: load settings, build the Application, run it with long polling."""

from __future__ import annotations

import sys

from pydantic import ValidationError
from telegram import Update
from telegram.error import InvalidToken, NetworkError

from bot.app import build_application
from bot.config import describe_errors, load_settings
from bot.logs import configure_logging


def main() -> int:
    """Run the bot until interrupted; return the process exit status."""
    try:
        settings = load_settings()
    except ValidationError as error:
        print(
            f"refinebot: configuration problem: {describe_errors(error)}. "
            "Set it in .env (copy .env.example) or the environment.",
            file=sys.stderr,
        )
        return 2
    secrets = [
        s.get_secret_value()
        for s in (
            settings.telegram_bot_token,
            settings.openai_api_key,
            settings.critic_api_key,
            settings.stability_api_key,
        )
        if s is not None
    ]
    configure_logging(settings.log_level, secrets)
    application = build_application(settings)
    try:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    except InvalidToken:
        print(
            "refinebot: Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather.",
            file=sys.stderr,
        )
        return 2
    except NetworkError as error:
        print(f"refinebot: cannot reach the Telegram Bot API: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

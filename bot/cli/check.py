"""`python -m bot check`: is the configuration valid, and does every configured service answer?

One line per check, `✓ Name: what was found` or `✗ Name: what is wrong — how to fix it`.
Each check makes cheap calls with its own timeout (no image is drawn): getMe on Telegram
(plus getWebhookInfo in webhook mode), `models.retrieve(IMAGE_MODEL)` or Stability's balance
and an edits probe for the image backend, `models.retrieve(CRITIC_MODEL)` and one critique of
an 8x8 image (a fraction of a cent) for the critic.
Secrets never appear in the output.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import TextIO

from pydantic import ValidationError

from bot.cli.check_backends import (
    check_critic,
    check_image_backend,
    check_openai_model,
    check_stability,
)
from bot.cli.check_database import check_database
from bot.cli.check_result import CHECK_TIMEOUT, CheckResult
from bot.cli.check_telegram import WEBHOOK_ERROR_WINDOW, check_telegram, check_webhook
from bot.config import Settings, load_settings

__all__ = [
    "CHECK_TIMEOUT",
    "WEBHOOK_ERROR_WINDOW",
    "CheckResult",
    "check_critic",
    "check_database",
    "check_image_backend",
    "check_openai_model",
    "check_stability",
    "check_telegram",
    "check_webhook",
    "config_failures",
    "main",
    "redact",
    "run_checks",
]

_CONFIG_HINTS = {
    "TELEGRAM_BOT_TOKEN": "copy the token from @BotFather (/mybots → API Token) into .env",
    "IMAGE_BACKEND": "use openai or stability",
    "WEBHOOK_URL": "use the public https:// address your reverse proxy forwards to the bot",
    "WEBHOOK_SECRET": "use 16-256 characters from A-Z a-z 0-9 _ -",
    "LOG_FORMAT": "use text or json",
    "LOG_LEVEL": "use DEBUG, INFO, WARNING or ERROR",
    "IMAGE_RETENTION_DAYS": "use a whole number of days (1 or more), or leave it unset",
}
_DEFAULT_HINT = "see .env.example and the configuration table in README.md"


def config_failures(error: ValidationError) -> list[CheckResult]:
    """Return one failed `Configuration` result per bad or missing key, each with a hint."""
    results = []
    for item in error.errors():
        key = "_".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            detail = f"{key} is missing"
        else:
            detail = f"{key}: {message}" if key else message
        hint = _CONFIG_HINTS.get(key, _DEFAULT_HINT)
        results.append(CheckResult("Configuration", False, detail, hint))
    return results


async def run_checks(settings: Settings, seconds: float = CHECK_TIMEOUT) -> list[CheckResult]:
    """Run every check for these settings concurrently; return the results in a fixed order.

    Never raises for a failing service: every failure, a timeout included, is a result.
    """
    checks: list[tuple[str, Callable[[], Awaitable[CheckResult]]]] = [
        ("Database", lambda: asyncio.to_thread(check_database, settings.database_path)),
        ("Telegram", lambda: check_telegram(settings, seconds)),
        ("Image backend", lambda: check_image_backend(settings, seconds)),
        ("Critic", lambda: check_critic(settings, seconds)),
    ]
    if settings.webhook_mode:
        checks.insert(2, ("Webhook", lambda: check_webhook(settings, seconds)))
    results = await asyncio.gather(*(_bounded(name, run, seconds) for name, run in checks))
    backend = "Stability" if settings.image_backend == "stability" else "openai"
    summary = CheckResult(
        "Configuration",
        True,
        f"{'webhook' if settings.webhook_mode else 'long polling'}, image backend {backend}, "
        f"critic {settings.critic_model}",
    )
    return [summary, *results]


async def _bounded(
    name: str, run: Callable[[], Awaitable[CheckResult]], seconds: float
) -> CheckResult:
    try:
        return await asyncio.wait_for(run(), seconds + 2)
    except TimeoutError:
        return CheckResult(name, False, f"no answer within {seconds:.0f} s", "check the network")
    except Exception as error:  # a check must report, never crash the command
        return CheckResult(name, False, f"unexpected {type(error).__name__}: {error}")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every secret (of at least 6 characters) replaced by `***`."""
    for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def main(out: TextIO | None = None) -> int:
    """Run `check`: print one line per check; return 0 if all passed, 1 if a service failed,
    2 if the configuration is invalid (the services are then not tried)."""
    out = out or sys.stdout
    try:
        settings = load_settings()
    except ValidationError as error:
        for result in config_failures(error):
            print(result.line(), file=out)
        return 2
    results = asyncio.run(run_checks(settings))
    for result in results:
        print(redact(result.line(), settings.secret_values()), file=out)
    return 0 if all(result.ok for result in results) else 1

"""`python -m bot check`: is the configuration valid, and does every configured service answer?

One line per check, `✓ Name: what was found` or `✗ Name: what is wrong — how to fix it`.
Each check makes one cheap call with its own timeout (no image is drawn, nothing is paid for):
getMe on Telegram (plus getWebhookInfo in webhook mode), `models.retrieve(IMAGE_MODEL)` or
Stability's balance for the image backend, `models.retrieve(CRITIC_MODEL)` for the critic.
Secrets never appear in the output.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from bot.config import Settings, load_settings

if TYPE_CHECKING:
    from telegram import Bot

# The service SDKs (openai alone takes over a second to import) are imported by the checks
# that use them, so that a broken configuration is reported at once.

CHECK_TIMEOUT = 5.0
"""Seconds each service may take to answer."""
WEBHOOK_ERROR_WINDOW = timedelta(hours=1)
"""A webhook delivery error Telegram reports counts as current for this long."""

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


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome; `line()` renders it for people."""

    name: str
    ok: bool
    detail: str
    hint: str = ""

    def line(self) -> str:
        """Return `✓ name: detail`, or `✗ name: detail — hint` for a failure."""
        mark = "✓" if self.ok else "✗"
        hint = f" — {self.hint}" if self.hint and not self.ok else ""
        return f"{mark} {self.name}: {self.detail}{hint}"


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


def check_database(database_path: Path) -> CheckResult:
    """Check that the database opens (read-only) or, if it does not exist yet, can be created."""
    path = Path(database_path)
    if path.exists():
        try:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
            try:
                sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as error:
            return CheckResult(
                "Database",
                False,
                f"{path} does not open: {error}",
                "restore it from a backup (deploy/README.md) or point DATABASE_PATH elsewhere",
            )
        return CheckResult("Database", True, f"{path} ({sessions} sessions)")
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is None or not _writable(folder):
        return CheckResult(
            "Database",
            False,
            f"{path} cannot be created: {folder} is not writable",
            "make DATABASE_PATH's folder writable by the bot's user",
        )
    return CheckResult("Database", True, f"{path} (will be created on first start)")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


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


async def check_image_backend(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """Stability: the account balance. openai: `models.retrieve(IMAGE_MODEL)`."""
    if settings.image_backend == "stability":
        return await check_stability(settings, seconds)
    assert settings.openai_api_key is not None  # checked by Settings
    return await check_openai_model(
        "Image backend",
        settings.openai_base_url,
        settings.openai_api_key.get_secret_value(),
        settings.image_model,
        key_setting="OPENAI_API_KEY",
        url_setting="OPENAI_BASE_URL",
        model_hint="set IMAGE_MODEL to an image model your server has",
        seconds=seconds,
    )


async def check_critic(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """`models.retrieve(CRITIC_MODEL)` on the critic's base URL with the critic's key."""
    api_key = settings.effective_critic_api_key
    assert api_key is not None  # checked by Settings
    own = settings.critic_base_url is not None or settings.critic_api_key is not None
    return await check_openai_model(
        "Critic",
        settings.effective_critic_base_url,
        api_key.get_secret_value(),
        settings.critic_model,
        key_setting="CRITIC_API_KEY" if settings.critic_api_key else "OPENAI_API_KEY",
        url_setting="CRITIC_BASE_URL" if own else "OPENAI_BASE_URL",
        model_hint="set CRITIC_MODEL to a vision model your server has",
        seconds=seconds,
    )


async def check_openai_model(
    name: str,
    base_url: str | None,
    api_key: str,
    model: str,
    *,
    key_setting: str,
    url_setting: str,
    model_hint: str,
    seconds: float = CHECK_TIMEOUT,
) -> CheckResult:
    """Retrieve `model` from an OpenAI-compatible server (no retries, one timeout of `seconds`).

    A server without `GET /models/{id}` (some self-hosted ones) is asked for its model list.
    """
    import openai

    from bot.backends.openai_common import make_client

    client = make_client(base_url, api_key, seconds, max_retries=0)
    where = str(client.base_url).rstrip("/")
    try:
        try:
            await client.models.retrieve(model)
        except openai.NotFoundError:
            available = [m.id async for m in client.models.list()]
            if model not in available:
                shown = ", ".join(available[:8]) + (", …" if len(available) > 8 else "")
                return CheckResult(
                    name,
                    False,
                    f"model {model} not found at {where}"
                    + (f" (it has: {shown})" if shown else ""),
                    model_hint,
                )
    except openai.NotFoundError:
        return CheckResult(name, False, f"model {model} not found at {where}", model_hint)
    except openai.AuthenticationError:
        return CheckResult(name, False, f"{where} rejected the API key", f"check {key_setting}")
    except openai.PermissionDeniedError:
        return CheckResult(
            name,
            False,
            f"the API key may not use model {model}",
            f"check {key_setting}'s project and the model's access",
        )
    except openai.APITimeoutError:
        return CheckResult(
            name, False, f"no answer from {where} within {seconds:.0f} s", f"check {url_setting}"
        )
    except openai.APIConnectionError:
        return CheckResult(
            name, False, f"cannot reach {where}", f"check the network and {url_setting}"
        )
    except openai.APIStatusError as error:
        return CheckResult(
            name, False, f"{where} answered HTTP {error.status_code}", f"check {url_setting}"
        )
    finally:
        await client.close()
    return CheckResult(name, True, f"{model} at {where}")


async def check_stability(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """GET /v1/user/balance on the Stability API: the key works and there are credits left."""
    import httpx

    from bot.backends.stability import endpoint_for

    name = "Image backend"
    try:
        endpoint_for(settings.stability_model)
    except ValueError as error:
        return CheckResult(name, False, str(error), "set STABILITY_MODEL")
    assert settings.stability_api_key is not None  # checked by Settings
    base = settings.stability_api_base_url.rstrip("/")
    headers = {
        "Authorization": f"Bearer {settings.stability_api_key.get_secret_value()}",
        "Accept": "application/json",
    }
    try:
        async with httpx.AsyncClient(base_url=base, timeout=seconds) as client:
            response = await client.get("/v1/user/balance", headers=headers)
    except httpx.TimeoutException:
        return CheckResult(
            name, False, f"no answer from {base} within {seconds:.0f} s", "check the network"
        )
    except httpx.HTTPError:
        return CheckResult(
            name, False, f"cannot reach {base}", "check the network and STABILITY_API_BASE_URL"
        )
    if response.status_code in (401, 403):
        return CheckResult(name, False, "Stability rejected the API key", "check STABILITY_API_KEY")
    if response.status_code != 200:
        return CheckResult(
            name, False, f"{base} answered HTTP {response.status_code}", "try again later"
        )
    try:
        credits = float(response.json()["credits"])
    except (ValueError, KeyError, TypeError):
        return CheckResult(
            name, False, f"{base} did not answer like Stability", "check STABILITY_API_BASE_URL"
        )
    if credits <= 0:
        return CheckResult(
            name,
            False,
            "the Stability account has no credits left",
            "buy credits at https://platform.stability.ai/account/credits",
        )
    return CheckResult(name, True, f"Stability {settings.stability_model}, {credits:g} credits")


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

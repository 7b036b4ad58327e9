"""Webhook mode end to end: the real Application's webhook server, fed like Telegram feeds it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from telegram.ext import Application

from bot.app import build_application
from bot.config import Settings
from bot.health import heartbeat_path
from bot.webhook import SECRET_HEADER, webhook_options
from tests.cli_helpers import (
    clean_environment,
    fakes_environment,
    free_port,
    run_cli,
    start_bot,
)
from tests.cli_helpers import stop_bot as stop_process
from tests.fakes.telegram_server import FakeTelegram

SECRET = "s3cret-Webhook_token-0123456789"
PUBLIC_URL = "https://bot.example.com/telegram-hook"


async def start_webhook_bot(settings: Settings) -> Application:
    """Start the Application the way `run_webhook` does, in this event loop."""
    app = build_application(settings)
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.updater.start_webhook(**webhook_options(settings))
    await app.start()
    return app


async def stop_bot(app: Application) -> None:
    if app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
    if app.post_shutdown:
        await app.post_shutdown(app)


@pytest.fixture
async def webhook_bot(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[Application, str]]:
    port = free_port()
    settings = make_settings(
        webhook_url=PUBLIC_URL,
        webhook_secret=SECRET,
        webhook_listen="127.0.0.1",
        webhook_port=port,
    )
    app = await start_webhook_bot(settings)
    try:
        yield app, f"http://127.0.0.1:{port}/telegram-hook"
    finally:
        await stop_bot(app)


async def post_update(url: str, update: dict[str, Any], secret: str | None) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=json.dumps(update), headers={"Content-Type": "application/json", **headers}
        ) as response,
    ):
        return response.status


async def test_updates_with_the_secret_are_processed(
    webhook_bot, telegram: FakeTelegram, ana, ana_chat
) -> None:
    _, url = webhook_bot
    # The bot registered its webhook with Telegram: the public URL and the secret.
    assert telegram.webhook is not None
    assert telegram.webhook["url"] == PUBLIC_URL
    assert telegram.webhook["secret_token"] == SECRET
    assert not telegram.calls_to("getUpdates")

    telegram.user_sends_text(ana_chat, ana, "/help")
    (update,) = telegram.take_updates()
    assert await post_update(url, update, SECRET) == 200
    reply = await telegram.wait_for(lambda: telegram.last_message(ana_chat), timeout=15)
    assert reply.text


@pytest.mark.parametrize("secret", [None, "wrong-secret-0123456789", SECRET[:-1]])
async def test_updates_without_the_secret_are_rejected(
    webhook_bot, telegram: FakeTelegram, ana, ana_chat, secret: str | None
) -> None:
    _, url = webhook_bot
    telegram.user_sends_text(ana_chat, ana, "/help")
    (update,) = telegram.take_updates()
    assert await post_update(url, update, secret) == 403
    await asyncio.sleep(0.5)
    assert telegram.messages(ana_chat["id"]) == []
    assert not telegram.calls_to("sendMessage")


async def test_webhook_and_polling_do_not_mix_on_telegram(telegram: FakeTelegram) -> None:
    # The fake behaves like Telegram: while a webhook is set, getUpdates is a 409 Conflict.
    from telegram import Bot
    from telegram.error import Conflict

    async with Bot(telegram.token, base_url=telegram.base_url) as bot:
        await bot.set_webhook(PUBLIC_URL, secret_token=SECRET)
        with pytest.raises(Conflict):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url == PUBLIC_URL
        await bot.delete_webhook()
        assert await bot.get_updates() == ()


async def test_the_process_runs_in_webhook_mode(
    telegram: FakeTelegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    port = free_port()
    env = fakes_environment(
        telegram,
        openai_fake,
        data_dir,
        WEBHOOK_URL=PUBLIC_URL,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
    )
    process = await start_bot(env, tmp_path)
    try:
        await telegram.wait_for(lambda: telegram.webhook, timeout=30)
        await telegram.wait_for(lambda: heartbeat_path(data_dir).exists(), timeout=15)
        telegram.user_sends_text(ana_chat, ana, "/help")
        (update,) = telegram.take_updates()
        url = f"http://127.0.0.1:{port}/telegram-hook"
        assert await post_update(url, update, SECRET) == 200
        await telegram.wait_for(lambda: telegram.last_message(ana_chat), timeout=15)
        # The health check sees a fresh heartbeat and knocks on the webhook port.
        health = await run_cli("health", env=env, cwd=tmp_path)
        assert health.returncode == 0, health.stdout + health.stderr
        assert health.stdout.startswith("healthy: webhook")
    finally:
        logs = await stop_process(process)
    assert process.returncode == 0, logs
    assert "webhook mode" in logs
    # Neither the webhook secret nor the token reach the logs, even at DEBUG.
    assert SECRET not in logs and telegram.token not in logs
    assert not telegram.calls_to("getUpdates")


async def test_a_busy_webhook_port_is_one_clear_line(
    telegram: FakeTelegram, openai_fake, tmp_path, data_dir
) -> None:
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_environment(
            TELEGRAM_BOT_TOKEN=telegram.token,
            TELEGRAM_API_BASE_URL=telegram.base_url,
            OPENAI_API_KEY=openai_fake.api_key,
            OPENAI_BASE_URL=openai_fake.base_url,
            DATABASE_PATH=str(data_dir / "refinebot.db"),
            WEBHOOK_URL=PUBLIC_URL,
            WEBHOOK_SECRET=SECRET,
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
        )
        finished = await run_cli(env=env, cwd=tmp_path)
    assert finished.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr
    assert SECRET not in finished.stderr


async def test_webhook_url_without_secret_refuses_to_start(tmp_path) -> None:
    env = clean_environment(
        TELEGRAM_BOT_TOKEN="123:abc", OPENAI_API_KEY="sk-x", WEBHOOK_URL=PUBLIC_URL
    )
    finished = await run_cli(env=env, cwd=tmp_path)
    assert finished.returncode == 2
    text = finished.stderr.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text
    assert "WEBHOOK_SECRET is required" in text

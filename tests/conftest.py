"""Fixtures: the local fakes, settings pointing at them, and the real bot running against them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram.ext import Application

from bot.app import build_application
from bot.config import Settings
from storage.store import Store
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.stability_server import FakeStability
from tests.fakes.telegram_server import FakeTelegram

ANA_ID = 1001
BOB_ID = 1002


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def stability_fake() -> AsyncIterator[FakeStability]:
    async with FakeStability() as fake:
        yield fake


@pytest.fixture
async def stability_http(stability_fake: FakeStability) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the Stability fake with the key and `accept` header the API wants."""
    headers = {"authorization": f"Bearer {stability_fake.api_key}", "accept": "image/*"}
    async with httpx.AsyncClient(base_url=stability_fake.base_url, headers=headers) as session:
        yield session


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real store on a temporary SQLite file (the domain tests' database)."""
    store = await Store.open(tmp_path / "refine.db")
    yield store
    await store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_settings(
    telegram: FakeTelegram,
    openai_fake: FakeOpenAI,
    stability_fake: FakeStability,
    data_dir: Path,
) -> Callable[..., Settings]:
    """Return a factory of Settings that point at the fakes; keyword overrides win."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            telegram_bot_token=telegram.token,
            telegram_api_base_url=telegram.base_url,
            telegram_file_base_url=telegram.base_file_url,
            openai_api_key=openai_fake.api_key,
            openai_base_url=openai_fake.base_url,
            critic_base_url=None,
            critic_api_key=None,
            stability_api_key=stability_fake.api_key,
            stability_api_base_url=stability_fake.base_url,
            database_path=data_dir / "refinebot.db",
            admin_user_ids=str(ANA_ID),
            allowed_user_ids="",
            allowed_chat_ids="",
            image_timeout=10,
            critic_timeout=10,
            # The suite pins today's messages (a photo, one caption edit); previews, which
            # stream and edit the photo once more, are tested in test_e2e_previews.py.
            image_previews=0,
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


class BotRunner:
    """Starts and stops the real Application the way `run_polling` does, in this event loop."""

    def __init__(self) -> None:
        self.running: list[Application] = []

    async def start(self, settings: Settings) -> Application:
        app = build_application(settings)
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.updater.start_polling(timeout=1, poll_interval=0)
        await app.start()
        self.running.append(app)
        return app

    async def stop(self, app: Application) -> None:
        self.running.remove(app)
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)

    async def stop_all(self) -> None:
        for app in list(self.running):
            await self.stop(app)


@pytest.fixture
async def bots() -> AsyncIterator[BotRunner]:
    runner = BotRunner()
    yield runner
    await runner.stop_all()


@pytest.fixture
async def bot(bots: BotRunner, make_settings: Callable[..., Settings]) -> Application:
    """The bot with default settings (openai backend), running against the fakes."""
    return await bots.start(make_settings())


@pytest.fixture
def ana(telegram: FakeTelegram) -> dict:
    return telegram.make_user(ANA_ID, "Ana", username="ana", language_code="en")


@pytest.fixture
def ana_chat(telegram: FakeTelegram, ana: dict) -> dict:
    return telegram.private_chat(ana)

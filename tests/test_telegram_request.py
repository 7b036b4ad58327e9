"""The Bot API transport (bot/telegram_request.py) through a real PTB Bot and the Telegram fake:
uploads and downloads, timeouts, lost connections, proxies from the environment, lifecycle."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from telegram import Bot, InputFile
from telegram.error import NetworkError, TimedOut

from bot.telegram_request import AiohttpRequest
from tests.fakes.pngs import solid_png
from tests.fakes.telegram_server import FakeTelegram

MakeBot = Callable[..., Bot]


@pytest.fixture
async def make_bot(telegram: FakeTelegram) -> AsyncIterator[MakeBot]:
    """Return a factory of initialized-on-use Bots on an AiohttpRequest; shuts them down."""
    made: list[Bot] = []

    def make(base_url: str | None = None, **request_options: float | int | None) -> Bot:
        made.append(
            Bot(
                telegram.token,
                base_url=base_url or telegram.base_url,
                base_file_url=telegram.base_file_url,
                request=AiohttpRequest(**request_options),  # type: ignore[arg-type]
            )
        )
        return made[-1]

    yield make
    for bot in made:
        await bot.shutdown()


async def test_messages_uploads_and_downloads_round_trip(
    telegram: FakeTelegram, make_bot: MakeBot, ana_chat: dict
) -> None:
    bot = make_bot()
    await bot.initialize()
    text = await bot.send_message(ana_chat["id"], "ünïcode &amp; <b>bold</b>", parse_mode="HTML")
    assert text.text == "ünïcode & bold"

    png = solid_png(64, 48)
    photo = await bot.send_document(
        ana_chat["id"], InputFile(png, filename="sample.png"), caption="a file"
    )
    upload = telegram.calls_to("sendDocument")[-1]
    assert upload.files == {"document": png}
    assert upload.params["caption"] == "a file"

    assert photo.document is not None
    file = await bot.get_file(photo.document.file_id)
    assert bytes(await file.download_as_bytearray()) == png


async def test_a_slow_answer_times_out(
    telegram: FakeTelegram, make_bot: MakeBot, ana_chat: dict
) -> None:
    bot = make_bot(read_timeout=0.2)
    await bot.initialize()
    telegram.latency = 1.0
    with pytest.raises(TimedOut):
        await bot.send_message(ana_chat["id"], "hello")
    # A call's own read timeout wins over the default.
    assert await bot.send_message(ana_chat["id"], "patient", read_timeout=3.0)


async def test_waiting_for_a_free_connection_times_out_unsent(
    telegram: FakeTelegram, make_bot: MakeBot, ana_chat: dict
) -> None:
    bot = make_bot(connection_pool_size=1, pool_timeout=0.1, connect_timeout=0.1)
    await bot.initialize()
    telegram.latency = 1.0
    first = asyncio.create_task(bot.send_message(ana_chat["id"], "first"))
    await asyncio.sleep(0.3)  # the first call holds the only connection for a second
    with pytest.raises(TimedOut, match="not sent"):
        await bot.send_message(ana_chat["id"], "second")
    await first
    assert [c.params["text"] for c in telegram.calls_to("sendMessage")] == ["first"]


async def test_a_dropped_connection_is_a_network_error_without_the_token(
    telegram: FakeTelegram, make_bot: MakeBot, ana_chat: dict
) -> None:
    bot = make_bot()
    await bot.initialize()
    telegram.fail_next("sendMessage", drop_connection=True)
    with pytest.raises(NetworkError) as lost:
        await bot.send_message(ana_chat["id"], "hello")
    assert not isinstance(lost.value, TimedOut)
    assert await bot.send_message(ana_chat["id"], "hello again")  # a new connection

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = make_bot(base_url=f"http://127.0.0.1:{port}/bot")
    with pytest.raises(NetworkError) as refused:
        await unreachable.initialize()
    misconfigured = make_bot(base_url=telegram.base_url.replace("http://", "ftp://"))
    with pytest.raises(NetworkError) as invalid:  # aiohttp quotes the whole URL here
        await misconfigured.initialize()
    for error in (lost.value, refused.value, invalid.value):
        assert telegram.token not in str(error)
        assert telegram.token.split(":")[1] not in str(error)


async def test_a_proxy_from_the_environment_is_used_unless_bypassed(
    telegram: FakeTelegram, make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake answers proxied (absolute-form) requests too, so it stands in for the proxy:
    # the host below does not resolve, only the proxy can reach "it".
    hidden = "http://api.telegram.invalid/bot"
    proxy = telegram.base_url.split("/bot")[0]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    through_proxy = make_bot(base_url=hidden)
    await through_proxy.initialize()
    assert (await through_proxy.get_me()).username == telegram.bot_username

    monkeypatch.setenv("NO_PROXY", "api.telegram.invalid")
    direct = make_bot(base_url=hidden)
    with pytest.raises(NetworkError):
        await direct.initialize()


async def test_shutdown_and_initialize_again(telegram: FakeTelegram, ana_chat: dict) -> None:
    request = AiohttpRequest()
    bot = Bot(telegram.token, base_url=telegram.base_url, request=request)
    async with bot:
        assert await bot.send_message(ana_chat["id"], "one")
    await request.shutdown()  # twice is fine
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{telegram.base_url}{telegram.token}/getMe", "POST")
    async with bot:
        assert await bot.send_message(ana_chat["id"], "two")

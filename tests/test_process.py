"""`python -m bot` as a real process: configured only by environment keys, pointed at the fakes."""

from __future__ import annotations

import asyncio
import re

from tests.cli_helpers import clean_environment, fakes_environment, kill_bot, start_bot, stop_bot
from tests.conftest import ANA_ID
from tests.fakes.openai_server import OpenAIFault
from tests.helpers import next_round, next_text, stored_message_ids


async def test_run_stop_restart_keeps_history(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    process = await start_bot(env, tmp_path)
    try:
        # An error path too, so its logs are searched for secrets as well.
        openai_fake.fail_next("images", OpenAIFault.invalid_api_key())
        telegram.user_sends_text(ana_chat, ana, "ceramic vase")
        await next_text(telegram, ana_chat, "rejected the bot's API key")
        telegram.user_sends_text(ana_chat, ana, "ceramic vase with dried flowers")
        round1 = await next_round(telegram, ana_chat)
    finally:
        logs = await stop_bot(process)
    assert process.returncode == 0, logs
    # The token and the keys never reach the logs, even at DEBUG.
    assert telegram.token not in logs and openai_fake.api_key not in logs
    assert "image failed: image: auth" in logs
    assert "event loop: uvloop" in logs  # not asyncio's own: ~10 % less CPU a round (bench/)
    # One line ends each round, with its ids, timings and estimated cost.
    assert f"round end chat={ANA_ID} session=2 round=2 number=1 status=done" in logs
    assert re.search(r"round end .* generate_ms=\d+ critique_ms=\d+ cost_usd=0\.\d{4}", logs)

    process = await start_bot(env, tmp_path)
    try:
        telegram.user_presses(ana_chat, ana, round1, "Accept")
        round2 = await next_round(telegram, ana_chat, after=round1.message_id)
        assert "Round 2" in round2.plain
        telegram.user_presses(ana_chat, ana, round2, "Stop")
        await telegram.wait_for(lambda: any(m.document for m in telegram.messages(ana_chat["id"])))
        telegram.user_sends_text(ana_chat, ana, "/history")
        history = await next_text(telegram, ana_chat, "Session", after=round2.message_id)
        assert "2 rounds" in history.plain and "stopped" in history.plain
    finally:
        logs = await stop_bot(process)
    assert telegram.token not in logs and openai_fake.api_key not in logs
    assert telegram.commands  # the command list was registered at start-up


async def test_missing_token_is_one_clear_line(tmp_path) -> None:
    process = await start_bot(clean_environment(), tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    text = stderr.decode().strip()
    assert process.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is missing" in text and ".env" in text
    assert "Traceback" not in text and len(text.splitlines()) == 1


async def test_rejected_token_is_one_clear_line(telegram, openai_fake, tmp_path, data_dir) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir, TELEGRAM_BOT_TOKEN="999:wrong")
    process = await start_bot(env, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    text = stderr.decode()
    assert process.returncode == 2
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in text
    assert "999:wrong" not in text


async def test_crash_before_the_image_offers_retry(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    openai_fake.image_latency = 60
    process = await start_bot(env, tmp_path)
    telegram.user_sends_text(ana_chat, ana, "/new rattan lamp")
    await telegram.wait_for(lambda: openai_fake.requests_to("images"), timeout=30)
    await kill_bot(process)

    openai_fake.image_latency = 0
    process = await start_bot(env, tmp_path)
    try:
        notice = await next_text(telegram, ana_chat, "interrupted by a restart")
        assert notice.buttons == [["🔁 Retry"]]
        telegram.user_presses(ana_chat, ana, notice, "Retry")
        round2 = await next_round(telegram, ana_chat, after=notice.message_id)
        assert "Round 2" in round2.plain
    finally:
        await stop_bot(process)


async def test_crash_after_the_image_delivers_it_without_paying_again(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    openai_fake.chat_latency = 60
    process = await start_bot(env, tmp_path)
    telegram.user_sends_text(ana_chat, ana, "/new rattan lamp")
    photo = await telegram.wait_for(
        lambda: (
            openai_fake.requests_to("chat")
            and next((m for m in telegram.messages(ana_chat["id"]) if m.photo), None)
        ),
        timeout=30,
    )
    await telegram.wait_for(lambda: stored_message_ids(data_dir) == [photo.message_id])
    await kill_bot(process)
    assert not photo.buttons  # the critique never arrived

    openai_fake.chat_latency = 0
    process = await start_bot(env, tmp_path)
    try:
        await telegram.wait_for(lambda: telegram.message(ana_chat["id"], photo.message_id).buttons)
        resumed = telegram.message(ana_chat["id"], photo.message_id)
        assert "/10" in resumed.plain and "Round 1" in resumed.plain
        assert len(openai_fake.requests_to("images")) == 1  # delivered, not drawn again
    finally:
        await stop_bot(process)

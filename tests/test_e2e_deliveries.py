"""Deliveries that must arrive although Telegram, the process or the machine failed meanwhile.

What a round must still send (its photo with the critique and buttons, Stop's document, an
interrupted autopilot run's ending) is owed in the database (storage/deliveries.py) and sent
by the redelivery pass (bot/chat/redelivery.py) at start and every few seconds while the bot
runs. Each test here is one row of README → Reliability.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.chat import messenger, redelivery
from storage.records import RoundStatus
from tests.cli_helpers import fakes_environment, kill_bot, start_bot, stop_bot
from tests.helpers import next_round, next_text, toast
from tests.test_e2e_autopilot import paid_images, scripted_critic

BRIEF = "canvas tote on a plain backdrop"


def database_rows(data_dir: Path, sql: str) -> list[tuple]:
    """Read straight from the bot's database (WAL, read-only), as another process would."""
    path = data_dir / "refinebot.db"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the bot has not created its tables yet
            return []


def owed(data_dir: Path) -> list[str]:
    sql = "SELECT key FROM deliveries WHERE delivered_at IS NULL ORDER BY key"
    return [row[0] for row in database_rows(data_dir, sql)]


async def wait_until(condition, within: float = 30.0) -> None:
    """Poll a condition on the database until it holds (for at most `within` seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_round_telegram_cannot_take_for_minutes_arrives_when_it_answers_again(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir, monkeypatch
) -> None:
    # The view gives up on the photo quickly here (it waits minutes in production); the
    # redelivery pass keeps trying and delivers it, with its critique and buttons.
    monkeypatch.setattr(messenger, "DELIVERY_PATIENCE", 0.2)
    monkeypatch.setattr(redelivery, "REDELIVERY_EVERY", 0.3)
    await bots.start(make_settings())
    telegram.fail_next("sendPhoto", drop_connection=True, count=8)
    telegram.user_sends_text(ana_chat, ana, "/new " + BRIEF)
    await wait_until(
        lambda: database_rows(data_dir, "SELECT status FROM rounds") == [(RoundStatus.DONE,)]
    )
    assert owed(data_dir) == ["round:1"]  # done, paid and critiqued, but not in the chat
    round1 = await next_round(telegram, ana_chat)
    assert "Round 1" in round1.plain and "/10" in round1.plain
    assert round1.buttons[0] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    await wait_until(lambda: owed(data_dir) == [])
    [(message_id,)] = database_rows(data_dir, "SELECT message_id FROM rounds")
    assert message_id == round1.message_id  # the buttons on it find their round
    assert len(openai_fake.requests_to("images")) == 1  # delivered, never drawn again


async def test_a_round_finished_while_telegram_was_down_arrives_after_a_restart(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    process = await start_bot(env, tmp_path)
    try:
        telegram.fail_next("sendPhoto", drop_connection=True, count=10_000)
        telegram.user_sends_text(ana_chat, ana, "/new " + BRIEF)
        # The round gives up on Telegram after DELIVERY_PATIENCE and ends, critiqued.
        await wait_until(
            lambda: database_rows(data_dir, "SELECT status FROM rounds") == [(RoundStatus.DONE,)]
        )
        assert owed(data_dir) == ["round:1"]
    finally:
        await kill_bot(process)  # a crash while Telegram was still unreachable
    telegram.clear_faults()
    process = await start_bot(env, tmp_path)
    try:
        round1 = await next_round(telegram, ana_chat)
        await wait_until(lambda: owed(data_dir) == [])
    finally:
        await stop_bot(process)
    assert "Round 1" in round1.plain and "/10" in round1.plain
    assert "✅ Accept" in round1.flat_buttons
    assert len(openai_fake.requests_to("images")) == 1


async def test_stops_document_cut_short_by_a_shutdown_arrives_after_the_restart(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    process = await start_bot(env, tmp_path)
    try:
        telegram.user_sends_text(ana_chat, ana, "/new " + BRIEF)
        round1 = await next_round(telegram, ana_chat)
        telegram.fail_next("sendDocument", drop_connection=True, delay=60)  # a stalled upload
        await toast(telegram, telegram.user_presses(ana_chat, ana, round1, "Stop"))
        await wait_until(lambda: owed(data_dir) == ["document:1"])
        # SIGTERM, then the supervisor's stop timeout runs out while the upload stalls.
        process.send_signal(15)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), timeout=2)
    finally:
        await kill_bot(process)
    telegram.clear_faults()
    process = await start_bot(env, tmp_path)
    try:
        final = await telegram.wait_for(
            lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.document), None),
            timeout=20,
        )
        await wait_until(lambda: owed(data_dir) == [])
        # The session ended with this round: its buttons say so, and Stop sends nothing more.
        await toast(telegram, telegram.user_presses(ana_chat, ana, round1, "Accept"))
    finally:
        await stop_bot(process)
    assert "Kept round 1" in final.plain
    assert len([m for m in telegram.messages(ana_chat["id"]) if m.document]) == 1
    [(final_id,)] = database_rows(data_dir, "SELECT final_message_id FROM sessions")
    assert final_id == final.message_id


async def test_a_crash_mid_autopilot_ends_its_progress_message_and_shows_the_best_round(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir, AUTOPILOT_DRAFTS="1")

    def hold_the_next_drawing(calls: int) -> None:
        openai_fake.image_latency = 60  # round 1 is judged; round 2 is drawn, never finished

    openai_fake.critic = scripted_critic([5, 5, 5], on_call=hold_the_next_drawing)
    process = await start_bot(env, tmp_path)
    try:
        telegram.user_sends_text(ana_chat, ana, "/auto 3 " + BRIEF)
        await telegram.wait_for(lambda: paid_images(openai_fake) == 2, timeout=20)
        progress = await next_text(telegram, ana_chat, "Autopilot")
    finally:
        await kill_bot(process)
    openai_fake.image_latency = 0
    process = await start_bot(env, tmp_path)
    try:
        ended = await telegram.wait_for(
            lambda: (
                (m := telegram.message(ana_chat["id"], progress.message_id))
                and "interrupted by a restart" in m.plain
                and m
            ),
            timeout=20,
        )
        best = await next_round(telegram, ana_chat, after=progress.message_id)
        retry = await next_text(telegram, ana_chat, "Round 2 was interrupted")
        await wait_until(lambda: owed(data_dir) == [])
    finally:
        await stop_bot(process)
    assert "round 1" in ended.plain
    assert "Round 1" in best.plain and "✅ Accept" in best.flat_buttons
    assert retry.buttons == [["🔁 Retry"]]
    assert paid_images(openai_fake) == 2  # nothing drawn again

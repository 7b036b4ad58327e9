"""Small waits on the Telegram fake that read like what a user sees."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import BotMessage, FakeTelegram


async def next_round(telegram: FakeTelegram, chat: dict, after: int = 0) -> BotMessage:
    """Wait for a round photo (with its Accept/Edit/Stop keyboard) newer than message `after`."""

    def finished_round() -> BotMessage | None:
        for message in telegram.messages(chat["id"], include_deleted=False):
            if message.message_id > after and message.photo is not None and message.buttons:
                return message
        return None

    return await telegram.wait_for(finished_round, timeout=15)


async def next_text(
    telegram: FakeTelegram, chat: dict, contains: str, after: int = 0
) -> BotMessage:
    """Wait for a bot text message whose visible text contains `contains`, newer than `after`."""

    def match() -> BotMessage | None:
        for message in telegram.messages(chat["id"], include_deleted=False):
            if (
                message.message_id > after
                and message.text is not None
                and contains.lower() in message.plain.lower()
            ):
                return message
        return None

    return await telegram.wait_for(match, timeout=15)


async def toast(telegram: FakeTelegram, query_id: str) -> str:
    """Wait for the answer to a button press; return its text ('' when answered silently)."""
    answer = await telegram.wait_for(lambda: telegram.callback_answers.get(query_id), timeout=15)
    return answer.get("text") or ""


async def history_of_latest_session(telegram: FakeTelegram, chat: dict, user: dict) -> BotMessage:
    """Send /history, choose the newest session, and return the message showing its rounds."""
    last = telegram.last_message(chat["id"])
    telegram.user_sends_text(chat, user, "/history")
    page = await next_text(telegram, chat, "Sessions", after=last.message_id if last else 0)
    telegram.user_presses(chat, user, page, "#")
    return await telegram.wait_for(
        lambda: (
            (m := telegram.message(chat["id"], page.message_id)).plain.startswith("Session #") and m
        )
    )


def stored_message_ids(data_dir: Path) -> list[int | None]:
    """Read the rounds' message ids straight from the bot's database (WAL, read-only)."""
    with sqlite3.connect(f"file:{data_dir / 'refinebot.db'}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT message_id FROM rounds ORDER BY id")]


async def occupy_the_only_slot(
    telegram: FakeTelegram, openai_fake: FakeOpenAI, latency: float
) -> dict:
    """With MAX_ROUNDS_IN_FLIGHT=1: start a round in a chat of its own whose image takes
    `latency` seconds, and return that chat once the round holds the slot."""
    openai_fake.image_latency = latency
    user = telegram.make_user(61_000, "Busy")
    chat = telegram.private_chat(user)
    telegram.user_sends_text(chat, user, "/new teak tray")
    await telegram.wait_for(lambda: openai_fake.requests_to("images"))
    return chat


async def acknowledged(telegram: FakeTelegram, chat: dict, message: dict) -> None:
    """Wait until the bot has reacted to the message (its round was accepted)."""
    await telegram.wait_for(lambda: (chat["id"], message["message_id"]) in telegram.reactions)

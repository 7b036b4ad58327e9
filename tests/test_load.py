"""Load (not timed): 100 chats × 3 rounds at once with 20% injected backend errors.

Every session ends in a finished round or a clear error message, no chat ever receives
another chat's image (each image carries the prompt it was drawn from), and nothing reaches
python-telegram-bot's error handler.
"""

from __future__ import annotations

import asyncio
import logging
import random

from tests.fakes.faults import Fault
from tests.fakes.openai_server import OpenAIFault
from tests.fakes.pngs import prompt_of

CHATS = 100
ROUNDS = 3
ERROR_RATE = 0.2
CLEAR_ERRORS = ("Round", "blocked", "API key", "busy", "did not answer", "refused", "unusable")


def injected_faults(seed: int = 7):
    rng = random.Random(seed)
    faults = [
        OpenAIFault.server_error(),
        OpenAIFault.rate_limit(retry_after_ms=5),
        OpenAIFault.moderation(),
        Fault.drop_connection(),
    ]

    def chaos(endpoint: str) -> Fault | None:
        return rng.choice(faults) if rng.random() < ERROR_RATE else None

    return chaos


async def one_user(telegram, index: int) -> list[str]:
    """Play three rounds in one chat; return how each ended ('round' or the error text)."""
    user = telegram.make_user(50_000 + index, f"User{index}")
    chat = telegram.private_chat(user)
    endings: list[str] = []
    telegram.user_sends_text(chat, user, f"/new product {index}, studio shot")
    after = 0
    while len(endings) < ROUNDS:

        def ended(after: int = after):
            for message in telegram.messages(chat["id"], include_deleted=False):
                if message.message_id > after and message.buttons:
                    return message
            return None

        message = await telegram.wait_for(ended, timeout=120)
        after = message.message_id
        if message.photo is not None:
            endings.append("round")
            label = "Accept"
        else:
            endings.append(message.plain)
            label = "Retry"
        if len(endings) < ROUNDS:
            telegram.user_presses(chat, user, message, label)
    return endings


async def test_hundred_chats_three_rounds_with_faults(
    telegram, openai_fake, bots, make_settings, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    await bots.start(make_settings(allowed_user_ids="*", quota_rounds_per_user_per_day=0))
    openai_fake.chaos = injected_faults()
    telegram.render_photo_sizes = False  # keep the fake cheap; the bot is under test

    endings = await asyncio.gather(*(one_user(telegram, i) for i in range(CHATS)))

    flat = [ending for chat in endings for ending in chat]
    assert len(flat) == CHATS * ROUNDS
    assert "round" in flat
    errors = [e for e in flat if e != "round"]
    assert errors, "the injected faults should have failed some rounds"
    for error in errors:
        assert error.startswith("⚠️ Round") and any(word in error for word in CLEAR_ERRORS)

    for index in range(CHATS):
        for message in telegram.messages(50_000 + index):
            for image in (message.photo, message.document):
                if image is not None:
                    assert f"product {index}," in prompt_of(image)

    assert "error while handling an update" not in caplog.text

"""Long captions end to end: Telegram counts a caption's 1024 and a text's 4096 in UTF-16 code
units of the visible text (the fake does too), and whatever Telegram still refuses as too long,
a round ends with its buttons and its whole critique readable."""

from __future__ import annotations

from typing import Any

import pytest
from telegram.error import BadRequest

from bot.chat.captions import is_too_long
from bot.ui.rounds import CRITIQUE_BELOW
from tests.fakes.openai_server import default_critic
from tests.fakes.telegram_server import (
    CAPTION_TOO_LONG,
    MAX_CAPTION_LENGTH,
    MAX_TEXT_LENGTH,
    TEXT_TOO_LONG,
    BotMessage,
    FakeTelegram,
    utf16_len,
)
from tests.helpers import next_round, next_text

ROUND_BUTTONS = ["✅ Accept", "✏️ Edit", "⏹ Stop"]

# Each of these is one Python character and two UTF-16 code units.
LEAF, CAMERA, THREAD, WOOD = "🌿", "📸", "🧵", "🪵"


def critic_saying(**fields: Any):
    """The default fake critic, with these fields of its answer replaced."""

    def critic(body: dict[str, Any]) -> dict[str, Any]:
        return {**default_critic(body), "score": 6, **fields}

    return critic


def texts_below(telegram: FakeTelegram, chat: dict, photo: BotMessage) -> list[BotMessage]:
    """The text messages the bot sent answering the round's photo, in order."""
    return [
        m
        for m in telegram.messages(chat["id"], include_deleted=False)
        if m.kind == "text" and m.reply_to_message_id == photo.message_id
    ]


async def critique_below(
    telegram: FakeTelegram, chat: dict, photo: BotMessage, last_words: str
) -> list[BotMessage]:
    """Wait until the texts below the photo end with `last_words`; return them."""

    def arrived() -> list[BotMessage] | None:
        texts = texts_below(telegram, chat, photo)
        return texts if texts and texts[-1].plain.endswith(last_words) else None

    return await telegram.wait_for(arrived, timeout=15)


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("description", "too_long"),
    [
        (CAPTION_TOO_LONG, True),
        (TEXT_TOO_LONG, True),
        ("Bad Request: MEDIA_CAPTION_TOO_LONG", True),  # Telegram's servers' own word
        ("Bad Request: MESSAGE_TOO_LONG", True),
        ("Bad Request: text is too long", True),
        ("Bad Request: reply markup is too long", False),  # shortening the text won't help
        ("Bad Request: message is not modified", False),
        ("Bad Request: message to edit not found", False),
    ],
)
def test_which_refusals_count_as_too_long(description: str, too_long: bool) -> None:
    # PTB drops "Bad Request: " and capitalizes the rest, as it does for the real API.
    error = BadRequest(description.removeprefix("Bad Request: ").capitalize())
    assert is_too_long(error) is too_long


async def test_an_emoji_critique_python_counts_as_fitting_still_gets_its_buttons(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    """Before: the caption was measured in Python characters, fitted 1024 of them, and was
    refused by Telegram (1125 UTF-16 code units); the photo stayed "critiquing…" without
    buttons."""
    strengths = [LEAF * 40 + " soft natural light", LEAF * 40 + " the weave shows"]
    problems = [CAMERA * 60 + f" the label is blurred {n}" for n in range(3)]
    suggestion = (THREAD + " linen shirt on oak ") * 20
    openai_fake.critic = critic_saying(
        strengths=strengths, problems=problems, revised_prompt=suggestion
    )
    # The caption's parts: within 1024 Python characters, not within 1024 UTF-16 code units.
    everything = "\n".join(
        ["Round 1 · 6/10 · ↻ new picture", *strengths, *problems, "Suggested next prompt:"]
    )
    everything += suggestion
    assert len(everything) <= MAX_CAPTION_LENGTH < utf16_len(everything)

    telegram.user_sends_text(ana_chat, ana, "/new linen shirt on an oak table")
    photo = await next_round(telegram, ana_chat)

    assert photo.buttons[0] == ROUND_BUTTONS
    caption = photo.plain
    assert utf16_len(caption) <= MAX_CAPTION_LENGTH
    assert caption.startswith("Round 1 · 6/10") and "critiquing" not in caption
    for line in strengths + problems:  # what works and what doesn't, in full
        assert line in caption
    # The suggestion is shortened last, between two emoji, never through one.
    shown = caption.split("Suggested next prompt:\n")[1]
    assert shown.endswith("…") and one_line(suggestion).startswith(shown[:-1])
    assert all(call.ok for call in telegram.calls_to("editMessageCaption"))


async def test_a_caption_refused_as_too_long_becomes_a_short_one_with_the_critique_below(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    """Telegram refuses the critique's caption as too long, short as it is: the photo gets
    the score, the buttons and "the critique is below", and the critique follows as a text
    answering the photo. Before: the refusal was logged and the photo kept "critiquing…"."""
    openai_fake.critic = critic_saying()
    telegram.fail_next("editMessageCaption", description=CAPTION_TOO_LONG)
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt, flat lay")
    photo = await next_round(telegram, ana_chat)

    assert photo.buttons[0] == ROUND_BUTTONS and photo.buttons[1] == ["🔁 Auto", "🎨 Redraw"]
    assert photo.plain.startswith("Round 1 · 6/10")
    assert CRITIQUE_BELOW.removeprefix("💬 ") in photo.plain
    [below] = await critique_below(telegram, ana_chat, photo, "softer studio lighting")
    assert below.plain.startswith("Round 1 · 6/10")
    assert "✓ clear product shot" in below.plain and "✗ lighting is flat" in below.plain
    assert "Suggested next prompt:\nlinen shirt, flat lay, softer studio lighting" in below.plain
    assert [c.ok for c in telegram.calls_to("editMessageCaption")] == [False, True]

    # The buttons work: Accept runs the next round.
    telegram.user_presses(ana_chat, ana, photo, "Accept")
    round2 = await next_round(telegram, ana_chat, after=below.message_id)
    assert round2.plain.startswith("Round 2")


async def test_refused_again_the_photo_keeps_its_buttons_and_a_long_critique_comes_in_parts(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    """The short caption refused too: the photo loses its caption, never its buttons. The
    whole critique (over 4096 UTF-16 code units) follows in parts, and a part Telegram refuses
    as too long is split again."""
    strengths = [f"{LEAF} strength {n} " + THREAD * 100 for n in range(6)]
    problems = [f"{CAMERA} problem {n} " + WOOD * 150 for n in range(8)]
    suggestion = f"linen shirt {THREAD} on oak, " * 150
    openai_fake.critic = critic_saying(
        strengths=strengths, problems=problems, revised_prompt=suggestion
    )
    telegram.fail_next("editMessageCaption", description=CAPTION_TOO_LONG, count=2)
    telegram.fail_next("sendMessage", description=TEXT_TOO_LONG)
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt on oak")
    photo = await next_round(telegram, ana_chat)

    assert photo.buttons[0] == ROUND_BUTTONS
    assert photo.plain == ""  # no caption rather than no buttons
    texts = await critique_below(telegram, ana_chat, photo, suggestion.strip()[-20:])
    assert len(texts) >= 3  # 7000 code units, and the first part was split again
    assert all(utf16_len(t.plain) <= MAX_TEXT_LENGTH for t in texts)
    whole = "".join(t.plain for t in texts)  # a part may end in the middle of a line
    assert whole.startswith("Round 1 · 6/10")
    for line in strengths + problems:
        assert one_line(line) in whole
    assert suggestion.strip() in whole  # not shortened
    refused = [c for c in telegram.calls_to("sendMessage") if not c.ok]
    assert [c.description for c in refused] == [TEXT_TOO_LONG]


async def test_the_autopilot_best_image_refused_as_too_long_keeps_its_buttons(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    """Before: the refused photo was sent again as a preview with the same caption, refused
    again, and the run ended without its best image."""
    openai_fake.critic = critic_saying()
    telegram.fail_next("sendPhoto", description=CAPTION_TOO_LONG, count=2)
    telegram.user_sends_text(ana_chat, ana, "/auto 1 leather wallet on dark slate")
    progress = await next_text(telegram, ana_chat, "Autopilot")
    best = await next_round(telegram, ana_chat, after=progress.message_id)

    assert best.buttons[0] == ROUND_BUTTONS
    [below] = await critique_below(telegram, ana_chat, best, "softer studio lighting")
    assert below.plain.startswith("Round 1 · ") and "✗ lighting is flat" in below.plain
    assert [c.ok for c in telegram.calls_to("sendPhoto")] == [False, False, True]


async def test_the_critiquing_photo_refused_as_too_long_still_ends_with_buttons(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    """The photo sent while the critic looks goes out without its caption; the critique is
    then its caption, with the buttons (on one photo, not two)."""
    openai_fake.critic = critic_saying()
    telegram.fail_next("sendPhoto", description=CAPTION_TOO_LONG, count=1)
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt, flat lay")
    photo = await next_round(telegram, ana_chat)

    assert photo.buttons[0] == ROUND_BUTTONS and photo.plain.startswith("Round 1 · 6/10")
    photos = [m for m in telegram.messages(ana_chat["id"]) if m.kind == "photo"]
    assert photos == [photo]
    assert photo.history and "caption" not in photo.history[0]

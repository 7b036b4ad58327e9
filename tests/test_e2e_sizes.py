"""Pictures of another size than asked, through the real Application against the fakes: one
too small or too thin to use is billed but never stored, and the round ends with a sentence
naming both sizes and a Retry; a usable one of another size is kept, its caption saying so, and
Stop's document states its real pixel size. The size asked for is what the request sent
(`size` for the Images API, `aspect_ratio` for Stability, whose native sizes per ratio are the
ratio asked for)."""

from __future__ import annotations

import base64
import io
import sqlite3
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.faults import Fault
from tests.fakes.pngs import render_image
from tests.helpers import next_round, next_text, toast

BRIEF = "/new walnut desk organiser, soft light"
NOTE = "server returned 640×480, not the 1024×1024 asked for"


def answer_with(width: int, height: int) -> Fault:
    """A 200 from /v1/images/generations as the real API's ImagesResponse (openai 3.60,
    types/images_response.py, `data` of types/image.py `b64_json`, `size`, `usage`), whose
    picture is `width` x `height` whatever size was asked for."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(out, "PNG")
    usage = {
        "input_tokens": 20,
        "output_tokens": 1056,
        "total_tokens": 1076,
        "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
    }
    body = {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(out.getvalue()).decode()}],
        "size": "1024x1024",
        "usage": usage,
    }
    return Fault(status=200, body=body)


def stored(data_dir: Path, sql: str) -> list[tuple]:
    """Rows straight from the bot's database (read-only)."""
    with sqlite3.connect(f"file:{data_dir / 'refinebot.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


async def stop_document(telegram, chat: dict, user: dict, round_message) -> object:
    """Press Stop on the round; return the document message it sends."""
    await toast(telegram, telegram.user_presses(chat, user, round_message, "Stop"))
    return await telegram.wait_for(
        lambda: next((m for m in telegram.messages(chat["id"]) if m.document), None)
    )


@pytest.mark.parametrize(
    ("width", "height", "sentence"),
    [
        (1, 1, "a 1×1 picture instead of the 1024×1024 asked for: too small to use"),
        (1, 10_000, "a 1×10000 picture instead of the 1024×1024 asked for: too small to use"),
        (100, 10_000, "a 100×10000 picture instead of the 1024×1024 asked for: too thin to use"),
    ],
)
async def test_a_degenerate_picture_is_billed_refused_and_offers_retry(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir, width, height, sentence
) -> None:
    await bots.start(make_settings())
    openai_fake.fail_next("images", answer_with(width, height))
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    failed = await next_text(telegram, ana_chat, "sent back a")
    assert failed.plain == f"⚠️ Round 1: The image service sent back {sentence}. Try again."
    assert failed.buttons == [["🔁 Retry"]]
    assert openai_fake.requests_to("chat") == []  # never critiqued
    assert stored(data_dir, "SELECT image_sha, error_kind FROM rounds") == [(None, "bad_size")]
    assert stored(data_dir, "SELECT image_sha FROM drafts") == [(None,)]
    assert stored(data_dir, "SELECT count(*) FROM images") == [(0,)]
    assert stored(data_dir, "SELECT kind, round_id FROM usage") == [("image", 1)]  # billed
    telegram.user_sends_text(ana_chat, ana, "/usage")
    await next_text(telegram, ana_chat, "1 images", after=failed.message_id)

    telegram.user_presses(ana_chat, ana, failed, "Retry")  # the next answer is a normal one
    round2 = await next_round(telegram, ana_chat, after=failed.message_id)
    assert "Round 2" in round2.plain and "server returned" not in round2.plain


async def test_a_smaller_picture_is_kept_with_a_note_and_stop_states_its_size(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    openai_fake.render = lambda width, height, fmt: render_image(640, 480, fmt)
    await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    assert openai_fake.requests_to("images")[0].json["size"] == "1024x1024"
    assert "/10" in round1.plain and NOTE in round1.plain
    assert any(NOTE in (old.get("caption") or "") for old in round1.history)  # while critiqued
    assert stored(data_dir, "SELECT size_note FROM rounds") == [("640x480 for 1024x1024",)]
    assert stored(data_dir, "SELECT width, height FROM images") == [(640, 480)]

    document = await stop_document(telegram, ana_chat, ana, round1)
    assert "Kept round 1 (640×480 px, smaller than the 1024×1024 asked for)." in document.plain
    assert Image.open(io.BytesIO(document.document)).size == (640, 480)


async def test_the_size_asked_for_gets_no_note(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(image_format="banner", image_model="gpt-image-2.5-flare"))
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    assert openai_fake.requests_to("images")[0].json["size"] == "1536x864"
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    for round in (round1, round2):
        assert "/10" in round.plain and "📐" not in round.plain and "asked for" not in round.plain
    assert stored(data_dir, "SELECT size_note FROM rounds") == [(None,), (None,)]
    document = await stop_document(telegram, ana_chat, ana, round2)
    assert "Kept round 2 (1536×864 px). Final prompt" in document.plain


async def test_stability_native_sizes_get_no_note_and_another_shape_does(
    telegram, stability_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(image_backend="stability", image_format="banner"))
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    assert stability_fake.requests[-1].form["aspect_ratio"] == "16:9"
    assert stored(data_dir, "SELECT width, height FROM images") == [(1344, 768)]
    assert "/10" in round1.plain and "📐" not in round1.plain

    stability_fake.sizes["16:9"] = (1024, 1024)  # a square for a banner
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert "server returned 1024×1024, not the 16:9 asked for" in round2.plain
    document = await stop_document(telegram, ana_chat, ana, round2)
    assert "Kept round 1 (1024×1024 px, not the 16:9 asked for)." in document.plain

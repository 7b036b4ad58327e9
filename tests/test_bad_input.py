"""Bad input, one test per case: a friendly answer (or deliberate silence in groups), the bot
stays alive, and the next normal brief works.

Each case is an async function registered in CASES; `test_bad_input` runs it against the
real Application and then checks that a normal brief still gets a finished round.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from PIL import Image, PngImagePlugin

from tests.conftest import BOB_ID
from tests.fakes.faults import Fault
from tests.fakes.pngs import render_png, solid_png
from tests.helpers import next_round, next_text, toast

GROUP_ID = -1007770001
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


@dataclass
class World:
    """What a case acts on."""

    telegram: object
    openai: object
    ana: dict
    chat: dict
    group: dict

    def last_id(self, chat: dict | None = None) -> int:
        last = self.telegram.last_message((chat or self.chat)["id"])
        return last.message_id if last else 0

    async def says(self, text: str, expected: str, chat: dict | None = None) -> None:
        chat = chat or self.chat
        after = self.last_id(chat)
        self.telegram.user_sends_text(chat, self.ana, text)
        await next_text(self.telegram, chat, expected, after=after)

    async def round_from(self, text: str) -> object:
        after = self.last_id()
        self.telegram.user_sends_text(self.chat, self.ana, text)
        return await next_round(self.telegram, self.chat, after=after)

    async def silence(self, chat: dict, images_before: int) -> None:
        """Nothing is sent to the chat and nothing is drawn, for a moment."""
        sent_before = len(self.telegram.messages(chat["id"]))
        await asyncio.sleep(0.4)
        assert len(self.telegram.messages(chat["id"])) == sent_before
        assert len(self.openai.requests_to("images")) == images_before


CaseFn = Callable[[World], Awaitable[None]]
CASES: dict[str, CaseFn] = {}


def case(fn: CaseFn) -> CaseFn:
    CASES[fn.__name__] = fn
    return fn


def image_bytes(image: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def backend_returns(world: World, data: bytes) -> None:
    """Make the image backend's next answer carry these bytes as its image."""
    body = {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(data).decode()}]}
    world.openai.fail_next("images", Fault(status=200, body=body))


@case
async def billed_but_unusable_image_still_shows_in_usage(world: World) -> None:
    # A 200 with a usage block whose image is too large to use: the user was billed, so
    # /usage counts it (with the cost the usage implies), though the round failed.
    bomb = image_bytes(Image.new("1", (12_000, 12_000)), "PNG")
    usage = {
        "input_tokens": 20,
        "output_tokens": 4160,
        "total_tokens": 4180,
        "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
    }
    body = {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(bomb).decode()}],
        "usage": usage,
    }
    world.openai.fail_next("images", Fault(status=200, body=body))
    await world.says("/new product shot", "sent back something unusable")
    await world.says("/usage", "1 images")


async def backend_image_is_used(world: World, data: bytes) -> None:
    backend_returns(world, data)
    round = await world.round_from("/new product shot")
    assert "/10" in round.plain


async def backend_image_is_refused(world: World, data: bytes) -> None:
    backend_returns(world, data)
    await world.says("/new product shot", "sent back something unusable")


# --- briefs -----------------------------------------------------------------------------------


@case
async def empty_new(world: World) -> None:
    await world.says("/new", "Tell me what to draw")


@case
async def whitespace_only_new(world: World) -> None:
    await world.says("/new    \n  ", "Tell me what to draw")


@case
async def whitespace_only_message(world: World) -> None:
    await world.says(" \u3000 ", "That prompt is empty")


@case
async def invisible_only_message(world: World) -> None:
    # Zero-width space and joiner, a Braille blank, a Hangul filler, a combining accent alone:
    # nothing to draw, so nothing is paid for.
    await world.says("\u200b\u200d\u2800\u3164\u0301", "That prompt is empty")
    assert world.openai.requests_to("images") == []


@case
async def invisible_only_new(world: World) -> None:
    after = world.last_id()
    world.telegram.user_sends_text(world.chat, world.ana, "/new \u2800\u3164\u200b")
    await next_text(world.telegram, world.chat, "That prompt is empty", after=after)
    assert world.openai.requests_to("images") == []


@case
async def ten_thousand_character_brief(world: World) -> None:
    await world.says("saree " * 1667, "under 2,000 characters")


@case
async def ten_thousand_character_new(world: World) -> None:
    await world.says("/new " + "x" * 10_000, "under 2,000 characters")


@case
async def emoji_only_brief(world: World) -> None:
    await world.round_from("👗✨💜👑")


@case
async def right_to_left_brief(world: World) -> None:
    await world.round_from("ساري حريري أسود وبنفسجي مع مجوهرات ذهبية")


@case
async def mixed_scripts_brief(world: World) -> None:
    await world.round_from("बनारसी साड़ी, 金色珠宝, black-purple silk ‏שמלה")


@case
async def html_special_characters_brief(world: World) -> None:
    brief = '<b>SALE</b> & "50% off" <script>alert(1)</script> </i>'
    round = await world.round_from(brief)
    assert world.openai.requests_to("images")[-1].json["prompt"] == brief
    assert "Round 1" in round.plain


@case
async def markdown_special_characters_brief(world: World) -> None:
    await world.round_from("*bold* _italic_ [link](http://x) `code` ~strike~ ||spoiler|| \\")


@case
async def invisible_characters_brief(world: World) -> None:
    await world.round_from("\u200bsaree\u200d with \u202egold\u202c")


# --- critiques --------------------------------------------------------------------------------


@case
async def critique_with_markup_characters(world: World) -> None:
    world.openai.queue_critique(
        {
            "score": 5,
            "strengths": ["<b>bold</b> & <i>"],
            "problems": ["use </pre> & <a href='x'>", "*not* _markdown_"],
            "revised_prompt": "saree <pre> & </code> 'quoted' \"double\"",
        }
    )
    round = await world.round_from("/new saree")
    assert "</code>" in round.plain  # shown as text, not parsed


@case
async def critique_that_is_huge(world: World) -> None:
    world.openai.queue_critique(
        {
            "score": 3,
            "strengths": ["s" * 900] * 10,
            "problems": ["p" * 900] * 10,
            "revised_prompt": "r" * 3999,
        }
    )
    round = await world.round_from("/new saree")
    assert len(round.plain) <= 1024


@case
async def critique_in_emoji_and_rtl(world: World) -> None:
    world.openai.queue_critique(
        {
            "score": 7,
            "strengths": ["👍 جميل"],
            "problems": ["💡 إضاءة"],
            "revised_prompt": "ساري ✨",
        }
    )
    await world.round_from("/new saree")


# --- images users send ------------------------------------------------------------------------


@case
async def user_photo_without_caption(world: World) -> None:
    world.telegram.user_sends_photo(world.chat, world.ana, solid_png(64, 64))
    await next_text(world.telegram, world.chat, "Send it again with a caption")


@case
async def user_photo_with_caption(world: World) -> None:
    photo = render_png(256, 256)
    world.telegram.user_sends_photo(world.chat, world.ana, photo, caption="on marble")
    await next_round(world.telegram, world.chat)


@case
async def user_image_document(world: World) -> None:
    world.telegram.user_sends_document(
        world.chat, world.ana, render_png(256, 256), "a.png", caption="on marble"
    )
    await next_round(world.telegram, world.chat)


@case
async def user_heic_document(world: World) -> None:
    data = b"\x00\x00\x00\x18ftypheic" + os.urandom(200)
    world.telegram.user_sends_document(
        world.chat, world.ana, data, "IMG_0001.HEIC", "image/heic", caption="on marble"
    )
    await next_text(world.telegram, world.chat, "can't read that file")


@case
async def user_corrupt_image_document(world: World) -> None:
    world.telegram.user_sends_document(
        world.chat, world.ana, b"\xff\xd8\xff garbage", "broken.jpg", "image/jpeg", caption="x"
    )
    await next_text(world.telegram, world.chat, "can't read that file")


@case
async def user_animated_gif(world: World) -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    data = image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0)
    world.telegram.user_sends_document(
        world.chat, world.ana, data, "anim.gif", "image/gif", caption="on marble"
    )
    await next_text(world.telegram, world.chat, "That is an animation")


@case
async def user_photo_chatter_in_a_group(world: World) -> None:
    world.telegram.privacy_mode = False  # the bot sees every photo, and ignores plain ones
    world.telegram.user_sends_photo(world.group, world.ana, render_png(256, 256), caption="lol")
    await world.silence(world.group, 0)
    assert world.openai.requests_to("edits") == []
    other = "/new@some_other_bot on marble"
    world.telegram.user_sends_photo(world.group, world.ana, render_png(256, 256), caption=other)
    await world.silence(world.group, 0)
    assert world.openai.requests_to("edits") == []
    caption = "/new@refine_test_bot on marble"
    world.telegram.user_sends_photo(world.group, world.ana, render_png(256, 256), caption=caption)
    await next_round(world.telegram, world.group)
    assert world.openai.requests_to("edits")[-1].form["prompt"] == "on marble"


@case
async def user_non_image_document(world: World) -> None:
    world.telegram.user_sends_document(
        world.chat, world.ana, b"%PDF-1.4 ...", "brief.pdf", "application/pdf"
    )
    await next_text(world.telegram, world.chat, "Describe the product in words")


# --- images a backend sends back --------------------------------------------------------------


@case
async def backend_cmyk_jpeg(world: World) -> None:
    cmyk = Image.open(io.BytesIO(render_png(512, 512))).convert("CMYK")
    await backend_image_is_used(world, image_bytes(cmyk, "JPEG"))


@case
async def backend_16_bit_png(world: World) -> None:
    await backend_image_is_used(world, image_bytes(Image.new("I;16", (256, 256), 30000), "PNG"))


@case
async def backend_png_with_alpha(world: World) -> None:
    rgba = Image.new("RGBA", (256, 256), (200, 30, 90, 0))
    rgba.paste((20, 20, 20, 255), (64, 64, 192, 192))
    await backend_image_is_used(world, image_bytes(rgba, "PNG"))


@case
async def backend_tiny_image(world: World) -> None:
    # Billed, but too small to use: refused with both sizes named (tests/test_e2e_sizes.py).
    backend_returns(world, solid_png(1, 1))
    await world.says("/new product shot", "a 1×1 picture instead of the 1024×1024 asked for")


@case
async def backend_too_big_for_a_telegram_photo(world: World) -> None:
    noise = Image.frombytes("RGB", (2400, 1800), os.urandom(2400 * 1800 * 3))
    data = image_bytes(noise, "PNG", compress_level=1)
    assert len(data) > 10 * 1024 * 1024
    await backend_image_is_used(world, data)


@case
async def backend_corrupt_bytes(world: World) -> None:
    await backend_image_is_refused(world, b"\x89PNG\r\n\x1a\n" + os.urandom(300))


@case
async def backend_truncated_png(world: World) -> None:
    data = render_png(512, 512)
    await backend_image_is_refused(world, data[: len(data) // 2])


@case
async def backend_truncated_jpeg(world: World) -> None:
    data = image_bytes(Image.open(io.BytesIO(render_png(1024, 1024))).convert("RGB"), "JPEG")
    await backend_image_is_refused(world, data[: len(data) // 2])


@case
async def backend_jpeg_with_garbage_after_the_header(world: World) -> None:
    await backend_image_is_refused(world, b"\xff\xd8\xff\xe0" + os.urandom(3000))


@case
async def backend_answer_not_base64(world: World) -> None:
    body = {"created": int(time.time()), "data": [{"b64_json": "not base64 at all!"}]}
    world.openai.fail_next("images", Fault(status=200, body=body))
    await world.says("/new product shot", "sent back something unusable")


@case
async def backend_answer_without_an_image(world: World) -> None:
    for data in ([], ["not an image object"], [{"url": "https://example.com/a.png"}], "x"):
        body = {"created": int(time.time()), "data": data}
        world.openai.fail_next("images", Fault(status=200, body=body))
        await world.says("/new product shot", "sent back something unusable")


@case
async def backend_png_with_an_oversized_text_chunk(world: World) -> None:
    # 2.7 KB that Pillow refuses to inflate (its text chunks stop at 1 MB).
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * 2_000_000, zip=True)
    await backend_image_is_refused(
        world, image_bytes(Image.new("RGB", (256, 256)), "PNG", pnginfo=info)
    )


@case
async def backend_animated_gif(world: World) -> None:
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    data = image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    await backend_image_is_refused(world, data)


@case
async def backend_decompression_bomb(world: World) -> None:
    bomb = image_bytes(Image.new("1", (20_000, 20_000)), "PNG")
    assert len(bomb) < 2_000_000
    await backend_image_is_refused(world, bomb)


# --- buttons ----------------------------------------------------------------------------------


@case
async def forged_callback_data(world: World) -> None:
    round = await world.round_from("/new saree")
    query = world.telegram.user_presses_data(world.chat, world.ana, round, "drop table;--")
    assert "no longer valid" in await toast(world.telegram, query)


@case
async def oversized_callback_data(world: World) -> None:
    round = await world.round_from("/new saree")
    query = world.telegram.user_presses_data(world.chat, world.ana, round, "a:" + "1" * 63)
    assert "no longer valid" in await toast(world.telegram, query)


@case
async def callback_for_a_round_that_does_not_exist(world: World) -> None:
    round = await world.round_from("/new saree")
    query = world.telegram.user_presses_data(world.chat, world.ana, round, "a:987654")
    assert "isn't available" in await toast(world.telegram, query)


@case
async def callback_for_another_chats_round(world: World) -> None:
    group_round = await _group_round(world)
    round = await world.round_from("/new saree")
    data = group_round.button_data[0][0]
    query = world.telegram.user_presses_data(world.chat, world.ana, round, data)
    assert "isn't available" in await toast(world.telegram, query)


@case
async def stale_button_of_a_stopped_session(world: World) -> None:
    round = await world.round_from("/new saree")
    world.telegram.user_presses(world.chat, world.ana, round, "Stop")
    await world.telegram.wait_for(
        lambda: any(m.document for m in world.telegram.messages(world.chat["id"]))
    )
    query = world.telegram.user_presses_data(world.chat, world.ana, round, round.button_data[0][1])
    assert "ended" in await toast(world.telegram, query)


@case
async def button_pressed_during_a_running_round(world: World) -> None:
    round = await world.round_from("/new saree")
    world.openai.image_latency = 0.6
    world.telegram.user_presses(world.chat, world.ana, round, "Accept")
    for label in ("Accept", "Stop"):
        query = world.telegram.user_presses(world.chat, world.ana, round, label)
        assert "already working" in (await toast(world.telegram, query)).lower()
    await next_round(world.telegram, world.chat, after=round.message_id)
    world.openai.image_latency = 0


# --- commands ---------------------------------------------------------------------------------


@case
async def history_with_arguments(world: World) -> None:
    await world.says("/history please page 99", "No sessions here yet")


@case
async def gallery_of_numbers_no_session_has(world: World) -> None:
    await world.round_from("/new canvas tote")
    for odd in ("²", "#³", "9" * 25, "0"):
        await world.says(f"/gallery {odd}", "isn't available here")


@case
async def cancel_with_arguments(world: World) -> None:
    await world.says("/cancel everything now", "Nothing is running")


@case
async def unknown_command(world: World) -> None:
    await world.says("/delete_all", "see /help")


@case
async def command_for_another_bot_in_a_group(world: World) -> None:
    images = len(world.openai.requests_to("images"))
    world.telegram.user_sends_text(world.group, world.ana, "/new@some_other_bot red saree")
    await world.silence(world.group, images)


# --- edits and senders ------------------------------------------------------------------------


@case
async def reply_to_a_round_photo_is_an_edit_of_it(world: World) -> None:
    round = await world.round_from("/new saree")
    world.telegram.user_sends_text(world.chat, world.ana, "saree, gold border", reply_to=round)
    second = await next_round(world.telegram, world.chat, after=round.message_id)
    assert "Round 2" in second.plain and "✎ edited" in second.plain
    assert world.openai.edit_requests[-1].prompt == "saree, gold border"


@case
async def reply_to_another_bot_message_in_private_is_a_brief(world: World) -> None:
    await world.says("/help", "refinebot")
    help_message = world.telegram.last_message(world.chat["id"])
    world.telegram.user_sends_text(world.chat, world.ana, "silk scarf", reply_to=help_message)
    first = await next_round(world.telegram, world.chat, after=help_message.message_id)
    assert "Round 1" in first.plain


@case
async def reply_to_a_non_round_message_in_a_group_is_ignored(world: World) -> None:
    await world.says("/help@refine_test_bot", "refinebot", chat=world.group)
    help_message = world.telegram.last_message(world.group["id"])
    images = len(world.openai.requests_to("images"))
    world.telegram.user_sends_text(world.group, world.ana, "nice!", reply_to=help_message)
    await world.silence(world.group, images)


@case
async def channel_post(world: World) -> None:
    channel = {"id": -1009990001, "type": "channel", "title": "Shop news"}
    images = len(world.openai.requests_to("images"))
    world.telegram.enqueue_update(
        {
            "channel_post": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": channel,
                "sender_chat": channel,
                "text": "/new free saree",
                "entities": [{"type": "bot_command", "offset": 0, "length": 4}],
            }
        }
    )
    await world.silence(channel, images)


@case
async def anonymous_group_admin(world: World) -> None:
    world.telegram.enqueue_update(
        {
            "message": {
                "message_id": 4242,
                "date": int(time.time()),
                "chat": world.group,
                "from": ANONYMOUS_ADMIN,
                "sender_chat": world.group,
                "text": "/new teal saree",
                "entities": [{"type": "bot_command", "offset": 0, "length": 4}],
            }
        }
    )
    await next_round(world.telegram, world.group)


@case
async def stranger_in_an_allowed_group(world: World) -> None:
    stranger = world.telegram.make_user(BOB_ID + 77, "Zed")
    world.telegram.user_sends_text(world.group, stranger, "/new@refine_test_bot red saree")
    await next_round(world.telegram, world.group)  # the chat is allowed: teams work together


async def _group_round(world: World) -> object:
    after = world.last_id(world.group)
    world.telegram.user_sends_text(world.group, world.ana, "/new@refine_test_bot red saree")
    return await next_round(world.telegram, world.group, after=after)


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input(name, telegram, openai_fake, bots, make_settings, ana, ana_chat) -> None:
    await bots.start(make_settings(allowed_chat_ids=str(GROUP_ID)))
    group = telegram.group_chat(GROUP_ID, "Shop team")
    world = World(telegram, openai_fake, ana, ana_chat, group)
    await CASES[name](world)
    # The bot is alive and the next normal brief works.
    await world.round_from("/new black-purple Banarasi saree, gold jewellery")


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30

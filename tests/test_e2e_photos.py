"""Product photos in: the real product is kept, the scene changes, and every later round of the
session starts from the same photo. Through the real Application against the fakes."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from bot.backends.formats import ImageOptions
from bot.backends.stability import StabilityImageGenerator
from storage.store import Store
from tests.fakes.openai_server import default_critic, user_text
from tests.fakes.pngs import render_image
from tests.helpers import next_round, next_text

SCENE = "on a marble table, soft morning light"


def product_photo(width: int = 800, height: int = 600, fmt: str = "JPEG") -> bytes:
    """A photo-like picture of a 'product' in the given format (HEIF for iPhone files)."""
    image = Image.open(io.BytesIO(render_image(width, height, "png"))).convert("RGB")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def image_parts(body: dict[str, Any]) -> int:
    return sum(
        1
        for message in body["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    )


def fidelity_critic(fidelity: int):
    """The default fake critic, plus a fidelity score whenever a reference photo is attached."""

    def critic(body: dict[str, Any]) -> dict[str, Any]:
        answer = default_critic(body)
        answer["fidelity"] = fidelity if image_parts(body) == 2 else None
        return answer

    return critic


async def test_photo_brief_edits_the_real_product_and_keeps_it_every_round(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    # A model that takes input_fidelity (the installed SDK: gpt-image-1.5; omit it for
    # gpt-image-2, the default).
    await bots.start(make_settings(image_model="gpt-image-1.5"))
    openai_fake.critic = fidelity_critic(9)
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)
    round1 = await next_round(telegram, ana_chat)

    # images.edit with the photo attached, high input fidelity; nothing drawn from scratch.
    assert openai_fake.requests_to("images") == []
    [edit] = openai_fake.requests_to("edits")
    assert edit.form["prompt"] == SCENE and edit.form["input_fidelity"] == "high"
    [upload] = edit.images
    assert upload.mime == "image/jpeg" and (upload.width, upload.height) == (800, 600)

    # The critic saw the reference photo and the draft, and scored fidelity apart.
    [chat] = openai_fake.requests_to("chat")
    assert len(chat.images) == 2
    assert "reference photo of the real product" in user_text(chat.json)
    assert "product 9/10" in round1.plain

    # Accept and Edit: every later round starts from the same photo.
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    telegram.user_presses(ana_chat, ana, round2, "Edit")
    ask = await next_text(telegram, ana_chat, "Send your own prompt", after=round2.message_id)
    telegram.user_sends_text(ana_chat, ana, "on a walnut shelf")
    await next_round(telegram, ana_chat, after=ask.message_id)
    edits = openai_fake.requests_to("edits")
    assert len(edits) == 3 and openai_fake.requests_to("images") == []
    # Round 2 is drawn from the photo again; round 3 (Edit) changes round 2's picture and
    # sends the photo along as its second image.
    product = openai_fake.edit_requests[0].images[0]
    assert openai_fake.edit_requests[1].images == [product]
    assert openai_fake.edit_requests[2].images[1] == product
    assert edits[-1].form["prompt"].startswith("on a walnut shelf")
    assert all(len(c.images) == 2 for c in openai_fake.requests_to("chat"))

    store = await Store.open(data_dir / "refinebot.db")
    [summary] = await store.sessions.of_chat(ana_chat["id"], 0)
    assert summary.session.reference_sha is not None
    record, stored = await store.images.read(summary.session.reference_sha)
    assert record.mime == "image/jpeg" and stored == product
    assert [r.fidelity for r in await store.rounds.of_session(summary.session.id)] == [9, 9, 9]
    await store.close()


async def test_low_fidelity_is_the_top_problem(telegram, openai_fake, bot, ana, ana_chat) -> None:
    openai_fake.critic = fidelity_critic(3)
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)
    round1 = await next_round(telegram, ana_chat)
    lines = round1.plain.splitlines()
    assert "product 3/10" in lines[0]
    problems = [line for line in lines if line.startswith("✗")]
    assert "differs from your photo (fidelity 3/10)" in problems[0]


async def test_heic_file_from_an_iphone(telegram, openai_fake, bot, ana, ana_chat) -> None:
    heic = product_photo(1200, 900, "HEIF")
    telegram.user_sends_document(
        ana_chat, ana, heic, "IMG_0042.HEIC", "image/heic", caption="/new " + SCENE
    )
    await next_round(telegram, ana_chat)
    [edit] = openai_fake.requests_to("edits")
    [upload] = edit.images
    assert upload.format == "JPEG" and (upload.width, upload.height) == (1200, 900)
    assert edit.form["prompt"] == SCENE


async def test_stability_uses_image_to_image(
    telegram, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend="stability", stability_image_strength=0.55))
    telegram.user_sends_photo(ana_chat, ana, product_photo(900, 600), caption=SCENE)
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await next_round(telegram, ana_chat, after=round1.message_id)
    first, second = stability_fake.requests
    for request in (first, second):
        assert request.endpoint == "sd3" and request.status == 200
        assert request.form["mode"] == "image-to-image" and request.form["strength"] == "0.55"
        assert "aspect_ratio" not in request.form
        assert (request.images[0].width, request.images[0].height) == (900, 600)
    assert first.form["seed"] == second.form["seed"]


def test_stability_core_has_no_image_input_so_photos_go_to_sd3() -> None:
    generator = StabilityImageGenerator(None, "key", "core", output_format="webp")  # type: ignore[arg-type]
    photo = product_photo(64, 64)
    endpoint, model, fields, files = generator._request("mug", 7, photo, ImageOptions())
    assert (endpoint, model, fields["model"]) == ("sd3", "sd3.5-large", "sd3.5-large")
    assert fields["mode"] == "image-to-image" and fields["output_format"] == "png"
    assert files["image"][2] == "image/jpeg"
    endpoint, model, fields, _ = generator._request("mug", 7, None, ImageOptions())
    assert (endpoint, model, fields["aspect_ratio"]) == ("core", "core", "1:1")


def crafted_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` (a decompression bomb's shape)."""
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "PNG")
    png = out.getvalue()
    chunk = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:]


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (96, 96), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:])
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("bomb.png", crafted_png(30_000, 30_000), "too many pixels"),
        ("big.png", crafted_png(9_000, 8_000), "too many pixels"),
        ("anim.webp", animated_webp(), "animation"),
        ("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 300, "can't read that file"),
        ("cut.jpg", product_photo()[:3000], "damaged"),
        ("tiny.png", product_photo(40, 40, "PNG"), "too small"),
        ("banner.jpg", product_photo(1500, 400), "too narrow or too wide"),
        ("huge.jpg", b"\xff\xd8" + bytes(200_000), "too big"),
    ],
)
async def test_unusable_photos_get_a_clear_message(
    name, data, expected, telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(max_upload_mb=0.1))
    mime = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[name.rsplit(".")[1]]
    telegram.user_sends_document(ana_chat, ana, data, name, mime, caption=SCENE)
    await next_text(telegram, ana_chat, expected)
    assert openai_fake.requests_to("edits") == [] and openai_fake.requests_to("images") == []
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)  # still alive
    await next_round(telegram, ana_chat)


async def test_a_photo_without_caption_asks_for_the_scene(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_photo(ana_chat, ana, product_photo())
    await next_text(telegram, ana_chat, "with a caption")
    assert openai_fake.requests_to("edits") == []


async def test_an_album_is_one_brief(telegram, openai_fake, bot, ana, ana_chat) -> None:
    # An album arrives as one message per photo, the caption on the first only.
    for index in range(3):
        caption = SCENE if index == 0 else None
        telegram.user_sends_photo(ana_chat, ana, product_photo(), caption, album="album-1")
    round1 = await next_round(telegram, ana_chat)
    assert "Round 1" in round1.plain
    # An album without any caption gets one request for it, not one per photo.
    for _ in range(3):
        telegram.user_sends_photo(ana_chat, ana, product_photo(), album="album-2")
    await next_text(telegram, ana_chat, "with a caption", after=round1.message_id)
    await asyncio.sleep(0.3)
    texts = [m for m in telegram.messages(ana_chat["id"]) if "with a caption" in m.plain]
    assert len(texts) == 1
    assert len(openai_fake.requests_to("edits")) == 1


async def test_a_deleted_product_photo_is_explained(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)
    round1 = await next_round(telegram, ana_chat)
    for image in (data_dir / "images").rglob("*.jpg"):
        image.unlink()  # the reference is the only JPEG: the drafts are PNGs
    query = telegram.user_presses(ana_chat, ana, round1, "Accept")
    answer = await telegram.wait_for(lambda: telegram.callback_answers.get(query))
    assert "product photo of this session was deleted" in answer["text"]
    assert len(openai_fake.requests_to("edits")) == 1


async def test_a_model_without_input_fidelity_still_edits(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    from tests.fakes.openai_server import OpenAIFault

    # A server that refuses input_fidelity for a model the SDK says takes it.
    await bots.start(make_settings(image_model="gpt-image-1.5"))
    refusal = OpenAIFault.bad_request(
        "Unknown parameter: 'input_fidelity'.", param="input_fidelity", code="unknown_parameter"
    )
    openai_fake.fail_next("edits", refusal)
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)
    round1 = await next_round(telegram, ana_chat)
    refused, accepted = openai_fake.requests_to("edits")
    assert refused.status == 400 and refused.form["input_fidelity"] == "high"
    assert accepted.status == 200 and "input_fidelity" not in accepted.form
    telegram.user_presses(ana_chat, ana, round1, "Accept")  # remembered: asked once only
    await next_round(telegram, ana_chat, after=round1.message_id)
    assert "input_fidelity" not in openai_fake.requests_to("edits")[-1].form
    assert len(openai_fake.requests_to("edits")) == 3


async def test_the_default_gpt_image_2_model_gets_no_input_fidelity(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    # The installed SDK (types/image_edit_params.py): "For `gpt-image-2`, omit this parameter."
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)
    await next_round(telegram, ana_chat)
    [edit] = openai_fake.requests_to("edits")
    assert edit.status == 200 and "input_fidelity" not in edit.form

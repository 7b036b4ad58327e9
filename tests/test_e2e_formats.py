"""The campaign pack (📐 All formats) end to end: the real Application against the Telegram,
OpenAI-compatible and Stability fakes."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from storage.packs import PackStatus
from storage.store import Store
from tests.conftest import BOB_ID
from tests.fakes.faults import Fault
from tests.fakes.openai_server import OpenAIFault, user_text
from tests.fakes.pngs import image_size
from tests.fakes.stability_server import StabilityFault
from tests.fakes.telegram_server import BotMessage, FakeTelegram
from tests.helpers import next_round, next_text, toast

SIZES = {"Portrait 4:5": (1080, 1350), "Story 9:16": (1080, 1920), "Banner 16:9": (1920, 1080)}
"""A square kept image's pack: every preset but Square, at its exact platform size."""


async def stopped(telegram: FakeTelegram, chat: dict, user: dict, brief: str) -> BotMessage:
    """Start a session, Stop on its first round; return Stop's document message."""
    telegram.user_sends_text(chat, user, f"/new {brief}")
    round1 = await next_round(telegram, chat)
    telegram.user_presses(chat, user, round1, "Stop")
    return await telegram.wait_for(
        lambda: next(
            (
                m
                for m in telegram.messages(chat["id"])
                if m.document and "📐 All formats" in m.flat_buttons
            ),
            None,
        )
    )


async def confirmed(
    telegram: FakeTelegram, chat: dict, user: dict, message: BotMessage
) -> BotMessage:
    """Press 📐 All formats on `message`, check the cost message, press ✅; return the cost
    message."""
    telegram.user_presses(chat, user, message, "All formats")
    offer = await next_text(telegram, chat, "All formats of round", after=message.message_id)
    assert "≈ $" in offer.plain and "estimated" in offer.plain
    telegram.user_presses(chat, user, offer, "✅")
    return offer


def album_items(telegram: FakeTelegram, chat: dict, after: int, kind: str) -> list[BotMessage]:
    return [
        m
        for m in telegram.messages(chat["id"])
        if m.message_id > after and m.kind == kind and m.media_group_id is not None
    ]


async def albums(
    telegram: FakeTelegram, chat: dict, after: int, count: int
) -> tuple[list[BotMessage], list[BotMessage]]:
    """Wait for an album of `count` previews and one of `count` documents after `after`."""

    def both() -> tuple[list[BotMessage], list[BotMessage]] | None:
        photos = album_items(telegram, chat, after, "photo")
        documents = album_items(telegram, chat, after, "document")
        if len(photos) >= count and len(documents) >= count:
            return photos, documents
        return None

    return await telegram.wait_for(both, timeout=20)


def pack_rows(data_dir: Path) -> list[sqlite3.Row]:
    """Read the pack rows straight from the bot's database (WAL, read-only)."""
    with sqlite3.connect(f"file:{data_dir / 'refinebot.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM pack_items ORDER BY id").fetchall()


def label_of(message: BotMessage) -> str:
    return next(label for label in SIZES if label in message.plain)


def assert_exact_sizes(photos: list[BotMessage], documents: list[BotMessage]) -> None:
    assert len({m.media_group_id for m in photos}) == 1
    assert len({m.media_group_id for m in documents}) == 1
    for message in photos + documents:
        label = label_of(message)
        width, height = SIZES[label]
        assert f"{width}×{height}" in message.plain
        data = message.photo if message.kind == "photo" else message.document
        assert data is not None and image_size(data) == (width, height)
    assert sorted(label_of(m) for m in photos) == sorted(SIZES)


def kept_pixels_match(canvas_png: bytes, mask_png: bytes, kept: bytes) -> bool:
    """Whether the canvas holds the kept image exactly where the mask keeps it opaque."""
    mask = Image.open(io.BytesIO(mask_png))
    box = mask.getchannel("A").getbbox()
    assert box is not None
    canvas = Image.open(io.BytesIO(canvas_png)).convert("RGB").crop(box)
    original = Image.open(io.BytesIO(kept)).convert("RGB").resize(canvas.size)
    difference = ImageStat.Stat(ImageChops.difference(canvas, original)).mean
    return max(difference) < 8


def kept_region_matches(delivered: bytes, kept: bytes) -> bool:
    """Whether the middle of a delivered format (where the square kept image sits, centred,
    touching two opposite edges) is the kept image's pixels."""
    image = Image.open(io.BytesIO(delivered)).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    inset = side // 10  # clear of the feathered seam
    region = image.crop((left + inset, top + inset, left + side - inset, top + side - inset))
    original = Image.open(io.BytesIO(kept)).convert("RGB").resize((side, side))
    original = original.crop((inset, inset, side - inset, side - inset))
    return max(ImageStat.Stat(ImageChops.difference(region, original)).mean) < 8


async def test_stop_all_formats_confirm_outpaints_each_missing_format(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    document = await stopped(telegram, ana_chat, ana, "walnut desk lamp")
    kept = document.document
    assert kept is not None and image_size(kept) == (1024, 1024)
    edits_before = len(openai_fake.edit_requests)
    await confirmed(telegram, ana_chat, ana, document)
    photos, documents = await albums(telegram, ana_chat, document.message_id, 3)
    assert_exact_sizes(photos, documents)
    assert all("✓ Checked" in m.plain for m in photos)

    requests = openai_fake.edit_requests[edits_before:]
    assert len(requests) == 3  # one images.edit per missing format
    sizes = set()
    for request in requests:
        assert request.mask is not None and len(request.images) == 1
        assert image_size(request.mask) == image_size(request.images[0])
        assert kept_pixels_match(request.images[0], request.mask, kept)
        sizes.add(request.fields["size"])
    # The canvas of each frame: 4:5, 9:16 and 16:9 at the model's free sizes.
    assert sizes == {"1232x1536", "864x1536", "1536x864"}
    for photo in photos:  # the product is locked: the kept pixels, not the model's repaint
        assert photo.photo is not None and kept_region_matches(photo.photo, kept)
    checks = [
        user_text(r.json)
        for r in openai_fake.requests_to("chat")
        if "<format_check>" in user_text(r.json)
    ]
    assert len(checks) == 3  # one short critique per format
    assert all("seam" in text for text in checks)
    [story] = [text for text in checks if "Story 9:16" in text]
    assert "top 14%" in story and "bottom 20%" in story


@pytest.mark.parametrize("backend", ["openai", "stability"])
async def test_pressing_again_resends_the_stored_pack_without_paying(
    telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat, data_dir, backend
) -> None:
    await bots.start(make_settings(image_backend=backend))
    document = await stopped(telegram, ana_chat, ana, "linen tote bag")
    await confirmed(telegram, ana_chat, ana, document)
    first, _ = await albums(telegram, ana_chat, document.message_id, 3)
    await telegram.wait_for(
        lambda: all(row["document_file_id"] for row in pack_rows(data_dir)) or None
    )
    paid = image_requests(backend, openai_fake, stability_fake)
    chats = len(openai_fake.requests_to("chat"))
    last = telegram.last_message(ana_chat)
    assert last is not None

    press = telegram.user_presses(ana_chat, ana, document, "All formats")
    assert "no new images" in (await toast(telegram, press))
    photos, documents = await albums(telegram, ana_chat, last.message_id, 3)
    assert_exact_sizes(photos, documents)
    assert image_requests(backend, openai_fake, stability_fake) == paid  # no new image request
    assert len(openai_fake.requests_to("chat")) == chats  # nor a critique
    assert sorted(m.photo for m in photos) == sorted(m.photo for m in first)
    for call in telegram.calls_to("sendMediaGroup")[-2:]:  # the same files, by file id
        media = call.params["media"]
        assert all(not str(item["media"]).startswith("attach://") for item in media)


async def test_stability_outpaints_with_margins_and_keeps_the_kept_pixels(
    telegram, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend="stability"))
    document = await stopped(telegram, ana_chat, ana, "ceramic vase")
    kept = document.document
    assert kept is not None and image_size(kept) == (1024, 1024)
    offer = await confirmed(telegram, ana_chat, ana, document)
    assert "3 new images, ≈ $0.12 estimated" in offer.plain  # 4 credits an outpaint
    photos, documents = await albums(telegram, ana_chat, document.message_id, 3)
    assert_exact_sizes(photos, documents)
    calls = stability_fake.outpaint_calls
    assert len(calls) == 3
    assert all(call.image == kept for call in calls)  # the kept image itself is the input
    margins = sorted((c.left, c.right, c.up, c.down) for c in calls)
    assert margins == sorted([(0, 0, 128, 128), (0, 0, 398, 398), (398, 398, 0, 0)])
    assert all(photo.photo and kept_region_matches(photo.photo, kept) for photo in photos)


async def test_a_server_refusing_an_optional_parameter_is_asked_without_it(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    document = await stopped(telegram, ana_chat, ana, "felt laptop sleeve")
    openai_fake.image_refusals = {"quality": "litellm"}  # LiteLLM's UnsupportedParamsError
    edits = len(openai_fake.edit_requests)
    await confirmed(telegram, ana_chat, ana, document)
    photos, documents = await albums(telegram, ana_chat, document.message_id, 3)
    assert_exact_sizes(photos, documents)
    sent = openai_fake.edit_requests[edits:]
    assert any("quality" in r.fields for r in sent)  # refused: not billed
    assert sum(r.record.status == 200 for r in sent) == 3
    assert all("quality" not in r.fields for r in sent if r.record.status == 200)


async def test_a_server_without_outpainting_gets_labelled_crops(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    document = await stopped(telegram, ana_chat, ana, "bamboo cutting board")
    openai_fake.missing_edits = "openai"  # /v1/images/edits answers 404 Invalid URL
    await confirmed(telegram, ana_chat, ana, document)
    photos, documents = await albums(telegram, ana_chat, document.message_id, 3)
    assert_exact_sizes(photos, documents)
    assert all("Cropped, not recomposed" in m.plain for m in photos + documents)


def image_requests(backend: str, openai_fake, stability_fake) -> int:
    """How many outpaint (or edit) requests the backend's fake has received."""
    if backend == "openai":
        return len(openai_fake.requests_to("edits"))
    return len(stability_fake.requests_to("outpaint"))


@pytest.mark.parametrize(
    ("backend", "failure", "said"),
    [
        ("openai", "moderation", "blocked it as unsafe content"),
        ("openai", "timeout", "did not answer in time"),
        ("stability", "moderation", "blocked it as unsafe content"),
        ("stability", "timeout", "did not answer in time"),
    ],
)
async def test_one_format_failing_delivers_the_others_and_retries_alone(
    telegram,
    openai_fake,
    stability_fake,
    bots,
    make_settings,
    ana,
    ana_chat,
    backend,
    failure,
    said,
) -> None:
    await bots.start(make_settings(image_backend=backend, image_timeout=1))
    document = await stopped(telegram, ana_chat, ana, "leather wallet")
    if backend == "openai":
        fault = OpenAIFault.moderation() if failure == "moderation" else Fault.slow(5)
        openai_fake.fail_next("edits", fault)
    else:
        fault = StabilityFault.content_moderation() if failure == "moderation" else Fault.slow(5)
        stability_fake.fail_next_outpaint(fault)
    await confirmed(telegram, ana_chat, ana, document)
    photos, documents = await albums(telegram, ana_chat, document.message_id, 2)
    assert len(photos) == len(documents) == 2  # the others delivered
    notice = await next_text(telegram, ana_chat, "Not every format is ready", document.message_id)
    assert said in notice.plain
    [[retry]] = notice.buttons
    assert retry.startswith("🔁 Retry ")
    failed = retry.removeprefix("🔁 Retry ")
    assert failed not in {label_of(m) for m in photos}
    paid = image_requests(backend, openai_fake, stability_fake)

    telegram.user_presses(ana_chat, ana, notice, "Retry")
    photo = await telegram.wait_for(
        lambda: next(
            (
                m
                for m in telegram.messages(ana_chat["id"])
                if m.message_id > notice.message_id and m.kind == "photo"
            ),
            None,
        )
    )
    assert failed in photo.plain and image_size(photo.photo) == SIZES[failed]
    assert image_requests(backend, openai_fake, stability_fake) == paid + 1  # that format alone


def _product_on(background: tuple[int, int, int]):
    def render(width: int, height: int, fmt: str) -> bytes:
        image = Image.new("RGB", (width, height), background)
        image.paste((30, 60, 90), (width // 10, height // 10, width * 9 // 10, height * 9 // 10))
        buffer = io.BytesIO()
        image.save(buffer, format={"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"))
        return buffer.getvalue()

    return render


async def marketplace_pack(telegram, openai_fake, ana, ana_chat, background) -> BotMessage:
    telegram.user_sends_text(ana_chat, ana, "/settings")
    menu = await next_text(telegram, ana_chat, "Settings for this chat")
    press = telegram.user_presses(ana_chat, ana, menu, "Marketplace on")
    await toast(telegram, press)
    document = await stopped(telegram, ana_chat, ana, "steel water bottle")
    openai_fake.render = _product_on(background)
    await confirmed(telegram, ana_chat, ana, document)
    photos, _ = await albums(telegram, ana_chat, document.message_id, 4)
    [marketplace] = [m for m in photos if "Marketplace" in m.plain]
    assert "2000×2000" in marketplace.plain and image_size(marketplace.photo) == (2000, 2000)
    return marketplace


async def test_marketplace_on_white_passes_its_check(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    marketplace = await marketplace_pack(telegram, openai_fake, ana, ana_chat, (255, 255, 255))
    assert "✓ Checked" in marketplace.plain
    whites = [r for r in openai_fake.edit_requests if r.mask is None]
    assert len(whites) == 1 and "pure white background" in (whites[0].prompt or "")


async def test_marketplace_with_a_grey_border_fails_the_white_check(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    marketplace = await marketplace_pack(telegram, openai_fake, ana, ana_chat, (190, 190, 190))
    assert "Check failed: the border is not pure white" in marketplace.plain
    notice = await next_text(telegram, ana_chat, "Not every format is ready")
    assert notice.buttons == [["🔁 Retry Marketplace"]]
    whites = sum(r.mask is None for r in openai_fake.edit_requests)
    openai_fake.render = _product_on((255, 255, 255))
    telegram.user_presses(ana_chat, ana, notice, "Retry")
    again = await telegram.wait_for(
        lambda: next(
            (
                m
                for m in telegram.messages(ana_chat["id"])
                if m.message_id > notice.message_id and m.kind == "photo"
            ),
            None,
        )
    )
    assert "Marketplace" in again.plain and "✓ Checked" in again.plain
    assert sum(r.mask is None for r in openai_fake.edit_requests) == whites + 1


async def test_the_session_view_offers_all_formats(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new oak stool")
    await next_round(telegram, ana_chat)
    telegram.user_sends_text(ana_chat, ana, "/history")
    page = await next_text(telegram, ana_chat, "Sessions")
    telegram.user_presses(ana_chat, ana, page, "#")
    view = await telegram.wait_for(
        lambda: (
            (m := telegram.message(ana_chat["id"], page.message_id)).plain.startswith("Session #")
            and m
        )
    )
    assert "📐 All formats" in view.flat_buttons
    telegram.user_presses(ana_chat, ana, view, "All formats")
    offer = await next_text(telegram, ana_chat, "All formats of round 1", view.message_id)
    assert [b for row in offer.buttons for b in row] == ["✅ Make 3 formats"]


@pytest.mark.parametrize("backend", ["openai", "stability"])
async def test_a_restart_mid_pack_keeps_finished_formats_and_makes_the_rest(
    telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat, data_dir, backend
) -> None:
    first = await bots.start(make_settings(image_backend=backend, image_timeout=60))
    document = await stopped(telegram, ana_chat, ana, "glass teapot")
    hang = Fault.slow(60)  # one format hangs until the "crash"
    if backend == "openai":
        openai_fake.fail_next("edits", hang)
    else:
        stability_fake.fail_next_outpaint(hang)
    await confirmed(telegram, ana_chat, ana, document)
    store = await Store.open(data_dir / "refinebot.db")

    async def statuses() -> list[PackStatus]:
        session = (await store.sessions.of_chat(ana_chat["id"], 0))[0].session
        assert session.chosen_round_id is not None
        return [item.status for item in await store.packs.of_round(session.chosen_round_id)]

    await telegram.wait_for(
        lambda: [row["status"] for row in pack_rows(data_dir)].count("done") == 2 or None
    )
    for task in asyncio.all_tasks():  # the crash: the pack's task dies mid-way
        if task.get_name() == "pack":
            task.cancel()
    await bots.stop(first)
    assert sorted(await statuses()) == [PackStatus.DONE, PackStatus.DONE, PackStatus.MAKING]
    paid = image_requests(backend, openai_fake, stability_fake)
    last = telegram.last_message(ana_chat)
    assert last is not None

    await bots.start(make_settings(image_backend=backend))
    photos, documents = await albums(telegram, ana_chat, last.message_id, 3)
    assert_exact_sizes(photos, documents)
    assert image_requests(backend, openai_fake, stability_fake) == paid + 1  # the unfinished one
    assert await statuses() == [PackStatus.DONE] * 3
    await store.close()


async def test_quotas_count_the_pack_formats(telegram, openai_fake, bots, make_settings) -> None:
    await bots.start(make_settings(allowed_user_ids=str(BOB_ID), quota_rounds_per_user_per_day=3))
    bob = telegram.make_user(BOB_ID, "Bob", language_code="en")
    chat = telegram.private_chat(bob)
    document = await stopped(telegram, chat, bob, "cork yoga block")
    telegram.user_presses(chat, bob, document, "All formats")
    offer = await next_text(telegram, chat, "All formats of round", after=document.message_id)
    assert "count towards today's quota" in offer.plain
    press = telegram.user_presses(chat, bob, offer, "✅")
    assert "used today's 3 rounds" in await toast(telegram, press)  # 1 round + 3 images > 3
    assert all(request.mask is None for request in openai_fake.edit_requests)

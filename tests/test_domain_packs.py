"""The campaign pack in the domain: the plan and its cost, the Pillow geometry (mask, product
lock, exact sizes, the Marketplace check), the store's pack rows, the quota, and PackService
with in-process backends on a real temporary store."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest
from PIL import Image

from bot.backends.base import GeneratedImage
from bot.backends.errors import ContentBlocked, EditsUnsupported, Unavailable
from bot.backends.outpaint import OutpaintRequest
from bot.pack_images import (
    Margins,
    canvas_and_mask,
    centre_crop,
    exact_size,
    lock_product,
    margins,
    marketplace_problem,
    on_white,
    size_of,
)
from bot.refine.checks import check_quota
from bot.refine.errors import QuotaExceeded, SessionBusy
from bot.refine.models import Actor, AutopilotDefaults, QuotaPolicy, Scope
from bot.refine.pack_maker import PackMaker
from bot.refine.pack_plan import (
    MARKETPLACE,
    METHOD_CROP,
    METHOD_OUTPAINT,
    PRESETS,
    estimate,
    pack_formats,
    preset_of,
)
from bot.refine.packs import PackService
from bot.refine.service import RefineService
from storage.packs import PackResult, PackStatus
from storage.records import RoundRecord, UsageEntry
from storage.store import Store
from tests.domain_fakes import FakeCritic, FakeGenerator, RecordingListener

SCOPE = Scope(chat_id=42)
ANA = Actor(user_id=7, name="Ana")


def png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def pixel(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        return tuple(image.convert("RGB").getpixel(xy))


# --- the plan --------------------------------------------------------------------------------


def test_a_square_image_needs_every_preset_but_square() -> None:
    names = [f.name for f in pack_formats(1024, 1024, marketplace=False)]
    assert names == ["portrait", "story", "banner"]
    assert [f.name for f in pack_formats(1024, 1024, marketplace=True)][-1] == "marketplace"
    assert preset_of(864, 1536).name == "story"  # 9:16 within the tolerance
    assert preset_of(1536, 1024) is None  # 3:2 is no preset: all four are made
    assert len(pack_formats(1536, 1024, marketplace=False)) == 4


def test_the_presets_are_the_platform_sizes() -> None:
    sizes = {f.name: (f.width, f.height) for f in (*PRESETS, MARKETPLACE)}
    assert sizes == {
        "square": (1080, 1080),
        "portrait": (1080, 1350),
        "story": (1080, 1920),
        "banner": (1920, 1080),
        "marketplace": (2000, 2000),
    }


def test_the_estimate_counts_paid_images_and_free_crops() -> None:
    formats = pack_formats(1024, 1024, marketplace=True)
    common = {"edit_model": "gpt-image-1", "can_edit": True, "quality": "medium"}
    openai = estimate(formats, outpaint_model="gpt-image-1", can_outpaint=True, **common)
    assert openai.images == 4 and openai.crops == 0
    assert openai.cost_usd is not None and openai.cost_usd > 0
    stability = estimate(
        formats[:3],
        outpaint_model="stable-image-outpaint",
        edit_model="sd3.5-large",
        can_outpaint=True,
        can_edit=True,
        quality=None,
    )
    assert stability.images == 3 and stability.cost_usd == pytest.approx(0.12)  # 4 credits each
    crops = estimate(formats, outpaint_model="gpt-image-1", can_outpaint=False, **common)
    assert (crops.images, crops.crops) == (1, 3)  # Marketplace is still an edit
    unknown = estimate(formats, outpaint_model="local-model", can_outpaint=True, **common)
    assert unknown.cost_usd is None  # not priced: said so, never guessed


# --- the geometry ----------------------------------------------------------------------------


def test_margins_grow_one_axis_to_the_ratio() -> None:
    assert margins(1024, 1024, (9, 16)) == Margins(0, 0, 398, 398)
    assert margins(1024, 1024, (16, 9)) == Margins(398, 398, 0, 0)
    assert margins(1024, 1280, (1, 1)) == Margins(128, 128, 0, 0)
    assert Margins(0, 0, 398, 398).framed(1024, 1024) == (1024, 1820)


def test_the_mask_is_transparent_where_to_fill_and_the_size_of_the_canvas() -> None:
    kept = png((1024, 1024), (200, 30, 90))
    canvas = canvas_and_mask(kept, margins(1024, 1024, (9, 16)), (864, 1536))
    assert size_of(canvas.image_png) == size_of(canvas.mask_png) == (864, 1536)
    with Image.open(io.BytesIO(canvas.mask_png)) as mask:
        assert mask.mode == "RGBA"
        assert mask.getpixel((432, 10))[3] == 0  # the new top band: to fill
        assert mask.getpixel((432, 768))[3] == 255  # the kept image: kept
    with Image.open(io.BytesIO(canvas.image_png)) as picture:
        assert picture.getpixel((432, 768))[:3] == (200, 30, 90)


def test_the_product_lock_puts_the_original_pixels_back() -> None:
    kept = png((100, 100), (200, 30, 90))
    extra = margins(100, 100, (16, 9))
    repainted = png((356, 200), (0, 255, 0))  # the model repainted everything, at 2x
    locked = lock_product(repainted, kept, extra)
    assert locked.size == (356, 200)
    assert locked.getpixel((178, 100)) == (200, 30, 90)  # the product: the kept pixels
    assert locked.getpixel((10, 100)) == (0, 255, 0)  # the new area: the model's
    assert locked.getpixel((178, 1)) == (200, 30, 90)  # an edge not extended: no feather
    final = exact_size(locked, 1920, 1080)
    assert size_of(final) == (1920, 1080)


def test_the_crop_fallback_and_the_white_square_have_exact_sizes() -> None:
    kept = png((1024, 1024), (10, 10, 10))
    assert size_of(centre_crop(kept, 1080, 1920)) == (1080, 1920)
    wide = on_white(png((400, 200), (10, 10, 10)), 2000)
    assert size_of(wide) == (2000, 2000) and pixel(wide, (1000, 5)) >= (250, 250, 250)


def product(background: tuple[int, int, int], box: tuple[int, int, int, int]) -> bytes:
    image = Image.new("RGB", (2000, 2000), background)
    image.paste((30, 60, 90), box)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_the_marketplace_check() -> None:
    assert marketplace_problem(product((255, 255, 255), (150, 150, 1850, 1850))) is None
    grey = marketplace_problem(product((200, 200, 200), (150, 150, 1850, 1850)))
    assert grey is not None and "border is not pure white" in grey
    small = marketplace_problem(product((255, 255, 255), (800, 800, 1200, 1200)))
    assert small is not None and "fills only 20%" in small
    assert "empty" in (marketplace_problem(product((255, 255, 255), (0, 0, 0, 0))) or "")


# --- the store -------------------------------------------------------------------------------


async def kept_round(store: Store, generator: FakeGenerator | None = None) -> RoundRecord:
    refine = RefineService(
        store=store,
        generator=generator or FakeGenerator(),
        critic=FakeCritic(),
        max_rounds_in_flight=4,
        autopilot=AutopilotDefaults(rounds=2, drafts=2, threshold=10),
    )
    pending = await refine.begin_start(SCOPE, ANA, "walnut desk lamp")
    outcome = await refine.run(pending, RecordingListener())
    assert outcome.last is not None
    return outcome.last.round


async def test_pack_rows_are_created_once_and_a_failed_one_again(store: Store) -> None:
    round = await kept_round(store)
    rows = await store.packs.create(
        round.id, ["story", "banner"], chat_id=42, thread_id=0, user_id=7
    )
    assert [(r.format, r.status) for r in rows] == [
        ("story", PackStatus.PENDING),
        ("banner", PackStatus.PENDING),
    ]
    await store.packs.fail(rows[0].id, "blocked: HTTP 400")
    again = await store.packs.create(
        round.id, ["story", "banner"], chat_id=42, thread_id=0, user_id=7
    )
    assert [r.status for r in again] == [PackStatus.PENDING, PackStatus.PENDING]
    assert len(again) == 2 and again[0].error is None
    assert [r.id for r in await store.packs.unfinished()] == [r.id for r in rows]


async def test_a_finished_format_stores_image_usage_and_row_in_one_transaction(
    store: Store,
) -> None:
    round = await kept_round(store)
    [row] = await store.packs.create(round.id, ["story"], chat_id=42, thread_id=0, user_id=7)
    usage = UsageEntry(round.id, 42, 7, "image", "gpt-image-1", {"output_tokens": 1}, 0.01)
    result = PackResult(METHOD_OUTPAINT, 1080, 1920, 0.01, None)
    image = await store.save_pack_image(
        row.id, data=png((1080, 1920), (1, 2, 3)), mime="image/jpeg", result=result, usage=usage
    )
    [done] = await store.packs.of_round(round.id)
    assert done.status is PackStatus.DONE and done.image_sha == image.sha256
    assert (done.width, done.height, done.cost_usd) == (1080, 1920, 0.01)
    assert await store.packs.unfinished() == []
    [summary] = await store.chats.usage_since("2000-01-01", user_id=7)
    assert summary.images == 2  # the round's image and the pack's
    with pytest.raises(LookupError):  # no such row: the image row is not kept either
        await store.save_pack_image(
            9999, data=png((8, 8), (9, 9, 9)), mime="image/jpeg", result=result, usage=None
        )


async def test_quotas_count_paid_pack_formats_but_not_crops(store: Store) -> None:
    round = await kept_round(store)
    quota = QuotaPolicy(rounds_per_user_per_day=4)
    await check_quota(store, quota, SCOPE, ANA, adding=3)  # 1 round + 3 formats: allowed
    with pytest.raises(QuotaExceeded):
        await check_quota(store, quota, SCOPE, ANA, adding=4)
    rows = await store.packs.create(
        round.id, ["story", "banner"], chat_id=42, thread_id=0, user_id=7
    )
    assert await store.packs.made_since("2000-01-01", 7, 42) == (2, 2)  # under way: counted
    crop = PackResult(METHOD_CROP, 1080, 1920, None, None)
    await store.save_pack_image(
        rows[0].id, data=png((10, 10), (5, 5, 5)), mime="image/jpeg", result=crop, usage=None
    )
    await store.packs.fail(rows[1].id, "unavailable")
    assert await store.packs.made_since("2000-01-01", 7, 42) == (0, 0)
    await store.packs.create(round.id, ["portrait"], chat_id=42, thread_id=0, user_id=7)
    await check_quota(store, quota, SCOPE, ANA, adding=2)  # 1 round + 1 format + 2
    with pytest.raises(QuotaExceeded):
        await check_quota(store, quota, SCOPE, ANA, adding=3)


# --- PackService -----------------------------------------------------------------------------


@dataclass
class FakeOutpainter:
    """Extends a picture with a flat fill, keeping it where the margins put it; `errors` are
    raised by the next calls; `can` False is a server that cannot."""

    model: str = "gpt-image-1"
    calls: list[OutpaintRequest] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    can: bool = True

    @property
    def can_outpaint(self) -> bool:
        return self.can

    async def outpaint(self, request: OutpaintRequest) -> GeneratedImage:
        self.calls.append(request)
        if self.errors:
            raise self.errors.pop(0)
        with Image.open(io.BytesIO(request.image)) as kept:
            width, height = request.extra.framed(*kept.size)
            canvas = Image.new("RGB", (width, height), (0, 200, 0))
            canvas.paste(kept.convert("RGB"), (request.extra.left, request.extra.up))
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        return GeneratedImage(buffer.getvalue(), self.model, {"output_tokens": 100})


def pack_service(
    store: Store,
    outpainter: FakeOutpainter,
    *,
    generator: FakeGenerator | None = None,
    critic: FakeCritic | None = None,
    quota: QuotaPolicy | None = None,
) -> PackService:
    generator = generator or FakeGenerator()
    maker = PackMaker(
        outpainter=outpainter,
        generator=generator,
        critic=critic or FakeCritic(),
        critic_max_side=256,
        safety_identifier=lambda actor: None,
        record_usage=store.chats.record_usage,
    )

    def estimated(formats, quality):
        return estimate(
            formats,
            outpaint_model=outpainter.model,
            edit_model=generator.model,
            can_outpaint=outpainter.can_outpaint,
            can_edit=generator.can_edit,
            quality=quality,
        )

    return PackService(store=store, maker=maker, quota=quota or QuotaPolicy(), estimate=estimated)


async def test_a_pack_is_made_once_and_offered_again_as_ready(store: Store) -> None:
    round = await kept_round(store)
    outpainter = FakeOutpainter()
    packs = pack_service(store, outpainter)
    offer = await packs.offer(round.id, SCOPE, ANA)
    assert [f.name for f in offer.to_make] == ["portrait", "story", "banner"]
    assert offer.estimate.images == 3 and not offer.ready
    pending = await packs.begin(round.id, SCOPE, ANA)
    with pytest.raises(SessionBusy):  # a second ✅ while it is being made
        await packs.begin(round.id, SCOPE, ANA)
    rows = await packs.make(pending)
    assert [r.status for r in rows] == [PackStatus.DONE] * 3
    assert {r.method for r in rows} == {METHOD_OUTPAINT}
    margins_sent = sorted((c.format, c.extra.up, c.extra.left) for c in outpainter.calls)
    assert margins_sent == [("banner", 0, 25), ("portrait", 8, 0), ("story", 25, 0)]
    for row in rows:
        data = await packs.image(row)
        assert size_of(data) == (row.width, row.height)
    again = await packs.offer(round.id, SCOPE, ANA)
    assert again.ready and not again.to_make
    assert len(outpainter.calls) == 3


async def test_one_failing_format_leaves_the_others_and_retries_alone(store: Store) -> None:
    round = await kept_round(store)
    outpainter = FakeOutpainter(errors=[ContentBlocked("image", "moderation_blocked")])
    packs = pack_service(store, outpainter)
    rows = await packs.make(await packs.begin(round.id, SCOPE, ANA))
    failed = [r for r in rows if r.status is PackStatus.FAILED]
    assert len(failed) == 1 and (failed[0].error or "").startswith("blocked")
    assert sum(r.status is PackStatus.DONE for r in rows) == 2
    retried = await packs.begin_retry(failed[0].id, SCOPE, ANA)
    assert [item.id for item in retried.items] == [failed[0].id]
    rows = await packs.make(retried)
    assert [r.status for r in rows] == [PackStatus.DONE] * 3
    assert len(outpainter.calls) == 4


async def test_a_server_that_cannot_outpaint_gets_crops(store: Store) -> None:
    round = await kept_round(store)
    outpainter = FakeOutpainter(errors=[EditsUnsupported("image", "HTTP 404")] * 3)
    packs = pack_service(store, outpainter)
    rows = await packs.make(await packs.begin(round.id, SCOPE, ANA))
    assert {r.method for r in rows} == {METHOD_CROP}
    assert [r.status for r in rows] == [PackStatus.DONE] * 3


async def test_a_critic_that_fails_leaves_the_format_unchecked_not_lost(store: Store) -> None:
    round = await kept_round(store)
    critic = FakeCritic(errors=[Unavailable("critic", "timed out")] * 3, scores=[2])
    packs = pack_service(store, FakeOutpainter(), critic=critic)
    rows = await packs.make(await packs.begin(round.id, SCOPE, ANA))
    assert [r.status for r in rows] == [PackStatus.DONE] * 3
    assert [r.check_note for r in rows] == [None] * 3
    [request] = critic.requests[-1:]
    assert request.format_check is not None and request.reference_jpeg is not None


async def test_a_low_score_fails_the_check_and_says_why(store: Store) -> None:
    round = await kept_round(store)
    packs = pack_service(store, FakeOutpainter(), critic=FakeCritic(scores=[2]))
    rows = await packs.make(await packs.begin(round.id, SCOPE, ANA))
    assert {r.check_note for r in rows} == {"the light is flat"}


async def test_the_marketplace_image_is_an_edit_checked_for_white(store: Store) -> None:
    round = await kept_round(store)
    settings = await store.chats.settings(SCOPE.chat_id)
    await store.chats.save_settings(type(settings)(SCOPE.chat_id, marketplace="on"))
    generator = FakeGenerator()
    packs = pack_service(store, FakeOutpainter(), generator=generator)
    rows = await packs.make(await packs.begin(round.id, SCOPE, ANA))
    [market] = [r for r in rows if r.format == "marketplace"]
    assert (market.width, market.height) == (2000, 2000)
    assert "white background" in generator.calls[-1]["instruction"]
    assert market.check_note is not None and "not pure white" in market.check_note
    retried = await packs.begin_retry(market.id, SCOPE, ANA)  # Retry of a failed check
    assert [item.id for item in retried.items] == [market.id]
    edits = len(generator.calls)
    [again] = [r for r in await packs.make(retried) if r.id == market.id]
    assert len(generator.calls) == edits + 1 and again.status is PackStatus.DONE


async def test_the_quota_counts_the_pack(store: Store) -> None:
    round = await kept_round(store)
    packs = pack_service(store, FakeOutpainter(), quota=QuotaPolicy(rounds_per_user_per_day=3))
    with pytest.raises(QuotaExceeded):  # 1 round + 3 formats > 3
        await packs.begin(round.id, SCOPE, ANA)
    assert await store.packs.of_round(round.id) == []


async def test_a_restart_finds_the_unfinished_formats_only(store: Store) -> None:
    round = await kept_round(store)
    outpainter = FakeOutpainter()
    packs = pack_service(store, outpainter)
    pending = await packs.begin(round.id, SCOPE, ANA)
    done = pending.items[0]
    result = PackResult(METHOD_OUTPAINT, 1080, 1350, 0.01, None)
    await store.save_pack_image(
        done.id, data=png((1080, 1350), (1, 1, 1)), mime="image/jpeg", result=result, usage=None
    )
    await store.packs.start(pending.items[1].id)  # being made when the process died

    restarted = pack_service(store, outpainter)
    [resumed] = await restarted.interrupted()
    assert [item.format for item in resumed.items] == ["story", "banner"]
    rows = await restarted.make(resumed)
    assert [r.status for r in rows] == [PackStatus.DONE] * 3
    assert sorted(c.format for c in outpainter.calls) == ["banner", "story"]
    assert await restarted.interrupted() == []

"""The image backends' EDIT operation: the real generator classes against the fakes, over
loopback. An edit sends the parent round's stored image (byte for byte) first and the product
photo second; a server without an edits endpoint is found out once and never asked again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import ValidationError

from bot.backends.errors import ContentBlocked, EditsUnsupported, Rejected
from bot.backends.formats import ImageOptions
from bot.backends.image_params import supports_input_fidelity
from bot.backends.openai_common import make_client
from bot.backends.openai_images import REFERENCE_SENTENCE, OpenAIImageGenerator
from bot.backends.stability import DEFAULT_EDIT_STRENGTH, StabilityImageGenerator
from bot.config import Settings, describe_errors
from bot.services import build_generator
from bot.ui.refusals import backend_error_text
from tests.fakes.openai_server import MISSING_EDITS_ANSWERS, FakeOpenAI, OpenAIFault
from tests.fakes.pngs import image_size, prompt_of, render_image, render_png
from tests.fakes.stability_server import FakeStability

INSTRUCTION = "Make the backdrop plain white; show the gold necklace at the neckline"
PROMPT = "black-purple Banarasi saree on a plain white backdrop, gold necklace at the neckline"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def generators(fake: FakeOpenAI) -> AsyncIterator[Callable[[str], OpenAIImageGenerator]]:
    made: list[OpenAIImageGenerator] = []

    def make(model: str = "gpt-image-2.5-flare") -> OpenAIImageGenerator:
        client = make_client(fake.base_url, fake.api_key, timeout=10)
        generator = OpenAIImageGenerator(client, model, "medium", 10, output_format="jpeg")
        made.append(generator)
        return generator

    yield make
    for generator in made:
        await generator.aclose()


@pytest.fixture
def parent() -> bytes:
    """The parent round's stored original (a JPEG, as the bot's default output format)."""
    return render_image(1024, 1024, "jpeg")


@pytest.fixture
def photo() -> bytes:
    """The user's product photo (a PNG, so the two uploads differ in type too)."""
    return render_png(800, 600)


# --- OpenAI-compatible --------------------------------------------------------------------


async def test_edit_sends_the_parent_first_and_the_product_photo_second(
    fake: FakeOpenAI, generators, parent: bytes, photo: bytes
) -> None:
    generator = generators()
    edited = await generator.edit(
        PROMPT,
        instruction=INSTRUCTION,
        image=parent,
        reference=photo,
        options=ImageOptions("portrait", "high"),
    )
    [sent] = fake.edit_requests
    assert sent.images == [parent, photo]  # byte-identical, in this order
    assert sent.mimes == ["image/jpeg", "image/png"] and sent.field == "image[]"
    assert sent.prompt == f"{INSTRUCTION}\n\n{REFERENCE_SENTENCE}"
    assert "label text" in REFERENCE_SENTENCE and "logo" in REFERENCE_SENTENCE
    assert sent.fields["size"] == "1024x1280" and sent.fields["quality"] == "high"
    assert sent.fields["output_format"] == "jpeg" and sent.fields["n"] == "1"
    assert "input_fidelity" not in sent.fields  # gpt-image-2 and later: omit it (the SDK)
    assert fake.requests_to("images") == []
    assert edited.model == "gpt-image-2.5-flare" and edited.data.startswith(b"\xff\xd8")
    assert prompt_of(edited.data) == sent.prompt and image_size(edited.data) == (1024, 1280)
    assert edited.usage["input_tokens"] > 0


async def test_edit_without_a_photo_sends_the_parent_alone(
    fake: FakeOpenAI, generators, parent: bytes
) -> None:
    generator = generators()
    await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent, seed=42)
    [sent] = fake.edit_requests
    assert sent.images == [parent] and sent.field == "image"
    assert sent.prompt == INSTRUCTION and "seed" not in sent.fields
    assert sent.fields["size"] == "1024x1024" and sent.fields["quality"] == "medium"

    await generator.edit(PROMPT, instruction="  ", image=parent)
    assert fake.edit_requests[-1].prompt == PROMPT  # no instruction: the description


@pytest.mark.parametrize(
    ("model", "fidelity"),
    [
        ("gpt-image-1.5", "high"),
        ("gpt-image-1.5-2025-12-16", "high"),
        ("gpt-image-1-mini", None),
        ("gpt-image-2", None),
        ("gpt-image-2.5-flare", None),
        ("gpt-image-2.6-sunburst", None),
        ("flux-schnell", None),  # a self-hosted model the SDK's docs do not name
    ],
)
async def test_input_fidelity_goes_only_where_the_sdk_docs_say(
    fake: FakeOpenAI, generators, parent: bytes, photo: bytes, model: str, fidelity: str | None
) -> None:
    assert supports_input_fidelity(model) == (fidelity is not None)
    generator = generators(model)
    await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent, reference=photo)
    await generator.generate(PROMPT, reference=photo)
    for sent in fake.edit_requests:
        assert sent.fields.get("input_fidelity") == fidelity and sent.record.status == 200


async def test_a_refused_input_fidelity_is_dropped_for_good(
    fake: FakeOpenAI, generators, parent: bytes, photo: bytes
) -> None:
    fake.fail_next(
        "edits",
        OpenAIFault.bad_request(
            "Unknown parameter: 'input_fidelity'.", param="input_fidelity", code="unknown_parameter"
        ),
    )
    generator = generators("gpt-image-1.5")
    await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent, reference=photo)
    await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent)
    refused, accepted, later = fake.edit_requests
    assert refused.record.status == 400 and refused.fields["input_fidelity"] == "high"
    assert accepted.images == [parent, photo] and "input_fidelity" not in accepted.fields
    assert later.images == [parent] and "input_fidelity" not in later.fields


async def test_edit_errors_keep_their_kinds(fake: FakeOpenAI, generators, parent: bytes) -> None:
    generator = generators()
    fake.fail_next("edits", OpenAIFault.moderation())
    with pytest.raises(ContentBlocked):
        await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent)
    missing_model = OpenAIFault.error(
        404,
        "The model `gpt-image-9` does not exist or you do not have access to it.",
        code="model_not_found",
    )
    fake.fail_next("edits", missing_model)
    with pytest.raises(Rejected):  # a missing model, not a missing endpoint
        await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent)
    assert generator.can_edit
    await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent)
    assert fake.edit_requests[-1].record.status == 200


@pytest.mark.parametrize("server", sorted(MISSING_EDITS_ANSWERS))
async def test_no_edits_endpoint_is_found_out_once_then_never_asked(
    fake: FakeOpenAI,
    generators,
    parent: bytes,
    photo: bytes,
    caplog: pytest.LogCaptureFixture,
    server: str,
) -> None:
    fake.missing_edits = server
    generator = generators()
    assert generator.can_edit
    with caplog.at_level(logging.INFO, logger="bot.backends.openai_images"):
        with pytest.raises(EditsUnsupported) as caught:
            await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent, reference=photo)
        assert caught.value.kind == "no_edits" and caught.value.service == "image"
        assert not generator.can_edit
        with pytest.raises(EditsUnsupported):
            await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent)
        with pytest.raises(EditsUnsupported):  # a photo brief needs the same endpoint
            await generator.generate(PROMPT, reference=photo)
    assert len(fake.requests_to("edits")) == 1  # asked once, retried never
    [line] = [r for r in caplog.records if "no edits endpoint" in r.getMessage()]
    assert line.levelno == logging.INFO and "gpt-image-2.5-flare" in line.getMessage()
    assert caught.value.detail in line.getMessage()
    assert (await generator.generate(PROMPT)).data  # text briefs still draw
    assert "can't edit pictures" in backend_error_text(caught.value)


async def test_a_photo_brief_on_a_server_without_edits_says_so(
    fake: FakeOpenAI, generators, photo: bytes
) -> None:
    fake.missing_edits = "ollama"
    generator = generators()
    with pytest.raises(EditsUnsupported) as caught:
        await generator.generate(PROMPT, reference=photo)
    assert caught.value.detail == "HTTP 404: 404 page not found"
    assert not generator.can_edit
    assert backend_error_text(caught.value) == (
        "The image service can't edit pictures, so product photos can't be used with it. Ask "
        "the bot's owner to switch to an image server that supports edits."
    )


# --- Stability ----------------------------------------------------------------------------


@pytest.fixture
async def stability() -> AsyncIterator[FakeStability]:
    async with FakeStability() as server:
        yield server


def stability_generator(fake: FakeStability, model: str, **kwargs) -> StabilityImageGenerator:
    http = httpx.AsyncClient(base_url=fake.base_url)
    return StabilityImageGenerator(http, fake.api_key, model, "jpeg", 10, 0.6, **kwargs)


async def test_stability_edit_is_image_to_image_from_the_parent(
    stability: FakeStability, parent: bytes, photo: bytes
) -> None:
    generator = stability_generator(stability, "sd3.5-large", edit_strength=0.35)
    assert generator.can_edit
    try:
        edited = await generator.edit(
            PROMPT,
            instruction=INSTRUCTION,
            image=parent,
            reference=photo,
            seed=1234,
            options=ImageOptions("banner"),
        )
        await generator.generate(PROMPT, seed=1234, reference=photo)
    finally:
        await generator.aclose()
    first, second = stability.requests
    assert first.endpoint == "sd3" and first.status == 200
    assert first.form["mode"] == "image-to-image" and first.form["strength"] == "0.35"
    assert first.form["prompt"] == PROMPT and first.form["seed"] == "1234"
    assert first.form["model"] == "sd3.5-large" and "aspect_ratio" not in first.form
    assert first.files["image"] == [parent] and first.file_types["image"] == ["image/jpeg"]
    edit_input, photo_input = stability.image_inputs
    assert (edit_input.image, edit_input.strength, edit_input.seed) == (parent, 0.35, 1234)
    assert (photo_input.image, photo_input.strength) == (photo, 0.6)  # briefs keep theirs
    assert second.form["strength"] == "0.6"
    assert edited.model == "sd3.5-large" and prompt_of(edited.data) == PROMPT
    assert image_size(edited.data) == (1024, 1024)  # the parent's shape, not the preset's


@pytest.mark.parametrize(
    ("model", "endpoint", "model_field", "mode"),
    [
        ("core", "sd3", "sd3.5-large", "image-to-image"),  # core has no image input
        ("ultra", "ultra", None, None),
        ("sd3.5-medium", "sd3", "sd3.5-medium", "image-to-image"),
    ],
)
async def test_stability_edit_uses_the_endpoint_photo_briefs_use(
    stability: FakeStability,
    parent: bytes,
    model: str,
    endpoint: str,
    model_field: str | None,
    mode: str | None,
) -> None:
    generator = stability_generator(stability, model)
    try:
        edited = await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent, seed=5)
    finally:
        await generator.aclose()
    [sent] = stability.requests
    assert (sent.endpoint, sent.status) == (endpoint, 200)
    assert sent.form.get("model") == model_field and sent.form.get("mode") == mode
    assert sent.form["strength"] == f"{DEFAULT_EDIT_STRENGTH:g}"
    assert stability.image_inputs[-1].image == parent
    assert edited.model == (model if model != "core" else "sd3.5-large")


async def test_stability_edit_strength_comes_from_the_settings(
    make_settings, stability_fake: FakeStability, parent: bytes
) -> None:
    assert Settings.model_fields["stability_edit_strength"].default == DEFAULT_EDIT_STRENGTH
    generator = build_generator(
        make_settings(image_backend="stability", stability_edit_strength="0.3")
    )
    try:
        await generator.edit(PROMPT, instruction=INSTRUCTION, image=parent, seed=9)
    finally:
        await generator.aclose()
    [started] = stability_fake.image_inputs
    assert (started.strength, started.image, started.prompt) == (0.3, parent, PROMPT)


@pytest.mark.parametrize("value", ["0", "-0.2", "1.01", "nan", "much"])
def test_stability_edit_strength_must_be_above_0_and_at_most_1(make_settings, value) -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(stability_edit_strength=value)
    message = describe_errors(caught.value)
    assert message.startswith("STABILITY_EDIT_STRENGTH: ")
    assert value == "much" or "must be above 0 and at most 1" in message
    assert make_settings(stability_edit_strength="1").stability_edit_strength == 1.0

"""The fake OpenAI and Stability servers, exercised with the real `openai` SDK and httpx."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from PIL import Image

from tests.fakes.faults import Fault
from tests.fakes.openai_server import (
    MAX_EDIT_IMAGES,
    MISSING_EDITS_ANSWERS,
    FakeOpenAI,
    OpenAIFault,
)
from tests.fakes.pngs import (
    image_size,
    prompt_of,
    render_image,
    render_png,
    solid_png,
    with_prompt,
)
from tests.fakes.stability_server import ASPECT_SIZES, FakeStability, StabilityFault

CRITIQUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "strengths": {"type": "array", "items": {"type": "string"}},
        "problems": {"type": "array", "items": {"type": "string"}},
        "revised_prompt": {"type": "string"},
    },
    "required": ["score", "strengths", "problems", "revised_prompt"],
    "additionalProperties": False,
}
CRITIQUE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "critique", "schema": CRITIQUE_SCHEMA, "strict": True},
}


def data_url(image: bytes, mime: str = "image/jpeg") -> str:
    """Encode bytes as a base64 data URL."""
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def vision_messages(text: str, image: bytes | None = None) -> list[dict[str, Any]]:
    """A user message with one text part and one JPEG data-URL image part."""
    jpeg = image if image is not None else render_image(640, 480, "jpeg")
    return [
        {"role": "system", "content": "You are a strict art director."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": data_url(jpeg), "detail": "low"}},
            ],
        },
    ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def stability() -> AsyncIterator[FakeStability]:
    async with FakeStability() as server:
        yield server


@pytest.fixture
async def http(stability: FakeStability) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {stability.api_key}", "accept": "image/*"}
    async with httpx.AsyncClient(base_url=stability.base_url, headers=headers) as session:
        yield session


# --- pngs ---------------------------------------------------------------------------------


def test_render_is_cached_deterministic_and_not_flat() -> None:
    png = render_png(320, 200)
    assert png is render_png(320, 200)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (320, 200)
        assert len(image.convert("RGB").getcolors(1 << 16) or ()) > 100


def test_with_prompt_round_trips_in_png_and_jpeg() -> None:
    prompt = "a teal mug — on oak, «soft» light ✓"
    png = with_prompt(render_png(64, 48), prompt)
    assert prompt_of(png) == prompt
    with Image.open(io.BytesIO(png)) as image:
        image.verify()  # checks every chunk CRC
    with Image.open(io.BytesIO(png)) as image:
        assert image.text["prompt"] == prompt
    retagged = with_prompt(png, "second")
    assert prompt_of(retagged) == "second"
    assert retagged.count(b"iTXt") == 1

    jpeg = with_prompt(render_image(64, 48, "jpeg"), prompt)
    assert prompt_of(jpeg) == prompt
    with Image.open(io.BytesIO(jpeg)) as image:
        image.load()
        assert image.size == (64, 48)
    assert prompt_of(render_png(64, 48)) is None


def test_solid_png() -> None:
    png = solid_png(8, 4)
    assert png is solid_png(8, 4)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (8, 4)
        assert image.convert("RGB").getpixel((0, 0)) == (200, 30, 90)


# --- OpenAI: images -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("gpt-image-1", "1024x1024", (1024, 1024)),
        ("gpt-image-1", "1536x1024", (1536, 1024)),
        ("gpt-image-1", None, (1024, 1024)),
        ("gpt-image-2.5-flare", "1536x864", (1536, 864)),
    ],
)
async def test_generate_returns_tagged_png_of_requested_size(
    fake: FakeOpenAI,
    client: AsyncOpenAI,
    model: str,
    size: str | None,
    expected: tuple[int, int],
) -> None:
    prompt = "a ceramic mug on a white table"
    kwargs: dict[str, Any] = {"size": size} if size else {}
    response = await client.images.generate(
        model=model, prompt=prompt, quality="medium", n=2, **kwargs
    )
    assert response.data is not None and len(response.data) == 2
    png = base64.b64decode(response.data[0].b64_json or "")
    assert png.startswith(b"\x89PNG")
    assert image_size(png) == expected
    assert prompt_of(png) == prompt
    assert response.size == "{}x{}".format(*expected)
    assert (response.output_format, response.background, response.quality) == (
        "png",
        "opaque",
        "medium",
    )
    assert response.usage is not None and response.usage.output_tokens > 0
    (record,) = fake.requests_to("images")
    assert record.json["prompt"] == prompt
    assert record.headers["authorization"] == "Bearer ***"
    assert record.status == 200
    assert record.finished_at is not None and record.finished_at >= record.started_at


async def test_generate_rejects_unknown_size(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="mug", size="512x512")
    assert (caught.value.code, caught.value.param) == ("invalid_value", "size")


async def test_edit_records_uploaded_images(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    draft = render_png(600, 400)
    response = await client.images.edit(
        model="gpt-image-1",
        image=("draft.png", draft, "image/png"),
        prompt="make the lighting softer",
        input_fidelity="high",
    )
    assert response.data is not None
    png = base64.b64decode(response.data[0].b64_json or "")
    assert image_size(png) == (1536, 1024)  # size=auto follows the landscape input
    assert prompt_of(png) == "make the lighting softer"
    (record,) = fake.requests_to("edits")
    assert record.files["image"] == [draft]
    assert record.file_types["image"] == ["image/png"]
    assert record.form["input_fidelity"] == "high"

    await client.images.edit(
        model="gpt-image-1",
        image=[("a.png", draft, "image/png"), ("b.jpg", render_image(64, 64, "jpeg"))],
        prompt="combine",
        size="1024x1024",
    )
    assert fake.requests_to("edits")[1].file_types == {"image[]": ["image/png", "image/jpeg"]}


async def test_streamed_generations_and_edits_are_the_sdks_events(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    stream = await client.images.generate(
        model="gpt-image-1",
        prompt="a teapot",
        size="1024x1024",
        quality="low",
        output_format="jpeg",
        stream=True,
        partial_images=2,
    )
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    images = [base64.b64decode(event.b64_json) for event in events]
    assert [prompt_of(image) for image in images] == [
        "partial 0: a teapot",
        "partial 1: a teapot",
        "a teapot",
    ]
    done = events[-1]
    assert (done.size, done.quality, done.output_format) == ("1024x1024", "low", "jpeg")
    assert done.usage.output_tokens == 272 and done.usage.input_tokens_details.text_tokens >= 1

    edit = await client.images.edit(
        model="gpt-image-1",
        image=("draft.png", render_png(64, 64), "image/png"),
        prompt="warmer",
        stream=True,
        partial_images=0,
    )
    assert [event.type async for event in edit] == ["image_edit.completed"]

    with pytest.raises(openai.BadRequestError, match="partial_images"):
        await client.images.generate(model="gpt-image-1", prompt="x", stream=True, partial_images=4)
    fake.ignores_stream = True  # a server that ignores the parameter answers JSON
    plain = await client.images.with_raw_response.generate(
        model="gpt-image-1", prompt="x", stream=True, partial_images=1
    )
    assert plain.headers["content-type"].startswith("application/json")


async def test_edit_rejects_upload_without_image_mimetype(client: AsyncOpenAI) -> None:
    # Bare bytes go out as application/octet-stream, which the real API refuses too.
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(model="gpt-image-1", image=render_png(64, 64), prompt="x")
    assert caught.value.code == "unsupported_file_mimetype"


async def test_edit_takes_up_to_16_images_in_the_order_sent(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    blobs = [render_image(64 + 16 * i, 64, "jpeg") for i in range(MAX_EDIT_IMAGES + 1)]
    uploads = [(f"{i}.jpg", blob, "image/jpeg") for i, blob in enumerate(blobs)]
    await client.images.edit(
        model="gpt-image-2.5-flare", image=uploads[:MAX_EDIT_IMAGES], prompt="combine"
    )
    [accepted] = fake.edit_requests
    assert accepted.images == blobs[:MAX_EDIT_IMAGES] and accepted.field == "image[]"
    assert accepted.prompt == "combine" and accepted.model == "gpt-image-2.5-flare"
    assert accepted.record.status == 200

    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(model="gpt-image-2.5-flare", image=uploads, prompt="combine")
    assert (caught.value.code, caught.value.param) == ("array_above_max_length", "image")
    assert "maximum length 16, but got an array with length 17" in caught.value.message
    assert fake.edit_requests[-1].images == blobs and fake.edit_requests[-1].record.status == 400


@pytest.mark.parametrize(
    ("model", "fidelity", "code"),
    [
        ("gpt-image-1.5", "high", None),
        ("gpt-image-1.5", "low", None),
        ("gpt-image-1", "high", None),
        ("gpt-image-1-mini", "low", None),
        ("gpt-image-1-mini", "high", "invalid_value"),
        ("gpt-image-2", "low", "invalid_input_fidelity_model"),
        ("gpt-image-2.5-flare", "high", "invalid_input_fidelity_model"),
        ("dall-e-2", "high", "unknown_parameter"),
        ("gpt-image-1.5", "max", "invalid_value"),
    ],
)
async def test_edit_input_fidelity_follows_the_sdk_docs(
    fake: FakeOpenAI,
    client: AsyncOpenAI,
    model: str,
    fidelity: Any,
    code: str | None,
) -> None:
    upload = ("draft.png", render_png(64, 64), "image/png")
    if code is None:
        await client.images.edit(model=model, image=upload, prompt="x", input_fidelity=fidelity)
        assert fake.edit_requests[-1].fields["input_fidelity"] == fidelity
        return
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(model=model, image=upload, prompt="x", input_fidelity=fidelity)
    assert (caught.value.code, caught.value.param) == (code, "input_fidelity")


async def test_edit_needs_an_image_and_checks_an_optional_mask(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    auth = {"authorization": f"Bearer {fake.api_key}"}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=auth) as http:
        response = await http.post(
            "/images/edits", data={"prompt": "x", "model": "gpt-image-1.5"}, files={"n": "1"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"
    assert fake.edit_requests[-1].images == [] and fake.edit_requests[-1].field == ""

    draft = ("draft.png", render_png(64, 48), "image/png")
    mask = solid_png(64, 48)
    await client.images.edit(
        model="gpt-image-1.5", image=draft, prompt="x", mask=("mask.png", mask, "image/png")
    )
    assert fake.edit_requests[-1].mask == mask
    for wrong in (
        ("m.jpg", render_image(64, 48, "jpeg"), "image/jpeg"),
        ("m.png", solid_png(32, 32), "image/png"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.images.edit(model="gpt-image-1.5", image=draft, prompt="x", mask=wrong)
        assert caught.value.param == "mask"


@pytest.mark.parametrize(
    ("server", "status"),
    [("openai", 404), ("ollama", 404), ("fastapi", 404), ("method_not_allowed", 405)],
)
async def test_missing_edits_route_answers_like_those_servers(
    fake: FakeOpenAI, client: AsyncOpenAI, server: str, status: int
) -> None:
    fake.missing_edits = server
    draft = render_png(64, 64)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.images.edit(
            model="gpt-image-1.5", image=("draft.png", draft, "image/png"), prompt="x"
        )
    assert caught.value.status_code == status
    assert caught.value.body == MISSING_EDITS_ANSWERS[server].body or server == "openai"
    [recorded] = fake.edit_requests
    assert recorded.images == [draft] and recorded.record.status == status
    assert (await client.images.generate(model="gpt-image-1.5", prompt="x")).data


async def test_missing_edits_route_on_lm_studio_is_a_200_error(
    fake: FakeOpenAI, client: AsyncOpenAI
) -> None:
    fake.missing_edits = "lmstudio"
    raw = await client.images.with_raw_response.edit(
        model="m", image=("draft.png", render_png(64, 64), "image/png"), prompt="x"
    )
    assert raw.status_code == 200
    assert json.loads(raw.content) == {
        "error": "Unexpected endpoint or method. (POST /v1/images/edits)"
    }


# --- OpenAI: chat -------------------------------------------------------------------------


async def test_chat_vision_with_json_schema(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    jpeg = render_image(768, 512, "jpeg")
    completion = await client.chat.completions.create(
        model="gpt-5.4-mini",
        messages=vision_messages("<current_prompt>a red mug</current_prompt>", jpeg),
        response_format=CRITIQUE_FORMAT,
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-5.4-mini"
    choice = completion.choices[0]
    assert (choice.index, choice.finish_reason, choice.message.role) == (0, "stop", "assistant")
    assert choice.message.refusal is None
    critique = json.loads(choice.message.content or "")
    assert critique == {  # every field of the strict schema, nullable ones as null
        "score": 5,
        "fidelity": None,
        "strengths": ["clear product shot"],
        "problems": ["lighting is flat", "background is busy"],
        "revised_prompt": "a red mug, softer studio lighting",
        "next_step": "redraw",
        "edit_instruction": None,
    }
    assert completion.usage is not None and completion.usage.total_tokens > 0
    (seen,) = fake.chat_images
    assert (seen.mime, seen.format, seen.width, seen.height) == ("image/jpeg", "JPEG", 768, 512)
    assert (seen.size_bytes, seen.detail) == (len(jpeg), "low")


async def test_default_critic_counts_earlier_critiques(client: AsyncOpenAI) -> None:
    text = (
        '<critique round="1">meh</critique>\n<critique round="2">better</critique>\n'
        "<current_prompt>a blue kettle</current_prompt>"
    )
    completion = await client.chat.completions.create(
        model="m", messages=vision_messages(text), response_format=CRITIQUE_FORMAT
    )
    critique = json.loads(completion.choices[0].message.content or "")
    assert critique["score"] == 7
    assert critique["revised_prompt"] == "a blue kettle, softer studio lighting"


async def test_queued_and_custom_critiques(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.critic = lambda request: {"score": 9, "model_seen": request["model"]}
    fake.queue_critique("this is {not json")
    fake.queue_refusal("I can't judge this image.")

    async def content() -> tuple[str | None, str | None]:
        completion = await client.chat.completions.create(
            model="critic-x", messages=vision_messages("judge")
        )
        return completion.choices[0].message.content, completion.choices[0].message.refusal

    assert await content() == ("this is {not json", None)
    assert await content() == (None, "I can't judge this image.")
    text, _ = await content()
    assert json.loads(text or "") == {"score": 9, "model_seen": "critic-x"}


async def test_chat_validates_like_the_real_api(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    loose = {"type": "json_schema", "json_schema": {"name": "c", "schema": {}, "strict": True}}
    loose["json_schema"]["schema"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        await client.chat.completions.create(
            model="m", messages=vision_messages("x"), response_format=loose
        )
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "no image here"}]
        )
    assert caught.value.code == "fake_expected_vision_request"
    bad_image = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="m", messages=bad_image)
    assert caught.value.code == "invalid_image_format"
    fake.require_vision = False
    await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


async def test_chat_length_limit_and_parse_helper(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="m", messages=vision_messages("x"), max_completion_tokens=5
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5

    fake.queue_critique({"score": 3}, finish_reason="length")
    with pytest.raises(openai.LengthFinishReasonError):
        await client.chat.completions.parse(
            model="m", messages=vision_messages("x"), response_format=CRITIQUE_FORMAT
        )


# --- OpenAI: errors and the SDK's retry rules ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "exception", "status", "code"),
    [
        (OpenAIFault.moderation(), openai.BadRequestError, 400, "moderation_blocked"),
        (OpenAIFault.invalid_api_key(), openai.AuthenticationError, 401, "invalid_api_key"),
        (
            OpenAIFault.unsupported_region(),
            openai.PermissionDeniedError,
            403,
            "unsupported_country_region_territory",
        ),
        (OpenAIFault.permission_denied(), openai.PermissionDeniedError, 403, None),
        (OpenAIFault.payment_required(), openai.APIStatusError, 402, "insufficient_quota"),
        (OpenAIFault.rate_limit(), openai.RateLimitError, 429, "rate_limit_exceeded"),
        (OpenAIFault.insufficient_quota(), openai.RateLimitError, 429, "insufficient_quota"),
        (OpenAIFault.server_error(), openai.InternalServerError, 500, None),
        (OpenAIFault.service_unavailable(), openai.InternalServerError, 503, None),
    ],
)
async def test_faults_surface_as_sdk_exceptions(
    fake: FakeOpenAI,
    client: AsyncOpenAI,
    fault: Fault,
    exception: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    fake.fail_next("images", fault)
    with pytest.raises(exception) as caught:
        await client.images.generate(model="gpt-image-1", prompt="mug")
    error = caught.value
    assert type(error) is exception
    assert (error.status_code, error.code) == (status, code)
    assert isinstance(fault.body, dict)
    assert error.body == fault.body["error"]  # the SDK unwraps the "error" envelope
    assert error.message == f"Error code: {status} - {fault.body['error']['message']}"
    assert (error.request_id or "").startswith("req_")
    # The fault was used up: the next request is served normally.
    assert (await client.images.generate(model="gpt-image-1", prompt="mug")).data


async def test_non_json_gateway_error(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.fail_next("chat", Fault.bad_gateway_html())
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=vision_messages("x"))
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, str) and "Bad Gateway" in caught.value.body
    assert caught.value.code is None


async def test_wrong_api_key_is_rejected(fake: FakeOpenAI) -> None:
    async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong-key", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            await bad.chat.completions.create(model="m", messages=vision_messages("x"))
    assert caught.value.code == "invalid_api_key"
    assert "sk-wro***-key" in caught.value.message
    assert fake.requests[-1].status == 401


async def test_missing_api_key_over_plain_http(fake: FakeOpenAI) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/images/generations", json={"prompt": "x"})
        assert response.status_code == 401
        assert response.json()["error"]["message"].startswith("You didn't provide an API key")
        response = await http.get(f"{fake.base_url}/nope")
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"


async def test_a_body_not_declared_as_json_is_refused(fake: FakeOpenAI) -> None:
    body = json.dumps({"model": "m", "messages": vision_messages("x")})
    headers = {"Authorization": f"Bearer {fake.api_key}", "Content-Type": "text/plain"}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions", content=body, headers=headers
        )
    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]


async def test_sdk_honours_retry_after_ms_on_429(fake: FakeOpenAI) -> None:
    fake.fail_next("images", OpenAIFault.rate_limit(retry_after_ms=5))
    async with AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=2) as sdk:
        response = await sdk.images.generate(model="gpt-image-1", prompt="mug")
    assert response.data
    first, second = fake.requests_to("images")
    assert (first.status, second.status) == (429, 200)
    assert (first.retry_count, second.retry_count) == (0, 1)
    assert first.finished_at is not None
    # Without the header the SDK would back off for at least 0.375 s.
    assert second.started_at - first.finished_at < 0.3


async def test_sdk_does_not_retry_when_retry_after_exceeds_two_minutes(fake: FakeOpenAI) -> None:
    fake.fail_next("images", OpenAIFault.rate_limit(retry_after_ms=None, retry_after=3600))
    async with AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=2) as sdk:
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.images.generate(model="gpt-image-1", prompt="mug")
    assert caught.value.response.headers["retry-after"] == "3600"
    assert len(fake.requests_to("images")) == 1


async def test_sdk_retries_500_and_obeys_x_should_retry(fake: FakeOpenAI) -> None:
    fast = {"retry-after-ms": "5"}
    fake.fail_next("chat", OpenAIFault.server_error().with_headers(fast))
    async with AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=2) as sdk:
        completion = await sdk.chat.completions.create(model="m", messages=vision_messages("x"))
        assert completion.choices[0].message.content
        assert [r.status for r in fake.requests_to("chat")] == [500, 200]

        fake.fail_next("chat", OpenAIFault.server_error().with_headers({"x-should-retry": "false"}))
        with pytest.raises(openai.InternalServerError):
            await sdk.chat.completions.create(model="m", messages=vision_messages("x"))
        assert [r.status for r in fake.requests_to("chat")] == [500, 200, 500]

        # insufficient_quota is a 429, so the SDK retries it like any rate limit.
        fake.fail_next("images", OpenAIFault.insufficient_quota().with_headers(fast), count=3)
        with pytest.raises(openai.RateLimitError):
            await sdk.images.generate(model="gpt-image-1", prompt="mug")
        assert len(fake.requests_to("images")) == 3


async def test_slow_reply_times_out(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.fail_next("chat", Fault.slow(2.0))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=vision_messages("x"), timeout=0.3)
    assert time.monotonic() - started < 1.5

    fake.image_latency = 2.0
    with pytest.raises(openai.APITimeoutError):
        await client.images.generate(model="gpt-image-1", prompt="mug", timeout=0.3)


async def test_sdk_retries_timeouts_and_reports_dropped_connections(fake: FakeOpenAI) -> None:
    # A timed-out attempt is retried (after the SDK's own 0.375-0.5 s backoff).
    fake.fail_next("images", Fault.slow(2.0))
    async with AsyncOpenAI(
        base_url=fake.base_url, api_key=fake.api_key, max_retries=1, timeout=0.3
    ) as sdk:
        response = await sdk.images.generate(model="gpt-image-1", prompt="mug")
        assert response.data
        assert [r.retry_count for r in fake.requests_to("images")] == [0, 1]
        assert [r.status for r in fake.requests_to("images")] == [None, 200]

        # A dropped connection is retried the same way; with no retries left it surfaces.
        fake.fail_next("images", Fault.drop_connection())
        with pytest.raises(openai.APIConnectionError):
            await sdk.with_options(max_retries=0).images.generate(model="gpt-image-1", prompt="m")
        assert fake.requests_to("images")[-1].status is None


# --- Stability ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "aspect_ratio"),
    [("sd3", None), ("sd3", "16:9"), ("core", "9:16"), ("core", "4:5"), ("ultra", "21:9")],
)
async def test_stability_generate_returns_image_for_aspect_ratio(
    stability: FakeStability, http: httpx.AsyncClient, endpoint: str, aspect_ratio: str | None
) -> None:
    prompt = "a leather wallet on slate"
    form = {"prompt": prompt, "output_format": "png"}
    if aspect_ratio:
        form["aspect_ratio"] = aspect_ratio
    response = await http.post(
        f"/v2beta/stable-image/generate/{endpoint}", data=form, files={"none": ""}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["finish-reason"] == "SUCCESS"
    assert 0 < int(response.headers["seed"]) <= 4_294_967_294
    assert image_size(response.content) == ASPECT_SIZES[aspect_ratio or "1:1"]
    assert prompt_of(response.content) == prompt
    (record,) = stability.requests_to(endpoint)
    assert record.form["prompt"] == prompt
    assert record.headers["authorization"] == "Bearer ***"


async def test_stability_json_reply_formats_and_seed(
    stability: FakeStability, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/v2beta/stable-image/generate/sd3",
        data={"prompt": "mug", "model": "sd3.5-medium", "seed": "42", "output_format": "jpeg"},
        files={"none": ""},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    payload = response.json()
    assert (payload["finish_reason"], payload["seed"]) == ("SUCCESS", 42)
    image = base64.b64decode(payload["image"])
    assert image.startswith(b"\xff\xd8") and prompt_of(image) == "mug"

    response = await http.post(
        "/v2beta/stable-image/generate/core",
        data={"prompt": "mug", "output_format": "webp", "style_preset": "photographic"},
        files={"none": ""},
    )
    assert response.headers["content-type"] == "image/webp"
    assert image_size(response.content) == (1024, 1024)


async def test_stability_image_to_image(stability: FakeStability, http: httpx.AsyncClient) -> None:
    source = render_png(900, 600)
    response = await http.post(
        "/v2beta/stable-image/generate/sd3",
        data={"prompt": "warmer", "mode": "image-to-image", "strength": "0.6"},
        files={"image": ("draft.png", source, "image/png")},
    )
    assert response.status_code == 200
    assert image_size(response.content) == ASPECT_SIZES["3:2"]
    (record,) = stability.requests
    assert record.file_sizes == {"image": [len(source)]}
    assert record.images[0].width == 900

    response = await http.post(
        "/v2beta/stable-image/generate/sd3",
        data={"prompt": "warmer", "mode": "image-to-image", "strength": "0.6"},
        files={"none": ""},
    )
    assert response.status_code == 400


async def test_stability_records_image_to_image_and_checks_its_fields(
    stability: FakeStability, http: httpx.AsyncClient
) -> None:
    source = render_image(640, 480, "jpeg")
    image = {"image": ("parent.jpeg", source, "image/jpeg")}
    url = "/v2beta/stable-image/generate/sd3"
    form = {"prompt": "on white", "mode": "image-to-image", "strength": "0.45", "seed": "7"}
    assert (await http.post(url, data=form, files=image)).status_code == 200
    [started] = stability.image_inputs
    assert (started.endpoint, started.model, started.image) == ("sd3", "sd3.5-large", source)
    assert (started.strength, started.prompt, started.seed) == (0.45, "on white", 7)

    refused = [
        ({**form, "aspect_ratio": "1:1"}, image, "aspect_ratio: only valid for text-to-image"),
        ({"prompt": "x", "strength": "0.5"}, {"none": ""}, "strength: only valid for image-to"),
        ({**form, "strength": "1.2"}, image, "strength: must be between 0 and 1"),
        ({"prompt": "x", "mode": "image-to-image"}, image, "strength: required"),
    ]
    for data, files, message in refused:
        response = await http.post(url, data=data, files=files)
        assert response.status_code == 400
        assert response.json()["errors"][0].startswith(message)
    assert len(stability.image_inputs) == 1

    ultra = await http.post(
        "/v2beta/stable-image/generate/ultra", data={"prompt": "x", "strength": "0.3"}, files=image
    )
    assert ultra.status_code == 200
    assert (stability.image_inputs[-1].endpoint, stability.image_inputs[-1].model) == (
        "ultra",
        None,
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"aspect_ratio": "7:5", "prompt": "x"}, "aspect_ratio: invalid enum value"),
        ({"output_format": "webp", "prompt": "x"}, "output_format: invalid enum value"),
        ({"model": "sd2", "prompt": "x"}, "model: invalid enum value"),
        ({"seed": "-1", "prompt": "x"}, "seed: must be an integer"),
        ({"prompt": "x" * 10_001}, "prompt: must be at most 10000 characters"),
        ({"negative_prompt": "blurry"}, "prompt: required"),
    ],
)
async def test_stability_validates_the_form(
    http: httpx.AsyncClient, form: dict[str, str], message: str
) -> None:
    response = await http.post("/v2beta/stable-image/generate/sd3", data=form, files={"none": ""})
    assert response.status_code == 400
    body = response.json()
    assert body["name"] == "bad_request"
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert body["errors"][0].startswith(message)


@pytest.mark.parametrize(
    ("fault", "status", "name"),
    [
        (StabilityFault.bad_request(), 400, "bad_request"),
        (StabilityFault.unauthorized(), 401, "unauthorized"),
        (StabilityFault.payment_required(), 402, "payment_required"),
        (StabilityFault.content_moderation(), 403, "content_moderation"),
        (StabilityFault.payload_too_large(), 413, "payload_too_large"),
        (StabilityFault.invalid_language(), 422, "invalid_language"),
        (StabilityFault.unprocessable(), 422, "invalid_prompt"),
        (StabilityFault.rate_limit(retry_after=7), 429, "rate_limit"),
        (StabilityFault.internal_error(), 500, "internal_error"),
    ],
)
async def test_stability_faults(
    stability: FakeStability, http: httpx.AsyncClient, fault: Fault, status: int, name: str
) -> None:
    stability.fail_next(fault)
    response = await http.post(
        "/v2beta/stable-image/generate/ultra", data={"prompt": "x"}, files={"none": ""}
    )
    assert response.status_code == status
    body = response.json()
    assert body["name"] == name
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert body["errors"] and all(isinstance(error, str) for error in body["errors"])
    if name == "rate_limit":
        assert response.headers["retry-after"] == "7"
    response = await http.post(
        "/v2beta/stable-image/generate/ultra", data={"prompt": "x"}, files={"none": ""}
    )
    assert response.status_code == 200


async def test_stability_content_filtered(
    stability: FakeStability, http: httpx.AsyncClient
) -> None:
    stability.filter_next()
    url = "/v2beta/stable-image/generate/core"
    filtered = await http.post(url, data={"prompt": "x"}, files={"none": ""})
    assert filtered.status_code == 200
    assert filtered.headers["finish-reason"] == "CONTENT_FILTERED"
    assert image_size(filtered.content) == (1024, 1024)
    normal = await http.post(url, data={"prompt": "x"}, files={"none": ""})
    assert normal.headers["finish-reason"] == "SUCCESS"
    assert normal.content != filtered.content


async def test_stability_auth_size_limit_and_latency(stability: FakeStability) -> None:
    url = f"{stability.base_url}/v2beta/stable-image/generate/core"
    async with httpx.AsyncClient() as http:
        response = await http.post(url, data={"prompt": "x"}, files={"none": ""})
        assert response.status_code == 401
        assert response.json()["name"] == "unauthorized"
        wrong = {"authorization": "Bearer sk-nope"}
        response = await http.post(url, data={"prompt": "x"}, files={"none": ""}, headers=wrong)
        assert response.status_code == 401

        auth = {"authorization": f"Bearer {stability.api_key}"}
        response = await http.post(url, headers=auth)
        assert response.json()["errors"] == ["content-type: required"]
        huge = {"image": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}
        response = await http.post(url, data={"prompt": "x"}, files=huge, headers=auth)
        assert (response.status_code, response.json()["name"]) == (413, "payload_too_large")

        stability.latency = 2.0
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                url, data={"prompt": "x"}, files={"none": ""}, headers=auth, timeout=0.3
            )

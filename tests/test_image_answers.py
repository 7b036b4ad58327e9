"""Image answers in every form real servers send, and what is asked for them.

The answer reader (`ImageAnswers`): base64, `data:` URLs, and http(s) URLs downloaded through
the client from the allowed hosts only, size-capped and checked to be an image. The requests:
sizes and `response_format` exactly as the installed SDK's documentation says, and optional
parameters a server refuses dropped once, remembered, and never the ones the bot needs.
Against the fake OpenAI server's personalities (LocalAI, openedai-images, LiteLLM's refusals).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import re
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from openai.types import image_edit_params, image_generate_params, image_model

from bot.backends.errors import BadOutput, ContentBlocked, Rejected, SettingRefused, Unavailable
from bot.backends.formats import FREE_SIZE_MODELS, ImageOptions, openai_size
from bot.backends.image_answers import ImageAnswers, parse_hosts
from bot.backends.image_params import is_gpt_image_model, takes_response_format
from bot.backends.openai_common import make_client
from bot.backends.openai_images import OpenAIImageGenerator
from bot.ui.refusals import backend_error_text
from tests.fakes.faults import Fault
from tests.fakes.openai_server import FakeOpenAI, OpenAIFault
from tests.fakes.pngs import prompt_of, render_image, render_png

PROMPT = "a ceramic mug on a white table"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def answers(fake: FakeOpenAI) -> AsyncIterator[Callable[..., ImageAnswers]]:
    clients = []

    def make(**kwargs: Any) -> ImageAnswers:
        client = make_client(fake.base_url, fake.api_key, timeout=5)
        clients.append(client)
        return ImageAnswers(client, **kwargs)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def generators(fake: FakeOpenAI) -> AsyncIterator[Callable[..., OpenAIImageGenerator]]:
    made: list[OpenAIImageGenerator] = []

    def make(model: str = "gpt-image-2.5-flare", **kwargs: Any) -> OpenAIImageGenerator:
        client = make_client(fake.base_url, fake.api_key, timeout=5)
        timeout = kwargs.pop("timeout", 5)
        generator = OpenAIImageGenerator(
            client, model, "medium", timeout, output_format="jpeg", **kwargs
        )
        made.append(generator)
        return generator

    yield make
    for generator in made:
        await generator.aclose()


def answer(**item: Any) -> bytes:
    return json.dumps({"created": 1, "data": [item]}).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- the answer reader ------------------------------------------------------------------------


async def test_b64_json_is_read(answers) -> None:
    png = render_png(64, 64)
    body = json.dumps({"created": 1, "data": [{"b64_json": b64(png)}], "usage": {"a": 1}})
    assert await answers().read(body.encode()) == (png, {"a": 1})


async def test_a_data_url_is_read(answers) -> None:
    # openedai-images: {'url': f'data:image/png;base64,{b64_json}'} (images.py).
    png = render_png(64, 64)
    assert await answers().read(answer(url=f"data:image/png;base64,{b64(png)}")) == (png, {})
    with pytest.raises(BadOutput, match="not base64"):
        await answers().read(answer(url="data:image/png,%89PNG"))
    with pytest.raises(BadOutput, match="not valid base64"):
        await answers().read(answer(url="data:image/png;base64,not*base64"))


async def test_a_url_on_the_servers_host_is_downloaded_with_its_key(fake, answers) -> None:
    png = render_png(64, 64)
    fake.generated_images["b64123.png"] = png
    url = f"{fake.root_url}/generated-images/b64123.png"
    assert await answers().read(answer(url=url)) == (png, {})
    [download] = fake.requests_to("generated")
    # LocalAI's /generated-images/ is behind its API key: the same origin gets the key.
    assert download.status == 200 and download.headers["authorization"] == "Bearer ***"


async def test_a_url_on_another_host_is_refused_unless_listed(fake, answers) -> None:
    png = render_png(64, 64)
    fake.generated_images["b64123.png"] = png
    elsewhere = f"http://localhost:{fake.port}/generated-images/b64123.png?sig=secret-token"
    with pytest.raises(BadOutput) as caught:
        await answers().read(answer(url=elsewhere))
    assert "on localhost, not on 127.0.0.1" in caught.value.detail
    assert "secret-token" not in caught.value.detail
    assert fake.requests_to("generated") == []  # never asked

    fake.generated_images_need_key = False  # a CDN, or LocalAI without API keys
    listed = answers(hosts=parse_hosts(" localhost , cdn.example.com "))
    assert listed.hosts == ["localhost", "cdn.example.com"]
    assert await listed.read(answer(url=elsewhere)) == (png, {})
    [download] = fake.requests_to("generated")
    assert "authorization" not in download.headers  # the API key stays with its own server

    pinned = answers(hosts=[f"localhost:{fake.port + 1}"])
    with pytest.raises(BadOutput):
        await pinned.read(answer(url=elsewhere))
    for url in ("ftp://127.0.0.1/x.png", "file:///etc/passwd", "/generated-images/x.png"):
        with pytest.raises(BadOutput, match="not an http"):
            await answers().read(answer(url=url))


async def test_an_oversized_download_is_refused(fake, answers) -> None:
    fake.generated_images["big.png"] = render_png(512, 512)
    url = f"{fake.root_url}/generated-images/big.png"
    with pytest.raises(BadOutput, match="over"):
        await answers(max_bytes=10_000).read(answer(url=url))
    big = len(fake.generated_images["big.png"])
    assert big > 10_000 and (await answers(max_bytes=big).read(answer(url=url)))[0]


async def test_a_download_that_is_no_image_is_refused(fake, answers) -> None:
    fake.generated_images["b64999.png"] = b"<html><body>Please log in</body></html>"
    url = f"{fake.root_url}/generated-images/b64999.png"
    with pytest.raises(BadOutput, match="not a PNG, JPEG or WebP"):
        await answers().read(answer(url=url))
    for name, data in (("a.jpg", render_image(64, 64, "jpeg")), ("a.webp", b"RIFF\0\0\0\0WEBP")):
        fake.generated_images[name] = data
        got, _ = await answers().read(answer(url=f"{fake.root_url}/generated-images/{name}"))
        assert got == data


async def test_a_download_error_or_redirect_is_bad_output(fake, answers) -> None:
    url = f"{fake.root_url}/generated-images/gone.png"
    with pytest.raises(BadOutput, match="answered HTTP 404"):
        await answers().read(answer(url=url))
    # A redirect could lead to any host: it is not followed.
    fake.generated_images["a.png"] = render_png(8, 8)
    moved = Fault(status=302, headers={"Location": "http://203.0.113.9/a.png"})
    fake.fail_next("generated", moved)
    with pytest.raises(BadOutput, match="answered HTTP 302"):
        await answers().read(answer(url=f"{fake.root_url}/generated-images/a.png"))


async def test_an_answer_without_any_image_is_bad_output(answers) -> None:
    for item in ({}, {"b64_json": ""}, {"url": None}, {"b64_json": None, "url": ""}):
        with pytest.raises(BadOutput, match="neither b64_json nor url"):
            await answers().read(answer(**item))


async def test_the_download_counts_inside_the_calls_deadline(fake, generators) -> None:
    fake.image_server = "localai"
    fake.fail_next("generated", Fault.slow(3))
    generator = generators("gpt-image-1", timeout=0.5)
    with pytest.raises(Unavailable, match=r"no answer within 0\.5s"):
        await generator.generate(PROMPT)


# --- the servers' answers through the generator -----------------------------------------------


async def test_localai_answers_a_url_unless_asked_for_base64(fake, generators) -> None:
    fake.image_server = "localai"
    # A LocalAI model under its own name is sent response_format=b64_json (LocalAI honours it).
    drawn = await generators("stablediffusion").generate(PROMPT)
    [sent] = fake.requests_to("images")
    assert sent.json["response_format"] == "b64_json" and fake.requests_to("generated") == []
    assert prompt_of(drawn.data) == PROMPT and drawn.data.startswith(b"\x89PNG")
    # One configured under an OpenAI name is not (GPT image models refuse it), so LocalAI
    # answers with a URL to its /generated-images/, downloaded in the same call.
    drawn = await generators("gpt-image-1").generate(PROMPT)
    sent = fake.requests_to("images")[-1]
    assert "response_format" not in sent.json
    [download] = fake.requests_to("generated")
    assert download.status == 200 and prompt_of(drawn.data) == PROMPT
    assert drawn.usage["total_tokens"] == 0  # LocalAI's all-zero usage


async def test_openedai_images_answers_data_urls(fake, generators) -> None:
    fake.image_server = "openedai-images"
    drawn = await generators().generate(PROMPT)
    assert drawn.data.startswith(b"\x89PNG") and prompt_of(drawn.data) == PROMPT
    assert "response_format" not in fake.requests_to("images")[0].json
    await generators("dall-e-3").generate(PROMPT)  # asked for b64_json, it answers that
    assert fake.requests_to("images")[1].json["response_format"] == "b64_json"


# --- what the SDK documents ------------------------------------------------------------------


def _free_size_models_in(module: Any) -> set[str]:
    """The models the SDK's `size` documentation says take arbitrary resolutions."""
    text = inspect.getsource(module)
    match = re.search(r"For ((?:`[^`]+`,?\s+(?:and\s+)?)+)arbitrary\s+resolutions", text)
    assert match, f"the size docs of {module.__name__} changed"
    return set(re.findall(r"`([^`]+)`", match.group(1)))


def _sdk_models() -> list[str]:
    return list(typing.get_args(image_model.ImageModel))


@pytest.mark.parametrize("module", [image_generate_params, image_edit_params])
def test_free_sizes_go_exactly_to_the_models_the_sdk_names(module: Any) -> None:
    named = _free_size_models_in(module)
    assert named == FREE_SIZE_MODELS
    for model in [*_sdk_models(), "gpt-image-2-mini", "gpt-image-2.7", "flux-schnell"]:
        free = model in named
        assert openai_size("story", model) == ("864x1536" if free else "1024x1536"), model
        assert openai_size("portrait", model) == ("1024x1280" if free else "1024x1536"), model
        assert openai_size("banner", model) == ("1536x864" if free else "1536x1024"), model
        assert openai_size("square", model) == "1024x1024"


def test_response_format_goes_only_where_the_sdk_says_it_is_taken() -> None:
    docs = inspect.getsource(image_generate_params)
    assert "Unsupported for GPT image models, which always return base64-encoded images" in docs
    for model in _sdk_models():
        gpt = not model.startswith("dall-e")
        assert is_gpt_image_model(model) is gpt and takes_response_format(model) is not gpt
    for model in ("gpt-image-1.5-2025-12-16", "chatgpt-image-latest"):
        assert not takes_response_format(model)
    for model in ("stablediffusion", "flux-schnell", "sdxl", "dall-e-3"):
        assert takes_response_format(model)


def test_the_sdk_has_safety_identifier_on_both_image_calls() -> None:
    bases = (image_generate_params.ImageGenerateParamsBase, image_edit_params.ImageEditParamsBase)
    for params in bases:
        assert "safety_identifier" in typing.get_type_hints(params)


# --- refused parameters -----------------------------------------------------------------------


async def test_a_litellm_refusal_drops_the_parameter_once_and_for_good(
    fake, generators, caplog: pytest.LogCaptureFixture
) -> None:
    fake.image_refusals = {"output_format": "litellm"}
    generator = generators()
    with caplog.at_level(logging.INFO, logger="bot.backends.openai_images"):
        drawn = await generator.generate(PROMPT, options=ImageOptions("story"))
        await generator.generate(PROMPT)
    refused, accepted, later = fake.requests_to("images")
    assert refused.status == 400 and refused.json["output_format"] == "jpeg"
    # Its compression goes with it (on its own it is an error of its own on OpenAI).
    for request in (accepted, later):
        assert request.status == 200
        assert "output_format" not in request.json and "output_compression" not in request.json
        assert request.json["quality"] == "medium"
    assert accepted.json["size"] == "864x1536" and drawn.data.startswith(b"\x89PNG")
    assert generator.refused == {"output_format", "output_compression"}
    [line] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "output_format" in line.getMessage() and "gpt-image-2.5-flare" in line.getMessage()
    assert "litellm.UnsupportedParamsError: Setting `output_format`" in line.getMessage()
    assert fake.api_key not in caplog.text


async def test_an_openai_style_refusal_on_edits_too(fake, generators) -> None:
    fake.image_refusals = {"safety_identifier": "openai"}
    generator = generators()
    parent = render_image(1024, 1024, "jpeg")
    await generator.edit(PROMPT, instruction="make it blue", image=parent, safety_identifier="u1")
    refused, accepted = fake.edit_requests
    assert refused.record.status == 400 and refused.fields["safety_identifier"] == "u1"
    assert accepted.record.status == 200 and "safety_identifier" not in accepted.fields
    await generator.generate(PROMPT, safety_identifier="u1")
    assert "safety_identifier" not in fake.requests_to("images")[-1].json


async def test_safety_identifier_is_sent_on_both_calls(fake, generators) -> None:
    generator = generators()
    await generator.generate(PROMPT, safety_identifier="hash-1")
    await generator.generate(PROMPT, reference=render_png(600, 400), safety_identifier="hash-2")
    await generator.edit(PROMPT, instruction="x", image=render_png(64, 64), safety_identifier="h3")
    await generator.generate(PROMPT)  # none: not sent
    assert [r.json.get("safety_identifier") for r in fake.requests_to("images")] == [
        "hash-1",
        None,
    ]
    assert [e.fields["safety_identifier"] for e in fake.edit_requests] == ["hash-2", "h3"]


async def test_a_validation_422_naming_a_parameter_drops_it(fake, generators) -> None:
    # FastAPI servers (vLLM-Omni, openedai-images) refuse a value with a 422 whose `loc` names
    # the field: {"detail": [{"loc": ["body", "quality"], "msg": ...}]}.
    detail = {"detail": [{"loc": ["body", "quality"], "msg": "Input should be 'standard' or 'hd'"}]}
    fake.fail_next("images", Fault(status=422, body=detail))
    generator = generators()
    await generator.generate(PROMPT)
    refused, accepted = fake.requests_to("images")
    assert refused.json["quality"] == "medium" and "quality" not in accepted.json
    assert accepted.json["output_format"] == "jpeg"


async def test_a_refusal_of_a_setting_is_not_retried_and_says_so(fake, generators) -> None:
    message = "Invalid value: '1024x1280'. Supported values are: '1024x1024'."
    fake.fail_next("images", OpenAIFault.bad_request(message, param="size", code="invalid_value"))
    generator = generators()
    with pytest.raises(SettingRefused) as caught:
        await generator.generate(PROMPT, options=ImageOptions("portrait"))
    assert len(fake.requests_to("images")) == 1 and not generator.refused
    assert caught.value.detail == f"HTTP 400 invalid_value: {message}"
    assert caught.value.kind == "refused_setting" and isinstance(caught.value, Rejected)
    assert "the bot's operator needs to change" in backend_error_text(caught.value)


async def test_a_second_refusal_is_remembered_but_not_retried(fake, generators) -> None:
    fake.image_refusals = {"output_format": "litellm", "quality": "litellm"}
    generator = generators()
    with pytest.raises(SettingRefused) as caught:
        await generator.generate(PROMPT)
    assert len(fake.requests_to("images")) == 2  # asked again once, not a third time
    assert "Setting `quality` is not supported" in caught.value.detail
    drawn = await generator.generate(PROMPT)  # the next call goes without both
    assert drawn.data and "quality" not in fake.requests_to("images")[-1].json


async def test_a_refusal_about_the_prompt_or_safety_is_never_negotiated(fake, generators) -> None:
    fake.fail_next("images", OpenAIFault.moderation())
    generator = generators()
    with pytest.raises(ContentBlocked):
        await generator.generate(PROMPT)
    too_long = OpenAIFault.bad_request(
        "Invalid 'prompt': string too long.", param="prompt", code="string_above_max_length"
    )
    fake.fail_next("images", too_long)
    with pytest.raises(Rejected) as caught:
        await generator.generate(PROMPT)
    assert type(caught.value) is Rejected and "string too long" in caught.value.detail
    assert len(fake.requests_to("images")) == 2 and not generator.refused


async def test_a_gpt_image_model_refuses_response_format_in_the_fake(fake) -> None:
    # The fake behaves as the real API: so a bot sending it would be caught by every test.
    client = make_client(fake.base_url, fake.api_key, timeout=5, max_retries=0)
    try:
        import openai

        with pytest.raises(openai.BadRequestError) as caught:
            await client.images.generate(
                model="gpt-image-1", prompt=PROMPT, response_format="b64_json"
            )
        assert (caught.value.param, caught.value.code) == ("response_format", "unknown_parameter")
    finally:
        await client.close()


async def test_concurrent_rounds_share_what_was_refused(fake, generators) -> None:
    fake.image_refusals = {"output_format": "litellm"}
    generator = generators()
    await asyncio.gather(*(generator.generate(PROMPT) for _ in range(3)))
    statuses = [r.status for r in fake.requests_to("images")]
    assert statuses.count(200) == 3 and statuses.count(400) <= 3
    await generator.generate(PROMPT)
    assert fake.requests_to("images")[-1].status == 200
    assert len(fake.requests_to("images")) == len(statuses) + 1

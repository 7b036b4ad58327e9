"""Real image servers' ways, through the real Application against the fakes: answers as a URL
(LocalAI) or a data: URL (openedai-images), and parameters refused with a 400 (LiteLLM's
proxy). Each round still succeeds where it can, and fails with one clear sentence (and the
server's own reason in the log) where it cannot. And `python -m bot check` tells, without
drawing anything, whether the server has an edits endpoint."""

from __future__ import annotations

import logging

import pytest

from bot.cli.check import check_image_backend
from tests.cli_helpers import fakes_environment, run_cli
from tests.fakes.openai_server import OpenAIFault
from tests.fakes.pngs import prompt_of
from tests.helpers import next_round, next_text

BRIEF = "linen shirt, flat lay"


async def test_a_server_answering_with_a_url(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    # LocalAI with its model configured under an OpenAI name (so no response_format goes out):
    # it answers {"url": "http://<host>/generated-images/b64NNN.png"}.
    openai_fake.image_server = "localai"
    await bots.start(make_settings(image_model="gpt-image-1"))
    telegram.user_sends_text(ana_chat, ana, f"/new {BRIEF}")
    round1 = await next_round(telegram, ana_chat)
    assert "/10" in round1.plain
    [drawn] = openai_fake.requests_to("images")
    assert "response_format" not in drawn.json
    [download] = openai_fake.requests_to("generated")
    assert download.status == 200 and download.headers["authorization"] == "Bearer ***"
    [served] = openai_fake.generated_images.values()
    assert round1.photo is not None and prompt_of(round1.photo) == prompt_of(served)
    assert len(openai_fake.requests_to("chat")) == 1  # the downloaded image was critiqued


async def test_a_server_answering_with_data_urls(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    # openedai-images behind the bot's default IMAGE_MODEL: {'url': 'data:image/png;base64,...'}.
    openai_fake.image_server = "openedai-images"
    await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, f"/new {BRIEF}")
    round1 = await next_round(telegram, ana_chat)
    assert "/10" in round1.plain and round1.photo is not None
    [drawn] = openai_fake.requests_to("images")
    assert drawn.status == 200 and prompt_of(round1.photo) == drawn.json["prompt"]


async def test_a_refused_output_format_is_dropped_once_and_for_good(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, caplog
) -> None:
    caplog.set_level(logging.INFO)
    openai_fake.image_refusals = {"output_format": "litellm"}
    await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, f"/new {BRIEF}")
    round1 = await next_round(telegram, ana_chat)
    refused, accepted = openai_fake.requests_to("images")
    assert refused.status == 400 and refused.json["output_format"] == "jpeg"
    assert accepted.status == 200 and "output_format" not in accepted.json
    assert "output_compression" not in accepted.json
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await next_round(telegram, ana_chat, after=round1.message_id)
    later = openai_fake.requests_to("images")[2:]
    assert [r.status for r in later] == [200] and "output_format" not in later[0].json
    [line] = [r for r in caplog.records if "the image server refused" in r.getMessage()]
    assert "Setting `output_format` is not supported" in line.getMessage()


async def test_a_refused_setting_fails_the_round_with_one_sentence(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, caplog
) -> None:
    caplog.set_level(logging.INFO)
    reason = "Invalid value: '1024x1024'. Supported values are: '512x512' and '768x768'."
    openai_fake.fail_next(
        "images", OpenAIFault.bad_request(reason, param="size", code="invalid_value")
    )
    await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, f"/new {BRIEF}")
    message = await next_text(telegram, ana_chat, "settings for this model")
    assert message.plain == (
        "⚠️ Round 1: The image service refused this request because of one of the bot's "
        "settings for this model (such as the picture size), which the bot's operator needs "
        "to change: the server's reason is in the bot's log."
    )
    assert len(openai_fake.requests_to("images")) == 1  # not ours to drop: no retry
    assert openai_fake.requests_to("chat") == []
    assert reason in caplog.text


# --- python -m bot check ----------------------------------------------------------------------

NO_EDITS_HINT = (
    " — point OPENAI_BASE_URL at an image server with /images/edits, or use "
    "IMAGE_BACKEND=stability; text briefs still work"
)


async def test_check_reports_edits_and_the_answer_forms_without_drawing(
    telegram, openai_fake, data_dir, tmp_path
) -> None:
    env = fakes_environment(telegram, openai_fake, data_dir)
    finished = await run_cli("check", env=env, cwd=tmp_path)
    [line] = [line for line in finished.lines if line[2:].startswith("Image backend:")]
    assert line == (
        f"✓ Image backend: gpt-image-2.5-flare at {openai_fake.base_url}; edits: yes "
        "(/images/edits answered HTTP 400 to a request without an image: Missing required "
        "parameter: 'prompt'.); answers are read in either form (b64_json, a data: URL, or a "
        "URL on 127.0.0.1): no request short of drawing an image tells which this server sends"
    )
    # The probe is an edit without an image: nothing is drawn, nothing billed.
    [probe] = openai_fake.edit_requests
    assert probe.images == [] and probe.prompt is None and probe.record.status == 400
    assert openai_fake.requests_to("images") == []


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("ollama", "HTTP 404: 404 page not found"),
        ("fastapi", "HTTP 404: Not Found"),
        ("method_not_allowed", "HTTP 405: Method Not Allowed"),
        ("lmstudio", "HTTP 200: Unexpected endpoint or method. (POST /v1/images/edits)"),
        ("localai", "HTTP 404: Resource not found"),
    ],
)
async def test_check_says_when_the_server_has_no_edits(
    openai_fake, make_settings, server: str, reason: str
) -> None:
    if server == "localai":
        openai_fake.image_server = "localai"
    else:
        openai_fake.missing_edits = server
    result = await check_image_backend(make_settings())
    assert not result.ok
    assert result.line() == (
        f"✗ Image backend: gpt-image-2.5-flare at {openai_fake.base_url}, but it has no "
        f"/images/edits ({reason}): product photos and edits of earlier rounds will not work"
        + NO_EDITS_HINT
    )
    assert openai_fake.requests_to("images") == []


async def test_check_on_a_server_that_validates_with_fastapi(openai_fake, make_settings) -> None:
    # openedai-images: its edits route exists (422 on the SDK's multipart request).
    openai_fake.image_server = "openedai-images"
    result = await check_image_backend(make_settings())
    assert result.ok and "edits: yes (/images/edits answered HTTP 422" in result.detail


async def test_check_when_the_edits_probe_fails(openai_fake, make_settings) -> None:
    openai_fake.fail_next("edits", OpenAIFault.server_error())
    result = await check_image_backend(make_settings())
    assert not result.ok and "so whether it edits is unknown" in result.detail
    assert result.line().endswith("— try again later, or check OPENAI_BASE_URL")

"""Real-world critics end to end, through the Telegram fake: every answer shape a real server
sends to the strict json_schema request gives the round its critique (asked once), a cut-off
answer keeps the image without asking again, fidelity only exists with a product photo, and
`python -m bot check` probes the critic with one tiny image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.backends.critique import critique_json_schema
from bot.cli.check import check_critic
from tests.cli_helpers import clean_environment, run_cli
from tests.fakes.faults import Fault
from tests.fakes.openai_server import (
    OpenAIFault,
    content_parts_critic,
    default_critic,
    llamacpp_fail_open_critic,
    lmstudio_small_model_critic,
    localai_critic,
    reasoning_critic,
    strict_filler_critic,
)
from tests.helpers import next_round, next_text

BRIEF = "linen shirt, flat lay"


def with_extra_keys(request: dict[str, Any]) -> str:
    """A critic whose server does not enforce additionalProperties: false (llama.cpp failing
    open, ggml-org/llama.cpp#19051): keys of the model's own next to the schema's."""
    return json.dumps({**default_critic(request), "overall": "promising", "confidence": 0.7})


# Each critic below is an answer the code before the tolerant reader refused (asked twice,
# then "sent back something unusable"); each source is cited in tests/fakes/openai_server.py.
SHAPES = {
    "fences": lmstudio_small_model_critic(),
    "think-block": reasoning_critic(where="think"),
    "sentence-and-json": llamacpp_fail_open_critic(),
    "content-parts": content_parts_critic(),
    "reasoning_content-only": reasoning_critic(where="reasoning_content"),
    "reasoning-only": reasoning_critic(where="reasoning"),
    "extra-keys": with_extra_keys,
    "score-out-of-range": localai_critic(score=11),
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_real_world_answers_give_the_round_its_critique(
    shape, telegram, openai_fake, bot, ana, ana_chat
) -> None:
    openai_fake.critic = SHAPES[shape]
    telegram.user_sends_text(ana_chat, ana, "/new " + BRIEF)
    round1 = await next_round(telegram, ana_chat)
    score = "10/10" if shape == "score-out-of-range" else "5/10"
    assert f"Round 1 · {score}" in round1.plain, round1.plain
    assert "✗ lighting is flat" in round1.plain
    assert "softer studio lighting" in round1.plain  # the critic's suggestion
    assert "unusable" not in round1.plain and "product 0/10" not in round1.plain
    assert len(openai_fake.requests_to("chat")) == 1  # read at once, never asked again
    assert round1.buttons[0] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]


async def cut_off_round(telegram, openai_fake, ana, ana_chat):
    truncated = json.dumps(default_critic({"messages": []}))[:60]
    openai_fake.queue_critique(truncated, finish_reason="length")
    telegram.user_sends_text(ana_chat, ana, "/new " + BRIEF)
    return await next_round(telegram, ana_chat)


async def test_a_cut_off_critique_keeps_the_image_and_is_asked_once(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    round1 = await cut_off_round(telegram, openai_fake, ana, ana_chat)
    assert "Round 1" in round1.plain and "/10" not in round1.plain
    assert "Accept runs the same prompt again" in round1.plain
    assert round1.buttons[0] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    assert len(openai_fake.requests_to("chat")) == 1  # not asked again identically
    # The image is there and its buttons work.
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert "Round 2 · 5/10" in round2.plain


async def test_a_cut_off_critique_says_so_in_the_caption(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    round1 = await cut_off_round(telegram, openai_fake, ana, ana_chat)
    assert "critique was cut off" in round1.plain


# --- fidelity only with a product photo -----------------------------------------------------


async def test_a_text_brief_shows_no_product_fidelity(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    openai_fake.critic = strict_filler_critic(fidelity=0)
    telegram.user_sends_text(ana_chat, ana, "/new " + BRIEF)
    round1 = await next_round(telegram, ana_chat)
    assert "Round 1 · 5/10" in round1.plain
    assert "product 0/10" not in round1.plain and "differs from your photo" not in round1.plain


def rising_scores(scores: list[int]):
    """A strict critic filling fidelity 0 on a text brief, its scores rising as listed."""
    queue = list(scores)

    def base(request: dict[str, Any]) -> dict[str, Any]:
        return {**default_critic(request), "score": queue.pop(0)}

    return strict_filler_critic(base, fidelity=0)


async def test_autopilot_on_a_text_brief_ignores_a_filled_in_fidelity(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(autopilot_drafts=1, autopilot_threshold=10))
    openai_fake.critic = rising_scores([6, 8, 10])
    telegram.user_sends_text(ana_chat, ana, "/auto 3 " + BRIEF)
    progress = await next_text(telegram, ana_chat, "Autopilot")
    best = await next_round(telegram, ana_chat, after=progress.message_id)
    progress = telegram.message(ana_chat["id"], progress.message_id)
    assert "reached the target score" in progress.plain, progress.plain
    assert "Best: round 3 (10/10)" in progress.plain
    assert "Round 3 · 10/10" in best.plain and "/10 · product" not in best.plain
    assert len(openai_fake.requests_to("chat")) == 3


# --- python -m bot check: the critic probe ----------------------------------------------------


async def probe(make_settings, **overrides: Any):
    return await check_critic(make_settings(**overrides))


async def test_check_probes_the_critic_with_one_tiny_image(openai_fake, make_settings) -> None:
    result = await probe(make_settings)
    assert result.ok, result.line()
    assert result.line() == (
        f"✓ Critic: gpt-5.4-mini at {openai_fake.base_url} takes images and answers the "
        "critique's JSON"
    )
    [record] = openai_fake.requests_to("chat")
    [image] = record.images
    assert (image.mime, image.width, image.height) == ("image/jpeg", 8, 8)
    assert image.size_bytes < 1000
    assert record.json["response_format"] == critique_json_schema()
    assert "art director" in record.json["messages"][0]["content"]  # the bot's own prompt
    assert not openai_fake.requests_to("images")  # no image is paid for


@pytest.mark.parametrize(
    ("critic", "repairs"),
    [
        (lmstudio_small_model_critic(), "code fence"),
        (reasoning_critic(where="think"), "<think> block"),
        (reasoning_critic(where="reasoning_content"), "reasoning_content field, text around"),
        (content_parts_critic(), "content parts"),
        (localai_critic(score=11), "score clamped (11 → 10)"),
    ],
    ids=["fences", "think", "reasoning_content", "content-parts", "localai"],
)
async def test_check_names_the_repairs_an_answer_needed(
    critic, repairs, openai_fake, make_settings
) -> None:
    openai_fake.critic = critic
    result = await probe(make_settings)
    assert result.ok, result.line()
    assert result.line().startswith("✓ Critic: gpt-5.4-mini at ")
    assert f"answers the critique's JSON after repairs: {repairs}" in result.line()


@pytest.mark.parametrize(
    "fault",
    [
        # OpenAI (and Azure) for a model without vision (browser-use/web-ui#274).
        OpenAIFault.bad_request(
            "Invalid content type. image_url is only supported by certain models.",
            param="messages.[1].content.[1].type",
        ),
        # llama.cpp without the model's projector (ggml-org/llama.cpp#15377): a 500.
        Fault(
            status=500,
            body={
                "error": {
                    "code": 500,
                    "message": "image input is not supported - hint: if this is unexpected, "
                    "you may need to provide the mmproj",
                    "type": "server_error",
                }
            },
        ),
    ],
    ids=["openai", "llama.cpp"],
)
async def test_check_reports_a_critic_without_vision(fault, openai_fake, make_settings) -> None:
    openai_fake.fail_next("chat", fault)
    result = await probe(make_settings)
    assert not result.ok
    line = result.line()
    assert line.startswith("✗ Critic: gpt-5.4-mini at ") and "takes no images" in line
    assert line.endswith(
        "— set CRITIC_MODEL to a vision model (on llama.cpp, start the server "
        "with the model's --mmproj; on LM Studio, load a model with vision)"
    )
    assert len(openai_fake.requests_to("chat")) == 1  # no retries in a check


async def test_check_reports_an_answer_that_is_not_the_json(openai_fake, make_settings) -> None:
    openai_fake.critic = lambda request: "The image is a grey square. I'd give it 3/10."
    result = await probe(make_settings)
    assert not result.ok
    assert "takes images, but its answer is not the critique's JSON (no JSON object" in (
        result.line()
    )
    assert "follows JSON schemas" in result.line()


async def test_check_reports_a_cut_off_answer(openai_fake, make_settings) -> None:
    openai_fake.queue_critique('{"score": 5, "strengths": ["gr', finish_reason="length")
    result = await probe(make_settings)
    assert not result.ok
    assert "cut off at the token limit" in result.line() and "max tokens" in result.line()


async def test_check_reports_a_server_refusing_the_request(openai_fake, make_settings) -> None:
    openai_fake.fail_next(
        "chat", OpenAIFault.bad_request("'response_format.type' must be 'json_schema'")
    )
    result = await probe(make_settings)
    assert not result.ok
    assert "refused a critique request: HTTP 400 ('response_format.type' must be" in result.line()
    assert "response_format json_schema" in result.line()


async def test_check_process_prints_the_critic_line(
    telegram, openai_fake, data_dir: Path, tmp_path
) -> None:
    openai_fake.critic = lmstudio_small_model_critic()
    env = clean_environment(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_BASE_URL=telegram.base_url,
        TELEGRAM_FILE_BASE_URL=telegram.base_file_url,
        OPENAI_API_KEY=openai_fake.api_key,
        OPENAI_BASE_URL=openai_fake.base_url,
        DATABASE_PATH=str(data_dir / "refinebot.db"),
    )
    finished = await run_cli("check", env=env, cwd=tmp_path)
    assert "Traceback" not in finished.stderr, finished.stderr
    [line] = [line for line in finished.lines if line[2:].startswith("Critic:")]
    assert line == (
        f"✓ Critic: gpt-5.4-mini at {openai_fake.base_url} takes images and answers the "
        "critique's JSON after repairs: code fence"
    )
    assert openai_fake.api_key not in finished.stdout

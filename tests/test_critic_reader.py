"""The critic's tolerant reader: the answer shapes real servers send to the strict json_schema
request, each read into the same critique (or refused for the right reason), and the critic's
handling of cut-off answers, fidelity without a reference photo and `safety_identifier`."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from PIL import Image

from bot.backends.base import CritiqueRequest
from bot.backends.critique import UnreadableCritique, first_json_object, read_critique
from bot.backends.errors import BadOutput, CutOff, Rejected
from bot.backends.openai_common import make_client
from bot.backends.openai_critic import CUT_OFF_DETAIL, OpenAICritic, read_answer
from tests.fakes.openai_server import (
    CRITIC_PERSONALITIES,
    CriticReply,
    FakeOpenAI,
    OpenAIFault,
    default_critic,
)

CRITIQUE: dict[str, Any] = {
    "score": 7,
    "fidelity": None,
    "strengths": ["clear product shot"],
    "problems": ["lighting is flat", "the label reads {brand} }{"],
    "revised_prompt": 'linen shirt, softer light, "quoted {braces}"',
    "next_step": "redraw",
    "edit_instruction": None,
}
JSON = json.dumps(CRITIQUE)
THINKING = "The user wants a critique. Maybe {score: 6}? The light is flat. I'll answer now."


def answer(
    content: Any = JSON,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    **fields: Any,
) -> bytes:
    """A Chat Completions response body whose first choice carries this message."""
    message = {"role": "assistant", "content": content, "refusal": refusal, **fields}
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return json.dumps(body).encode()


# (id, the answer body, the score read, the repairs reported). Where each shape comes from:
SHAPES = [
    ("plain", answer(), 7, ()),
    # LM Studio's small models ("Not all models are capable of structured output,
    # particularly LLMs below 7B parameters", lmstudio.ai/docs/advanced/structured-output)
    # answer in a Markdown block (lmstudio-ai/lmstudio-bug-tracker#448).
    ("fenced", answer(f"```json\n{JSON}\n```"), 7, ("code fence",)),
    ("fenced-no-language", answer(f"```\n{JSON}\n```"), 7, ("code fence",)),
    # vLLM without a reasoning parser (triton-inference-server/perf_analyzer PR #433), Qwen3
    # whose parser failed (vllm-project/vllm#21130): the thinking stays in content.
    ("after-think", answer(f"<think>\n{THINKING}\n</think>\n\n{JSON}"), 7, ("<think> block",)),
    # Templates that open <think> in the prompt: only the closing tag is generated
    # (DeepSeek-R1 distills, Qwen3 on llama.cpp without --reasoning-format).
    ("after-closing-think", answer(f"{THINKING}\n</think>\n{JSON}"), 7, ("<think> block",)),
    # llama.cpp failing open when its grammar does not parse (ggml-org/llama.cpp#19051).
    (
        "after-a-sentence",
        answer(f"Here is my critique of the draft:\n\n{JSON}\n\nHope this helps!"),
        7,
        ("text around the JSON",),
    ),
    # Mistral's reasoning models: content is a list of chunks (simonw/llm-mistral PR #39).
    (
        "content-parts",
        answer(
            [
                {"type": "thinking", "thinking": [{"type": "text", "text": THINKING}]},
                {"type": "text", "text": JSON[:40]},
                {"type": "text", "text": JSON[40:]},
            ]
        ),
        7,
        ("content parts",),
    ),
    # vLLM filing a guided answer as reasoning, content null (vllm-project/vllm#15618).
    (
        "only-in-reasoning_content",
        answer(None, reasoning_content=f"{THINKING}\n{JSON}"),
        7,
        ("reasoning_content field", "text around the JSON"),
    ),
    # vLLM's field today (vllm-project/vllm#48863, #50948); Ollama's name for it too.
    (
        "only-in-reasoning",
        answer("", reasoning=f"{THINKING}\n{JSON}"),
        7,
        ("reasoning field", "text around the JSON"),
    ),
    # DeepSeek's API / llama.cpp --reasoning-format deepseek: thinking apart, JSON in content.
    ("reasoning-beside-content", answer(JSON, reasoning_content=THINKING), 7, ()),
    # Servers that do not enforce additionalProperties: false (llama.cpp failing open).
    (
        "extra-keys",
        answer(json.dumps({**CRITIQUE, "overall": "good", "confidence": 0.8})),
        7,
        ("unknown keys dropped (confidence, overall)",),
    ),
    # LocalAI's grammar has no integer bounds (pkg/functions/grammars/bnf_rules.go).
    ("score-11", answer(json.dumps({**CRITIQUE, "score": 11})), 10, ("score clamped (11 → 10)",)),
    (
        "score-minus-1",
        answer(json.dumps({**CRITIQUE, "score": -1})),
        0,
        ("score clamped (-1 → 0)",),
    ),
    # LocalAI's grammar orders the keys alphabetically (json_schema.go): order never matters.
    ("keys-sorted", answer(json.dumps(dict(sorted(CRITIQUE.items())))), 7, ()),
    (
        "two-objects-first-wins",
        answer(f"{JSON}\n{json.dumps({**CRITIQUE, 'score': 2})}"),
        7,
        ("text around the JSON",),
    ),
    # finish_reason length after a complete critique: the limit cut text after it.
    ("length-after-the-json", answer(JSON + "\n\nSome more", finish_reason="length"), 7, None),
]


@pytest.mark.parametrize(
    ("body", "score", "repairs"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES]
)
def test_answer_shapes_read_into_the_critique(
    body: bytes, score: int, repairs: tuple | None
) -> None:
    reading = read_answer(body)
    assert reading.critique is not None, reading.problem
    assert reading.critique.score == score
    assert reading.critique.problems == CRITIQUE["problems"]  # braces inside strings kept
    assert reading.critique.revised_prompt == CRITIQUE["revised_prompt"]
    if repairs is not None:
        assert reading.repairs == repairs
    assert reading.usage["total_tokens"] == 15


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (answer("I think the image is quite nice, 7 out of 10."), "no JSON object in the answer"),
        (answer("Use {brief} and {prompt} as placeholders."), "no JSON object in the answer"),
        (answer(None), "empty answer"),
        (answer("   "), "empty answer"),
        (answer(f"<think>{THINKING}</think>"), "empty answer"),
        (answer(None, refusal="I can't help with that."), "refused"),
        (answer(json.dumps({"score": 7})), "invalid critique: 3 errors, the first: strengths"),
        (answer(json.dumps({**CRITIQUE, "score": "high"})), "invalid critique: 1 error"),
        (answer("{broken"), "no JSON object in the answer"),
        (answer(None, reasoning="just thinking, no JSON"), "no JSON object in the answer"),
        (b"not json", "response is not valid JSON"),
        (json.dumps({"choices": []}).encode(), "empty answer"),
    ],
    ids=[
        "no-json-at-all",
        "prose-braces-only",
        "content-null",
        "content-blank",
        "only-thinking",
        "refusal",
        "missing-fields",
        "score-not-a-number",
        "broken-json",
        "reasoning-without-json",
        "body-not-json",
        "no-choices",
    ],
)
def test_unusable_answers_say_why(body: bytes, problem: str) -> None:
    reading = read_answer(body)
    assert reading.critique is None and not reading.cut_off
    assert reading.problem.startswith(problem), reading.problem


@pytest.mark.parametrize(
    "body",
    [
        answer(JSON[: len(JSON) // 2], finish_reason="length"),
        # A reasoning model that spent its tokens thinking: its reasoning is a draft, never
        # the answer, even when it holds JSON.
        answer(None, reasoning_content=f"{THINKING}\n{JSON}", finish_reason="length"),
        answer("", finish_reason="length"),
    ],
    ids=["truncated-json", "reasoning-only", "nothing"],
)
def test_finish_reason_length_is_cut_off(body: bytes) -> None:
    reading = read_answer(body)
    assert reading.critique is None and reading.cut_off
    assert reading.problem == CUT_OFF_DETAIL
    assert "cut off" in CUT_OFF_DETAIL and "max tokens" in CUT_OFF_DETAIL


def test_first_json_object_is_not_fooled_by_braces_in_strings() -> None:
    text = 'note {not json} then {"a": "}{", "b": {"c": "{"}} and {"d": 1}'
    found = first_json_object(text)
    assert found is not None
    value, start, end = found
    assert value == {"a": "}{", "b": {"c": "{"}}
    assert text[start:end] == '{"a": "}{", "b": {"c": "{"}}'
    assert first_json_object("[1, 2] {") is None


def test_fidelity_is_clamped_too_and_unknown_keys_logged_at_debug(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.backends.critique")
    read = read_critique(json.dumps({**CRITIQUE, "fidelity": 12, "mood": "fine"}))
    assert read.critique.fidelity == 10
    assert read.repairs == ("unknown keys dropped (mood)", "fidelity clamped (12 → 10)")
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("mood" in r.getMessage() for r in debug)
    assert any("fidelity 12 is outside 0-10" in r.getMessage() for r in caplog.records)


def test_unreadable_text_raises_with_the_reason() -> None:
    with pytest.raises(UnreadableCritique, match="no JSON object"):
        read_critique("score: 7")


# --- the critic against the fake ------------------------------------------------------------


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
async def critic(openai_fake: FakeOpenAI):
    critic = OpenAICritic(make_client(openai_fake.base_url, openai_fake.api_key, 10), "m", 10)
    yield critic
    await critic.aclose()


def request(**changes: Any) -> CritiqueRequest:
    return CritiqueRequest(brief="linen shirt", prompt="linen shirt", image_jpeg=jpeg(), **changes)


@pytest.mark.parametrize("name", sorted(CRITIC_PERSONALITIES))
async def test_every_server_personality_gives_a_critique(name, critic, openai_fake) -> None:
    openai_fake.critic = CRITIC_PERSONALITIES[name](default_critic)
    result = await critic.critique(request())
    assert result.critique.revised_prompt == "linen shirt, softer studio lighting"
    assert result.critique.fidelity is None  # a text brief has no product fidelity
    assert result.critique.score == (10 if name == "localai" else 5)
    assert len(openai_fake.requests_to("chat")) == 1  # read the first time, never asked again


async def test_fidelity_is_dropped_only_without_a_reference_photo(critic, openai_fake) -> None:
    openai_fake.critic = CRITIC_PERSONALITIES["strict-filler"](default_critic)
    text_brief = await critic.critique(request())
    assert text_brief.critique.fidelity is None and text_brief.critique.edit_instruction is None
    photo_brief = await critic.critique(request(reference_jpeg=jpeg()))
    assert photo_brief.critique.fidelity == 0


async def test_a_cut_off_answer_is_not_asked_again(critic, openai_fake) -> None:
    openai_fake.queue_critique(JSON[:50], finish_reason="length")
    with pytest.raises(CutOff) as caught:
        await critic.critique(request())
    assert isinstance(caught.value, BadOutput) and caught.value.kind == "cut_off"
    assert "cut off" in str(caught.value) and "max tokens" in str(caught.value)
    assert len(openai_fake.requests_to("chat")) == 1


async def test_an_invalid_answer_is_asked_again_once(critic, openai_fake) -> None:
    openai_fake.queue_critique("no json here", 3)
    with pytest.raises(BadOutput, match="no JSON object"):
        await critic.critique(request())
    assert len(openai_fake.requests_to("chat")) == 2


async def test_a_cut_off_second_answer_ends_the_critique(critic, openai_fake) -> None:
    openai_fake.queue_critique("no json here")
    openai_fake.queue_critique(JSON[:50], finish_reason="length")
    with pytest.raises(CutOff):
        await critic.critique(request())
    assert len(openai_fake.requests_to("chat")) == 2


async def test_content_parts_and_reasoning_replies_through_the_wire(critic, openai_fake) -> None:
    openai_fake.queue_reply(CriticReply([{"type": "text", "text": JSON}]))
    openai_fake.queue_reply(CriticReply(None, reasoning=f"{THINKING}\n{JSON}"))
    assert (await critic.critique(request())).critique.score == 7
    assert (await critic.critique(request())).critique.score == 7


async def test_safety_identifier_is_sent(critic, openai_fake) -> None:
    await critic.critique(request(safety_identifier="u-5f2b9c"))
    await critic.critique(request())
    sent = [r.json.get("safety_identifier") for r in openai_fake.requests_to("chat")]
    assert sent == ["u-5f2b9c", None]


@pytest.mark.parametrize(("style", "status"), [("openai", 400), ("mistral", 422)])
async def test_a_server_refusing_safety_identifier_is_asked_without_it(
    style, status, critic, openai_fake, caplog
) -> None:
    openai_fake.unsupported_params = {"safety_identifier"}
    openai_fake.unsupported_param_answer = style
    result = await critic.critique(request(safety_identifier="u-5f2b9c"))
    assert result.critique.score == 5
    records = openai_fake.requests_to("chat")
    assert [r.status for r in records] == [status, 200]
    assert "safety_identifier" in records[0].json and "safety_identifier" not in records[1].json
    [warning] = [r for r in caplog.records if "refused safety_identifier" in r.getMessage()]
    assert str(status) in warning.getMessage()
    # Dropped for the process: the next critique does not send it at all.
    await critic.critique(request(safety_identifier="u-5f2b9c"))
    assert [r.status for r in openai_fake.requests_to("chat")] == [status, 200, 200]


async def test_other_bad_requests_are_not_retried(critic, openai_fake) -> None:
    openai_fake.fail_next("chat", OpenAIFault.bad_request("Invalid 'messages'", param="messages"))
    with pytest.raises(Rejected):
        await critic.critique(request(safety_identifier="u-5f2b9c"))
    assert len(openai_fake.requests_to("chat")) == 1


async def test_an_over_long_safety_identifier_is_refused_by_the_fake_then_dropped(
    critic, openai_fake
) -> None:
    result = await critic.critique(request(safety_identifier="x" * 129))
    assert result.critique.score == 5
    assert [r.status for r in openai_fake.requests_to("chat")] == [400, 200]

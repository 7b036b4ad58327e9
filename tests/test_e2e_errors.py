"""Every backend error class reaches the user as one clear sentence; the chat stays usable."""

from __future__ import annotations

import pytest

from tests.fakes.faults import Fault
from tests.fakes.openai_server import FakeOpenAI, OpenAIFault
from tests.fakes.stability_server import StabilityFault
from tests.helpers import next_round, next_text

ATTEMPTS = 3  # the first call and two retries


async def brief_then_failure(telegram, chat, user, expected: str) -> None:
    """Send a brief and wait for the round's failure message containing `expected`."""
    telegram.user_sends_text(chat, user, "/new linen shirt, flat lay")
    message = await next_text(telegram, chat, expected)
    assert message.plain.startswith("⚠️ Round 1")
    assert "Traceback" not in message.plain and "HTTP" not in message.plain


async def still_usable(telegram, chat, user) -> None:
    """The next normal brief works."""
    last = telegram.last_message(chat["id"])
    telegram.user_sends_text(chat, user, "/new linen shirt on a hanger")
    await next_round(telegram, chat, after=last.message_id if last else 0)


@pytest.mark.parametrize(
    ("fault", "count", "expected", "requests"),
    [
        (OpenAIFault.moderation(), 1, "blocked this as unsafe", 1),
        (OpenAIFault.invalid_api_key(), 1, "rejected the bot's API key", 1),
        (OpenAIFault.permission_denied(), 1, "rejected the bot's API key", 1),
        (OpenAIFault.payment_required(), 1, "no credits left", 1),
        (OpenAIFault.insufficient_quota(), ATTEMPTS, "no credits left", ATTEMPTS),
        (OpenAIFault.rate_limit(retry_after_ms=5), ATTEMPTS, "rate limited", ATTEMPTS),
        (OpenAIFault.server_error(), ATTEMPTS, "did not answer in time", ATTEMPTS),
        (Fault.bad_gateway_html(), ATTEMPTS, "did not answer in time", ATTEMPTS),
        (Fault.drop_connection(), ATTEMPTS, "did not answer in time", ATTEMPTS),
        (OpenAIFault.error(408, "Request timed out"), ATTEMPTS, "did not answer in time", ATTEMPTS),
        (OpenAIFault.error(409, "Conflict"), ATTEMPTS, "did not answer in time", ATTEMPTS),
        (OpenAIFault.bad_request("Invalid size", param="size"), 1, "refused this request", 1),
    ],
    ids=[
        "moderation",
        "bad-key",
        "forbidden",
        "402",
        "quota",
        "rate-limit",
        "5xx",
        "502-html",
        "connection-reset",
        "408",
        "409",
        "bad-request",
    ],
)
async def test_openai_image_errors(
    fault, count, expected, requests, telegram, openai_fake, bot, ana, ana_chat
) -> None:
    openai_fake.fail_next("images", fault, count)
    await brief_then_failure(telegram, ana_chat, ana, expected)
    assert len(openai_fake.requests_to("images")) == requests
    assert openai_fake.requests_to("chat") == []  # no critique of an image that does not exist
    await still_usable(telegram, ana_chat, ana)


async def test_transient_errors_are_retried_into_success(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    openai_fake.fail_next("images", OpenAIFault.rate_limit(retry_after_ms=5))
    openai_fake.fail_next("images", OpenAIFault.server_error())
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt")
    await next_round(telegram, ana_chat)
    assert [r.status for r in openai_fake.requests_to("images")] == [429, 500, 200]


@pytest.mark.parametrize("backend", ["openai", "stability"])
async def test_slow_image_service_times_out(
    backend, telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend=backend, image_timeout=0.5))
    if backend == "openai":
        openai_fake.fail_next("images", Fault.slow(5))
    else:
        stability_fake.fail_next(Fault.slow(5))
    await brief_then_failure(telegram, ana_chat, ana, "did not answer in time")
    await still_usable(telegram, ana_chat, ana)


async def test_slow_critic_times_out_and_keeps_the_image(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(critic_timeout=0.5))
    openai_fake.fail_next("chat", Fault.slow(5))
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt")
    round1 = await next_round(telegram, ana_chat)
    assert "The critic did not answer in time" in round1.plain


def _chat_answers(fake: FakeOpenAI, choices: list) -> None:
    """Make the critic's next two answers (the first and its retry) carry these choices."""
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "choices": choices}
    fake.fail_next("chat", Fault(status=200, body=body), 2)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda fake: fake.queue_critique("this is not json", 2), "sent back something unusable"),
        (lambda fake: fake.queue_critique({"score": 42}, 2), "sent back something unusable"),
        (lambda fake: fake.queue_refusal(count=2), "sent back something unusable"),
        (lambda fake: _chat_answers(fake, []), "sent back something unusable"),
        (lambda fake: _chat_answers(fake, ["not a choice"]), "sent back something unusable"),
        (lambda fake: _chat_answers(fake, [{"message": "text"}]), "sent back something unusable"),
        (lambda fake: fake.fail_next("chat", OpenAIFault.server_error(), 3), "did not answer"),
        (lambda fake: fake.fail_next("chat", OpenAIFault.invalid_api_key()), "API key"),
    ],
    ids=[
        "not-json",
        "wrong-schema",
        "refusal",
        "no-choices",
        "choice-not-an-object",
        "message-not-an-object",
        "5xx",
        "bad-key",
    ],
)
async def test_critic_errors_keep_the_image(
    setup, expected, telegram, openai_fake, bot, ana, ana_chat
) -> None:
    setup(openai_fake)
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt")
    round1 = await next_round(telegram, ana_chat)
    assert expected in round1.plain and "Round 1" in round1.plain
    # The image is there and its buttons work: Accept runs the same prompt again.
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await next_round(telegram, ana_chat, after=round1.message_id)
    prompts = [r.json["prompt"] for r in openai_fake.requests_to("images")]
    assert prompts == ["linen shirt", "linen shirt"]


async def test_invalid_critique_is_retried_once(telegram, openai_fake, bot, ana, ana_chat) -> None:
    openai_fake.queue_critique("{broken")
    telegram.user_sends_text(ana_chat, ana, "/new linen shirt")
    round1 = await next_round(telegram, ana_chat)
    assert "/10" in round1.plain
    assert len(openai_fake.requests_to("chat")) == 2


@pytest.mark.parametrize(
    ("fault", "count", "expected"),
    [
        (StabilityFault.content_moderation(), 1, "blocked this as unsafe"),
        (StabilityFault.unauthorized(), 1, "rejected the bot's API key"),
        (StabilityFault.payment_required(), 1, "no credits left"),
        (StabilityFault.rate_limit(retry_after=0), ATTEMPTS, "rate limited"),
        (StabilityFault.internal_error(), ATTEMPTS, "did not answer in time"),
        (StabilityFault.error(408, "request_timeout", "timed out"), ATTEMPTS, "did not answer"),
        (StabilityFault.bad_request("prompt: too long"), 1, "refused this request"),
    ],
    ids=["moderation", "bad-key", "402", "rate-limit", "5xx", "408", "bad-request"],
)
async def test_stability_errors(
    fault, count, expected, telegram, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend="stability"))
    stability_fake.fail_next(fault, count)
    await brief_then_failure(telegram, ana_chat, ana, expected)
    assert len(stability_fake.requests) == count
    await still_usable(telegram, ana_chat, ana)


async def test_stability_content_filtered_result_is_blocked(
    telegram, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend="stability"))
    stability_fake.filter_next()
    await brief_then_failure(telegram, ana_chat, ana, "blocked this as unsafe")
    await still_usable(telegram, ana_chat, ana)

"""Access and spend: quotas per user and per chat (admins exempt), /usage, cost estimates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.refine.errors import QuotaExceeded
from bot.refine.pricing import estimate_cost
from bot.ui.refusals import quota_text
from tests.conftest import ANA_ID, BOB_ID
from tests.fakes.openai_server import OpenAIFault
from tests.helpers import next_round, next_text

GROUP_ID = -1005550001


async def test_user_quota_stops_non_admins_and_says_when_it_resets(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(allowed_user_ids=str(BOB_ID), quota_rounds_per_user_per_day=2))
    bob = telegram.make_user(BOB_ID, "Bob")
    bob_chat = telegram.private_chat(bob)
    telegram.user_sends_text(bob_chat, bob, "/new walnut bowl")
    round1 = await next_round(telegram, bob_chat)
    telegram.user_presses(bob_chat, bob, round1, "Accept")
    round2 = await next_round(telegram, bob_chat, after=round1.message_id)
    query = telegram.user_presses(bob_chat, bob, round2, "Accept")
    answer = await telegram.wait_for(lambda: telegram.callback_answers.get(query))
    assert "today's 2 rounds" in answer["text"] and "00:00 UTC" in answer["text"]
    telegram.user_sends_text(bob_chat, bob, "/new oak bowl")
    await next_text(telegram, bob_chat, "resets at 00:00 UTC", after=round2.message_id)
    assert len(openai_fake.requests_to("images")) == 2

    # Ana is an admin: exempt.
    for brief in ("walnut bowl", "oak bowl", "teak bowl"):
        last = telegram.last_message(ana_chat["id"])
        telegram.user_sends_text(ana_chat, ana, brief)
        await next_round(telegram, ana_chat, after=last.message_id if last else 0)


async def test_chat_quota_counts_everyone_in_the_group(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    await bots.start(
        make_settings(
            admin_user_ids="", allowed_chat_ids=str(GROUP_ID), quota_rounds_per_chat_per_day=1
        )
    )
    group = telegram.group_chat(GROUP_ID, "Team")
    bob = telegram.make_user(BOB_ID, "Bob")
    telegram.user_sends_text(group, ana, "/new walnut bowl")
    round1 = await next_round(telegram, group)
    telegram.user_sends_text(group, bob, "/new oak bowl")
    refused = await next_text(telegram, group, "This chat has used", after=round1.message_id)
    assert "today's 1 rounds" in refused.plain


async def test_usage_shows_own_and_for_admins_every_chat(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(allowed_user_ids=str(BOB_ID)))
    bob = telegram.make_user(BOB_ID, "Bob")
    bob_chat = telegram.private_chat(bob)
    telegram.user_sends_text(bob_chat, bob, "/new walnut bowl")
    await next_round(telegram, bob_chat)
    telegram.user_sends_text(ana_chat, ana, "/new oak bowl")
    await next_round(telegram, ana_chat)

    telegram.user_sends_text(bob_chat, bob, "/usage")
    bobs = await next_text(telegram, bob_chat, "Today (UTC)")
    assert "You: 1 rounds, 1 images, ≈ $" in bobs.plain and "All chats" not in bobs.plain

    telegram.user_sends_text(ana_chat, ana, "/usage")
    anas = await next_text(telegram, ana_chat, "Today (UTC)")
    assert "All chats" in anas.plain
    assert f"Chat {BOB_ID}" in anas.plain and f"Chat {ANA_ID}" in anas.plain


def test_cost_estimates_from_usage_and_price_table() -> None:
    image_usage = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
        "output_tokens": 1056,
        "total_tokens": 1106,
    }
    assert estimate_cost("gpt-image-2.5-flare", image_usage) == (50 * 5 + 1056 * 40) / 1e6
    critic_usage = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}
    assert estimate_cost("gpt-5.4-mini", critic_usage) == (1000 * 0.25 + 200 * 2) / 1e6
    assert estimate_cost("sd3.5-large", {}) == 0.065
    assert estimate_cost("llava:13b", critic_usage) is None  # self-hosted: no guess


def test_quota_text_counts_down_to_midnight_utc() -> None:
    now = datetime(2026, 11, 26, 21, 30, tzinfo=UTC)
    error = QuotaExceeded("user", 50, datetime(2026, 11, 27, tzinfo=UTC))
    text = quota_text(error, now)
    assert "You have used today's 50 rounds" in text and "in 2 h 30 min" in text
    soon = quota_text(error, error.resets_at - timedelta(seconds=20))
    assert "in 1 min" in soon


async def test_rounds_that_failed_without_an_image_do_not_use_the_quota(
    telegram, openai_fake, bots, make_settings
) -> None:
    await bots.start(make_settings(allowed_user_ids=str(BOB_ID), quota_rounds_per_user_per_day=2))
    bob = telegram.make_user(BOB_ID, "Bob")
    bob_chat = telegram.private_chat(bob)
    telegram.user_sends_text(bob_chat, bob, "/new walnut bowl")
    round1 = await next_round(telegram, bob_chat)
    # Two presses that draw nothing (refused by moderation: not billed) use none of the quota.
    openai_fake.fail_next("images", OpenAIFault.moderation(), count=2)
    telegram.user_presses(bob_chat, bob, round1, "Accept")
    failed = await next_text(telegram, bob_chat, "Round 2", after=round1.message_id)
    assert failed.buttons == [["🔁 Retry"]]
    telegram.user_presses(bob_chat, bob, failed, "Retry")
    failed_again = await next_text(telegram, bob_chat, "Round 3", after=failed.message_id)
    telegram.user_presses(bob_chat, bob, failed_again, "Retry")
    round4 = await next_round(telegram, bob_chat, after=failed_again.message_id)
    assert "Round 4" in round4.plain
    # Round 1 and round 4 drew images: that is today's 2 rounds.
    query = telegram.user_presses(bob_chat, bob, round4, "Accept")
    answer = await telegram.wait_for(lambda: telegram.callback_answers.get(query))
    assert "today's 2 rounds" in answer["text"]
    telegram.user_sends_text(bob_chat, bob, "/usage")
    usage = await next_text(telegram, bob_chat, "round", after=round4.message_id)
    assert "2 rounds" in usage.plain

"""A team group chat steering one image: commands, Edit by reply, credit in captions."""

from __future__ import annotations

import asyncio

from tests.conftest import BOB_ID
from tests.helpers import next_round, next_text

GROUP_ID = -1001234567


async def test_team_steers_one_image_in_a_group(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    await bots.start(make_settings(allowed_chat_ids=str(GROUP_ID)))
    group = telegram.group_chat(GROUP_ID, "Shop team", supergroup=True)
    bob = telegram.make_user(BOB_ID, "Bob")

    telegram.user_sends_text(group, ana, "/new@refine_test_bot blue canvas sneakers")
    round1 = await next_round(telegram, group)

    # Bob accepts: the next round credits him.
    telegram.user_presses(group, bob, round1, "Accept")
    round2 = await next_round(telegram, group, after=round1.message_id)
    assert "accepted by Bob" in round2.plain

    # Ana edits: the prompt asks for a reply, and only her reply to it counts.
    telegram.user_presses(group, ana, round2, "Edit")
    ask = await next_text(telegram, group, "Send your own prompt", after=round2.message_id)
    assert ask.reply_markup and ask.reply_markup.get("force_reply") is True
    telegram.user_sends_text(group, bob, "looks great!", reply_to=ask)  # Bob's chatter
    await asyncio.sleep(0.3)
    assert len(openai_fake.requests_to("images")) == 2
    telegram.user_sends_text(group, ana, "blue canvas sneakers on concrete", reply_to=ask)
    round3 = await next_round(telegram, group, after=ask.message_id)
    assert "edited by Ana" in round3.plain
    assert openai_fake.edit_requests[-1].prompt == "blue canvas sneakers on concrete"


async def test_edited_messages_start_nothing(telegram, openai_fake, bot, ana, ana_chat) -> None:
    sent = telegram.user_sends_text(ana_chat, ana, "/help")
    await next_text(telegram, ana_chat, "refinebot")
    telegram.enqueue_update({"edited_message": {**sent, "text": "pink sneakers", "entities": []}})
    telegram.user_sends_text(ana_chat, ana, "/history")
    await next_text(telegram, ana_chat, "No sessions here yet")
    assert openai_fake.requests_to("images") == []


async def test_stickers_and_unknown_commands_in_private_get_a_pointer(
    telegram, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/frobnicate")
    await next_text(telegram, ana_chat, "see /help")

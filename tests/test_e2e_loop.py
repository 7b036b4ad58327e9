"""End to end: the real Application against the fakes, as a shop owner would use it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.backends.critique import Critique
from storage.records import RoundStatus, SessionStatus
from storage.store import Store
from tests.fakes.pngs import prompt_of
from tests.helpers import history_of_latest_session, next_round, next_text, toast

BRIEF = "black-purple Banarasi saree, gold jewellery, plain backdrop"
SUGGESTION_SUFFIX = ", softer studio lighting"  # what the fake critic appends


def generated_prompts(openai_fake, stability_fake, backend: str) -> list[str]:
    if backend == "openai":
        return [r.json["prompt"] for r in openai_fake.requests_to("images") if r.status == 200]
    return [r.form["prompt"] for r in stability_fake.requests if r.status == 200]


@pytest.mark.parametrize("backend", ["openai", "stability"])
async def test_accept_edit_stop_then_history(
    backend, telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(image_backend=backend))
    chat_id = ana_chat["id"]

    # A plain message in a private chat is a brief: progress, then the photo, then the critique.
    brief = telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    assert "Round 1" in round1.plain and "/10" in round1.plain
    assert "Suggested next prompt" in round1.plain
    assert [label for label in round1.buttons[0]] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    # Progress costs no messages: a 👀 on the brief, a chat action, and the photo answers the
    # brief; its caption is edited once into the critique.
    assert telegram.reactions[(chat_id, brief["message_id"])] == ["👀"]
    assert any(action == "upload_photo" for c, action, _ in telegram.chat_actions if c == chat_id)
    assert round1.reply_to_message_id == brief["message_id"]
    assert [m.message_id for m in telegram.messages(chat_id)] == [round1.message_id]
    assert round1.edits == 1
    assert prompt_of(round1.photo) == BRIEF

    # The critic saw a downscaled JPEG, not the raw image, and the brief.
    [critic_image] = openai_fake.chat_images
    assert critic_image.mime == "image/jpeg" and max(critic_image.width, critic_image.height) <= 768

    # Accept: the next round is drawn from the suggested revision.
    query = telegram.user_presses(ana_chat, ana, round1, "Accept")
    assert "round 2" in (await toast(telegram, query)).lower()
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert "Round 2" in round2.plain
    assert generated_prompts(openai_fake, stability_fake, backend)[-1] == BRIEF + SUGGESTION_SUFFIX

    # Edit: the bot offers a change to copy (fixing the critic's problems); the next message
    # says what to change in round 2's picture.
    telegram.user_presses(ana_chat, ana, round2, "Edit")
    ask = await next_text(telegram, ana_chat, "Send your own prompt", after=round2.message_id)
    assert "<pre>" in ask.text and "Fix: lighting is flat" in ask.plain
    own = "black-purple Banarasi saree on white marble, gold jewellery, morning light"
    telegram.user_sends_text(ana_chat, ana, own)
    round3 = await next_round(telegram, ana_chat, after=ask.message_id)
    if backend == "openai":  # the edit's prompt is the change itself
        assert openai_fake.edit_requests[-1].prompt == own
        assert prompt_of(round3.photo) == own
    else:  # image-to-image from round 2's picture, described as it should be after the change
        assert stability_fake.image_inputs[-1].prompt.endswith(own)
        assert prompt_of(round3.photo).endswith(own)

    if backend == "stability":  # one seed per session keeps the composition between rounds
        seeds = {r.form["seed"] for r in stability_fake.requests}
        assert len(seeds) == 1 and 0 < int(seeds.pop()) < 4294967295

    # Stop: the full-resolution original as a document, keyboard gone, one-line summary.
    query = telegram.user_presses(ana_chat, ana, round3, "Stop")
    await toast(telegram, query)
    final = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(chat_id) if m.document), None)
    )
    assert prompt_of(final.document) == prompt_of(round3.photo)
    assert Image.open(io.BytesIO(final.document)).size == Image.open(io.BytesIO(round3.photo)).size
    assert "3 rounds" in final.plain and own in final.plain
    await telegram.wait_for(
        lambda: telegram.message(chat_id, round3.message_id).reply_markup is None
    )

    # Buttons of a stopped session say so, and start nothing.
    images_before = len(generated_prompts(openai_fake, stability_fake, backend))
    query = telegram.user_presses(ana_chat, ana, round1, "Accept")
    assert "ended" in await toast(telegram, query)

    # /history lists the session; choosing it shows its rounds.
    telegram.user_sends_text(ana_chat, ana, "/history")
    page = await next_text(telegram, ana_chat, "Sessions", after=final.message_id)
    for expected in ("stopped", "3 rounds", "best", BRIEF[:30]):
        assert expected in page.plain
    history = await history_of_latest_session(telegram, ana_chat, ana)
    for expected in ("stopped", "R1", "R2", "R3", "⭐ kept", own[:40]):
        assert expected in history.plain
    assert len(generated_prompts(openai_fake, stability_fake, backend)) == images_before

    # Everything is in SQLite: rounds with prompts, critiques, scores, message ids, timings.
    store = await Store.open(data_dir / "refinebot.db")
    [summary] = await store.sessions.of_chat(chat_id, 0)
    assert summary.session.status is SessionStatus.STOPPED
    rounds = await store.rounds.of_session(summary.session.id)
    assert [r.action for r in rounds] == ["brief", "accept", "edit"]
    assert [r.parent_round_id for r in rounds] == [None, rounds[0].id, rounds[1].id]
    assert summary.session.chosen_round_id == rounds[2].id
    for r in rounds:
        assert r.status is RoundStatus.DONE and r.image_sha and r.message_id
        assert Critique.model_validate_json(r.critique).score == r.score
        assert r.generate_ms is not None and r.critique_ms is not None
    await store.close()


async def test_older_round_buttons_continue_from_that_round(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new white ceramic mug")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    telegram.user_presses(ana_chat, ana, round1, "Accept")  # back to round 1's suggestion
    round3 = await next_round(telegram, ana_chat, after=round2.message_id)
    prompts = [r.json["prompt"] for r in openai_fake.requests_to("images")]
    assert prompts == ["white ceramic mug", *["white ceramic mug" + SUGGESTION_SUFFIX] * 2]
    assert "Round 3" in round3.plain


async def test_critic_gets_earlier_critiques_of_the_session(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "leather wallet")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await next_round(telegram, ana_chat, after=round1.message_id)
    first, second = openai_fake.requests_to("chat")
    assert "<critique " not in str(first.json)
    assert '<critique round=\\"1\\"' in str(second.json) or '<critique round="1"' in str(
        second.json
    )
    assert "<brief>leather wallet</brief>" in str(second.json)


async def test_image_and_critic_requests_carry_a_hashed_user_id(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    await next_round(telegram, ana_chat)
    [image] = openai_fake.requests_to("images")
    [chat] = openai_fake.requests_to("chat")
    identifier = image.json["safety_identifier"]
    assert identifier.startswith("rb-") and len(identifier) == 35
    assert chat.json["safety_identifier"] == identifier

"""End to end: rounds that refine the picture in front of the user instead of redrawing it.

The real Application against the Telegram, OpenAI and Stability fakes: Edit and Accept (when
the critic says so) edit the stored original of the round, Redraw draws a new picture, a
photo brief's edits carry the product photo too, and an edit that cannot be made (the picture
pruned, a server without an edits endpoint) is drawn afresh once, saying why.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from storage.records import RoundRecord
from storage.store import Store
from tests.fakes.openai_server import default_critic
from tests.fakes.pngs import render_image
from tests.helpers import history_of_latest_session, next_round, next_text

BRIEF = "black-purple Banarasi saree on a plain backdrop, gold jewellery"
INSTRUCTION = "Make the backdrop plain white; keep the saree, the pose and the light"


def critic_says_edit(request: dict[str, Any]) -> dict[str, Any]:
    """The default fake critic, choosing an edit with its instruction."""
    return default_critic(request) | {"next_step": "edit", "edit_instruction": INSTRUCTION}


async def stored_round(data_dir: Path, chat_id: int, message: Any) -> tuple[RoundRecord, bytes]:
    """Return the round a photo message shows and its stored original image."""
    store = await Store.open(data_dir / "refinebot.db")
    try:
        round = await store.rounds.by_message(chat_id, message.message_id)
        assert round is not None and round.image_sha is not None
        return round, (await store.images.read(round.image_sha))[1]
    finally:
        await store.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("backend", ["openai", "stability"])
async def test_edit_changes_the_stored_picture_as_the_user_says(
    backend, telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(image_backend=backend))
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    parent, original = await stored_round(data_dir, ana_chat["id"], round1)

    telegram.user_presses(ana_chat, ana, round1, "Edit")
    ask = await next_text(telegram, ana_chat, "what to change", after=round1.message_id)
    words = "make the backdrop plain white"
    telegram.user_sends_text(ana_chat, ana, words)
    round2 = await next_round(telegram, ana_chat, after=ask.message_id)

    if backend == "openai":
        [edit] = openai_fake.edit_requests
        assert [sha(image) for image in edit.images] == [sha(original)]  # the stored original
        assert edit.prompt is not None and words in edit.prompt
    else:
        [edit] = stability_fake.image_inputs
        assert sha(edit.image) == sha(original)
        assert words in edit.prompt and 0 < edit.strength < 0.6
    assert "✎ edited" in round2.plain
    edited, _ = await stored_round(data_dir, ana_chat["id"], round2)
    assert edited.edit_of == parent.id and edited.instruction == words
    view = await history_of_latest_session(telegram, ana_chat, ana)
    assert "R2 ✎ R1" in view.plain and "R1 ↻" in view.plain


async def test_accept_follows_the_critic_and_redraw_draws_a_new_picture(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)  # the default critic: a redraw
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert openai_fake.edit_requests == [] and len(openai_fake.requests_to("images")) == 2
    assert "↻ new picture" in round2.plain

    openai_fake.critic = critic_says_edit
    telegram.user_presses(ana_chat, ana, round2, "Redraw")  # a fresh composition all the same
    round3 = await next_round(telegram, ana_chat, after=round2.message_id)
    assert openai_fake.edit_requests == [] and len(openai_fake.requests_to("images")) == 3

    telegram.user_presses(ana_chat, ana, round3, "Accept")  # round 3's critic said: edit
    round4 = await next_round(telegram, ana_chat, after=round3.message_id)
    [edit] = openai_fake.edit_requests
    _, original3 = await stored_round(data_dir, ana_chat["id"], round3)
    assert [sha(image) for image in edit.images] == [sha(original3)]
    assert edit.prompt is not None and INSTRUCTION in edit.prompt
    assert "✎ edited" in round4.plain
    # The critic of an edit is told so, and how many edits in a row led to it.
    assert (
        "edit(s) in a row"
        in openai_fake.requests_to("chat")[-1].json["messages"][1]["content"][0]["text"]
    )


async def test_a_photo_briefs_edit_sends_the_picture_and_the_product_photo(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings())
    openai_fake.critic = critic_says_edit
    product = render_image(800, 600, "jpeg")
    telegram.user_sends_photo(ana_chat, ana, product, caption="on a marble table")
    round1 = await next_round(telegram, ana_chat)
    _, original = await stored_round(data_dir, ana_chat["id"], round1)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await next_round(telegram, ana_chat, after=round1.message_id)

    first, edit = openai_fake.edit_requests  # round 1 from the photo, round 2 the edit
    assert len(first.images) == 1
    assert len(edit.images) == 2 and sha(edit.images[0]) == sha(original)
    assert edit.prompt is not None and "product" in edit.prompt.lower()


async def test_an_edit_of_a_pruned_picture_is_redrawn_and_says_why(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings())
    openai_fake.critic = critic_says_edit
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    for image in (data_dir / "images").rglob("*.*"):
        image.unlink()  # retention pruned the original
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert openai_fake.edit_requests == []
    assert "the picture to edit is no longer stored" in round2.plain


async def test_a_server_without_edits_gets_one_try_then_redraws(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings())
    openai_fake.critic = critic_says_edit
    openai_fake.missing_edits = "ollama"
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert "this image server can't edit pictures" in round2.plain
    telegram.user_presses(ana_chat, ana, round2, "Accept")
    round3 = await next_round(telegram, ana_chat, after=round2.message_id)
    assert "this image server can't edit pictures" in round3.plain
    assert len(openai_fake.requests_to("edits")) == 1  # asked once, remembered
    assert len(openai_fake.requests_to("images")) == 3


async def test_autopilot_mixes_an_edit_with_a_redraw_and_ends_on_its_best(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(autopilot_drafts=2))
    telegram.user_sends_text(ana_chat, ana, f"/auto 2 {BRIEF}")
    best = await next_round(telegram, ana_chat)
    assert "🏆" in best.plain
    store = await Store.open(data_dir / "refinebot.db")
    try:
        [summary] = await store.sessions.of_chat(ana_chat["id"], 0, limit=1)
        round1, round2 = await store.rounds.of_session(summary.session.id)
        assert [d.kind for d in await store.rounds.drafts(round1.id)] == ["redraw"] * 2
        drafts2 = await store.rounds.drafts(round2.id)
        assert sorted(d.kind for d in drafts2) == ["edit", "redraw"]
        assert round1.image_sha is not None
        original1 = (await store.images.read(round1.image_sha))[1]
    finally:
        await store.close()
    # Round 2's edit starts from the best picture so far: round 1's stored original.
    [edit] = openai_fake.edit_requests
    assert [sha(image) for image in edit.images] == [sha(original1)]
    kept = max((round1, round2), key=lambda r: (r.score or 0, -r.number))
    assert f"Round {kept.number}" in best.plain
    progress = await next_text(telegram, ana_chat, "Autopilot")
    assert "Kept:" in progress.plain and "✎ edits" in progress.plain


async def test_a_restart_during_an_edit_round_critiques_it_and_never_pays_twice(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    from tests.cli_helpers import fakes_environment, kill_bot, start_bot, stop_bot

    env = fakes_environment(telegram, openai_fake, data_dir)
    openai_fake.critic = critic_says_edit
    process = await start_bot(env, tmp_path)
    try:
        telegram.user_sends_text(ana_chat, ana, BRIEF)
        round1 = await next_round(telegram, ana_chat)
        openai_fake.chat_latency = 60  # the edit is drawn and stored; its critique never comes
        telegram.user_presses(ana_chat, ana, round1, "Accept")
        await telegram.wait_for(lambda: len(openai_fake.requests_to("chat")) == 2, timeout=30)
    finally:
        await kill_bot(process)
    openai_fake.chat_latency = 0
    process = await start_bot(env, tmp_path)
    try:
        round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    finally:
        await stop_bot(process)
    assert "Round 2" in round2.plain and "✎ edited" in round2.plain
    assert len(openai_fake.edit_requests) == 1  # paid once: nothing drawn again
    assert len(openai_fake.requests_to("images")) == 1
    edited, image = await stored_round(data_dir, ana_chat["id"], round2)
    assert edited.status == "done" and edited.score is not None and edited.edit_of is not None
    assert sha(image) == edited.image_sha

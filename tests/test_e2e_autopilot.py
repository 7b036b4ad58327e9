"""Autopilot end to end: K drafts per round in parallel, the best kept, the stop rules, the
best of all rounds shown at the end, one progress message, /cancel, and photos on autopilot."""

from __future__ import annotations

from asyncio.subprocess import Process
from typing import Any

import pytest

from storage.records import AutopilotStatus, RoundStatus
from storage.store import Store
from tests.cli_helpers import fakes_environment, kill_bot, start_bot, stop_bot
from tests.fakes.openai_server import OpenAIFault, default_critic
from tests.fakes.pngs import prompt_of
from tests.helpers import next_round, next_text, stored_message_ids, toast
from tests.test_e2e_photos import product_photo

BRIEF = "leather wallet on dark slate"
SUFFIX = ", softer studio lighting"  # what the fake critic appends to the prompt


def scripted_critic(scores: list[int], on_call: Any = None):
    """The default fake critic with scores taken in order (drafts of a round in any order)."""
    queue = list(scores)
    calls = 0

    def critic(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if on_call is not None:
            on_call(calls)
        answer = default_critic(body)
        answer["score"] = queue.pop(0)
        return answer

    return critic


def paid_images(openai_fake) -> int:
    """Images the run paid for: new pictures (generations) and edits of the best so far."""
    return len(openai_fake.requests_to("images")) + len(openai_fake.requests_to("edits"))


async def run_to_the_end(telegram, chat: dict, after: int = 0):
    """Wait for the plan message and the best image; return (progress message, best photo)."""
    progress = await next_text(telegram, chat, "Autopilot", after=after)
    best = await next_round(telegram, chat, after=progress.message_id)
    progress = telegram.message(chat["id"], progress.message_id)
    return progress, best


async def session_of(data_dir, chat_id: int):
    store = await Store.open(data_dir / "refinebot.db")
    [summary] = await store.sessions.of_chat(chat_id, 0, limit=1)
    rounds = await store.rounds.of_session(summary.session.id)
    return store, summary.session, rounds


async def test_stops_at_the_threshold_with_one_progress_message(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    openai_fake.critic = scripted_critic([6, 8])
    telegram.user_sends_text(ana_chat, ana, "/auto " + BRIEF)
    progress, best = await run_to_the_end(telegram, ana_chat)

    assert "at most 6 images" in progress.plain  # said before anything was paid for
    first = progress.history[0].get("text", "") if progress.history else progress.plain
    assert "at most 6 images" in first
    assert "reached the target score" in progress.plain and "Best: round 1 (8/10)" in progress.plain
    assert "Round 1 · 8/10" in best.plain
    assert [label for label in best.buttons[0]] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    assert best.buttons[1] == ["🔁 Auto", "🎨 Redraw"]
    assert len(openai_fake.requests_to("images")) == 2
    # One progress message, edited; no stream of status messages.
    texts = [m for m in telegram.messages(ana_chat["id"]) if m.kind == "text"]
    assert texts == [progress] and progress.edits >= 2

    store, _session, rounds = await session_of(data_dir, ana_chat["id"])
    [round1] = rounds
    assert round1.action == "auto" and round1.score == 8 and round1.draft_count == 2
    drafts = await store.rounds.drafts(round1.id)
    assert sorted(d.score for d in drafts) == [6, 8]
    assert [d.kept for d in drafts if d.score == 8] == [1] and sum(d.kept for d in drafts) == 1
    run = await store.sessions.get_run(round1.autopilot_id)
    assert run.status is AutopilotStatus.DONE and run.stop_reason == "threshold"
    assert run.best_round_id == round1.id
    await store.close()


async def test_stops_when_two_rounds_do_not_improve_and_shows_the_best(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    openai_fake.critic = scripted_critic([7, 6, 5, 5, 6, 6])
    telegram.user_sends_text(ana_chat, ana, "/auto 5 " + BRIEF)
    progress, best = await run_to_the_end(telegram, ana_chat)
    assert "at most 10 images" in progress.plain
    assert "two rounds in a row did not improve" in progress.plain
    assert "Round 1 · 7/10" in best.plain  # the best, not the last (6/10)
    assert prompt_of(best.photo) == BRIEF
    assert paid_images(openai_fake) == 6
    # Each round's new picture continues from the previous round's suggestion; after round 1,
    # each round also edits the best picture so far.
    images = openai_fake.requests_to("images")
    assert [r.json["prompt"] for r in images] == [BRIEF, BRIEF, BRIEF + SUFFIX, BRIEF + SUFFIX * 2]
    assert len(openai_fake.edit_requests) == 2

    # The best image's message id is stored just after it is shown.
    await telegram.wait_for(lambda: stored_message_ids(data_dir)[0] == best.message_id)
    store, _session, rounds = await session_of(data_dir, ana_chat["id"])
    assert [r.score for r in rounds] == [7, 5, 6]
    run = await store.sessions.get_run(rounds[0].autopilot_id)
    assert run.stop_reason == "no_improvement" and run.best_round_id == rounds[0].id
    assert rounds[0].message_id == best.message_id
    await store.close()

    # The buttons under the best image act on that round.
    telegram.user_presses(ana_chat, ana, best, "Stop")
    final = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.document), None)
    )
    assert "Kept round 1" in final.plain


async def test_stops_after_n_rounds_and_returns_the_best_not_the_last(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    openai_fake.critic = scripted_critic([5, 6, 6, 7, 5, 5])
    telegram.user_sends_text(ana_chat, ana, "/auto 3 " + BRIEF)
    progress, best = await run_to_the_end(telegram, ana_chat)
    assert "all planned rounds done" in progress.plain
    assert "Round 2 · 7/10" in best.plain
    assert paid_images(openai_fake) == 6
    store, _session, rounds = await session_of(data_dir, ana_chat["id"])
    assert [r.score for r in rounds] == [6, 7, 5]
    await store.close()


@pytest.mark.parametrize("backend", ["openai", "stability"])
async def test_drafts_really_run_in_parallel(
    backend, telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend=backend, autopilot_drafts=3))
    openai_fake.image_latency = stability_fake.latency = 0.3
    telegram.user_sends_text(ana_chat, ana, "/auto 1 " + BRIEF)
    progress, _best = await run_to_the_end(telegram, ana_chat)
    assert "at most 3 images" in progress.plain
    fake = openai_fake.requests_to("images") if backend == "openai" else stability_fake.requests
    assert len(fake) == 3
    for a in fake:
        for b in fake:
            assert a.started_at < b.finished_at and b.started_at < a.finished_at  # overlap
    if backend == "stability":
        assert len({r.form["seed"] for r in fake}) == 3  # each draft its own seed


async def test_cancel_mid_autopilot_keeps_the_best_so_far(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    def slow_after_round_one(calls: int) -> None:
        if calls == 2:  # round 1's last critique: round 2's drafts will hang
            openai_fake.image_latency = 30

    openai_fake.critic = scripted_critic([6, 5, 9, 9], on_call=slow_after_round_one)
    telegram.user_sends_text(ana_chat, ana, "/auto 3 " + BRIEF)
    progress = await next_text(telegram, ana_chat, "Autopilot")
    await telegram.wait_for(lambda: paid_images(openai_fake) == 4)
    telegram.user_sends_text(ana_chat, ana, "/cancel")
    best = await next_round(telegram, ana_chat, after=progress.message_id)
    progress = telegram.message(ana_chat["id"], progress.message_id)
    assert "cancelled" in progress.plain and "Best: round 1 (6/10)" in progress.plain
    assert "Round 1 · 6/10" in best.plain
    assert paid_images(openai_fake) == 4  # nothing started after /cancel

    store, _session, rounds = await session_of(data_dir, ana_chat["id"])
    assert [r.status for r in rounds] == [RoundStatus.DONE, RoundStatus.CANCELLED]
    drafts = await store.rounds.drafts(rounds[1].id)
    assert [d.status for d in drafts] == [RoundStatus.CANCELLED] * 2
    run = await store.sessions.get_run(rounds[0].autopilot_id)
    assert run.status is AutopilotStatus.CANCELLED and run.best_round_id == rounds[0].id
    await store.close()

    openai_fake.image_latency = 0  # the session is free again
    telegram.user_presses(ana_chat, ana, best, "Accept")
    await next_round(telegram, ana_chat, after=best.message_id)


async def test_auto_button_and_auto_command_continue_a_round(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)  # 5/10 from the default critic
    query = telegram.user_presses(ana_chat, ana, round1, "Auto")
    assert "at most 6 images" in await toast(telegram, query)
    progress, best = await run_to_the_end(telegram, ana_chat, after=round1.message_id)
    # The default critic scores 6, 7, 8 for the next rounds: 8 reaches the threshold.
    assert "Round 4 · 8/10" in best.plain and "reached the target score" in progress.plain
    # Round 2 draws a new picture from round 1's suggestion and edits round 1's picture.
    prompts = [r.json["prompt"] for r in openai_fake.requests_to("images")]
    assert prompts[1] == BRIEF + SUFFIX
    assert openai_fake.edit_requests[0].images[0] != b""

    # /auto 1 without a brief continues from the newest finished round of the chat.
    telegram.user_sends_text(ana_chat, ana, "/auto 1")
    progress, again = await run_to_the_end(telegram, ana_chat, after=best.message_id)
    assert "at most 2 images" in progress.plain and "Round 5" in again.plain
    assert openai_fake.requests_to("images")[-1].json["prompt"] == BRIEF + SUFFIX * 4


async def test_photo_on_autopilot_keeps_the_product(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_photo(ana_chat, ana, product_photo(), caption="/auto 2 on a marble table")
    _progress, best = await run_to_the_end(telegram, ana_chat)
    edits = openai_fake.requests_to("edits")
    assert len(edits) == 4 and openai_fake.requests_to("images") == []
    # Every request carries the product photo: round 1's new pictures as their one input,
    # round 2's edit of the best picture as its second.
    products = {e.images[-1] for e in openai_fake.edit_requests}
    assert len(products) == 1
    assert all(len(c.images) == 2 for c in openai_fake.requests_to("chat"))
    assert "Round 2" in best.plain


async def test_bad_requests_and_failures(telegram, openai_fake, bot, ana, ana_chat) -> None:
    telegram.user_sends_text(ana_chat, ana, "/auto")
    await next_text(telegram, ana_chat, "no finished round to continue")
    telegram.user_sends_text(ana_chat, ana, "/auto 50 " + BRIEF)
    await next_text(telegram, ana_chat, "Autopilot runs 1 to 10 rounds")
    assert openai_fake.requests_to("images") == []

    openai_fake.fail_next("images", OpenAIFault.moderation(), count=2)
    telegram.user_sends_text(ana_chat, ana, "/auto 2 " + BRIEF)
    failed = await telegram.wait_for(
        lambda: next(
            (m for m in telegram.messages(ana_chat["id"]) if "a round failed" in m.plain), None
        )
    )
    assert "blocked" in failed.plain and failed.buttons == [["🔁 Retry"]]
    telegram.user_presses(ana_chat, ana, failed, "Retry")
    await next_round(telegram, ana_chat, after=failed.message_id)


async def test_a_disk_that_refuses_images_ends_the_run_with_a_retry(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    images = data_dir / "images"
    images.write_bytes(b"")  # a file where the image folder belongs: nothing can be stored
    telegram.user_sends_text(ana_chat, ana, "/auto 2 " + BRIEF)
    failed = await telegram.wait_for(
        lambda: next(
            (m for m in telegram.messages(ana_chat["id"]) if "a round failed" in m.plain), None
        )
    )
    assert "could not save it" in failed.plain and failed.buttons == [["🔁 Retry"]]
    images.unlink()
    telegram.user_presses(ana_chat, ana, failed, "Retry")
    await next_round(telegram, ana_chat, after=failed.message_id)


async def killed_and_restarted_mid_run(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir, *, stuck_at: str
) -> Process:
    """Run `/auto 2` in the bot as a process, kill it once both drafts wait at the `stuck_at`
    endpoint ("images" or "chat", which never answers then), and start it again; return the
    new process (stop it with `stop_bot`)."""
    env = fakes_environment(telegram, openai_fake, data_dir)
    latency = "image_latency" if stuck_at == "images" else "chat_latency"
    setattr(openai_fake, latency, 60)
    process = await start_bot(env, tmp_path)
    telegram.user_sends_text(ana_chat, ana, "/auto 2 " + BRIEF)
    await telegram.wait_for(lambda: len(openai_fake.requests_to(stuck_at)) == 2, timeout=30)
    await kill_bot(process)
    setattr(openai_fake, latency, 0)
    return await start_bot(env, tmp_path)


async def test_a_crash_mid_autopilot_offers_retry(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    process = await killed_and_restarted_mid_run(
        telegram, openai_fake, ana, ana_chat, tmp_path, data_dir, stuck_at="images"
    )
    try:
        notice = await next_text(telegram, ana_chat, "interrupted by a restart")
        assert notice.buttons == [["🔁 Retry"]]
    finally:
        await stop_bot(process)
    store, _session, [round1] = await session_of(data_dir, ana_chat["id"])
    assert round1.status is RoundStatus.FAILED and round1.error_kind == "interrupted"
    run = await store.sessions.get_run(round1.autopilot_id)
    assert run.status is AutopilotStatus.INTERRUPTED
    assert {d.status for d in await store.rounds.drafts(round1.id)} == {RoundStatus.FAILED}
    await store.close()


async def test_a_crash_after_the_drafts_were_drawn_keeps_one_and_critiques_it(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    # Both drafts drawn and stored; the critic never answers.
    process = await killed_and_restarted_mid_run(
        telegram, openai_fake, ana, ana_chat, tmp_path, data_dir, stuck_at="chat"
    )
    try:
        round1 = await next_round(telegram, ana_chat)
    finally:
        await stop_bot(process)
    assert "Round 1" in round1.plain and "Accept" in " ".join(round1.flat_buttons)
    assert len(openai_fake.requests_to("images")) == 2  # paid once: nothing drawn again
    store, _session, [kept] = await session_of(data_dir, ana_chat["id"])
    assert kept.status is RoundStatus.DONE and kept.score is not None
    drafts = await store.rounds.drafts(kept.id)
    assert [d.kept for d in drafts].count(1) == 1
    assert {d.image_sha for d in drafts if d.kept} == {kept.image_sha}
    await store.close()

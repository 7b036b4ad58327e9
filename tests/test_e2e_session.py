"""Restarts, concurrency, cancel, access and bad input, through the real Application."""

from __future__ import annotations

import asyncio

from storage.records import RoundStatus
from storage.store import Store
from tests.conftest import BOB_ID
from tests.helpers import (
    acknowledged,
    history_of_latest_session,
    next_round,
    next_text,
    occupy_the_only_slot,
    toast,
)


async def test_restart_keeps_every_round_and_old_buttons_work(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    first = await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, "/new walnut side table")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    await bots.stop(first)

    await bots.start(make_settings())
    telegram.user_presses(ana_chat, ana, round1, "Edit")  # a button from before the restart
    ask = await next_text(telegram, ana_chat, "Send your own prompt", after=round2.message_id)
    telegram.user_sends_text(ana_chat, ana, "walnut side table, brass legs")
    round3 = await next_round(telegram, ana_chat, after=ask.message_id)
    assert "Round 3" in round3.plain
    history = await history_of_latest_session(telegram, ana_chat, ana)
    assert "R3 ✎ R1" in history.plain and "brass legs" in history.plain  # a branch: R1 edited


async def test_double_press_starts_one_round(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new espresso cup")
    round1 = await next_round(telegram, ana_chat)
    openai_fake.image_latency = 0.5
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await telegram.wait_for(lambda: len(openai_fake.requests_to("images")) == 2)
    second = telegram.user_presses(ana_chat, ana, round1, "Accept")
    assert "already working" in (await toast(telegram, second)).lower()
    stop = telegram.user_presses(ana_chat, ana, round1, "Stop")
    assert "already working" in (await toast(telegram, stop)).lower()
    await next_round(telegram, ana_chat, after=round1.message_id)
    assert len(openai_fake.requests_to("images")) == 2


async def test_a_slow_round_never_delays_another_chat(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    bob = telegram.make_user(BOB_ID, "Bob")
    bob_chat = telegram.private_chat(bob)
    openai_fake.image_latency = 1.5
    telegram.user_sends_text(ana_chat, ana, "/new marble chess set")
    await telegram.wait_for(lambda: openai_fake.requests_to("images"))
    telegram.user_sends_text(bob_chat, bob, "/help")  # Bob is not allowed: he gets an answer
    denied = await next_text(
        telegram,
        bob_chat,
        "your telegram user id",
    )
    assert str(BOB_ID) in denied.plain
    assert telegram.messages(ana_chat["id"]) == []  # Ana's round is still drawing


async def test_cancel_stops_a_running_round(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    openai_fake.image_latency = 3
    telegram.user_sends_text(ana_chat, ana, "/new silk scarf")
    await telegram.wait_for(lambda: openai_fake.requests_to("images"))
    telegram.user_sends_text(ana_chat, ana, "/cancel")
    await next_text(telegram, ana_chat, "cancelled")
    store = await Store.open(data_dir / "refinebot.db")
    [summary] = await store.sessions.of_chat(ana_chat["id"], 0)
    [round] = await store.rounds.of_session(summary.session.id)
    assert round.status is RoundStatus.CANCELLED
    await store.close()
    openai_fake.image_latency = 0
    telegram.user_sends_text(ana_chat, ana, "/cancel")
    await next_text(telegram, ana_chat, "Nothing is running")
    telegram.user_sends_text(ana_chat, ana, "/new silk scarf, folded")
    await next_round(telegram, ana_chat)


async def test_buttons_on_rounds_days_old_still_work(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    # Telegram sends a press on a message older than about two days without the message
    # (only its chat and id): every button must work from that alone.
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept", aged=True)
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    telegram.user_presses(ana_chat, ana, round2, "Edit", aged=True)
    ask = await next_text(telegram, ana_chat, "Send your own prompt", after=round2.message_id)
    assert ask.reply_to_message_id == round2.message_id
    telegram.user_sends_text(ana_chat, ana, "tote bag on a beach")
    round3 = await next_round(telegram, ana_chat, after=ask.message_id)
    await toast(telegram, telegram.user_presses(ana_chat, ana, round3, "Stop", aged=True))
    final = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.document), None)
    )
    assert "Kept round 3" in final.plain
    await telegram.wait_for(
        lambda: telegram.message(ana_chat["id"], round3.message_id).reply_markup is None
    )
    # A /history page from long ago still turns into the session it names.
    telegram.user_sends_text(ana_chat, ana, "/history")
    page = await next_text(telegram, ana_chat, "Sessions", after=final.message_id)
    telegram.user_presses(ana_chat, ana, page, "#", aged=True)
    await telegram.wait_for(lambda: "R3" in telegram.message(ana_chat["id"], page.message_id).plain)


async def test_strangers_get_their_id_and_nothing_is_generated(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    round1 = await next_round(telegram, ana_chat)
    mallory = telegram.make_user(666, "Mallory")
    mallory_chat = telegram.private_chat(mallory)
    telegram.user_sends_text(mallory_chat, mallory, "/new free images please")
    denied = await next_text(telegram, mallory_chat, "ALLOWED_USER_IDS")
    assert "666" in denied.plain
    # Mallory presses Ana's button with forged data for Ana's round: refused, nothing drawn.
    query = telegram.user_presses_data(mallory_chat, mallory, denied, f"a:{round1.message_id}")
    assert "not allowed" in await toast(telegram, query)
    assert len(openai_fake.requests_to("images")) == 1


async def test_a_stranger_whose_refusal_fails_still_gets_nothing(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    # Mallory blocks the bot right after asking: the refusal fails, the gate stays shut.
    mallory = telegram.make_user(666, "Mallory")
    telegram.fail_next("sendMessage", error_code=403)
    telegram.user_sends_text(telegram.private_chat(mallory), mallory, "/new free images please")
    await telegram.wait_for(lambda: any(not c.ok for c in telegram.calls_to("sendMessage")))
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    await next_round(telegram, ana_chat)
    assert [r.json["prompt"] for r in openai_fake.requests_to("images")] == ["tote bag"]


async def test_allowed_users_and_chats(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(admin_user_ids="", allowed_user_ids=str(BOB_ID)))
    bob = telegram.make_user(BOB_ID, "Bob")
    telegram.user_sends_text(telegram.private_chat(bob), bob, "/new tote bag")
    await next_round(telegram, telegram.private_chat(bob))
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    await next_text(telegram, ana_chat, "ALLOWED_USER_IDS")


async def test_bad_input_gets_friendly_answers(telegram, openai_fake, bot, ana, ana_chat) -> None:
    cases = [
        ("/new", "Tell me what to draw"),
        ("/new    ", "Tell me what to draw"),
        ("x" * 4000, "under 2,000 characters"),
        ("/new " + "y" * 3000, "under 2,000 characters"),
    ]
    for text, expected in cases:
        last = telegram.last_message(ana_chat["id"])
        telegram.user_sends_text(ana_chat, ana, text)
        await next_text(telegram, ana_chat, expected, after=last.message_id if last else 0)
    assert openai_fake.requests_to("images") == []

    for data in ("a:999999", "garbage", "s:0", "e:" + "9" * 30):
        last = telegram.last_message(ana_chat["id"])
        query = telegram.user_presses_data(ana_chat, ana, last, data)
        assert await toast(telegram, query)
    telegram.user_sends_photo(ana_chat, ana, telegram_png())
    await next_text(telegram, ana_chat, "Send it again with a caption")

    # Briefs with markup characters, emoji and right-to-left text go through untouched.
    brief = 'Saree <b>"50% off"</b> & gold 💛 — ساري حريري'
    telegram.user_sends_text(ana_chat, ana, brief)
    round1 = await next_round(telegram, ana_chat)
    assert openai_fake.requests_to("images")[-1].json["prompt"] == brief
    assert "Round 1" in round1.plain


async def test_another_chats_round_is_not_available(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(allowed_user_ids=str(BOB_ID)))
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    await next_round(telegram, ana_chat)
    bob = telegram.make_user(BOB_ID, "Bob")
    bob_chat = telegram.private_chat(bob)
    telegram.user_sends_text(bob_chat, bob, "/help")
    help_message = await next_text(telegram, bob_chat, "refinebot")
    query = telegram.user_presses_data(bob_chat, bob, help_message, "a:1")  # Ana's round 1
    assert "isn't available" in await toast(telegram, query)
    await asyncio.sleep(0.2)
    assert len(openai_fake.requests_to("images")) == 1


def telegram_png() -> bytes:
    from tests.fakes.pngs import solid_png

    return solid_png(64, 64)


async def test_new_brief_after_edit_press_drops_the_edit(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Edit")
    ask = await next_text(telegram, ana_chat, "Send your own prompt")
    telegram.user_sends_text(ana_chat, ana, "/new leather boots")
    boots = await next_round(telegram, ana_chat, after=ask.message_id)
    telegram.user_sends_text(ana_chat, ana, "green umbrella")  # a new brief, not an edit
    umbrella = await next_round(telegram, ana_chat, after=boots.message_id)
    assert "Round 1" in boots.plain and "Round 1" in umbrella.plain


async def test_updates_within_a_chat_stay_in_order(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    round1 = await next_round(telegram, ana_chat)
    # Both updates arrive in one getUpdates batch: the reply must be seen as the edit.
    telegram.latency = 0.05
    telegram.user_presses(ana_chat, ana, round1, "Edit")
    telegram.user_sends_text(ana_chat, ana, "tote bag, navy stripes")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert "Round 2" in round2.plain
    assert openai_fake.edit_requests[-1].prompt == "tote bag, navy stripes"


async def test_stop_on_a_pruned_image_keeps_the_session_usable(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new tote bag")
    round1 = await next_round(telegram, ana_chat)
    for image in (data_dir / "images").rglob("*.jpg"):
        image.unlink()  # as IMAGE_RETENTION_DAYS would
    query = telegram.user_presses(ana_chat, ana, round1, "Stop")
    assert "deleted by the retention policy" in await toast(telegram, query)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    telegram.user_presses(ana_chat, ana, round2, "Stop")
    await telegram.wait_for(lambda: any(m.document for m in telegram.messages(ana_chat["id"])))


async def test_a_burst_of_briefs_waits_its_turn(telegram, openai_fake, bots, make_settings) -> None:
    """MAX_ROUNDS_IN_FLIGHT caps the rounds drawn and critiqued at once across chats: every
    brief gets its 👀 at once, the rest of its round when a slot is free, and all finish."""
    await bots.start(make_settings(allowed_user_ids="*", max_rounds_in_flight=2))
    openai_fake.image_latency = 0.3
    openai_fake.chat_latency = 0.2
    chats, briefs = [], []
    for index in range(5):
        user = telegram.make_user(60_000 + index, f"User{index}")
        chat = telegram.private_chat(user)
        briefs.append(telegram.user_sends_text(chat, user, f"/new enamel pin {index}"))
        chats.append(chat)
    acknowledged = [
        (chat["id"], brief["message_id"]) for chat, brief in zip(chats, briefs, strict=True)
    ]
    await telegram.wait_for(lambda: all(key in telegram.reactions for key in acknowledged))
    assert len(openai_fake.requests_to("images")) <= 2  # the others wait their turn
    rounds = await asyncio.gather(*(next_round(telegram, chat) for chat in chats))
    assert all("Round 1" in r.plain for r in rounds)

    # A round holds its slot from its image request to its critique's answer.
    spans = []
    for index in range(5):
        pin = f"enamel pin {index}"
        [image] = [r for r in openai_fake.requests_to("images") if pin in r.json["prompt"]]
        [critique] = [r for r in openai_fake.requests_to("chat") if pin in str(r.json)]
        spans.append((image.started_at, critique.finished_at))
    assert _peak(spans) == 2


async def test_a_team_of_fifty_starts_at_once_by_default(
    telegram, openai_fake, bots, make_settings
) -> None:
    """With the default MAX_ROUNDS_IN_FLIGHT, 50 people briefing at once all get their image
    drawn at once: nobody waits a whole round for a slot (bench/: 1.03× one chat's time)."""
    await bots.start(make_settings(allowed_user_ids="*"))
    telegram.render_photo_sizes = False
    openai_fake.image_latency = 4.0  # every draw is still running when the last one starts
    chats = []
    for index in range(50):
        user = telegram.make_user(62_000 + index, f"Member{index}")
        chats.append(telegram.private_chat(user))
        telegram.user_sends_text(chats[-1], user, f"/new tote bag {index}")
    await telegram.wait_for(lambda: len(openai_fake.requests_to("images")) == 50, timeout=30)
    assert all(r.finished_at is None for r in openai_fake.requests_to("images"))
    openai_fake.image_latency = 0
    rounds = await asyncio.gather(*(next_round(telegram, chat) for chat in chats))
    assert all("Round 1" in r.plain for r in rounds)


def _peak(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant (one ending as another starts counts once)."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = peak = 0
    for _, change in edges:
        open_now += change
        peak = max(peak, open_now)
    return peak


async def test_cancel_while_waiting_its_turn_pays_nothing(
    telegram, openai_fake, bots, make_settings
) -> None:
    await bots.start(make_settings(allowed_user_ids="*", max_rounds_in_flight=1))
    busy = await occupy_the_only_slot(telegram, openai_fake, latency=1.0)
    waiting_user = telegram.make_user(61_001, "Waiting")
    waiting = telegram.private_chat(waiting_user)
    brief = telegram.user_sends_text(waiting, waiting_user, "/new linen napkins")
    await acknowledged(telegram, waiting, brief)
    telegram.user_sends_text(waiting, waiting_user, "/cancel")
    cancelled = await next_text(telegram, waiting, "cancelled")
    assert cancelled.reply_to_message_id == brief["message_id"]

    await next_round(telegram, busy)
    await asyncio.sleep(0.3)
    prompts = [r.json["prompt"] for r in openai_fake.requests_to("images")]
    assert prompts == ["teak tray"]  # the cancelled round never reached the image API


async def test_stop_pressed_twice_sends_one_document(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new teak tray")
    round1 = await next_round(telegram, ana_chat)
    first = telegram.user_presses(ana_chat, ana, round1, "Stop")
    second = telegram.user_presses(ana_chat, ana, round1, "Stop")  # within milliseconds
    answers = {await toast(telegram, first), await toast(telegram, second)}
    assert "The full-resolution image is above." in answers
    await asyncio.sleep(0.3)
    documents = [m for m in telegram.messages(ana_chat["id"]) if m.document]
    assert len(documents) == 1


async def test_a_reply_to_an_edit_prompt_after_new_edits_that_round(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new teak tray")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Edit")
    ask = await next_text(telegram, ana_chat, "Send your own prompt", after=round1.message_id)
    telegram.user_sends_text(ana_chat, ana, "/new copper kettle")  # drops the pending edit
    other = await next_round(telegram, ana_chat, after=ask.message_id)
    telegram.user_sends_text(ana_chat, ana, "make the tray darker", reply_to=ask)
    edited = await next_round(telegram, ana_chat, after=other.message_id)
    assert "Round 2" in edited.plain and "✎ edited" in edited.plain
    assert openai_fake.edit_requests[-1].prompt == "make the tray darker"
    store = await Store.open(data_dir / "refinebot.db")
    try:
        round = await store.rounds.by_message(ana_chat["id"], edited.message_id)
        assert round is not None and round.edit_of is not None
        parent = await store.rounds.get(round.edit_of)
        assert parent is not None and parent.prompt == "teak tray"
    finally:
        await store.close()

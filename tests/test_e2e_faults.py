"""Faults of Telegram and of the backends: nothing lost, nothing stuck, no retry storms."""

from __future__ import annotations

import asyncio
import logging

from storage.records import RoundStatus
from storage.store import Store
from tests.cli_helpers import fakes_environment, start_bot, stop_bot
from tests.conftest import BOB_ID
from tests.fakes.faults import Fault
from tests.fakes.pngs import prompt_of
from tests.helpers import acknowledged, next_round, next_text, occupy_the_only_slot, toast

ERROR_HANDLER = "error while handling an update"


async def rounds_of(data_dir, chat_id: int) -> list:
    store = await Store.open(data_dir / "refinebot.db")
    try:
        [summary, *_] = await store.sessions.of_chat(chat_id, 0)
        return await store.rounds.of_session(summary.session.id)
    finally:
        await store.close()


async def test_flood_control_is_waited_out(telegram, openai_fake, bot, ana, ana_chat) -> None:
    telegram.fail_next("sendPhoto", retry_after=1)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    round1 = await next_round(telegram, ana_chat)
    assert [c.ok for c in telegram.calls_to("sendPhoto")] == [False, True]
    assert "Round 1" in round1.plain


async def test_a_photo_lost_on_the_network_arrives_with_the_critique(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.fail_next("sendPhoto", drop_connection=True)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    round1 = await next_round(telegram, ana_chat)
    assert [c.ok for c in telegram.calls_to("sendPhoto")] == [False, True]
    assert "Round 1" in round1.plain
    assert "Accept" in " ".join(round1.flat_buttons)
    assert len(openai_fake.requests_to("images")) == 1  # sent again, never drawn again


async def test_a_chat_gone_while_its_round_waited_is_not_paid_for(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(allowed_user_ids="*", max_rounds_in_flight=1))
    busy = await occupy_the_only_slot(telegram, openai_fake, latency=1.5)
    await acknowledged(telegram, ana_chat, telegram.user_sends_text(ana_chat, ana, "/new tote"))
    telegram.user_blocks_bot(ana_chat)  # while her round waits its turn
    await next_round(telegram, busy)

    def ana_calls() -> list[str]:
        return [c.method for c in telegram.calls if c.params.get("chat_id") == ana_chat["id"]]

    await telegram.wait_for(lambda: "sendChatAction" in ana_calls())
    await asyncio.sleep(0.5)
    prompts = [r.json["prompt"] for r in openai_fake.requests_to("images")]
    assert prompts == ["teak tray"]  # nothing paid for a chat nobody reads
    [round] = await rounds_of(data_dir, ana_chat["id"])
    assert round.status is RoundStatus.CANCELLED
    assert sorted(ana_calls()) == ["sendChatAction", "setMessageReaction"]  # no retries, no more


async def test_blocked_after_the_image_ends_the_round_quietly(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    telegram.fail_next("sendPhoto", error_code=403)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    await telegram.wait_for(lambda: telegram.calls_to("sendPhoto"))
    await asyncio.sleep(0.5)
    blocked_at = telegram.calls_to("sendPhoto")[0].at
    after = [c for c in telegram.calls if c.at > blocked_at and c.method != "getUpdates"]
    assert after == []  # no retries, no caption edits, no more chat actions
    assert len(openai_fake.requests_to("images")) == 1
    [stored] = await rounds_of(data_dir, ana_chat["id"])
    assert stored.image_sha is not None  # the paid image is kept


async def test_quiet_telegram_errors_never_reach_the_error_handler(
    telegram, openai_fake, bot, ana, ana_chat, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    telegram.fail_next("setMessageReaction", description="Bad Request: REACTION_INVALID")
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    round1 = await next_round(telegram, ana_chat)
    assert [c.ok for c in telegram.calls_to("setMessageReaction")] == [False]
    telegram.fail_next(
        "answerCallbackQuery",
        description="Bad Request: query is too old and response timeout expired or query ID "
        "is invalid",
    )
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert "Round 2" in round2.plain
    assert ERROR_HANDLER not in caplog.text


async def test_group_upgraded_mid_round_is_followed(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    old_id, new_id = -4001, -1004001
    await bots.start(make_settings(allowed_chat_ids=f"{old_id},{new_id}"))
    old = telegram.group_chat(old_id, "Team", supergroup=False)
    new = telegram.group_chat(new_id, "Team", supergroup=True)
    telegram.fail_next("sendPhoto", migrate_to_chat_id=new_id)
    telegram.user_sends_text(old, ana, "/new canvas tote")
    round1 = await next_round(telegram, new)
    # Telegram's service message moves the history; buttons in the new chat keep working.
    telegram.enqueue_update(
        {
            "message": {
                "message_id": 999,
                "date": 0,
                "chat": new,
                "from": ana,
                "migrate_from_chat_id": old_id,
            }
        }
    )
    telegram.user_sends_text(new, ana, "/history")
    history = await next_text(telegram, new, "Session", after=round1.message_id)
    assert "1 rounds" in history.plain
    telegram.user_presses(new, ana, round1, "Accept")
    await next_round(telegram, new, after=history.message_id)


async def test_a_group_allowed_by_its_id_stays_allowed_after_its_upgrade(
    telegram, openai_fake, bots, make_settings
) -> None:
    old_id, new_id = -4002, -1004002
    await bots.start(make_settings(admin_user_ids="", allowed_chat_ids=str(old_id)))
    bob = telegram.make_user(BOB_ID, "Bob")  # allowed only through the group
    old = telegram.group_chat(old_id, "Team", supergroup=False)
    new = telegram.group_chat(new_id, "Team", supergroup=True)
    telegram.user_sends_text(old, bob, "/new canvas tote")
    await next_round(telegram, old)
    # Telegram's two notices of the upgrade, one in each chat.
    for chat, key, other in (
        (old, "migrate_to_chat_id", new_id),
        (new, "migrate_from_chat_id", old_id),
    ):
        notice = {"message_id": 990, "date": 0, "chat": chat, "from": bob, key: other}
        telegram.enqueue_update({"message": notice})
    telegram.user_sends_text(new, bob, "/history")
    history = await next_text(telegram, new, "Session")
    assert "1 rounds" in history.plain
    telegram.user_sends_text(new, bob, "/new linen shirt")
    await next_round(telegram, new, after=history.message_id)
    # Bob's private chat was never allowed, and still is not.
    telegram.user_sends_text(telegram.private_chat(bob), bob, "/new linen shirt")
    await next_text(telegram, telegram.private_chat(bob), "ALLOWED_USER_IDS")


async def test_bot_api_outage_while_polling_is_survived(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.fail_next("getUpdates", error_code=502, description="Bad Gateway", count=3)
    await telegram.wait_for(lambda: len(telegram.calls_to("getUpdates")) >= 4, timeout=30)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    await next_round(telegram, ana_chat)


async def test_malformed_image_response_offers_retry(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    openai_fake.fail_next("images", Fault.raw(200, "<html>oops", content_type="application/json"))
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    failed = await next_text(telegram, ana_chat, "sent back something unusable")
    assert failed.buttons == [["🔁 Retry"]]
    query = telegram.user_presses(ana_chat, ana, failed, "Retry")
    assert "round 2" in (await toast(telegram, query)).lower()
    round2 = await next_round(telegram, ana_chat, after=failed.message_id)
    assert "Round 2" in round2.plain
    prompts = [r.json["prompt"] for r in openai_fake.requests_to("images") if r.status == 200]
    assert prompts == ["canvas tote", "canvas tote"]


async def test_a_disk_that_refuses_the_image_still_shows_it_and_offers_a_retry(
    telegram, openai_fake, bot, ana, ana_chat, data_dir
) -> None:
    # The image folder cannot be made (a file where it belongs, like a full or broken disk):
    # the paid image cannot be stored, but it is the user's: it is shown, saying so, with Retry.
    images = data_dir / "images"
    assert not images.exists()
    images.write_bytes(b"")
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    failed = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.photo), None)
    )
    assert "could not save it" in failed.plain and failed.buttons == [["🔁 Retry"]]
    assert prompt_of(failed.photo) == "canvas tote"
    [round1] = await rounds_of(data_dir, ana_chat["id"])
    assert (round1.status, round1.error_kind) == (RoundStatus.FAILED, "not_stored")
    images.unlink()  # the disk is fixed: Retry works
    telegram.user_presses(ana_chat, ana, failed, "Retry")
    round2 = await next_round(telegram, ana_chat, after=failed.message_id)
    assert "Round 2" in round2.plain


async def test_a_final_image_that_did_not_go_through_can_be_asked_for_again(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    round1 = await next_round(telegram, ana_chat)
    telegram.fail_next("sendDocument", error_code=500)
    await toast(telegram, telegram.user_presses(ana_chat, ana, round1, "Stop"))
    notice = await next_text(telegram, ana_chat, "didn't go through", after=round1.message_id)
    assert "keep trying" in notice.plain
    assert telegram.message(ana_chat["id"], round1.message_id).reply_markup is not None
    # The session is stopped, but Stop on its kept round delivers the image again.
    await toast(telegram, telegram.user_presses(ana_chat, ana, round1, "Stop"))
    final = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.document), None)
    )
    assert "Kept round 1" in final.plain
    assert len(openai_fake.requests_to("images")) == 1  # delivered again, never drawn again


async def test_malformed_critic_response_is_retried(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    openai_fake.fail_next("chat", Fault.raw(200, "{not json", content_type="application/json"))
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    round1 = await next_round(telegram, ana_chat)
    assert "/10" in round1.plain


async def test_bot_api_unreachable_at_start_up_is_waited_for(
    telegram, openai_fake, ana, ana_chat, tmp_path, data_dir
) -> None:
    telegram.fail_next("getMe", error_code=502, description="Bad Gateway", count=3)
    process = await start_bot(fakes_environment(telegram, openai_fake, data_dir), tmp_path)
    try:
        telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
        await next_round(telegram, ana_chat)
        assert len(telegram.calls_to("getMe")) >= 4
    finally:
        await stop_bot(process)
    assert process.returncode == 0


async def test_a_write_lock_held_elsewhere_stalls_no_reader_and_fails_writes_quickly(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    import sqlite3

    from tests.conftest import BOB_ID
    from tests.helpers import next_round, next_text

    await bots.start(make_settings(allowed_user_ids=str(BOB_ID)))
    bob = telegram.make_user(BOB_ID, "Bob")
    bob_chat = telegram.private_chat(bob)
    telegram.user_sends_text(bob_chat, bob, "walnut bowl")
    await next_round(telegram, bob_chat)
    holder = sqlite3.connect(data_dir / "refinebot.db", isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # a backup tool, or another program, holds the lock
    try:
        telegram.user_sends_text(ana_chat, ana, "oak bowl")  # a write waits for the lock...
        await asyncio.sleep(0.2)
        telegram.user_sends_text(bob_chat, bob, "/history")  # ...a read in another chat not
        await next_text(telegram, bob_chat, "Sessions", after=0)
        assert telegram.last_message(ana_chat["id"]) is None  # the write is still waiting
        busy = await next_text(telegram, ana_chat, "database is busy")  # then fails, saying so
        assert "try again" in busy.plain
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    telegram.user_sends_text(ana_chat, ana, "oak bowl")
    await next_round(telegram, ana_chat, after=busy.message_id)


async def test_a_photo_telegram_refuses_in_every_size_arrives_as_a_document_with_buttons(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    # Telegram refuses the photo and its preview (PHOTO_INVALID_DIMENSIONS): the round's
    # image goes out as a file, and the critique and buttons land on it.
    telegram.fail_next("sendPhoto", description="Bad Request: PHOTO_INVALID_DIMENSIONS", count=2)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    shown = await telegram.wait_for(
        lambda: next(
            (m for m in telegram.messages(ana_chat["id"]) if m.document and m.buttons), None
        )
    )
    assert [label for label in shown.buttons[0]] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    assert "Round 1" in shown.plain and prompt_of(shown.document) == "canvas tote"


async def test_an_image_telegram_refuses_in_every_form_is_said_with_its_buttons(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    refused = "Bad Request: PHOTO_INVALID_DIMENSIONS"
    telegram.fail_next("sendPhoto", description=refused, count=2)
    telegram.fail_next("sendDocument", description="Bad Request: file is too big", count=1)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    said = await next_text(telegram, ana_chat, "would not show round 1")
    assert "/gallery" in said.plain
    await telegram.wait_for(lambda: telegram.message(ana_chat["id"], said.message_id).buttons)


async def test_telegram_unreachable_for_a_moment_still_gets_the_round_with_its_buttons(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    # The photo's upload and the critique's caption edit each meet a dropped connection a
    # few times (Telegram unreachable): both are retried with backoff and arrive.
    telegram.fail_next("sendPhoto", drop_connection=True, count=3)
    telegram.fail_next("editMessageCaption", drop_connection=True, count=2)
    telegram.user_sends_text(ana_chat, ana, "/new canvas tote")
    round1 = await next_round(telegram, ana_chat)
    assert "Round 1" in round1.plain and "/10" in round1.plain
    assert [label for label in round1.buttons[0]] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]

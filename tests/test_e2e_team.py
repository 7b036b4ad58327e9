"""Team group chats, forum topics, history paging, contact sheets and per-chat settings."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from bot.images import SHEET_BACKGROUND, SHEET_TILE, sheet_size, sheet_tile_origin
from tests.conftest import BOB_ID
from tests.fakes.pngs import prompt_of
from tests.helpers import next_round, next_text, toast

GROUP_ID = -1008880001
BOT = "refine_test_bot"


def labels(message) -> list[str]:
    """Every button label of a message, row after row."""
    return [label for row in message.buttons for label in row]


def chat_admins(telegram, *admin_ids: int) -> None:
    """Answer getChatMember: these users administer the group, everyone else is a member."""

    def member(params: dict) -> dict:
        user_id = int(params["user_id"])
        user = {"id": user_id, "is_bot": False, "first_name": str(user_id)}
        if user_id in admin_ids:
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    telegram.stub("getChatMember", member)


async def start_team(telegram, bots, make_settings, **settings):
    await bots.start(make_settings(allowed_chat_ids=str(GROUP_ID), **settings))
    group = telegram.group_chat(GROUP_ID, "Shop team")
    return group, telegram.make_user(BOB_ID, "Bob", language_code="en")


async def test_three_group_triggers_and_ignored_chatter(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    group, bob = await start_team(telegram, bots, make_settings)
    telegram.user_sends_text(group, bob, "morning all, coffee?")  # chatter
    telegram.user_sends_text(group, ana, "/new@some_other_bot hats")  # another bot's command
    telegram.user_sends_text(group, ana, f"@{BOT} linen apron, flat lay")  # a mention
    round1 = await next_round(telegram, group)
    assert openai_fake.requests_to("images")[0].json["prompt"] == "linen apron, flat lay"

    telegram.user_sends_text(group, bob, "/new@refine_test_bot copper kettle")  # a command
    round2 = await next_round(telegram, group, after=round1.message_id)
    assert prompt_of(round2.photo) == "copper kettle"

    # A reply to a round's photo is an Edit of that round, credited in the caption.
    telegram.user_sends_text(group, ana, "linen apron on a hook", reply_to=round1)
    round3 = await next_round(telegram, group, after=round2.message_id)
    assert "Round 2" in round3.plain and "edited by Ana" in round3.plain
    assert len(openai_fake.requests_to("images")) == 2  # the reply edits round 1's picture
    assert [e.prompt for e in openai_fake.edit_requests] == ["linen apron on a hook"]
    # Progress in groups costs no messages: each round is one photo answering whoever asked.
    assert not [c for c in telegram.calls_to("sendMessage") if c.params["chat_id"] == GROUP_ID]
    asked = [m.reply_to_message_id for m in (round1, round2, round3)]
    assert all(asked) and len(set(asked)) == 3


async def test_edit_in_a_group_names_who_pressed_it(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    # The reply field of a selective force-reply opens only for users the prompt mentions.
    group, bob = await start_team(telegram, bots, make_settings)
    telegram.user_sends_text(group, ana, f"/new@{BOT} copper kettle")
    round1 = await next_round(telegram, group)
    telegram.user_presses(group, bob, round1, "Edit")
    ask = await next_text(telegram, group, "Send your own prompt", after=round1.message_id)
    assert f'<a href="tg://user?id={BOB_ID}">Bob</a>, reply to this message' in ask.text
    assert ask.reply_markup == {"force_reply": True, "selective": True}
    telegram.user_sends_text(group, bob, "copper kettle on a gas stove", reply_to=ask)
    round2 = await next_round(telegram, group, after=ask.message_id)
    assert "edited by Bob" in round2.plain


async def round_in_a_forum_topic(telegram, bots, make_settings, ana):
    """Start the bot for a forum group; Ana's brief in topic 77 gets round 1: (forum, round)."""
    await bots.start(make_settings(allowed_chat_ids=str(GROUP_ID)))
    forum = telegram.group_chat(GROUP_ID, "Shop team", supergroup=True, forum=True)
    telegram.user_sends_text(forum, ana, f"/new@{BOT} ceramic mug", thread_id=77)
    return forum, await next_round(telegram, forum)


async def test_forum_topics_keep_their_own_sessions(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    forum, round1 = await round_in_a_forum_topic(telegram, bots, make_settings, ana)
    assert round1.thread_id == 77
    assert all(m.thread_id == 77 for m in telegram.messages(GROUP_ID))

    telegram.user_presses(forum, ana, round1, "Accept")
    round2 = await next_round(telegram, forum, after=round1.message_id)
    assert round2.thread_id == 77 and "Round 2" in round2.plain

    telegram.user_sends_text(forum, ana, f"/history@{BOT}", thread_id=78)
    other = await next_text(telegram, forum, "No sessions here yet", after=round2.message_id)
    assert other.thread_id == 78
    telegram.user_sends_text(forum, ana, f"/history@{BOT}", thread_id=77)
    mine = await next_text(telegram, forum, "Sessions", after=other.message_id)
    assert mine.thread_id == 77 and "ceramic mug" in mine.plain


async def test_an_apology_for_a_failure_stays_in_its_topic(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    forum, round1 = await round_in_a_forum_topic(telegram, bots, make_settings, ana)
    telegram.fail_next("sendMessage", error_code=400)  # /history's answer fails
    telegram.user_sends_text(forum, ana, f"/history@{BOT}", thread_id=77)
    sorry = await next_text(telegram, forum, "went wrong on my side", after=round1.message_id)
    assert sorry.thread_id == 77


async def test_buttons_days_old_in_a_forum_topic_stay_in_their_topic(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    # Telegram sends a press on an old message without it, so without its topic.
    forum, round1 = await round_in_a_forum_topic(telegram, bots, make_settings, ana)
    telegram.user_presses(forum, ana, round1, "Accept", aged=True)
    round2 = await next_round(telegram, forum, after=round1.message_id)
    assert round2.thread_id == 77 and "Round 2" in round2.plain
    telegram.user_presses(forum, ana, round2, "Edit", aged=True)
    ask = await next_text(telegram, forum, "Send your own prompt", after=round2.message_id)
    assert ask.thread_id == 77
    telegram.user_sends_text(forum, ana, "ceramic mug on oak", reply_to=ask, thread_id=77)
    round3 = await next_round(telegram, forum, after=ask.message_id)
    assert round3.thread_id == 77 and "Round 3" in round3.plain


async def test_anyone_may_press_by_default_and_only_the_starter_when_set(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    group, bob = await start_team(telegram, bots, make_settings)
    chat_admins(telegram, ana["id"])
    telegram.user_sends_text(group, ana, f"/new@{BOT} leather belt")
    round1 = await next_round(telegram, group)
    telegram.user_presses(group, bob, round1, "Accept")
    round2 = await next_round(telegram, group, after=round1.message_id)
    assert "accepted by Bob" in round2.plain

    # Bob is not a group admin: he cannot change the settings.
    telegram.user_sends_text(group, ana, f"/settings@{BOT}")
    menu = await next_text(telegram, group, "Settings for this chat", after=round2.message_id)
    query = telegram.user_presses(group, bob, menu, "Only who started it")
    assert "Only the group's admins" in await toast(telegram, query)
    query = telegram.user_presses(group, ana, menu, "Only who started it")
    assert "Saved" in await toast(telegram, query)

    sent_before = len(telegram.messages(GROUP_ID))
    query = telegram.user_presses(group, bob, round2, "Accept")
    assert "only the person who started" in await toast(telegram, query)
    query = telegram.user_presses(group, bob, round2, "Stop")
    assert "only the person who started" in await toast(telegram, query)
    await asyncio.sleep(0.2)
    assert len(telegram.messages(GROUP_ID)) == sent_before  # a toast, never a chat message
    # Nor can Bob /cancel Ana's round while it runs; Ana can.
    openai_fake.image_latency = 2
    telegram.user_presses(group, ana, round2, "Accept")
    await telegram.wait_for(lambda: len(openai_fake.requests_to("images")) == 3)
    telegram.user_sends_text(group, bob, f"/cancel@{BOT}")
    await next_text(telegram, group, "only the person who started", after=menu.message_id)
    telegram.user_sends_text(group, ana, f"/cancel@{BOT}")
    await next_text(telegram, group, "Cancelled", after=menu.message_id)


async def test_two_sessions_at_once_in_one_group_never_mix(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    group, bob = await start_team(telegram, bots, make_settings)
    openai_fake.image_latency = 0.4
    telegram.user_sends_text(group, ana, f"/new@{BOT} red wool scarf")
    telegram.user_sends_text(group, bob, f"/new@{BOT} green glass vase")

    def finished_rounds():
        done = [m for m in telegram.messages(GROUP_ID) if m.photo is not None and m.buttons]
        return done if len(done) == 2 else None

    rounds = await telegram.wait_for(finished_rounds)
    by_prompt = {prompt_of(m.photo): m for m in rounds}
    assert set(by_prompt) == {"red wool scarf", "green glass vase"}
    openai_fake.image_latency = 0
    telegram.user_presses(group, bob, by_prompt["green glass vase"], "Accept")
    telegram.user_presses(group, ana, by_prompt["red wool scarf"], "Accept")

    def second_rounds():
        done = [m for m in telegram.messages(GROUP_ID) if m.photo is not None and m.buttons]
        return done if len(done) == 4 else None

    later = (await telegram.wait_for(second_rounds))[2:]
    prompts = sorted(prompt_of(m.photo) for m in later)
    assert prompts == [
        "green glass vase, softer studio lighting",
        "red wool scarf, softer studio lighting",
    ]
    for message in later:
        # Each caption belongs to its own image: the critic's suggestion extends that prompt.
        assert prompt_of(message.photo) in message.plain


async def test_history_pages_and_shows_a_sessions_rounds(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    for index in range(7):
        last = telegram.last_message(ana_chat["id"])
        telegram.user_sends_text(ana_chat, ana, f"/new product {index}")
        await next_round(telegram, ana_chat, after=last.message_id if last else 0)
    last = telegram.last_message(ana_chat["id"])
    telegram.user_sends_text(ana_chat, ana, "/history")
    page = await next_text(telegram, ana_chat, "Sessions", after=last.message_id)
    assert "page 1 of 2" in page.plain
    assert [row[0] for row in page.buttons[:5]] == [
        f"#{n} product {n - 1}" for n in range(7, 2, -1)
    ]
    assert page.buttons[-1] == ["Older ▶"]

    telegram.user_presses(ana_chat, ana, page, "Older")
    older = await telegram.wait_for(
        lambda: (
            "page 2 of 2" in telegram.message(ana_chat["id"], page.message_id).plain
            and telegram.message(ana_chat["id"], page.message_id)
        )
    )
    assert [row[0] for row in older.buttons[:2]] == ["#2 product 1", "#1 product 0"]
    assert older.buttons[-1] == ["◀ Newer"]

    telegram.user_presses(ana_chat, ana, older, "#1")
    detail = await telegram.wait_for(
        lambda: (
            "Session #1" in telegram.message(ana_chat["id"], page.message_id).plain
            and telegram.message(ana_chat["id"], page.message_id)
        )
    )
    assert "R1" in detail.plain and "product 0" in detail.plain
    # A forged page or another chat's session is refused.
    query = telegram.user_presses_data(ana_chat, ana, detail, "v:999")
    assert "isn't available" in await toast(telegram, query)


async def test_contact_sheet_of_a_finished_session(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/new bamboo cutting board")
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    telegram.user_presses(ana_chat, ana, round2, "Accept")
    round3 = await next_round(telegram, ana_chat, after=round2.message_id)
    telegram.user_presses(ana_chat, ana, round2, "Stop")
    final = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.document), None)
    )
    assert final.buttons == [["🖼 Contact sheet", "📐 All formats"]]

    telegram.user_presses(ana_chat, ana, final, "Contact sheet")
    sheet = await telegram.wait_for(
        lambda: next(
            (m for m in telegram.messages(ana_chat["id"]) if m.photo and "🖼" in m.plain), None
        )
    )
    assert "3 images" in sheet.plain
    image = Image.open(io.BytesIO(sheet.photo)).convert("RGB")
    assert image.size == sheet_size(3) == (3 * (SHEET_TILE + 12) + 12, SHEET_TILE + 56 + 24)
    filled = [
        image.getpixel((x + SHEET_TILE // 2, y + SHEET_TILE // 2)) != SHEET_BACKGROUND
        for x, y in (sheet_tile_origin(i, 3) for i in range(3))
    ]
    assert filled == [True, True, True]
    # The kept round (round 2) is framed in gold.
    x, y = sheet_tile_origin(1, 3)
    r, g, b = image.getpixel((x - 3, y + 50))
    assert r > 180 and g > 120 and b < 80
    assert round3.message_id < final.message_id

    # Asked again, Telegram gets the file_id, not a second upload.
    telegram.user_sends_text(ana_chat, ana, "/gallery")
    await telegram.wait_for(lambda: len(telegram.calls_to("sendPhoto")) == 5)
    first, second = telegram.calls_to("sendPhoto")[-2:]
    assert "photo" in first.files and "photo" not in second.files
    assert second.params["photo"] == first.result["photo"][-1]["file_id"]


async def test_settings_reach_the_image_backend_and_the_critic(
    telegram, openai_fake, bot, ana, ana_chat
) -> None:
    telegram.user_sends_text(ana_chat, ana, "/settings")
    menu = await next_text(telegram, ana_chat, "Settings for this chat")
    assert "Who may press" not in menu.plain  # a private chat has nobody else
    for label in ("Portrait", "High", "Español"):
        query = telegram.user_presses(ana_chat, ana, menu, label)
        assert "Saved" in await toast(telegram, query)
        menu = telegram.message(ana_chat["id"], menu.message_id)
    assert "✓ Portrait" in labels(menu)
    telegram.user_sends_text(ana_chat, ana, "/new espresso cup")
    await next_round(telegram, ana_chat, after=menu.message_id)
    request = openai_fake.requests_to("images")[-1].json
    assert (request["size"], request["quality"]) == ("1024x1280", "high")
    assert "'es'" in str(openai_fake.requests_to("chat")[-1].json)

    for label, size in (("Story", "864x1536"), ("Banner", "1536x864"), ("Square", "1024x1024")):
        telegram.user_presses(ana_chat, ana, menu, label)
        await telegram.wait_for(
            lambda label=label: (
                f"✓ {label}" in labels(telegram.message(ana_chat["id"], menu.message_id))
            )
        )
        last = telegram.last_message(ana_chat["id"])
        telegram.user_sends_text(ana_chat, ana, "/new espresso cup")
        await next_round(telegram, ana_chat, after=last.message_id)
        assert openai_fake.requests_to("images")[-1].json["size"] == size


async def test_format_presets_map_to_stability_aspect_ratios(
    telegram, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_backend="stability", image_format="story"))
    telegram.user_sends_text(ana_chat, ana, "/new espresso cup")
    round1 = await next_round(telegram, ana_chat)
    assert stability_fake.requests[-1].form["aspect_ratio"] == "9:16"
    telegram.user_sends_text(ana_chat, ana, "/settings")
    menu = await next_text(telegram, ana_chat, "Settings for this chat", after=round1.message_id)
    telegram.user_presses(ana_chat, ana, menu, "Banner")
    await telegram.wait_for(
        lambda: "✓ Banner" in labels(telegram.message(ana_chat["id"], menu.message_id))
    )
    telegram.user_presses(ana_chat, ana, round1, "Accept")
    await next_round(telegram, ana_chat, after=menu.message_id)
    assert stability_fake.requests[-1].form["aspect_ratio"] == "16:9"


async def test_critique_language_defaults_to_the_users_telegram_language(
    telegram, openai_fake, bots, make_settings
) -> None:
    await bots.start(make_settings(allowed_user_ids="*"))
    lucia = telegram.make_user(2024, "Lucía", language_code="es")
    chat = telegram.private_chat(lucia)
    telegram.user_sends_text(chat, lucia, "/new taza de cerámica")
    await next_round(telegram, chat)
    assert "'es'" in str(openai_fake.requests_to("chat")[-1].json)


async def test_commands_are_registered_for_private_chats_and_groups(telegram, bot) -> None:
    private = telegram.commands_for({"type": "all_private_chats"})
    groups = telegram.commands_for({"type": "all_group_chats"})
    assert {c["command"] for c in private} >= {"new", "history", "gallery", "settings", "usage"}
    assert {c["command"] for c in groups} >= {"new", "history", "gallery", "settings"}


async def test_a_long_sessions_contact_sheet_says_it_shows_the_last_30(
    telegram, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    from storage.records import DraftPlan
    from storage.store import Store
    from tests.fakes.pngs import solid_png

    store = await Store.open(data_dir / "refinebot.db")
    session = await store.sessions.create(
        ana_chat["id"], chat_type="private", thread_id=0, user_id=ana["id"], brief="teak tray"
    )
    for number in range(31):
        round = await store.rounds.create(
            session.id,
            parent_id=None,
            prompt=f"teak tray #{number}",
            action="brief",
            actor_id=ana["id"],
            actor_name="Ana",
            drafts=[DraftPlan(None)],
        )
        [draft] = await store.rounds.drafts(round.id)
        await store.save_draft_image(
            draft.id,
            data=solid_png(64, 64, (number * 8, 40, 90)),
            mime="image/png",
            width=64,
            height=64,
            usage=None,
            generate_ms=10,
            round_takes_it=True,
        )
        await store.rounds.keep_draft(round.id, draft.id, done=True)
    await store.close()
    await bots.start(make_settings())
    telegram.user_sends_text(ana_chat, ana, "/gallery")
    sheet = await telegram.wait_for(
        lambda: next((m for m in telegram.messages(ana_chat["id"]) if m.photo), None)
    )
    assert "the last 30 of 31 images" in sheet.plain

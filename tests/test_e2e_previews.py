"""Live previews, end to end: the openai backend streams (`stream=True`, `partial_images`),
the first partial image is the round's photo at once ("drawing…"), and the final image
replaces it in the same message (editMessageMedia) before the critique lands on it. Servers
that cannot stream are detected once; a preview that comes too late, a busy group, a refused
edit and IMAGE_PREVIEWS=0 each keep today's photo and buttons."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.fakes.pngs import prompt_of
from tests.helpers import next_round, next_text

BRIEF = "amber glass perfume bottle on wet slate"
GROUP_ID = -1009876543


def streamed(request) -> bool:
    """Whether an images or edits request asked for a streamed answer."""
    body = request.json if isinstance(request.json, dict) else request.form
    value = body.get("stream")
    value = value[-1] if isinstance(value, list) else value
    return str(value).lower() == "true"


def preview_before_final(telegram, openai_fake) -> None:
    """Make each stream's completed event wait until Telegram has every preview asked for so
    far: the order a real server's seconds between them give, without timing."""

    def previews_sent() -> int:
        return sum(
            "drawing…" in str(c.params.get("caption")) for c in telegram.calls_to("sendPhoto")
        )

    async def after_the_preview() -> None:
        streams = sum(streamed(r) for r in openai_fake.requests if r.endpoint != "chat")
        await telegram.wait_for(lambda: previews_sent() >= streams)

    openai_fake.before_completed = after_the_preview


def database(data_dir) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data_dir / 'refinebot.db'}?mode=ro", uri=True)


async def test_a_streamed_round_shows_the_picture_forming_in_one_message(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(image_previews=1))
    preview_before_final(telegram, openai_fake)
    brief = telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)

    # One message: the preview photo (the first partial image, no buttons), then the final
    # image put in its place, then the critique and the buttons on it.
    assert [m.message_id for m in telegram.messages(ana_chat["id"])] == [round1.message_id]
    assert round1.reply_to_message_id == brief["message_id"]
    first = round1.history[0]
    assert first["caption"] == "Round 1 · drawing…"
    assert "reply_markup" not in first
    [preview_call] = telegram.calls_to("sendPhoto")
    assert prompt_of(next(iter(preview_call.files.values()))) == f"partial 0: {BRIEF}"
    [media_call] = telegram.calls_to("editMessageMedia")
    assert media_call.params["message_id"] == round1.message_id
    assert telegram.calls.index(preview_call) < telegram.calls.index(media_call)
    assert prompt_of(round1.photo) == BRIEF
    assert "Round 1" in round1.plain and "/10" in round1.plain
    assert round1.flat_buttons[:3] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]

    # The API was asked for one partial image; the stream's completed event carried the usage.
    [request] = openai_fake.requests_to("images")
    assert request.json["stream"] is True and request.json["partial_images"] == 1
    with database(data_dir) as db:
        [units] = db.execute("SELECT units FROM usage WHERE kind = 'image'").fetchone()
        (images,) = db.execute("SELECT count(*) FROM images").fetchone()
    assert json.loads(units)["output_tokens"] > 0
    assert images == 1  # the preview is never stored

    # An edit of the round streams from the edits endpoint the same way.
    telegram.user_presses(ana_chat, ana, round1, "Edit")
    ask = await next_text(telegram, ana_chat, "Send", after=round1.message_id)
    telegram.user_sends_text(ana_chat, ana, "make the slate darker", reply_to=ask)
    round2 = await next_round(telegram, ana_chat, after=ask.message_id)
    assert streamed(openai_fake.requests_to("edits")[-1])
    assert round2.history[0]["caption"] == "Round 2 · drawing…"
    assert len(telegram.calls_to("editMessageMedia")) == 2


@pytest.mark.parametrize(
    "server",
    ["refuses stream", "refuses partial_images (LiteLLM)", "answers JSON"],
)
async def test_a_server_that_cannot_stream_is_asked_once(
    server, telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    if server == "refuses stream":
        openai_fake.image_refusals = {"stream": "openai"}
    elif server == "refuses partial_images (LiteLLM)":
        openai_fake.image_refusals = {"partial_images": "litellm"}
    else:
        openai_fake.ignores_stream = True
    await bots.start(make_settings(image_previews=1))

    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    telegram.user_presses(ana_chat, ana, round1, "Redraw")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)

    # Today's round each time: the photo, its caption edited into the critique.
    for number, shown in enumerate((round1, round2), start=1):
        assert [old["caption"] for old in shown.history] == [f"Round {number} · 🔍 critiquing…"]
        assert shown.flat_buttons[:3] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    assert telegram.calls_to("editMessageMedia") == []
    requests = openai_fake.requests_to("images")
    if server == "answers JSON":
        # The JSON answer's image was used (it was paid for); streaming is not asked again.
        assert [streamed(r) for r in requests] == [True, False]
    else:
        # One refusal, asked again without the stream, and never asked for one again.
        asked = [(r.status, streamed(r)) for r in requests]
        assert asked == [(400, True), (200, False), (200, False)]


async def test_a_preview_that_comes_after_the_final_image_is_dropped(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_previews=1))
    slow_upload = telegram.hold_next("sendPhoto")  # the preview: still on its way...
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)  # ...while the final goes out on its own
    assert prompt_of(round1.photo) == BRIEF
    assert telegram.calls_to("editMessageMedia") == []

    slow_upload.set()  # the preview lands after the final image: it is taken back
    late = await telegram.wait_for(
        lambda: [m for m in telegram.messages(ana_chat["id"]) if m.deleted], timeout=5
    )
    assert [m.caption for m in late] == ["<b>Round 1</b> · drawing…"]
    visible = telegram.messages(ana_chat["id"], include_deleted=False)
    assert [m.message_id for m in visible] == [round1.message_id]
    assert round1.flat_buttons[:3] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]


async def test_a_busy_group_gets_no_preview(
    telegram, openai_fake, bots, make_settings, ana
) -> None:
    await bots.start(make_settings(image_previews=1, allowed_chat_ids=str(GROUP_ID)))
    group = telegram.group_chat(GROUP_ID, "Shop team", supergroup=True)
    preview_before_final(telegram, openai_fake)

    # A quiet group sees the picture forming (3 of its 20 messages a minute)...
    telegram.user_sends_text(group, ana, f"/new@refine_test_bot {BRIEF}")
    round1 = await next_round(telegram, group)
    assert round1.history[0]["caption"] == "Round 1 · drawing…"
    openai_fake.before_completed = None  # round 2 will show no preview to wait for

    # ...but with 18 of them spent this minute, a preview would make the round's photo or
    # its critique wait: it is skipped, and the round goes out as today, without waiting.
    for _ in range(15):
        telegram.user_sends_text(group, ana, "/help@refine_test_bot")
    await telegram.wait_for(
        lambda: len([m for m in telegram.messages(GROUP_ID) if m.text is not None]) == 15
    )
    telegram.user_sends_text(group, ana, "/new@refine_test_bot a second perfume bottle")
    round2 = await next_round(telegram, group, after=round1.message_id)
    assert [old["caption"] for old in round2.history] == ["Round 1 · 🔍 critiquing…"]
    assert len(telegram.calls_to("editMessageMedia")) == 1  # round 1's only
    assert streamed(openai_fake.requests_to("images")[-1])  # asked; only the chat skipped it


async def test_a_refused_media_edit_sends_the_final_photo_as_today(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_previews=1))
    preview_before_final(telegram, openai_fake)
    telegram.fail_next("editMessageMedia", description="Bad Request: MEDIA_EMPTY")
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)

    # The final photo goes out anew with its critique and buttons; the preview is deleted.
    assert prompt_of(round1.photo) == BRIEF
    assert round1.flat_buttons[:3] == ["✅ Accept", "✏️ Edit", "⏹ Stop"]
    [preview] = [m for m in telegram.messages(ana_chat["id"]) if m.deleted]
    assert preview.caption == "<b>Round 1</b> · drawing…"
    assert preview.message_id < round1.message_id


async def test_previews_off_and_stability_keep_the_chat_action(
    telegram, openai_fake, stability_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_previews=0))
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    round1 = await next_round(telegram, ana_chat)
    assert not streamed(openai_fake.requests_to("images")[-1])
    assert "partial_images" not in openai_fake.requests_to("images")[-1].json
    assert [old["caption"] for old in round1.history] == ["Round 1 · 🔍 critiquing…"]
    await bots.stop_all()

    # Stability cannot stream: "sending a photo…" while it draws, then today's photo.
    await bots.start(make_settings(image_backend="stability", image_previews=1))
    actions_before = len(telegram.chat_actions)
    telegram.user_sends_text(ana_chat, ana, "/new a second perfume bottle")
    round2 = await next_round(telegram, ana_chat, after=round1.message_id)
    assert [old["caption"] for old in round2.history] == ["Round 1 · 🔍 critiquing…"]
    later = telegram.chat_actions[actions_before:]
    assert any(action == "upload_photo" for _, action, _ in later)
    assert telegram.calls_to("editMessageMedia") == []


async def test_a_stream_the_bot_cannot_read_is_not_asked_for_again(
    telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    await bots.start(make_settings(image_previews=1))
    openai_fake.stream_ends_early = True  # partial images, but never the completed event
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    failed = await telegram.wait_for(
        lambda: next(
            (m for m in telegram.messages(ana_chat["id"]) if "Retry" in str(m.buttons)), None
        )
    )
    telegram.user_presses(ana_chat, ana, failed, "Retry")
    round1 = await next_round(telegram, ana_chat, after=failed.message_id)
    assert prompt_of(round1.photo) == BRIEF
    assert [streamed(r) for r in openai_fake.requests_to("images")] == [True, False]
    # The failed round's preview, if it got out, did not stay behind as "drawing…".
    await telegram.wait_for(
        lambda: (
            not [
                m
                for m in telegram.messages(ana_chat["id"], include_deleted=False)
                if "drawing" in (m.caption or "")
            ]
        )
    )


async def test_a_chat_that_blocks_the_bot_at_its_preview_gets_nothing_more(
    telegram, openai_fake, bots, make_settings, ana, ana_chat, data_dir
) -> None:
    await bots.start(make_settings(image_previews=1))
    preview_before_final(telegram, openai_fake)
    telegram.fail_next("sendPhoto", error_code=403)  # the preview meets a blocked bot
    telegram.user_sends_text(ana_chat, ana, BRIEF)
    await telegram.wait_for(lambda: telegram.calls_to("sendPhoto"))
    await telegram.wait_for(
        lambda: (
            database(data_dir).execute("SELECT status FROM rounds").fetchall()
            in ([("done",)], [("cancelled",)])
        )
    )
    [preview] = telegram.calls_to("sendPhoto")  # the final image is not sent to it
    assert "drawing…" in str(preview.params.get("caption")) and not preview.ok
    after = [c for c in telegram.calls if c.at > preview.at and c.method != "getUpdates"]
    assert after == []  # no photo, no caption edit, no chat action

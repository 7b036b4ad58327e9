"""Prove `FakeTelegram` speaks the Bot API well enough for the real python-telegram-bot.

Everything here goes through PTB's own HTTP stack (``telegram.Bot`` / ``Application``), so a
wire-format mismatch between the fake and PTB shows up as a failing test.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager

import pytest
from telegram import (
    Bot,
    BotCommand,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)
from telegram.request import HTTPXRequest

from tests.fakes.pngs import image_size, solid_png
from tests.fakes.telegram_server import (
    CAPTION_TOO_LONG,
    MAX_CAPTION_LENGTH,
    MAX_TEXT_LENGTH,
    NOT_MODIFIED,
    TEXT_TOO_LONG,
    EntityParseError,
    FakeTelegram,
    parse_html,
    parse_markdown,
    utf16_len,
)

TOKEN = "123456:TEST-TOKEN"


def bad_request(fragment: str) -> AbstractContextManager[pytest.ExceptionInfo[BadRequest]]:
    """Expect a BadRequest containing ``fragment``.

    Case-insensitive: PTB strips "Bad Request: " and applies ``str.capitalize()`` to the rest,
    so "BUTTON_DATA_INVALID" arrives as "Button_data_invalid".
    """
    return pytest.raises(BadRequest, match="(?i)" + re.escape(fragment))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="refine_test_bot") as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as client:
        yield client


@pytest.fixture
def ana(fake: FakeTelegram) -> dict:
    return fake.make_user(1001, "Ana", username="ana", language_code="en")


@pytest.fixture
def chat(fake: FakeTelegram, ana: dict) -> dict:
    return fake.private_chat(ana)


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data)] for text, data in pairs]
    )


# --- pure parsing ------------------------------------------------------------------------


def test_parse_html_entities_and_offsets() -> None:
    plain, entities = parse_html(
        '<b>bold</b> &lt;x&gt; <a href="https://e.x/?a=1&amp;b=2">🙂 link</a>'
    )
    assert plain == "bold <x> 🙂 link"
    assert entities == [
        {"offset": 0, "length": 4, "type": "bold"},
        {"offset": 9, "length": 7, "type": "text_link", "url": "https://e.x/?a=1&b=2"},
    ]  # the emoji is two UTF-16 code units
    plain, entities = parse_html('<pre><code class="language-py">x = 1</code></pre>')
    assert entities == [{"offset": 0, "length": 5, "type": "pre", "language": "py"}]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("fish & chips", 'Character "&" at byte offset 5 must be escaped as "&amp;"'),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_parse_html_errors(source: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_html(source)
    assert str(info.value) == error


def test_parse_markdown_v2() -> None:
    plain, entities = parse_markdown(r"*bold* and \. [link](https://e.x)")
    assert plain == "bold and . link"
    assert [e["type"] for e in entities] == ["bold", "text_link"]
    with pytest.raises(EntityParseError, match=r"Character '\.' is reserved"):
        parse_markdown("end.")


# --- telegram.Bot against the fake --------------------------------------------------------


async def test_get_me_and_unknown_things(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "refine_test_bot", True)
    assert me.can_read_all_group_messages is False
    with bad_request("chat not found"):
        await bot.send_message(424242, "hi")
    wrong = Bot("999:WRONG", base_url=fake.base_url)
    with pytest.raises(InvalidToken, match="was rejected by the server"):
        await wrong.initialize()  # getMe answered 401 Unauthorized
    await wrong.shutdown()
    assert fake.calls[-1].error == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    with pytest.raises(EndPointNotFound):  # PTB's mapping of 404 "Not Found: method not found"
        await bot.do_api_request("noSuchMethod")
    assert fake.calls[-1].description == "Not Found: method not found"
    fake.stub("getFancyThing", {"fancy": True})
    assert await bot.do_api_request("getFancyThing") == {"fancy": True}


async def test_send_message_html_keyboard_and_edits(
    fake: FakeTelegram, bot: Bot, chat: dict
) -> None:
    sent = await bot.send_message(
        chat["id"],
        "<b>Round 1</b> &amp; more",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(("✅ Accept", "acc:1"), ("✏️ Edit", "edit:1")),
    )
    assert sent.text == "Round 1 & more"  # Telegram returns plain text plus entities
    assert sent.text_html == "<b>Round 1</b> &amp; more"
    assert sent.reply_markup is not None
    stored = fake.message(chat, sent.message_id)
    assert stored.text == "<b>Round 1</b> &amp; more" and stored.parse_mode == "HTML"
    assert stored.buttons == [["✅ Accept"], ["✏️ Edit"]]
    assert stored.button_data == [["acc:1"], ["edit:1"]]
    assert fake.last_message(chat) is stored

    same = keyboard(("✅ Accept", "acc:1"), ("✏️ Edit", "edit:1"))
    with pytest.raises(BadRequest) as info:
        await bot.edit_message_text(
            "<strong>Round 1</strong> &amp; more",
            chat_id=chat["id"],
            message_id=sent.message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=same,
        )
    assert info.value.message == NOT_MODIFIED.removeprefix("Bad Request: ").capitalize()
    # Like Telegram: an edit without reply_markup drops the keyboard.
    await bot.edit_message_text("Done", chat_id=chat["id"], message_id=sent.message_id)
    assert stored.buttons == [] and stored.edits == 1 and stored.content == "Done"

    with bad_request("can't parse entities: Unsupported start tag"):
        await bot.send_message(chat["id"], "<blink>x</blink>", parse_mode=ParseMode.HTML)
    with bad_request("message text is empty"):
        await bot.send_message(chat["id"], "<b> </b>", parse_mode=ParseMode.HTML)
    with bad_request("message is too long"):
        await bot.send_message(chat["id"], "x" * 4097)
    with bad_request("BUTTON_DATA_INVALID"):
        await bot.send_message(chat["id"], "hi", reply_markup=keyboard(("Go", "é" * 33)))
    await bot.send_message(chat["id"], "ok", reply_markup=keyboard(("Go", "é" * 32)))

    forum = fake.group_chat(-100777, "Studio", forum=True)
    topic_post = fake.user_sends_text(forum, fake.users[1001], "/new", thread_id=42)
    in_topic = await bot.send_message(
        forum["id"],
        "in topic",
        message_thread_id=42,
        reply_parameters=ReplyParameters(topic_post["message_id"]),
    )
    assert in_topic.message_thread_id == 42 and in_topic.is_topic_message
    assert in_topic.reply_to_message is not None
    assert in_topic.reply_to_message.message_id == topic_post["message_id"]
    assert fake.last_message(forum).thread_id == 42  # type: ignore[union-attr]
    with bad_request("message to be replied not found"):
        await bot.send_message(forum["id"], "x", reply_parameters=ReplyParameters(999))

    await bot.delete_message(chat["id"], sent.message_id)
    assert stored.deleted
    with bad_request("message to delete not found"):
        await bot.delete_message(chat["id"], sent.message_id)
    with bad_request("message to edit not found"):
        await bot.edit_message_text("again", chat_id=chat["id"], message_id=sent.message_id)


async def test_photos_documents_and_captions(fake: FakeTelegram, bot: Bot, chat: dict) -> None:
    png = solid_png(1000, 500)
    photo = await bot.send_photo(
        chat["id"],
        png,
        caption="<i>v1</i>",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(("Accept", "acc")),
        message_thread_id=None,
    )
    assert [(p.width, p.height) for p in photo.photo] == [
        (90, 45),
        (320, 160),
        (800, 400),
        (1000, 500),
    ]
    assert len({p.file_unique_id for p in photo.photo}) == 4
    assert photo.caption == "v1" and photo.caption_entities[0].type == "italic"
    stored = fake.message(chat, photo.message_id)
    assert stored.photo == png and stored.kind == "photo"
    largest = await (await bot.get_file(photo.photo[-1].file_id)).download_as_bytearray()
    assert bytes(largest) == png
    thumb = await (await bot.get_file(photo.photo[0].file_id)).download_as_bytearray()
    assert image_size(bytes(thumb)) == (90, 45)

    # Re-sending by file_id reuses the stored photo.
    again = await bot.send_photo(chat["id"], photo.photo[-1].file_id)
    assert fake.message(chat, again.message_id).photo == png

    with pytest.raises(BadRequest) as info:
        await bot.edit_message_caption(
            chat_id=chat["id"],
            message_id=photo.message_id,
            caption="<i>v1</i>",
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(("Accept", "acc")),
        )
    assert info.value.message.startswith("Message is not modified")
    await bot.edit_message_caption(chat_id=chat["id"], message_id=photo.message_id, caption="v2")
    assert stored.caption == "v2" and stored.reply_markup is None

    # 1024 characters after parsing is fine even though the HTML source is longer.
    await bot.send_photo(chat["id"], png, caption="&lt;" * 1024, parse_mode=ParseMode.HTML)
    with bad_request("message caption is too long"):
        await bot.send_photo(
            chat["id"], png, caption="<b>" + "x" * 1025 + "</b>", parse_mode="HTML"
        )
    with bad_request("IMAGE_PROCESS_FAILED"):
        await bot.send_photo(chat["id"], b"definitely not an image")

    doc = await bot.send_document(
        chat["id"], b"%PDF-1.4 fake", filename="brief.pdf", caption="spec"
    )
    assert doc.document is not None
    assert (doc.document.file_name, doc.document.mime_type) == ("brief.pdf", "application/pdf")
    stored_doc = fake.message(chat, doc.message_id)
    assert stored_doc.document == b"%PDF-1.4 fake" and stored_doc.file_name == "brief.pdf"

    group = await bot.send_media_group(
        chat["id"], [InputMediaPhoto(png, caption="a"), InputMediaPhoto(solid_png(64, 64))]
    )
    assert len(group) == 2 and group[0].media_group_id == group[1].media_group_id
    assert fake.message(chat, group[1].message_id).photo == solid_png(64, 64)

    uploads = fake.calls_to("sendPhoto")[0]
    assert set(uploads.files) == {"photo"}  # PTB uploads the photo as the form field "photo"


async def test_edit_message_media_follows_telegrams_rules(
    fake: FakeTelegram, bot: Bot, chat: dict
) -> None:
    first, second = solid_png(64, 64, (200, 10, 10)), solid_png(64, 64, (10, 200, 10))
    photo = await bot.send_photo(chat["id"], first, caption="drawing")
    stored = fake.message(chat, photo.message_id)

    # The same message takes a new upload and caption; no reply_markup drops the keyboard.
    edited = await bot.edit_message_media(
        InputMediaPhoto(second, caption="<b>final</b>", parse_mode=ParseMode.HTML),
        chat_id=chat["id"],
        message_id=photo.message_id,
        reply_markup=keyboard(("Accept", "acc")),
    )
    assert edited.message_id == photo.message_id and edited.caption == "final"
    assert stored.photo == second and stored.edits == 1
    assert stored.history[0]["caption"] == "drawing"
    assert edited.photo[-1].file_id != photo.photo[-1].file_id

    # The same file and caption again: not modified. A caption over 1024 UTF-16 units: refused.
    with bad_request("message is not modified"):
        await bot.edit_message_media(
            InputMediaPhoto(edited.photo[-1].file_id, caption="<b>final</b>", parse_mode="HTML"),
            chat_id=chat["id"],
            message_id=photo.message_id,
            reply_markup=keyboard(("Accept", "acc")),
        )
    with bad_request("message caption is too long"):
        await bot.edit_message_media(
            InputMediaPhoto(first, caption=GRIN * 513),
            chat_id=chat["id"],
            message_id=photo.message_id,
        )
    # Another chat's message id, a text message, a user's message: refused.
    with bad_request("message to edit not found"):
        await bot.edit_message_media(
            InputMediaPhoto(first), chat_id=chat["id"], message_id=photo.message_id + 50
        )
    text = await bot.send_message(chat["id"], "hello")
    with bad_request("there is no media in the message to edit"):
        await bot.edit_message_media(
            InputMediaPhoto(first), chat_id=chat["id"], message_id=text.message_id
        )
    # A photo message may become a document; a photo album's photo may not.
    await bot.edit_message_media(
        InputMediaDocument(b"%PDF-1.4 fake", filename="a.pdf"),
        chat_id=chat["id"],
        message_id=photo.message_id,
    )
    assert stored.kind == "document" and stored.caption is None
    album = await bot.send_media_group(
        chat["id"], [InputMediaPhoto(first), InputMediaPhoto(second)]
    )
    with bad_request("MEDIA_GROUPED_INVALID"):
        await bot.edit_message_media(
            InputMediaDocument(b"%PDF-1.4 fake", filename="a.pdf"),
            chat_id=chat["id"],
            message_id=album[0].message_id,
        )
    await bot.edit_message_media(
        InputMediaPhoto(solid_png(32, 32)), chat_id=chat["id"], message_id=album[0].message_id
    )


async def test_a_held_call_waits_for_its_release(fake: FakeTelegram, chat: dict) -> None:
    pool = HTTPXRequest(connection_pool_size=2)  # two calls at once
    async with Bot(TOKEN, base_url=fake.base_url, request=pool) as bot:
        release = fake.hold_next("sendMessage")
        sending = asyncio.create_task(bot.send_message(chat["id"], "held"))
        other = await bot.send_photo(chat["id"], solid_png(8, 8))  # other methods go through
        assert not sending.done() and fake.messages(chat)[0].message_id == other.message_id
        release.set()
        held = await sending
        assert held.message_id > other.message_id and held.text == "held"


GRIN = "😀"  # one Python character, two UTF-16 code units


async def test_length_limits_count_utf16_units_of_the_parsed_text(
    fake: FakeTelegram, bot: Bot, chat: dict
) -> None:
    """Text 4096 and caption 1024 "after entities parsing", in UTF-16 code units (the unit of
    entity offsets): 😀 counts 2, a flag 4, 中 1, `&amp;` 1, tags 0; refused with the Bot
    API's own texts."""
    png = solid_png(16, 16)
    assert utf16_len("🇫🇷中&") == 6
    # At the limit: fine, however long the HTML source.
    text = await bot.send_message(chat["id"], f"<b>{GRIN * 2048}</b>", parse_mode="HTML")
    photo = await bot.send_photo(chat["id"], png, caption="&amp;" * 1022 + GRIN, parse_mode="HTML")
    await bot.send_photo(chat["id"], png, caption=f"<i>{GRIN * 512}</i>", parse_mode="HTML")
    await bot.send_document(chat["id"], b"%PDF-1.4", filename="a.pdf", caption="中" * 1024)
    # One code unit more: refused, though Python's len() (code points) is well below.
    over_text = GRIN * 2048 + "x"
    over_caption = "🇫🇷" * 256 + "x"
    assert len(over_text) < MAX_TEXT_LENGTH and len(over_caption) < MAX_CAPTION_LENGTH
    calls = {
        "sendMessage": lambda: bot.send_message(chat["id"], over_text),
        "editMessageText": lambda: bot.edit_message_text(
            over_text, chat_id=chat["id"], message_id=text.message_id
        ),
        "sendPhoto": lambda: bot.send_photo(chat["id"], png, caption=over_caption),
        "editMessageCaption": lambda: bot.edit_message_caption(
            chat_id=chat["id"], message_id=photo.message_id, caption=over_caption
        ),
        "sendDocument": lambda: bot.send_document(
            chat["id"], b"%PDF-1.4", filename="a.pdf", caption=f"<b>{over_caption}</b>"
        ),
        "sendMediaGroup": lambda: bot.send_media_group(
            chat["id"], [InputMediaPhoto(png, caption=over_caption), InputMediaPhoto(png)]
        ),
    }
    for method, call in calls.items():
        expected = (
            TEXT_TOO_LONG if method in ("sendMessage", "editMessageText") else (CAPTION_TOO_LONG)
        )
        with bad_request(expected.removeprefix("Bad Request: ")):
            await call()
        assert fake.calls_to(method)[-1].description == expected
    # Nothing was changed by the refused edits.
    assert fake.message(chat, text.message_id).edits == 0
    assert fake.message(chat, photo.message_id).edits == 0


async def test_a_refusal_as_too_long_can_be_injected(
    fake: FakeTelegram, bot: Bot, chat: dict
) -> None:
    photo = await bot.send_photo(chat["id"], solid_png(8, 8), caption="critiquing…")
    fake.fail_next("editMessageCaption", description=CAPTION_TOO_LONG)
    with bad_request("message caption is too long"):
        await bot.edit_message_caption(
            chat_id=chat["id"], message_id=photo.message_id, caption="ok"
        )
    await bot.edit_message_caption(chat_id=chat["id"], message_id=photo.message_id, caption="ok")
    assert fake.message(chat, photo.message_id).plain == "ok"


async def test_user_photo_download_and_callbacks(
    fake: FakeTelegram, bot: Bot, ana: dict, chat: dict
) -> None:
    png = solid_png(300, 200, (10, 200, 30))
    sent = fake.user_sends_photo(chat, ana, png, caption="my product")
    assert sent["photo"][-1]["width"] == 300
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message is not None and updates[0].message.caption == "my product"
    file = await bot.get_file(updates[0].message.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == png

    offer = await bot.send_message(
        chat["id"], "Pick", reply_markup=keyboard(("✅ Accept", "acc:7"))
    )
    query_id = fake.user_presses(chat, ana, offer.message_id, "Accept")
    updates = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    query = updates[0].callback_query
    assert query is not None and query.data == "acc:7" and query.id == query_id
    assert query.message is not None and query.message.message_id == offer.message_id
    assert await bot.answer_callback_query(query_id, text="Saved")
    assert fake.callback_answers[query_id] == {"text": "Saved"}
    with bad_request("query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(AssertionError, match="Accept"):
        fake.user_presses(chat, ana, offer.message_id, "Reject")

    fake.callback_query_ttl = 0.0
    stale = fake.user_presses_data(chat, ana, offer.message_id, "forged:999")
    with bad_request("query is too old"):
        await bot.answer_callback_query(stale)


# PTB's own RetryAfter.__init__ reads its deprecated int-valued ``retry_after``.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_fault_injection_and_latency(fake: FakeTelegram, bot: Bot, chat: dict) -> None:
    fake.fail_next("sendMessage", error_code=429, retry_after=3)
    with pytest.raises(RetryAfter, match="Flood control exceeded"):
        await bot.send_message(chat["id"], "hi")
    assert fake.calls[-1].error == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    fake.fail_next("sendMessage", error_code=403)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(chat["id"], "hi")
    fake.fail_next("sendPhoto", description="Bad Request: custom", count=2)
    for _ in range(2):
        with bad_request("custom"):
            await bot.send_photo(chat["id"], solid_png(8, 8))
    await bot.send_message(chat["id"], "through")
    assert [c.ok for c in fake.calls_to("sendMessage")] == [False, False, True]

    fake.latency = 0.1
    started = time.monotonic()
    await bot.send_chat_action(chat["id"], "typing")
    assert time.monotonic() - started >= 0.1
    assert fake.chat_actions[-1][:2] == (chat["id"], "typing")

    await bot.set_my_commands([BotCommand("new", "Start a new product")])
    assert fake.commands == {
        '{"type":"default"}': [{"command": "new", "description": "Start a new product"}]
    }
    assert [c.command for c in await bot.get_my_commands()] == ["new"]


async def test_long_poll_wakes_promptly_and_offsets(
    fake: FakeTelegram, bot: Bot, ana: dict, chat: dict
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    fake.user_sends_text(chat, ana, "/new@refine_test_bot red saree")
    updates = await poll
    assert time.monotonic() - started < 1.0
    message = updates[0].message
    assert message is not None and message.text == "/new@refine_test_bot red saree"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 20
    # Not confirmed yet: delivered again; confirmed by offset: gone.
    assert len(await bot.get_updates(timeout=0)) == 1
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()

    group = fake.group_chat(-1001234, "Team")
    fake.user_sends_text(group, ana, "chatter the bot must not see (privacy mode)")
    fake.user_sends_text(group, ana, "/new@other_bot")
    cmd = fake.user_sends_text(group, ana, "/new")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.message_id for u in updates if u.message] == [cmd["message_id"]]

    await bot.send_message(chat["id"], "some text")
    with pytest.raises(AssertionError, match="sendMessage \\[ok\\] chat_id=1001 text='some text'"):
        await fake.wait_for(lambda: fake.messages(chat)[5], timeout=0.2)

    # A pending long poll must not hold up server shutdown.
    poll = asyncio.create_task(bot.get_updates(offset=updates[-1].update_id + 1, timeout=30))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await fake.stop()
    assert await poll == () and time.monotonic() - started < 1.0


# --- a real Application ------------------------------------------------------------------


async def test_application_end_to_end(fake: FakeTelegram, ana: dict, chat: dict) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_html(
            "Hello <b>Ana</b>", reply_markup=keyboard(("Accept", "acc:1")), do_quote=True
        )

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Accepted!")
        await query.edit_message_text("Accepted.", reply_markup=None)

    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Describe it", reply_markup=ForceReply())

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("ask", ask))
    app.add_handler(CallbackQueryHandler(button))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=1, poll_interval=0)
    try:
        sent = fake.user_sends_text(chat, ana, "/start")
        reply = await fake.wait_for(lambda: fake.last_message(chat), timeout=5)
        assert reply.plain == "Hello Ana" and reply.buttons == [["Accept"]]
        assert reply.reply_to_message_id == sent["message_id"]  # sent as reply_parameters

        query_id = fake.user_presses(chat, ana, reply.message_id, "Accept")
        answer = await fake.wait_for(lambda: fake.callback_answers.get(query_id), timeout=5)
        assert answer == {"text": "Accepted!"}
        await fake.wait_for(lambda: reply.edits == 1, timeout=5)
        assert reply.content == "Accepted." and reply.buttons == []

        fake.user_sends_text(chat, ana, "/ask")
        ask_msg = await fake.wait_for(
            lambda: (m := fake.last_message(chat)) and m.text == "Describe it" and m, timeout=5
        )
        assert ask_msg.reply_markup == {"force_reply": True}
    finally:
        stop_started = time.monotonic()
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert time.monotonic() - stop_started < 2.0
    assert fake.pending_updates == []  # the final getUpdates confirmed everything

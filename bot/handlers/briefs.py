"""What a user asks the bot to draw: `/new <brief>`, `/auto [rounds] [brief]`, a text message
(a brief in a private chat, `@bot brief` in a group, a reply to an Edit prompt or to a round's
photo), a product photo with a caption (an album is one brief), and /cancel to take it back.

Each handler only begins a round or an autopilot run (checks, quota, a pending row); the
round itself runs as a background task (bot/chat/launch.py).
A product photo is checked and normalised in bot/images.py (size, decoding, animation,
bombs, HEIC); anything unusable gets one clear sentence, and nothing is paid for.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque

from telegram import Message, MessageEntity, Update
from telegram.error import TelegramError

from bot.chat.context import BotContext
from bot.chat.launch import launch
from bot.chat.updates import actor_of, argument_text, is_group, message_of, reply, scope_of
from bot.images import InvalidImage, ReferencePhoto, prepare_reference
from bot.refine.errors import RefineError
from bot.refine.models import Actor, Scope
from bot.ui.help import NEW_USAGE, PHOTO_NEEDS_CAPTION
from bot.ui.refusals import PHOTO_DOWNLOAD_FAILED, photo_refusal_text, refusal_text
from bot.ui.rounds import EDIT_CANCELLED, NOTHING_TO_CANCEL

log = logging.getLogger(__name__)

ALBUMS_REMEMBERED = 16
"""Albums per chat whose first photo is remembered as answered."""

_CAPTION_COMMAND = re.compile(r"^/(new|auto)(?:@(\w+))?(?:\s+|$)", re.IGNORECASE)


# --- /new, /auto, /cancel -------------------------------------------------------------------


async def new_command(update: Update, context: BotContext) -> None:
    """`/new <brief>`: a new session from the brief (without one, how to use /new)."""
    message = message_of(update)
    brief = argument_text(message.text)
    if not brief:
        await reply(message, NEW_USAGE)
        return
    await _start_brief(update, context, brief)


def parse_auto_arguments(text: str) -> tuple[int | None, str]:
    """Return (rounds, brief) from `/auto` arguments: `3`, `3 red saree`, `red saree`, or ''.

    A first word made of digits is the number of rounds; the rest is a brief.
    """
    first, _space, rest = text.strip().partition(" ")
    if first.isascii() and first.isdigit():
        return int(first), rest.strip()
    return None, text.strip()


async def auto_command(update: Update, context: BotContext) -> None:
    """`/auto [rounds] [brief]`: with a brief, a new session on autopilot; without, the
    autopilot continues from the newest finished round of the chat's newest session."""
    message = message_of(update)
    rounds, brief = parse_auto_arguments(argument_text(message.text))
    refine = context.services.refine
    scope, actor = scope_of(update), actor_of(update)
    try:
        if brief:
            await refine.take_edit(scope, actor)
            pending = await refine.begin_autopilot(scope, actor, brief=brief, rounds=rounds)
        else:
            latest = await context.services.history.latest_round(scope)
            pending = await refine.begin_autopilot(scope, actor, round_id=latest.id, rounds=rounds)
    except RefineError as error:
        await reply(message, refusal_text(error))
        return
    launch(update, context, pending, asked_by=message)


async def cancel_command(update: Update, context: BotContext) -> None:
    """/cancel: stop the scope's running round or autopilot, else drop a pending Edit."""
    message = message_of(update)
    refine = context.services.refine
    scope, actor = scope_of(update), actor_of(update)
    try:
        cancelled = await refine.cancel(scope, actor)
    except RefineError as error:
        await reply(message, refusal_text(error))
        return
    dropped_edit = await refine.take_edit(scope, actor)
    if cancelled:
        return  # the round's own message says it was cancelled
    await reply(message, EDIT_CANCELLED if dropped_edit else NOTHING_TO_CANCEL)


async def _start_brief(update: Update, context: BotContext, brief: str) -> None:
    """Start a new session from the brief in the update's chat, dropping a pending edit."""
    await context.services.refine.take_edit(scope_of(update), actor_of(update))
    await _begin_brief(update, context, brief)


async def _begin_brief(update: Update, context: BotContext, brief: str) -> None:
    """Start a new session from the brief in the update's chat (a refusal is the reply)."""
    message = message_of(update)
    try:
        pending = await context.services.refine.begin_start(
            scope_of(update), actor_of(update), brief
        )
    except RefineError as error:
        await reply(message, refusal_text(error))
        return
    launch(update, context, pending, asked_by=message)


# --- text messages --------------------------------------------------------------------------


async def text_message(update: Update, context: BotContext) -> None:
    """A text message: an Edit, a new brief, or (group chatter) nothing.

    - A reply to the bot's edit prompt, or to one of its round photos, edits that round.
    - In a private chat any other text is a new brief.
    - In a group, a message that mentions the bot (`@bot brief`) is a new brief; all other
      chatter is ignored.
    """
    message = message_of(update)
    scope, actor = scope_of(update), actor_of(update)
    replied = message.reply_to_message
    if (
        replied is not None
        and replied.from_user is not None
        and replied.from_user.id == context.bot.id
    ):
        round_id = await _round_to_edit(context, scope, actor, replied.message_id)
        if round_id is not None:
            await _edit(update, context, round_id)
            return
    if not scope.is_group:
        edit = await context.services.refine.take_edit(scope, actor)
        if edit is not None:
            await _edit(update, context, edit.round_id)
        else:  # the pending edit, if any, is taken already
            await _begin_brief(update, context, message.text or "")
        return
    brief = mentioned_brief(message, context.bot.username)
    if brief is not None:
        await _start_brief(update, context, brief)


async def _round_to_edit(
    context: BotContext, scope: Scope, actor: Actor, replied_id: int
) -> int | None:
    """Return the round a reply to the bot's message edits: its edit prompt's, or its photo's."""
    edit = await context.services.refine.take_edit(scope, actor, reply_to=replied_id)
    if edit is not None:
        return edit.round_id
    round = await context.services.history.round_shown_by(scope, replied_id)
    return round.id if round is not None else None


async def _edit(update: Update, context: BotContext, round_id: int) -> None:
    """Begin the round that edits `round_id` with the message's text as its prompt."""
    message = message_of(update)
    try:
        pending = await context.services.refine.begin_edit(
            round_id, scope_of(update), actor_of(update), message.text or ""
        )
    except RefineError as error:
        await reply(message, refusal_text(error))
        return
    launch(update, context, pending, asked_by=message)


def mentioned_brief(message: Message, bot_username: str) -> str | None:
    """Return the brief of a message that mentions the bot (the text without the mention),
    or None if the bot is not mentioned."""
    text = message.text or ""
    mention = f"@{bot_username}".lower()
    # parse_entities maps Telegram's UTF-16 offsets to the mention's text.
    for value in message.parse_entities([MessageEntity.MENTION]).values():
        if value.lower() == mention:
            start = text.find(value)
            return (text[:start] + text[start + len(value) :]).strip()
    return None


# --- product photos -------------------------------------------------------------------------


def caption_command(caption: str, bot_username: str) -> tuple[str | None, str]:
    """Return (`new`/`auto` or None, the rest) for a caption that may start with a command;
    ("other", caption) for a command addressed to another bot (`/new@other_bot`)."""
    match = _CAPTION_COMMAND.match(caption.strip())
    if match is None:
        return None, caption.strip()
    addressee = match.group(2)
    if addressee is not None and addressee.lower() != bot_username.lower():
        return "other", caption.strip()
    return match.group(1).lower(), caption.strip()[match.end() :].strip()


async def photo_message(update: Update, context: BotContext) -> None:
    """A product photo with a caption: check it, then start a round (or an autopilot run).

    A caption starting with /auto runs the autopilot. In groups only a caption starting with
    /new or /auto counts; other photos are chatter.
    """
    message = message_of(update)
    command, caption = caption_command(message.caption or "", context.bot.username)
    if command == "other" or (is_group(update.effective_chat) and command is None):
        return
    if _album_answered(context, message):
        return
    rounds = None
    if command == "auto":
        rounds, caption = parse_auto_arguments(caption)
    if not caption:
        await reply(message, PHOTO_NEEDS_CAPTION)
        return
    reference = await _reference_or_refusal(context, message)
    if reference is None:
        return
    refine = context.services.refine
    scope, actor = scope_of(update), actor_of(update)
    await refine.take_edit(scope, actor)
    try:
        if command == "auto":
            pending = await refine.begin_autopilot(
                scope, actor, brief=caption, reference=reference, rounds=rounds
            )
            launch(update, context, pending, asked_by=message)
            return
        round_pending = await refine.begin_start(scope, actor, caption, reference=reference)
    except RefineError as error:
        await reply(message, refusal_text(error))
        return
    launch(update, context, round_pending, asked_by=message)


def _album_answered(context: BotContext, message: Message) -> bool:
    """Return whether the photo belongs to an album whose first photo was already answered,
    and remember this one's album: an album is one brief (its caption rides on one photo), so
    its other photos get neither a second round nor a request for a caption each."""
    album = message.media_group_id
    if album is None or context.chat_data is None:
        return False
    answered: deque[str] = context.chat_data.setdefault(
        "albums_answered", deque(maxlen=ALBUMS_REMEMBERED)
    )
    if album in answered:
        return True
    answered.append(album)
    return False


async def _reference_or_refusal(context: BotContext, message: Message) -> ReferencePhoto | None:
    """Return the message's photo checked and normalised, or None once the reason it can't
    be used (or could not be downloaded) is the reply."""
    settings = context.services.settings
    try:
        return await _download_reference(
            context, message, int(settings.max_upload_mb * 1024 * 1024)
        )
    except InvalidImage as error:
        log.info("photo refused (%s): %s", error.reason, error)
        await reply(message, photo_refusal_text(error.reason, settings.max_upload_mb))
    except TelegramError as error:
        log.warning("could not download a photo: %s", error)
        await reply(message, PHOTO_DOWNLOAD_FAILED)
    return None


async def _download_reference(
    context: BotContext, message: Message, max_bytes: int
) -> ReferencePhoto:
    """Download the message's photo or image file and return it checked and normalised.

    Files Telegram says are too big are refused before downloading anything.
    """
    attachment = message.photo[-1] if message.photo else message.document
    if attachment is None:
        raise InvalidImage("no photo in the message", "unsupported")
    if attachment.file_size and attachment.file_size > max_bytes:
        raise InvalidImage(f"file of {attachment.file_size} bytes", "file_too_big")
    try:
        file = await context.bot.get_file(attachment.file_id)
    except TelegramError as error:
        if "too big" in str(error).lower():  # over the Bot API's download limit (20 MB)
            raise InvalidImage(str(error), "file_too_big") from error
        raise
    if file.file_size and file.file_size > max_bytes:
        raise InvalidImage(f"file of {file.file_size} bytes", "file_too_big")
    data = bytes(await file.download_as_bytearray())
    return await asyncio.to_thread(prepare_reference, data, max_bytes)

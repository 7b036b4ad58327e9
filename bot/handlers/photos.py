"""Product photos: a photo (or an image file) with a caption brief starts a session that keeps
the real product and changes the scene. A caption starting with /auto runs the autopilot.

The photo is checked and normalised in bot/images.py (size, decoding, animation, bombs,
HEIC); anything unusable gets one clear sentence, and nothing is paid for.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import views
from bot.handlers.auto import launch_autopilot, parse_auto_arguments
from bot.handlers.common import actor_of, is_group, reply, scope_of, services
from bot.handlers.rounds import launch_round
from bot.images import InvalidImage, ReferencePhoto, prepare_reference
from bot.refine.errors import RefineError

log = logging.getLogger(__name__)

_COMMAND = re.compile(r"^/(new|auto)(?:@(\w+))?(?:\s+|$)", re.IGNORECASE)


def caption_command(caption: str, bot_username: str) -> tuple[str | None, str]:
    """Return (`new`/`auto` or None, the rest) for a caption that may start with a command;
    ("other", caption) for a command addressed to another bot (`/new@other_bot`)."""
    match = _COMMAND.match(caption.strip())
    if match is None:
        return None, caption.strip()
    addressee = match.group(2)
    if addressee is not None and addressee.lower() != bot_username.lower():
        return "other", caption.strip()
    return match.group(1).lower(), caption.strip()[match.end() :].strip()


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A product photo with a caption: check it, then start a round (or an autopilot run).

    In groups only a caption starting with /new or /auto counts; other photos are chatter.
    """
    message = update.effective_message
    settings = services(context).settings
    command, caption = caption_command(message.caption or "", context.bot.username)
    if command == "other" or (is_group(update.effective_chat) and command is None):
        return
    if _album_answered(context, message):
        return
    rounds = None
    if command == "auto":
        rounds, caption = parse_auto_arguments(caption)
    if not caption:
        await reply(message, views.PHOTO_NEEDS_CAPTION)
        return
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    try:
        reference = await _download_reference(context, message, max_bytes)
    except InvalidImage as error:
        log.info("photo refused (%s): %s", error.reason, error)
        await reply(message, views.photo_refusal_text(error.reason, settings.max_upload_mb))
        return
    except TelegramError as error:
        log.warning("could not download a photo: %s", error)
        await reply(message, views.PHOTO_DOWNLOAD_FAILED)
        return
    refine = services(context).refine
    scope, actor = scope_of(update), actor_of(update)
    await refine.take_edit(scope, actor)
    try:
        if command == "auto":
            pending = await refine.begin_autopilot(
                scope, actor, brief=caption, reference=reference, rounds=rounds
            )
            launch_autopilot(update, context, pending, asked_by=message)
            return
        round_pending = await refine.begin_start(scope, actor, caption, reference=reference)
    except RefineError as error:
        await reply(message, views.refusal_text(error))
        return
    launch_round(update, context, round_pending, asked_by=message)


ALBUMS_REMEMBERED = 16


def _album_answered(context: ContextTypes.DEFAULT_TYPE, message: Message) -> bool:
    """Return whether the photo belongs to an album whose first photo was already answered,
    and remember this one's album: an album is one brief (its caption rides on one photo), so
    its other photos get neither a second round nor a request for a caption each."""
    album = message.media_group_id
    if album is None:
        return False
    answered: deque[str] = context.chat_data.setdefault(  # type: ignore[union-attr]
        "albums_answered", deque(maxlen=ALBUMS_REMEMBERED)
    )
    if album in answered:
        return True
    answered.append(album)
    return False


async def _download_reference(
    context: ContextTypes.DEFAULT_TYPE, message: Message, max_bytes: int
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

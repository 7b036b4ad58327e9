"""Sending images so that Telegram receives each one only once: later sends use its file_id."""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

from telegram import Bot, InputFile, Message
from telegram.error import BadRequest

from bot.chat.updates import thread_kwargs
from bot.refine.history import ChatHistory
from bot.refine.models import Scope
from bot.ui.browse import gallery_caption

log = logging.getLogger(__name__)

Kind = Literal["photo", "document"]


class DeliveryMemory(Protocol):
    """Where the file_ids Telegram gave earlier uploads are kept (the chat history)."""

    async def delivered_id(self, sha: str, kind: str) -> str | None: ...

    async def remember_delivery(self, sha: str, kind: str, delivered_id: str) -> None: ...


async def send_image(
    bot: Bot,
    memory: DeliveryMemory,
    chat_id: int,
    data: bytes,
    sha: str,
    *,
    kind: Kind,
    filename: str,
    **kwargs: Any,
) -> Message:
    """Send the image as a photo or document and return the message: by file_id if Telegram
    has it, else uploaded.

    A new upload's file_id is remembered. A file_id Telegram no longer accepts is uploaded
    again.
    """
    send = bot.send_photo if kind == "photo" else bot.send_document
    known = await memory.delivered_id(sha, kind)
    if known is not None:
        try:
            return await send(chat_id, known, **kwargs)
        except BadRequest as error:
            log.info("file_id of %s no longer accepted (%s); uploading", sha[:12], error)
    message = await send(chat_id, InputFile(data, filename=filename), **kwargs)
    await memory.remember_delivery(sha, kind, _file_id(message, kind))
    return message


def _file_id(message: Message, kind: Kind) -> str:
    """Return the file_id Telegram gave the message's photo (its largest size) or document."""
    if kind == "photo":
        return message.photo[-1].file_id
    if message.document is None:
        raise ValueError("Telegram sent back no document")
    return message.document.file_id


async def send_contact_sheet(
    bot: Bot, history: ChatHistory, scope: Scope, session_id: int | None
) -> None:
    """Render (off the event loop) and send a session's contact sheet to the scope (the
    chat's latest session if `session_id` is None).

    Raises NothingToShow when the session has no image yet.
    """
    sheet = await history.contact_sheet(scope, session_id)
    await send_image(
        bot,
        history,
        scope.chat_id,
        sheet.png,
        sheet.sha256,
        kind="photo",
        filename=f"session-{sheet.session.id}.png",
        caption=gallery_caption(sheet),
        **thread_kwargs(scope),
    )

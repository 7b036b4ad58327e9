"""Sending images so that Telegram receives each one only once: later sends use its file_id."""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

from telegram import Bot, InputFile, Message
from telegram.error import BadRequest

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
    """Send the image as a photo or document: by file_id if Telegram has it, else uploaded.

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
    uploaded = message.photo[-1].file_id if kind == "photo" else message.document.file_id
    await memory.remember_delivery(sha, kind, uploaded)
    return message

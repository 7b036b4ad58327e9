"""Captions Telegram refuses as too long: which shorter ones to try, in turn, so a round's
photo always keeps its keyboard, and what goes below it instead."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from telegram.error import BadRequest, TelegramError

log = logging.getLogger(__name__)

T = TypeVar("T")

# The Bot API answers "Bad Request: message caption is too long" and "Bad Request: message is
# too long" (TDLib's "Message is too long"); Telegram's own servers say MEDIA_CAPTION_TOO_LONG
# and MESSAGE_TOO_LONG. PTB drops "Bad Request: " and capitalizes the rest.
_TOO_LONG = re.compile(r"\b(caption|message|text) (is )?too long\b")


def is_too_long(error: TelegramError) -> bool:
    """Return whether Telegram refused a caption or a text as too long."""
    return bool(_TOO_LONG.search(error.message.lower().replace("_", " ")))


@dataclass(frozen=True)
class Fallback:
    """What a photo shows when Telegram refuses its caption as too long: `caption`, much
    shorter (it keeps the keyboard), and `texts`, the rest, sent below the photo."""

    caption: str
    texts: list[str] = field(default_factory=list)


class CaptionSteps:
    """The captions to try in turn while Telegram refuses them as too long: the caption, the
    fallback's, then none (a photo without a caption still carries its keyboard)."""

    def __init__(self, caption: str, fallback: Fallback | None) -> None:
        self._captions: list[str | None] = [caption]
        if fallback is not None and fallback.caption != caption:
            self._captions.append(fallback.caption)
        self._captions.append(None)
        self._at = 0

    @property
    def shortened(self) -> bool:
        """Whether a caption other than the first went out."""
        return self._at > 0

    async def send(self, send: Callable[[str | None], Awaitable[T]]) -> T:
        """Return `send(caption)` for the first caption Telegram does not refuse as too
        long; raise the error of any other refusal."""
        while True:
            try:
                return await send(self._captions[self._at])
            except BadRequest as error:
                if not is_too_long(error) or self._at + 1 >= len(self._captions):
                    raise
                log.warning("Telegram refused a caption as too long (%s); shortening it", error)
                self._at += 1

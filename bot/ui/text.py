"""Telegram's length rules and the small formatting every screen shares."""

from __future__ import annotations

import re
from html import unescape

CAPTION_LIMIT = 1024
"""Most characters Telegram shows in a photo or document caption (after entity parsing)."""
TEXT_LIMIT = 4096
"""Most characters Telegram shows in a text message (after entity parsing)."""

_TAG = re.compile(r"<[^>]+>")


def visible_length(html: str) -> int:
    """Return the length Telegram counts for an HTML text: tags removed, entities decoded."""
    return len(plain_text(html))


def plain_text(html: str) -> str:
    """Return an HTML text as the plain text Telegram would show (for toasts, which have no
    parse mode)."""
    return unescape(_TAG.sub("", html))


def shorten(text: str, limit: int) -> str:
    """Return plain `text` cut to at most `limit` characters, ending in an ellipsis if cut.

    A one-line text has its runs of whitespace collapsed; a text with line breaks keeps them.
    """
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def minute_of(iso: str) -> str:
    """Return an ISO timestamp as `YYYY-MM-DD HH:MM` (the stored time zone, UTC)."""
    return iso[:16].replace("T", " ")


def count_of(count: int, noun: str) -> str:
    """Return `1 <noun>` or `<count> <noun>s`, e.g. `1 image`, `3 images`."""
    return f"1 {noun}" if count == 1 else f"{count} {noun}s"

"""Telegram's length rules and the small formatting every screen shares.

Telegram limits a caption to 1024 and a text message to 4096 characters "after entities
parsing" (https://core.telegram.org/bots/api#sendphoto, #sendmessage): what counts is the
text the user sees, with the HTML tags gone and `&amp;` counted as the one `&` it stands for.
Which characters? Entity offsets and lengths are UTF-16 code units
(https://core.telegram.org/bots/api#formatting-options, https://core.telegram.org/api/entities
"Entity length"); the Bot API server itself counts code points for bots (TDLib's
MessageContent.cpp: `utf8_length(text) > message_text_length_max` -> "Message is too long"),
but the limits are the server's, and a count in UTF-16 code units is never smaller than one
in code points. So every length here is the stricter one: UTF-16 code units of the visible
text (an emoji outside the BMP counts 2, a flag 4, a CJK character 1). When Telegram still
refuses, bot/chat/messenger.py falls back to a short caption and the text below it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

CAPTION_LIMIT = 1024
"""Most UTF-16 code units Telegram shows in a photo or document caption (after entity
parsing)."""
TEXT_LIMIT = 4096
"""Most UTF-16 code units Telegram shows in a text message (after entity parsing)."""

ELLIPSIS = "…"

# Telegram's HTML decodes only these named entities and numeric ones; anything else is text
# (https://core.telegram.org/bots/api#html-style).
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
_EMPTY_ELEMENT = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)(?:\s[^>]*)?></\1>")

_ZWJ = "\u200d"


def utf16_length(text: str) -> int:
    """Return the length of `text` in UTF-16 code units: a character outside the Basic
    Multilingual Plane (most emoji) counts 2, every other character 1."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _decode_entity(body: str) -> str | None:
    """Return what `&body;` stands for in Telegram's HTML, or None if it is not an entity."""
    if body[0] != "#":
        return _NAMED[body]
    code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _tokens(html: str) -> Iterator[tuple[str, str | None]]:
    """Yield an HTML text as `(source, visible)` pairs: a tag with `visible` None, an entity
    with the one character it stands for, any other character as itself. A cut between two
    pairs never splits a tag or an entity."""
    pos = 0
    while pos < len(html):
        char = html[pos]
        if char == "<":
            end = html.find(">", pos)
            if end != -1:
                yield html[pos : end + 1], None
                pos = end + 1
                continue
        elif char == "&" and (match := _ENTITY.match(html, pos)):
            decoded = _decode_entity(match.group(1))
            if decoded is not None:
                yield match.group(0), decoded
                pos = match.end()
                continue
        yield char, char
        pos += 1


def plain_text(html: str) -> str:
    """Return an HTML text as the plain text Telegram would show (for toasts, which have no
    parse mode, and for measuring): tags removed, entities decoded."""
    return "".join(visible for _, visible in _tokens(html) if visible is not None)


def visible_length(html: str) -> int:
    """Return the length Telegram counts for an HTML text: the UTF-16 code units of its
    visible text (tags removed, each entity one character)."""
    return utf16_length(plain_text(html))


def fits(html: str, limit: int) -> bool:
    """Return whether an HTML text is within `limit` (CAPTION_LIMIT or TEXT_LIMIT)."""
    return visible_length(html) <= limit


def _extends(char: str) -> bool:
    """Whether `char` belongs to the character before it: a combining mark, a variation
    selector, a skin tone, an emoji tag, the keycap mark or a zero-width joiner."""
    code = ord(char)
    return (
        char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or code == 0x20E3
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _splits_cluster(text: str, index: int) -> bool:
    """Whether cutting `text` before `index` would split what shows as one character: a ZWJ
    sequence (👩‍💻), a flag (two regional indicators), an emoji with its skin tone or
    variation selector, a letter with its combining marks."""
    if index <= 0 or index >= len(text):
        return False
    if _extends(text[index]) or text[index - 1] == _ZWJ:
        return True
    if _regional(text[index]) and _regional(text[index - 1]):
        run = 0
        while index - 1 - run >= 0 and _regional(text[index - 1 - run]):
            run += 1
        return run % 2 == 1  # the indicator before the cut starts a pair
    return False


def _cut_index(text: str, room: int) -> int:
    """Return the longest prefix length (in characters) of `text` within `room` UTF-16 code
    units that ends between two visible characters (0 if none does)."""
    index = _cut_index_raw(text, room)
    while 0 < index < len(text) and _splits_cluster(text, index):
        index -= 1
    return index


def shorten(text: str, limit: int) -> str:
    """Return plain `text` cut to at most `limit` UTF-16 code units, ending in an ellipsis if
    cut; the cut never splits a surrogate pair, a flag, an emoji sequence or a letter from its
    accents. Escape the result afterwards: an escaped `&` still counts one.

    A one-line text has its runs of whitespace collapsed; a text with line breaks keeps them.
    """
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if utf16_length(text) <= limit:
        return text
    return text[: _cut_index(text, max(limit - 1, 0))].rstrip() + ELLIPSIS


def _tag_name(tag: str) -> str:
    match = _TAG_NAME.match(tag)
    return match.group(1).lower() if match else ""


def _track(stack: list[tuple[str, str]], tag: str) -> None:
    """Update the stack of open tags (name, start tag) with one tag."""
    name = _tag_name(tag)
    if tag.startswith("</"):
        if stack and stack[-1][0] == name:
            stack.pop()
    elif not tag.endswith("/>") and name:
        stack.append((name, tag))


def _closing(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def shorten_html(html: str, limit: int) -> str:
    """Return an HTML text cut to at most `limit` UTF-16 code units of visible text, ending in
    an ellipsis if cut. Tags and entities are never split; tags left open are closed (the
    ellipsis goes inside them); a cut never splits a surrogate pair or an emoji sequence."""
    if fits(html, limit):
        return html
    if limit < 1:
        return ""
    tokens = list(_tokens(html))
    plain = "".join(visible for _, visible in tokens if visible is not None)
    cut = len(plain[: _cut_index(plain, limit - 1)].rstrip())
    out: list[str] = []
    stack: list[tuple[str, str]] = []
    kept = 0
    for source, visible in tokens:
        if visible is None:
            if kept == cut and not source.startswith("</"):
                break  # nothing of this element would be kept
            _track(stack, source)
        elif kept == cut:
            break
        else:
            kept += 1
        out.append(source)
    return _drop_empty("".join(out) + ELLIPSIS + _closing(stack))


def fit_html(html: str, limit: int) -> str:
    """Return the HTML text itself if it fits `limit`, else shortened to fit."""
    return html if fits(html, limit) else shorten_html(html, limit)


def _drop_empty(html: str) -> str:
    """Remove elements with nothing inside (`<i></i>`), which a cut can leave behind."""
    while (shorter := _EMPTY_ELEMENT.sub("", html)) != html:
        html = shorter
    return html


def _segments(plain: str, limit: int) -> list[tuple[int, int]]:
    """Return `(start, end)` character ranges of `plain`, each within `limit` UTF-16 code
    units, cut at a line break if one is in the second half of the range, else at a space,
    else between two visible characters; the line break or space cut at is left out."""
    segments: list[tuple[int, int]] = []
    start = 0
    while utf16_length(plain[start:]) > limit:
        end = start + _cut_index(plain[start:], limit)
        if end <= start:  # one "character" longer than the limit: cut it anyway
            end = start + max(_cut_index_raw(plain[start:], limit), 1)
        window = plain[start:end]
        half = len(window) // 2
        for separator in ("\n", " "):
            at = window.rfind(separator)
            if at >= half and at > 0:
                segments.append((start, start + at))
                start += at + 1
                break
        else:
            segments.append((start, end))
            start = end
    segments.append((start, len(plain)))
    return segments


def _cut_index_raw(text: str, room: int) -> int:
    """Return the longest prefix length of `text` within `room` UTF-16 code units."""
    used = 0
    for index, char in enumerate(text):
        used += _units(char)
        if used > room:
            return index
    return len(text)


def split_html(html: str, limit: int) -> list[str]:
    """Return an HTML text as one or more texts, each within `limit` UTF-16 code units of
    visible text, cut preferably at line breaks, then at spaces; never inside a tag, an
    entity, a surrogate pair or an emoji sequence. Tags open at a cut are closed there and
    opened again in the next part. Parts with nothing visible are left out."""
    if fits(html, limit):
        return [html] if plain_text(html).strip() else []
    tokens = list(_tokens(html))
    plain = "".join(visible for _, visible in tokens if visible is not None)
    segments = _segments(plain, limit)
    parts: list[str] = []
    current: list[str] = []
    stack: list[tuple[str, str]] = []
    segment = 0
    position = 0  # index in `plain` of the next visible character
    for source, visible in tokens:
        if visible is None:
            _track(stack, source)
            current.append(source)
            continue
        while segment < len(segments) - 1 and position >= segments[segment][1]:
            parts.append("".join(current) + _closing(stack))
            current = [tag for _, tag in stack]
            segment += 1
        if position >= segments[segment][0]:
            current.append(source)
        position += 1  # a visible token is one character
    parts.append("".join(current) + _closing(stack))
    cleaned = (_drop_empty(part) for part in parts)
    return [part for part in cleaned if plain_text(part).strip()]


def minute_of(iso: str) -> str:
    """Return an ISO timestamp as `YYYY-MM-DD HH:MM` (the stored time zone, UTC)."""
    return iso[:16].replace("T", " ")


def count_of(count: int, noun: str) -> str:
    """Return `1 <noun>` or `<count> <noun>s`, e.g. `1 image`, `3 images`."""
    return f"1 {noun}" if count == 1 else f"{count} {noun}s"

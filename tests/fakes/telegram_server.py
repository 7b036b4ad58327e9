"""A local fake of the Telegram Bot API, good enough to run real python-telegram-bot against.

`FakeTelegram` is an aiohttp server on ``127.0.0.1`` (a free port) that speaks the Bot API wire
protocol: ``POST {base_url}{token}/{method}`` with form-urlencoded, multipart or JSON bodies,
answering ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ..., "description":
...}``. Point a real ``telegram.Bot`` / ``Application`` at it with::

    fake = FakeTelegram(token="123456:TEST-TOKEN", bot_username="refine_test_bot")
    await fake.start()
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )

The same object is the test driver: it acts as users (`user_sends_text`, `user_presses`, ...),
records every call (`calls`), keeps what the bot sent per chat (`messages`, `BotMessage`), and
lets a test wait for state (`wait_for`) or inject errors (`fail_next`, `latency`).

Telegram behaviour reproduced on purpose (so bugs surface here, not in production):

* HTML / MarkdownV2 parsing with Telegram's error texts (``can't parse entities: ...``); the
  returned ``Message.text`` / ``caption`` is the parsed plain text plus ``entities``, like the
  real API. Limits are counted after parsing, in UTF-16 code units (text 4096, caption 1024;
  see `MAX_TEXT_LENGTH`), and refused with Telegram's texts (`TEXT_TOO_LONG`,
  `CAPTION_TOO_LONG`).
* ``callback_data`` longer than 64 UTF-8 bytes -> ``BUTTON_DATA_INVALID``.
* Editing without ``reply_markup`` removes the inline keyboard; an edit that changes neither
  content nor keyboard fails with ``message is not modified``.
* Callback queries can be answered once, within ``callback_query_ttl`` seconds.
* Group privacy mode (on by default, matching ``can_read_all_group_messages: false``): in groups
  the bot only receives commands and replies to its own messages.
* Uploaded photos are decoded with Pillow and answered with a Telegram-like ``PhotoSize`` list.

Deliberately stricter than Telegram: a bare ``&`` that does not start an entity is rejected in
HTML (Telegram keeps it literally); set ``strict_html_ampersand = False`` for the lenient rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import json
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web
from PIL import Image

__all__ = [
    "CAPTION_TOO_LONG",
    "TEXT_TOO_LONG",
    "BotMessage",
    "Call",
    "EntityParseError",
    "FakeTelegram",
    "StoredFile",
    "TelegramApiError",
    "parse_html",
    "parse_markdown",
    "utf16_len",
]

JSONDict = dict[str, Any]
ChatRef = int | JSONDict
T = TypeVar("T")


def _words(text: str) -> frozenset[str]:
    """A set of space-separated words (keeps the long constant sets compact)."""
    return frozenset(text.split())


MAX_TEXT_LENGTH = 4096
"""Text of a message: "1-4096 characters after entities parsing"
(https://core.telegram.org/bots/api#sendmessage)."""
MAX_CAPTION_LENGTH = 1024
"""Caption of a photo or document: "0-1024 characters after entities parsing"
(https://core.telegram.org/bots/api#sendphoto).

Both are counted here in UTF-16 code units of the parsed text, the unit of entity offsets
(https://core.telegram.org/bots/api#formatting-options, https://core.telegram.org/api/entities):
the stricter reading. (TDLib behind the Bot API counts code points for bots, MessageContent.cpp
``utf8_length(text) > message_text_length_max``; Telegram's servers have their own
MEDIA_CAPTION_TOO_LONG.) A bot within these limits is within every reading of them."""
MAX_CALLBACK_DATA_BYTES = 64
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024
MAX_DOCUMENT_UPLOAD = 50 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
PHOTO_SIZE_CAPS = (90, 320, 800, 1280, 2560)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
TEXT_TOO_LONG = "Bad Request: message is too long"
"""The Bot API's refusal of a text over 4096 (TDLib's "Message is too long", first letter
lowered), for sendMessage and editMessageText."""
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
"""The Bot API's refusal of a caption over 1024 (sendPhoto, sendDocument, sendMediaGroup,
editMessageCaption), as bots see it (e.g. github.com/tactilenews/100eyes/issues/1594)."""

REACTION_EMOJI = _words(
    "👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 "
    "🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 "
    "😘 💊 🙊 😎 👾 🤷 😡"
) | {"❤️\u200d🔥", "👨\u200d💻", "🤷\u200d♂️", "🤷\u200d♀️"}
"""The emoji a bot may react with (ReactionTypeEmoji); anything else is REACTION_INVALID."""
CHAT_ACTIONS = _words(
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note"
)

# Parameters whose wire value is plain text (PTB sends ``str`` values unencoded).
_TEXT_PARAMS = _words(
    "text caption parse_mode callback_query_id inline_message_id action file_id url "
    "language_code business_connection_id message_effect_id emoji title description "
    "short_description name photo document video audio animation voice sticker thumbnail "
    "custom_emoji_id secret_token"
)
_INT_RE = re.compile(r"-?\d+")

# Inline keyboard button fields that make a button do something (exactly one is required).
_INLINE_BUTTON_ACTIONS = _words(
    "url callback_data web_app login_url switch_inline_query "
    "switch_inline_query_current_chat switch_inline_query_chosen_chat copy_text "
    "callback_game pay"
)
# Update types delivered when ``allowed_updates`` is empty (Telegram's default).
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


class TelegramApiError(Exception):
    """A Bot API error reply: HTTP status ``error_code`` and Telegram's ``description``."""

    def __init__(
        self, error_code: int, description: str, parameters: JSONDict | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        """Return the JSON body Telegram sends for this error."""
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> TelegramApiError:
    """Build a 400 error; ``description`` is the text after ``Bad Request: ``."""
    return TelegramApiError(400, f"Bad Request: {description}")


# --- entity parsing -----------------------------------------------------------------------


class EntityParseError(ValueError):
    """Raised for text Telegram would answer with ``can't parse entities: <message>``."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of Telegram entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


_HTML_TAGS = _words(
    "a b strong i em u ins s strike del span tg-spoiler code pre blockquote tg-emoji"
)
_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(body: str) -> str | None:
    """Decode the inside of ``&...;`` as Telegram does (4 named entities plus numeric ones)."""
    if body.startswith(("#x", "#X")):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        return _HTML_NAMED.get(body)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


@dataclass
class _OpenTag:
    name: str
    argument: str | None
    offset: int  # UTF-16 offset in the plain text where the entity starts


def parse_html(source: str, *, strict_ampersand: bool = True) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into ``(plain_text, entities)``.

    Follows TDLib's parser: supported tags only, attributes quoted or bare, ``</>`` closes the
    innermost tag, error texts as Telegram reports them (byte offsets into the UTF-8 source).
    """
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[_OpenTag] = []
    pos = 0
    offset = 0

    def byte_offset(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    while pos < len(source):
        char = source[pos]
        if char == "&":
            match = _HTML_ENTITY_RE.match(source, pos)
            decoded = _decode_html_entity(match.group(1)) if match else None
            if decoded is None:
                if strict_ampersand:
                    raise EntityParseError(
                        f'Character "&" at byte offset {byte_offset(pos)} must be escaped '
                        'as "&amp;"'
                    )
                decoded, pos = "&", pos + 1
            else:
                pos = match.end()  # type: ignore[union-attr]
            out.append(decoded)
            offset += utf16_len(decoded)
            continue
        if char != "<":
            out.append(char)
            offset += 2 if ord(char) > 0xFFFF else 1
            pos += 1
            continue
        if source.startswith("</", pos):
            pos = _close_html_tag(source, pos, stack, entities, offset, byte_offset)
        else:
            pos = _open_html_tag(source, pos, stack, offset, byte_offset)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _open_html_tag(
    source: str, begin: int, stack: list[_OpenTag], offset: int, byte_offset: Callable[[int], int]
) -> int:
    """Parse a start tag at ``begin``, push it on ``stack`` and return the next position."""
    pos = begin + 1
    while pos < len(source) and not source[pos].isspace() and source[pos] != ">":
        pos += 1
    if pos >= len(source):
        raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
    name = source[begin + 1 : pos].lower()
    if name not in _HTML_TAGS:
        raise EntityParseError(
            f'Unsupported start tag "{name}" at byte offset {byte_offset(begin)}'
        )
    argument: str | None = None
    while True:
        while pos < len(source) and source[pos].isspace():
            pos += 1
        if pos >= len(source):
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
        if source[pos] == ">":
            pos += 1
            break
        attr_start = pos
        while pos < len(source) and not source[pos].isspace() and source[pos] not in "=>/":
            pos += 1
        attr_name = source[attr_start:pos].lower()
        if not attr_name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {byte_offset(begin)}'
            )
        while pos < len(source) and source[pos].isspace():
            pos += 1
        value = ""
        if pos < len(source) and source[pos] == "=":
            pos += 1
            while pos < len(source) and source[pos].isspace():
                pos += 1
            if pos >= len(source):
                raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(begin)}")
            if source[pos] in "'\"":
                quote = source[pos]
                end = source.find(quote, pos + 1)
                if end < 0:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {byte_offset(begin)}"
                    )
                value = _unescape_attribute(source[pos + 1 : end])
                pos = end + 1
            else:
                token_start = pos
                while pos < len(source) and (source[pos].isalnum() or source[pos] in ".-"):
                    pos += 1
                if pos < len(source) and not source[pos].isspace() and source[pos] != ">":
                    raise EntityParseError(
                        f"Unexpected end of name token at byte offset {byte_offset(token_start)}"
                    )
                value = source[token_start:pos].lower()
        elif name != "blockquote":
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{name}" at '
                f"byte offset {byte_offset(begin)}"
            )
        if name == "a" and attr_name == "href":
            argument = value
        elif name == "code" and attr_name == "class" and value.startswith("language-"):
            argument = value.removeprefix("language-")
        elif name == "span" and attr_name == "class" and value.startswith("tg-"):
            argument = value.removeprefix("tg-")
        elif name == "tg-emoji" and attr_name == "emoji-id":
            argument = value
        elif name == "blockquote" and attr_name == "expandable":
            argument = "expandable"
    if name == "span" and argument != "spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
        )
    if name == "tg-emoji" and not argument:
        raise EntityParseError(
            f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {byte_offset(begin)}'
        )
    stack.append(_OpenTag(name, argument, offset))
    return pos


def _unescape_attribute(value: str) -> str:
    """Decode HTML entities inside a quoted attribute value (unknown ones stay literal)."""

    def replace(match: re.Match[str]) -> str:
        return _decode_html_entity(match.group(1)) or match.group(0)

    return _HTML_ENTITY_RE.sub(replace, value)


def _close_html_tag(
    source: str,
    begin: int,
    stack: list[_OpenTag],
    entities: list[JSONDict],
    offset: int,
    byte_offset: Callable[[int], int],
) -> int:
    """Parse an end tag at ``begin``, pop the matching tag, emit its entity, return next pos."""
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(begin)}")
    pos = begin + 2
    while pos < len(source) and not source[pos].isspace() and source[pos] != ">":
        pos += 1
    end_name = source[begin + 2 : pos].lower()
    while pos < len(source) and source[pos].isspace():
        pos += 1
    if pos >= len(source) or source[pos] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(begin)}")
    tag = stack.pop()
    if end_name and end_name != tag.name:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {byte_offset(begin)}, expected "</{tag.name}>", '
            f'found "</{end_name}>"'
        )
    length = offset - tag.offset
    parent = stack[-1] if stack else None
    if (
        tag.name == "code"
        and tag.argument
        and parent is not None
        and parent.name == "pre"
        and parent.offset == tag.offset
    ):
        # <pre><code class="language-x"> is one pre entity with a language.
        parent.argument = tag.argument
        return pos + 1
    if length > 0:
        entity = _html_entity(tag, length)
        if entity is not None:
            entities.append(entity)
    return pos + 1


def _html_entity(tag: _OpenTag, length: int) -> JSONDict | None:
    """Build the MessageEntity dict for a closed tag (None when the tag yields no entity)."""
    entity: JSONDict = {"offset": tag.offset, "length": length}
    if tag.name == "a":
        if not tag.argument:
            return None
        match = re.fullmatch(r"tg://user\?id=(\d+)", tag.argument)
        if match:
            entity.update(type="text_mention", user={"id": int(match.group(1)), "is_bot": False})
            entity["user"]["first_name"] = ""
        else:
            entity.update(type="text_link", url=tag.argument)
    elif tag.name == "blockquote":
        entity["type"] = "expandable_blockquote" if tag.argument else "blockquote"
    elif tag.name == "tg-emoji":
        entity.update(type="custom_emoji", custom_emoji_id=tag.argument)
    else:
        entity["type"] = _HTML_ENTITY_TYPES[tag.name]
        if tag.name == "pre" and tag.argument:
            entity["language"] = tag.argument
    return entity


_MD_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "[": "TextUrl",
}
_MD_TYPES = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")


def parse_markdown(source: str, *, v2: bool = True) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2 (or legacy Markdown with ``v2=False``) into ``(plain, entities)``.

    A pragmatic subset: bold, italic, underline, strikethrough, spoiler, inline code, pre
    blocks, ``[text](url)`` links, backslash escapes, and MarkdownV2's rule that reserved
    characters must be escaped (``Character 'x' is reserved ...``).
    """
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[tuple[str, int, int]] = []  # marker, utf16 start, source index
    offset = 0
    pos = 0

    def byte_offset(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    def emit(text: str) -> None:
        nonlocal offset
        out.append(text)
        offset += utf16_len(text)

    while pos < len(source):
        char = source[pos]
        if char == "\\" and pos + 1 < len(source) and (v2 or source[pos + 1] in "_*`["):
            emit(source[pos + 1])
            pos += 2
            continue
        if char == "`":
            fence = "```" if source.startswith("```", pos) else "`"
            end = source.find(fence, pos + len(fence))
            if end < 0:
                name = "Pre" if fence == "```" else "Code"
                raise EntityParseError(
                    f"Can't find end of {name} entity at byte offset {byte_offset(pos)}"
                )
            body = source[pos + len(fence) : end]
            entity: JSONDict = {"type": "code"}
            if fence == "```":
                entity["type"] = "pre"
                first, newline, rest = body.partition("\n")
                if newline and first and not any(c.isspace() for c in first):
                    entity["language"] = first
                    body = rest
            if v2:
                body = re.sub(r"\\([\\`])", r"\1", body)
            start = offset
            emit(body)
            if offset > start:
                entities.append({**entity, "offset": start, "length": offset - start})
            pos = end + len(fence)
            continue
        if char == "]" and stack and stack[-1][0] == "[":
            _, start, opened_at = stack.pop()
            if not source.startswith("(", pos + 1):
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {byte_offset(opened_at)}"
                )
            end = source.find(")", pos + 2)
            while v2 and end > 0 and source[end - 1] == "\\":
                end = source.find(")", end + 1)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {byte_offset(opened_at)}"
                )
            url = re.sub(r"\\(.)", r"\1", source[pos + 2 : end]) if v2 else source[pos + 2 : end]
            if offset > start:
                entities.append(
                    {"type": "text_link", "offset": start, "length": offset - start, "url": url}
                )
            pos = end + 1
            continue
        marker = _markdown_marker(source, pos, v2=v2)
        if marker is not None:
            if marker != "[" and stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                if offset > start:
                    entities.append(
                        {"type": _MD_TYPES[marker], "offset": start, "length": offset - start}
                    )
            elif not v2 and stack:
                emit(marker)  # legacy Markdown has no nesting: other markers are literal
            else:
                stack.append((marker, offset, pos))
            pos += len(marker)
            continue
        if v2 and char == ">" and (pos == 0 or source[pos - 1] == "\n"):
            pos += 1  # a blockquote line; the fake keeps no blockquote entity for it
            continue
        if v2 and char in _MD2_RESERVED:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(char)
        pos += 1
    if stack:
        marker, _, opened_at = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD_NAMES[marker]} entity at byte offset {byte_offset(opened_at)}"
        )
    entities.sort(key=lambda item: (item["offset"], -item["length"]))
    return "".join(out), entities


def _markdown_marker(source: str, pos: int, *, v2: bool) -> str | None:
    """Return the formatting marker starting at ``pos`` (``*``, ``__``, ``||``, ...), if any."""
    if v2:
        for marker in ("__", "||", "*", "_", "~", "["):
            if source.startswith(marker, pos):
                return marker
        return None
    char = source[pos]
    return char if char in "*_[" else None


# --- records ------------------------------------------------------------------------------


@dataclass
class Call:
    """One Bot API request as the fake saw it (``params`` decoded, uploads in ``files``)."""

    method: str
    params: JSONDict
    files: dict[str, bytes]
    ok: bool
    result: Any = None
    error: JSONDict | None = None
    at: float = 0.0

    @property
    def description(self) -> str | None:
        """Telegram's error description, or None for a successful call."""
        return self.error["description"] if self.error else None

    def short(self, width: int = 60) -> str:
        """One-line summary for failure messages: method, outcome and truncated params."""
        parts = []
        for key, value in self.params.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if len(text) > width:
                text = text[: width - 1] + "…"
            parts.append(f"{key}={text!r}" if isinstance(value, str) else f"{key}={text}")
        for key, data in self.files.items():
            parts.append(f"{key}=<{len(data)} bytes>")
        outcome = "ok" if self.ok else f"ERR {self.description}"
        return f"{self.method} [{outcome}] {' '.join(parts)}"


@dataclass
class StoredFile:
    """A file the fake holds: one PhotoSize of a photo, or a document."""

    file_id: str
    file_unique_id: str
    kind: str  # "photo" | "document"
    data: bytes
    file_path: str
    width: int | None = None
    height: int | None = None
    file_name: str | None = None
    mime_type: str | None = None
    photo_sizes: list[JSONDict] = field(default_factory=list)  # whole photo this size is in
    original: bytes | None = None  # for photos: the bytes originally uploaded

    def as_photo_size(self) -> JSONDict:
        """The ``PhotoSize`` object for this file."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": len(self.data),
        }

    def as_document(self) -> JSONDict:
        """The ``Document`` object for this file."""
        document: JSONDict = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.file_name:
            document["file_name"] = self.file_name
        if self.mime_type:
            document["mime_type"] = self.mime_type
        return document


@dataclass
class BotMessage:
    """A message the bot sent, as it currently is (edits applied, ``deleted`` flagged).

    ``text`` / ``caption`` hold the source as the bot sent it (e.g. HTML when ``parse_mode`` is
    HTML); ``raw`` is the Message object Telegram returned, whose ``text`` / ``caption`` is the
    parsed plain text (see `plain`).
    """

    message_id: int
    chat_id: int
    thread_id: int | None = None
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    photo: bytes | None = None
    document: bytes | None = None
    file_name: str | None = None
    mime_type: str | None = None
    reply_markup: JSONDict | None = None
    reply_to_message_id: int | None = None
    deleted: bool = False
    edits: int = 0
    kind: str = "text"  # "text" | "photo" | "document"
    media_group_id: str | None = None
    entities: list[JSONDict] = field(default_factory=list)
    raw: JSONDict = field(default_factory=dict)
    history: list[JSONDict] = field(default_factory=list)  # earlier versions of ``raw``
    sent_at: float = 0.0

    @property
    def content(self) -> str | None:
        """The text or caption source, whichever this message has."""
        return self.text if self.text is not None else self.caption

    @property
    def plain(self) -> str:
        """The text or caption as the user sees it (markup parsed away)."""
        return self.raw.get("text") or self.raw.get("caption") or ""

    @property
    def inline_keyboard(self) -> list[list[JSONDict]]:
        """Rows of inline buttons currently on the message (empty when there are none)."""
        if not self.reply_markup:
            return []
        return self.reply_markup.get("inline_keyboard") or []

    @property
    def buttons(self) -> list[list[str]]:
        """Labels of the inline buttons, row by row."""
        return [[button["text"] for button in row] for row in self.inline_keyboard]

    @property
    def button_data(self) -> list[list[str]]:
        """``callback_data`` of the inline buttons, row by row (``""`` for non-callback ones)."""
        return [[button.get("callback_data", "") for button in row] for row in self.inline_keyboard]

    @property
    def flat_buttons(self) -> list[str]:
        """All inline button labels in reading order."""
        return [label for row in self.buttons for label in row]


DROPPED: JSONDict = {"ok": False, "description": "connection dropped by the fake"}
"""The `Call.error` of a call whose connection `fail_next(drop_connection=True)` closed."""


def _dropped(request: web.Request) -> web.Response:
    """Close the request's connection; the response returned goes nowhere."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


@dataclass
class _Fault:
    error_code: int
    description: str
    parameters: JSONDict | None
    remaining: int
    drop_connection: bool = False
    delay: float = 0.0


@dataclass
class _Query:
    chat_id: int
    message_id: int
    created: float
    answered: bool = False


@dataclass
class _Upload:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


Handler = Callable[[JSONDict, dict[str, _Upload]], Awaitable[Any]]


def _decode_param(name: str, raw: str) -> Any:
    """Turn one wire value into a Python value: text stays text, the rest is JSON/int."""
    if name in _TEXT_PARAMS:
        return raw
    if name == "chat_id" or name.endswith("_id"):
        return int(raw) if _INT_RE.fullmatch(raw) else raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _chat_id_of(chat: ChatRef) -> int:
    return chat if isinstance(chat, int) else int(chat["id"])


def _public_user(user: JSONDict) -> JSONDict:
    """The User object as it appears inside messages (no getMe-only capability fields)."""
    keys = ("id", "is_bot", "first_name", "last_name", "username", "language_code")
    return {key: user[key] for key in keys if key in user}


def _shallow_message(message: JSONDict) -> JSONDict:
    """A message as embedded in ``reply_to_message`` (Telegram does not nest further)."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _markup_key(markup: JSONDict | None) -> str:
    return json.dumps(markup, sort_keys=True) if markup else ""


# --- the fake -------------------------------------------------------------------------------


class FakeTelegram:
    """Fake Bot API server plus test driver; all state lives on this object.

    Runs in the test's event loop: ``await start()`` / ``await stop()`` or ``async with``.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "refine_test_bot",
        bot_name: str = "Refine Test Bot",
        *,
        callback_query_ttl: float = 15.0,
        privacy_mode: bool = True,
        strict_html_ampersand: bool = True,
        render_photo_sizes: bool = True,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.callback_query_ttl = callback_query_ttl
        self.privacy_mode = privacy_mode
        self.strict_html_ampersand = strict_html_ampersand
        # False: uploaded photos are not decoded nor re-encoded; every PhotoSize (dimensions
        # as Telegram would report them) serves the original bytes. For benchmarks, so the
        # fake's own Pillow work is not what gets measured.
        self.render_photo_sizes = render_photo_sizes
        self.latency = 0.0
        self.bot_user: JSONDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": not privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

        self.calls: list[Call] = []
        self.callback_answers: dict[str, JSONDict] = {}
        self.chat_actions: list[tuple[int, str, float]] = []
        # The bot's reactions: (chat id, message id) -> its emoji, as last set.
        self.reactions: dict[tuple[int, int], list[str]] = {}
        self.commands: dict[str, list[JSONDict]] = {}
        self.users: dict[int, JSONDict] = {}
        self.chats: dict[int, JSONDict] = {}
        self.blocked_chats: set[int] = set()
        self.deleted_user_messages: set[tuple[int, int]] = set()
        self.downloads: list[str] = []
        self.files: dict[str, StoredFile] = {}

        self._bot_messages: dict[int, dict[int, BotMessage]] = {}
        self._user_messages: dict[int, dict[int, JSONDict]] = {}
        self._next_message_id: dict[int, int] = {}
        self._updates: list[JSONDict] = []
        self._allowed_updates: list[str] = []
        # setWebhook's parameters (url, secret_token, ...) while a webhook is set, else None;
        # with a webhook set, getUpdates answers 409 like Telegram, and updates wait for the
        # test to deliver them (`take_updates`). `webhook_last_error`: (unix time, message)
        # reported by getWebhookInfo.
        self.webhook: JSONDict | None = None
        self.webhook_last_error: tuple[int, str] | None = None
        self._queries: dict[str, _Query] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._stubs: dict[str, Callable[[JSONDict], Any]] = {}
        self._holds: dict[str, list[asyncio.Event]] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)
        self._update_ids = itertools.count(10_000)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "sendMediaGroup": self._send_media_group,
                "sendChatAction": self._send_chat_action,
                "setMessageReaction": self._set_message_reaction,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "editMessageMedia": self._edit_message_media,
                "deleteMessage": self._delete_message,
                "deleteMessages": self._delete_messages,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getFile": self._get_file,
            }.items()
        }

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on 127.0.0.1 with a free port, in the running event loop."""
        if self._runner is not None:
            raise RuntimeError("FakeTelegram is already running")
        # aiohttp's default body limit is 1 MiB; Telegram takes 10 MB photos and 50 MB
        # documents (checked per upload below with Telegram's own errors).
        app = web.Application(client_max_size=MAX_DOCUMENT_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._closing = False
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Release pending long polls and shut the server down."""
        self._closing = True
        self._touch()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on (only valid after `start`)."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Value for ``ApplicationBuilder().base_url(...)`` (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for ``ApplicationBuilder().base_file_url(...)``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- driver: people and chats ----------------------------------------------------------

    def make_user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str | None = None,
        last_name: str | None = None,
        is_bot: bool = False,
    ) -> JSONDict:
        """Create (or replace) a user and return its ``User`` dict."""
        user: JSONDict = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        return user

    def private_chat(self, user: JSONDict) -> JSONDict:
        """Register the private chat between ``user`` and the bot; return its ``Chat`` dict."""
        chat: JSONDict = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        self.chats[chat["id"]] = chat
        return chat

    def group_chat(
        self,
        chat_id: int,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        username: str | None = None,
    ) -> JSONDict:
        """Register a group (or supergroup / forum) containing the bot; return its Chat dict."""
        chat: JSONDict = {"id": chat_id, "type": "supergroup" if supergroup else "group"}
        chat["title"] = title
        if username:
            chat["username"] = username
        if forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        return chat

    def user_blocks_bot(self, chat: ChatRef) -> None:
        """Make every send to this chat fail with 403 ``bot was blocked by the user``."""
        self.blocked_chats.add(_chat_id_of(chat))

    # --- driver: acting as users -----------------------------------------------------------

    def user_sends_text(
        self,
        chat: ChatRef,
        user: JSONDict,
        text: str,
        *,
        reply_to: int | JSONDict | BotMessage | None = None,
        thread_id: int | None = None,
    ) -> JSONDict:
        """Send ``text`` as ``user``; a leading ``/command`` gets a ``bot_command`` entity.

        Returns the Message dict. In groups with `privacy_mode`, only commands and replies to
        the bot's messages become updates (the message is still stored).
        """
        content: JSONDict = {"text": text}
        entities: list[JSONDict] = []
        match = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if match:
            entities.append(
                {"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}
            )
        # Telegram marks @usernames as mention entities server-side.
        for mention in re.finditer(r"(?<![/\w])@[A-Za-z0-9_]{5,32}", text):
            entities.append(
                {
                    "type": "mention",
                    "offset": utf16_len(text[: mention.start()]),
                    "length": utf16_len(mention.group(0)),
                }
            )
        if entities:
            content["entities"] = entities
        return self._user_message(chat, user, content, reply_to=reply_to, thread_id=thread_id)

    def user_sends_photo(
        self,
        chat: ChatRef,
        user: JSONDict,
        image: bytes,
        caption: str | None = None,
        *,
        reply_to: int | JSONDict | BotMessage | None = None,
        thread_id: int | None = None,
        album: str | None = None,
    ) -> JSONDict:
        """Send a photo as ``user``; its sizes are stored and downloadable via getFile.

        ``album``: the media_group_id of an album this photo is part of (Telegram sends an
        album as one message per photo, the caption usually on the first only)."""
        try:
            sizes, _ = self._store_photo(image)
        except TelegramApiError as exc:
            raise ValueError(f"user_sends_photo: {exc.description}") from exc
        content: JSONDict = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        if album is not None:
            content["media_group_id"] = album
        return self._user_message(chat, user, content, reply_to=reply_to, thread_id=thread_id)

    def user_sends_document(
        self,
        chat: ChatRef,
        user: JSONDict,
        data: bytes,
        file_name: str,
        mime_type: str | None = None,
        caption: str | None = None,
        *,
        reply_to: int | JSONDict | BotMessage | None = None,
        thread_id: int | None = None,
    ) -> JSONDict:
        """Send a document as ``user``; it is stored and downloadable via getFile."""
        stored = self._store_document(data, file_name, mime_type)
        content: JSONDict = {"document": stored.as_document()}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(chat, user, content, reply_to=reply_to, thread_id=thread_id)

    def user_presses(
        self,
        chat: ChatRef,
        user: JSONDict,
        message_id: int | BotMessage,
        label_contains: str,
        *,
        aged: bool = False,
    ) -> str:
        """Press the inline button whose label contains ``label_contains``; return query id.

        Looks at the message's *current* keyboard. An exact label match wins over substring
        matches; no match or several substring matches raise AssertionError listing labels.
        ``aged``: the message is old (about two days and more), so, like Telegram, the query
        carries it as an InaccessibleMessage (chat, message_id and date 0; no text, no topic).
        """
        message = self._pressable(chat, message_id)
        buttons = [button for row in message.inline_keyboard for button in row]
        matches = [b for b in buttons if b["text"] == label_contains] or [
            b for b in buttons if label_contains in b["text"]
        ]
        labels = [b["text"] for b in buttons]
        if not matches:
            raise AssertionError(
                f"no button containing {label_contains!r} on message {message.message_id} "
                f"in chat {message.chat_id}; buttons: {labels}"
            )
        if len(matches) > 1:
            raise AssertionError(
                f"{label_contains!r} matches several buttons on message {message.message_id}: "
                f"{[b['text'] for b in matches]}"
            )
        button = matches[0]
        if "callback_data" not in button:
            raise AssertionError(f"button {button['text']!r} has no callback_data: {button}")
        return self._enqueue_callback(message, user, button["callback_data"], aged=aged)

    def user_presses_data(
        self, chat: ChatRef, user: JSONDict, message_id: int | BotMessage, data: str
    ) -> str:
        """Send a callback query with arbitrary (forged or stale) ``data``; return query id."""
        return self._enqueue_callback(self._pressable(chat, message_id), user, data)

    def enqueue_update(self, payload: JSONDict) -> JSONDict:
        """Queue a raw update (``update_id`` is added); return the full update."""
        update = {"update_id": next(self._update_ids), **payload}
        self._updates.append(update)
        self._touch()
        return update

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by a getUpdates ``offset``."""
        return list(self._updates)

    def take_updates(self) -> list[JSONDict]:
        """Remove and return the queued updates (what Telegram would post to a webhook)."""
        updates, self._updates = self._updates, []
        return updates

    # --- driver: observing ---------------------------------------------------------------

    def messages(self, chat: ChatRef, *, include_deleted: bool = True) -> list[BotMessage]:
        """Messages the bot sent to ``chat``, oldest first."""
        found = self._bot_messages.get(_chat_id_of(chat), {}).values()
        return [m for m in found if include_deleted or not m.deleted]

    def message(self, chat: ChatRef, message_id: int) -> BotMessage:
        """The bot message ``message_id`` in ``chat`` (KeyError if the bot never sent it)."""
        chat_id = _chat_id_of(chat)
        try:
            return self._bot_messages[chat_id][message_id]
        except KeyError:
            raise KeyError(f"bot sent no message {message_id} in chat {chat_id}") from None

    def last_message(self, chat: ChatRef) -> BotMessage | None:
        """The most recent bot message in ``chat`` that is not deleted, or None."""
        alive = self.messages(chat, include_deleted=False)
        return alive[-1] if alive else None

    def user_message(self, chat: ChatRef, message_id: int) -> JSONDict:
        """A message a (fake) user sent, as stored."""
        return self._user_messages[_chat_id_of(chat)][message_id]

    def calls_to(self, method: str) -> list[Call]:
        """All recorded calls of ``method`` (case-insensitive, like the Bot API)."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def commands_for(
        self, scope: JSONDict | None = None, language_code: str | None = None
    ) -> list[JSONDict] | None:
        """Commands set for ``scope`` (default scope if None) and language, or None."""
        return self.commands.get(self._scope_key(scope, language_code))

    def file_bytes(self, file_id: str) -> bytes:
        """Content of a stored file by ``file_id``."""
        return self.files[file_id].data

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10.0,  # noqa: ASYNC109 - a plain timeout is the friendlier test API
    ) -> T:
        """Wait until ``predicate()`` is truthy and return its value.

        Re-evaluated whenever the fake's state changes and every 0.05 s. A predicate raising
        LookupError (IndexError/KeyError) counts as "not yet". On timeout raises AssertionError
        with the recent calls, to make failures easy to read.
        """
        deadline = time.monotonic() + timeout
        last_error: LookupError | None = None
        while True:
            changed = self._changed
            try:
                value = predicate()
            except LookupError as exc:
                last_error = exc
            else:
                if value:
                    return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(timeout, last_error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(0.05, remaining))

    def recent_calls(self, count: int = 15) -> list[Call]:
        """The last ``count`` calls, skipping getUpdates polls that returned nothing."""
        useful = [c for c in self.calls if not (c.method == "getUpdates" and c.ok and not c.result)]
        return useful[-count:]

    # --- driver: fault injection -------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error_code: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        count: int = 1,
        drop_connection: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail (nothing else happens for them).

        ``error_code`` defaults to 429 when ``retry_after`` is given, else 400. The description
        defaults to Telegram's usual text for the code. ``drop_connection``: close the
        connection instead of answering (a network failure; the call is recorded as failed).
        ``delay``: the failure comes only after that many seconds (an upload that stalls).
        """
        if error_code is None:
            error_code = 429 if retry_after is not None else 400
        parameters: JSONDict = {}
        if error_code == 429:
            retry_after = 1 if retry_after is None else retry_after
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        if description is None:
            description = {
                400: "Bad Request: group chat was upgraded to a supergroup chat"
                if migrate_to_chat_id is not None
                else "Bad Request: injected failure",
                401: "Unauthorized",
                403: "Forbidden: bot was blocked by the user",
                409: "Conflict: terminated by other getUpdates request; make sure that only one "
                "bot instance is running",
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, f"Error {error_code}")
        fault = _Fault(error_code, description, parameters or None, count, drop_connection, delay)
        self._faults.setdefault(method.lower(), []).append(fault)

    def clear_faults(self) -> None:
        """Drop every failure `fail_next` scheduled and not yet served (Telegram is back)."""
        self._faults.clear()

    def hold_next(self, method: str) -> asyncio.Event:
        """Make the next call of ``method`` wait, unanswered, until the returned event is set
        (a slow upload, without a timing); it is then served as usual."""
        release = asyncio.Event()
        self._holds.setdefault(method.lower(), []).append(release)
        return release

    def stub(self, method: str, result: Any | Callable[[JSONDict], Any]) -> None:
        """Answer ``method`` with ``result``, or with ``result(params)`` if it is callable.

        Works for methods the fake does not implement (normally 404) and overrides built-in ones.
        A callable may raise `TelegramApiError` to answer with an error.
        """
        self._stubs[method.lower()] = result if callable(result) else (lambda _params: result)

    # --- HTTP plumbing -------------------------------------------------------------------

    def _touch(self) -> None:
        """Wake everything waiting for a state change (getUpdates polls, `wait_for`)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_change(self, seconds: float) -> None:
        """Sleep until the next state change or for ``seconds``, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    @staticmethod
    def _json(body: JSONDict, status: int = 200) -> web.Response:
        return web.json_response(body, status=status)

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return self._json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)

    async def _read_params(self, request: web.Request) -> tuple[dict[str, str], dict[str, _Upload]]:
        """Collect raw string params (query, urlencoded, multipart or JSON) and uploads."""
        raw: dict[str, str] = dict(request.query)
        uploads: dict[str, _Upload] = {}
        content_type = request.content_type
        if content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                data = await part.read(decode=True)
                if part.filename is not None:
                    ctype = part.headers.get("Content-Type")
                    uploads[part.name] = _Upload(part.name, part.filename, ctype, bytes(data))
                else:
                    raw[part.name] = bytes(data).decode(part.get_charset("utf-8"))
        elif content_type == "application/json":
            body = await request.json()
            for key, value in (body or {}).items():
                raw[key] = value if isinstance(value, str) else json.dumps(value)
        elif request.can_read_body:
            raw.update(parse_qsl(await request.text(), keep_blank_values=True))
        return raw, uploads

    async def _handle_method(self, request: web.Request) -> web.Response:
        """Serve one Bot API call: auth, decode, latency, faults, dispatch, record."""
        at = time.monotonic()
        method = request.match_info["method"]
        raw, uploads = await self._read_params(request)
        params = {key: _decode_param(key, value) for key, value in raw.items()}
        files = {name: upload.data for name, upload in uploads.items()}
        known = self._methods.get(method.lower())
        stub = self._stubs.get(method.lower())
        name = known[0] if known else method
        try:
            if request.match_info["token"] != self.token:
                raise TelegramApiError(401, "Unauthorized")
            if name != "getUpdates" and self.latency > 0:
                await asyncio.sleep(self.latency)
            holds = self._holds.get(name.lower())
            if holds:
                await holds.pop(0).wait()
            fault = self._pop_fault(name)
            if fault is not None and fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.drop_connection:
                self.calls.append(Call(name, params, files, False, error=DROPPED, at=at))
                self._touch()
                return _dropped(request)
            if fault is not None:
                raise TelegramApiError(fault.error_code, fault.description, fault.parameters)
            if stub is not None:
                result = stub(params)
            elif known is not None:
                result = await known[1](params, uploads)
            else:
                raise TelegramApiError(404, "Not Found: method not found")
        except TelegramApiError as exc:
            self.calls.append(Call(name, params, files, False, error=exc.payload(), at=at))
            self._touch()
            return self._json(exc.payload(), exc.error_code)
        self.calls.append(Call(name, params, files, True, result=result, at=at))
        self._touch()
        return self._json({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._json({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        path = request.match_info["file_path"]
        stored = self._files_by_path.get(path)
        if stored is None:
            return self._json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        self.downloads.append(path)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _pop_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method.lower())
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    def _timeout_report(self, timeout: float, last_error: LookupError | None) -> str:
        lines = [f"wait_for: condition not met within {timeout:.2f}s"]
        if last_error is not None:
            lines.append(f"last predicate error: {last_error!r}")
        lines.append(f"pending updates: {len(self._updates)}; recent calls (oldest first):")
        recent = self.recent_calls()
        lines.extend(f"  {call.short()}" for call in recent)
        if not recent:
            lines.append("  (none)")
        return "\n".join(lines)

    # --- state helpers ---------------------------------------------------------------------

    def _chat(self, chat_id: Any) -> JSONDict:
        """Resolve a ``chat_id`` param to a known chat, with Telegram's errors."""
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat: JSONDict | None = None
        if isinstance(chat_id, int):
            chat = self.chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            wanted = chat_id[1:].lower()
            chat = next(
                (c for c in self.chats.values() if c.get("username", "").lower() == wanted), None
            )
        if chat is None:
            raise _bad("chat not found")
        if chat["id"] in self.blocked_chats:
            raise TelegramApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _next_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _find_message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """Any live message (bot's or user's) in a chat, as a Message dict."""
        bot_message = self._bot_messages.get(chat_id, {}).get(message_id)
        if bot_message is not None:
            return None if bot_message.deleted else bot_message.raw
        if (chat_id, message_id) in self.deleted_user_messages:
            return None
        return self._user_messages.get(chat_id, {}).get(message_id)

    def _user_message(
        self,
        chat: ChatRef,
        user: JSONDict,
        content: JSONDict,
        *,
        reply_to: int | JSONDict | BotMessage | None,
        thread_id: int | None,
    ) -> JSONDict:
        chat_dict = self.chats.get(_chat_id_of(chat))
        if chat_dict is None:
            raise AssertionError(f"unknown chat {chat!r}: create it with private_chat/group_chat")
        chat_id = chat_dict["id"]
        message: JSONDict = {
            "message_id": self._next_id(chat_id),
            "from": _public_user(user),
            "chat": chat_dict,
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat_dict.get("is_forum"):
                message["is_topic_message"] = True
        replied_to_bot = False
        if reply_to is not None:
            if isinstance(reply_to, BotMessage):
                reply_to = reply_to.message_id
            target_id = reply_to if isinstance(reply_to, int) else int(reply_to["message_id"])
            target = self._find_message(chat_id, target_id)
            if target is None:
                raise AssertionError(f"no message {target_id} in chat {chat_id} to reply to")
            message["reply_to_message"] = _shallow_message(target)
            replied_to_bot = target.get("from", {}).get("id") == self.bot_id
        message.update(content)
        self._user_messages.setdefault(chat_id, {})[message["message_id"]] = message
        if self._bot_sees(chat_dict, message, replied_to_bot=replied_to_bot):
            self.enqueue_update({"message": message})
        else:
            self._touch()
        return message

    def _bot_sees(self, chat: JSONDict, message: JSONDict, *, replied_to_bot: bool) -> bool:
        """Group privacy mode: only commands (for this bot), messages that mention the bot and
        replies to the bot arrive."""
        if chat["type"] == "private" or not self.privacy_mode or replied_to_bot:
            return True
        text = message.get("text") or message.get("caption") or ""
        if re.search(rf"(?<![\w/])@{re.escape(self.bot_username)}\b", text, re.IGNORECASE):
            return True
        match = re.match(r"/[A-Za-z0-9_]+(?:@([A-Za-z0-9_]+))?", text)
        if not match:
            return False
        addressee = match.group(1)
        return addressee is None or addressee.lower() == self.bot_username.lower()

    def _pressable(self, chat: ChatRef, message_id: int | BotMessage) -> BotMessage:
        if isinstance(message_id, BotMessage):
            message_id = message_id.message_id
        message = self.message(chat, message_id)
        if message.deleted:
            raise AssertionError(f"message {message_id} was deleted; nothing to press")
        return message

    def _enqueue_callback(
        self, message: BotMessage, user: JSONDict, data: str, *, aged: bool = False
    ) -> str:
        query_id = f"{self.bot_id}{next(self._counter):08d}"
        self._queries[query_id] = _Query(message.chat_id, message.message_id, time.monotonic())
        shown = message.raw
        if aged:
            shown = {"chat": message.raw["chat"], "message_id": message.message_id, "date": 0}
        self.enqueue_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": _public_user(user),
                    "message": shown,
                    "chat_instance": str(abs(message.chat_id * 7919 + self.bot_id)),
                    "data": data,
                }
            }
        )
        return query_id

    def _is_allowed(self, update: JSONDict) -> bool:
        kind = next(key for key in update if key != "update_id")
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in _NOT_BY_DEFAULT

    @staticmethod
    def _scope_key(scope: JSONDict | None, language_code: str | None) -> str:
        """Key of `commands`: compact sorted JSON of the scope, plus ``|lang`` if given."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True, separators=(",", ":"))
        return f"{key}|{language_code}" if language_code else key

    # --- content validation -----------------------------------------------------------------

    def _parse(
        self, text: str, parse_mode: str | None, entities: Any
    ) -> tuple[str, list[JSONDict]]:
        """Apply ``parse_mode`` (or explicit ``entities``) like Telegram does."""
        mode = (parse_mode or "").lower()
        try:
            if mode == "html":
                return parse_html(text, strict_ampersand=self.strict_html_ampersand)
            if mode == "markdownv2":
                return parse_markdown(text, v2=True)
            if mode == "markdown":
                return parse_markdown(text, v2=False)
        except EntityParseError as exc:
            raise _bad(f"can't parse entities: {exc}") from None
        if mode:
            raise _bad(f"unsupported parse_mode {parse_mode!r}")
        if entities is not None and not isinstance(entities, list):
            raise _bad("can't parse entities JSON object")
        return text, list(entities or [])

    def _text(self, params: JSONDict) -> tuple[str, list[JSONDict]]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        plain, entities = self._parse(text, params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT_LENGTH:
            raise _bad(TEXT_TOO_LONG.removeprefix("Bad Request: "))
        return plain, entities

    def _caption(self, params: JSONDict) -> tuple[str | None, list[JSONDict]]:
        caption = params.get("caption")
        if caption is None or caption == "":
            return None, []
        plain, entities = self._parse(
            str(caption), params.get("parse_mode"), params.get("caption_entities")
        )
        if utf16_len(plain) > MAX_CAPTION_LENGTH:
            raise _bad(CAPTION_TOO_LONG.removeprefix("Bad Request: "))
        return plain, entities

    @staticmethod
    def _markup(value: Any, *, inline_only: bool = False) -> JSONDict | None:
        """Validate a ``reply_markup`` param; returns it (a dict) or None."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in value:
            rows = value["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad("can't parse inline keyboard markup JSON object")
            for button in (b for row in rows for b in row):
                FakeTelegram._check_inline_button(button)
            return value
        if inline_only:
            raise _bad("inline keyboard expected")
        if not {"keyboard", "remove_keyboard", "force_reply"} & value.keys():
            raise _bad("can't parse reply keyboard markup JSON object")
        return value

    @staticmethod
    def _check_inline_button(button: Any) -> None:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad("can't parse inline keyboard button: Text must be a String")
        actions = _INLINE_BUTTON_ACTIONS & button.keys()
        if not actions:
            raise _bad(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline "
                "keyboard"
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not data:
                raise _bad("BUTTON_DATA_INVALID")
            if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
        if "url" in button and not re.match(r"(https?|tg)://\S+", str(button["url"])):
            raise _bad("BUTTON_URL_INVALID")

    def _reply_target(self, chat_id: int, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise _bad("can't parse reply parameters JSON object")
        target = self._find_message(chat_id, reply["message_id"])
        if target is None and not reply.get("allow_sending_without_reply"):
            raise _bad("message to be replied not found")
        return target

    # --- files -----------------------------------------------------------------------------

    def _store_photo(self, data: bytes) -> tuple[list[JSONDict], bytes]:
        """Decode an uploaded photo, store its Telegram-style sizes, return (sizes, original)."""
        if len(data) > MAX_PHOTO_UPLOAD:
            raise _bad("file is too big")
        try:
            with Image.open(io.BytesIO(data)) as image:
                if self.render_photo_sizes:
                    image.load()
                width, height = image.size
                if width + height > 10_000 or max(width, height) > 20 * min(width, height):
                    raise _bad("PHOTO_INVALID_DIMENSIONS")
                if self.render_photo_sizes:
                    rendered = self._photo_renditions(image, data)
                else:
                    rendered = self._photo_size_stubs(width, height, data)
        except TelegramApiError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise _bad("IMAGE_PROCESS_FAILED") from None
        sizes: list[JSONDict] = []
        stored_sizes: list[StoredFile] = []
        digests: dict[int, str] = {}
        for w, h, blob in rendered:
            digest = digests.get(id(blob)) or hashlib.sha1(blob).hexdigest()[:16]
            digests[id(blob)] = digest
            number = next(self._counter)
            stored = StoredFile(
                file_id=f"AgACAgIAAxkBAAI{self.bot_id:x}{number:06d}",
                file_unique_id=f"AQAD{digest}",
                kind="photo",
                data=blob,
                file_path=f"photos/file_{number}.jpg",
                width=w,
                height=h,
                mime_type="image/jpeg",
                original=data,
            )
            stored_sizes.append(stored)
            sizes.append(stored.as_photo_size())
        for stored in stored_sizes:
            stored.photo_sizes = sizes
            self.files[stored.file_id] = stored
            self._files_by_path[stored.file_path] = stored
        return sizes, data

    @staticmethod
    def _photo_size_stubs(width: int, height: int, original: bytes) -> list[tuple[int, int, bytes]]:
        """The sizes `_photo_renditions` would make, each serving the original bytes."""
        long_side = max(width, height)
        sizes: list[tuple[int, int, bytes]] = []
        for cap in PHOTO_SIZE_CAPS:
            if long_side <= cap:
                sizes.append((width, height, original))
                break
            scale = cap / long_side
            sizes.append((max(1, round(width * scale)), max(1, round(height * scale)), original))
        return sizes

    @staticmethod
    def _photo_renditions(image: Image.Image, original: bytes) -> list[tuple[int, int, bytes]]:
        """Telegram-like sizes: long side capped at 90/320/800/1280/2560, never upscaled.

        The largest size is the original bytes when it fits in 2560 px; others are JPEGs.
        """
        width, height = image.size
        long_side = max(width, height)
        renditions: list[tuple[int, int, bytes]] = []
        rgb = image.convert("RGB")
        for cap in PHOTO_SIZE_CAPS:
            if long_side <= cap:
                renditions.append((width, height, original))
                break
            scale = cap / long_side
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            buffer = io.BytesIO()
            rgb.resize((w, h)).save(buffer, format="JPEG", quality=80)
            renditions.append((w, h, buffer.getvalue()))
        return renditions

    def _store_document(
        self, data: bytes, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        if len(data) > MAX_DOCUMENT_UPLOAD:
            raise _bad("file is too big")
        if not mime_type or mime_type == "application/octet-stream":
            guessed = mimetypes.guess_type(file_name or "", strict=False)[0]
            mime_type = guessed or mime_type or "application/octet-stream"
        number = next(self._counter)
        suffix = re.search(r"\.[A-Za-z0-9]{1,8}$", file_name or "")
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{self.bot_id:x}{number:06d}",
            file_unique_id=f"AgAD{hashlib.sha1(data).hexdigest()[:16]}",
            kind="document",
            data=data,
            file_path=f"documents/file_{number}{suffix.group(0) if suffix else ''}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _input_file(
        self, value: Any, uploads: dict[str, _Upload], field_name: str
    ) -> _Upload | StoredFile:
        """Resolve a media param: a multipart upload (direct or ``attach://``) or a file_id."""
        if value is None:
            upload = uploads.get(field_name)
            if upload is None:
                raise _bad(f"there is no {field_name} in the request")
            return upload
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {field_name} in the request")
        if value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f"file {value} not found in the request")
            return upload
        stored = self.files.get(value)
        if stored is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        return stored

    def _photo_content(self, source: _Upload | StoredFile) -> tuple[list[JSONDict], bytes]:
        if isinstance(source, StoredFile):
            if source.kind != "photo":
                raise _bad(f"type of file mismatch: can't use file of type {source.kind} as Photo")
            return source.photo_sizes, source.original or source.data
        return self._store_photo(source.data)

    def _document_content(self, source: _Upload | StoredFile) -> StoredFile:
        if isinstance(source, StoredFile):
            if source.kind != "document":
                raise _bad(
                    f"type of file mismatch: can't use file of type {source.kind} as Document"
                )
            return source
        return self._store_document(source.data, source.filename, source.content_type)

    # --- sending ----------------------------------------------------------------------------

    def _new_bot_message(
        self,
        chat: JSONDict,
        params: JSONDict,
        content: JSONDict,
        reply_target: JSONDict | None,
        markup: JSONDict | None,
        *,
        kind: str,
        media_group_id: str | None = None,
    ) -> BotMessage:
        """Store a message the bot sends and build its Message object."""
        chat_id = chat["id"]
        thread_id = params.get("message_thread_id")
        raw: JSONDict = {
            "message_id": self._next_id(chat_id),
            "from": _public_user(self.bot_user),
            "chat": chat,
            "date": int(time.time()),
        }
        if thread_id is not None:
            raw["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                raw["is_topic_message"] = True
        if reply_target is not None:
            raw["reply_to_message"] = _shallow_message(reply_target)
        if media_group_id is not None:
            raw["media_group_id"] = media_group_id
        raw.update(content)
        if markup and "inline_keyboard" in markup:
            raw["reply_markup"] = markup
        message = BotMessage(
            message_id=raw["message_id"],
            chat_id=chat_id,
            thread_id=thread_id,
            parse_mode=params.get("parse_mode"),
            reply_markup=markup,
            reply_to_message_id=reply_target["message_id"] if reply_target else None,
            kind=kind,
            media_group_id=media_group_id,
            raw=raw,
            sent_at=time.monotonic(),
        )
        self._bot_messages.setdefault(chat_id, {})[message.message_id] = message
        return message

    @staticmethod
    def _with_caption(content: JSONDict, caption: str | None, entities: list[JSONDict]) -> None:
        if caption is not None:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities

    async def _send_message(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        markup = self._markup(params.get("reply_markup"))
        plain, entities = self._text(params)
        reply_target = self._reply_target(chat["id"], params)
        content: JSONDict = {"text": plain}
        if entities:
            content["entities"] = entities
        message = self._new_bot_message(chat, params, content, reply_target, markup, kind="text")
        message.text = params["text"]
        message.entities = entities
        return message.raw

    async def _send_photo(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        markup = self._markup(params.get("reply_markup"))
        caption, entities = self._caption(params)
        reply_target = self._reply_target(chat["id"], params)
        sizes, original = self._photo_content(
            self._input_file(params.get("photo"), uploads, "photo")
        )
        content: JSONDict = {"photo": sizes}
        self._with_caption(content, caption, entities)
        if params.get("show_caption_above_media"):
            content["show_caption_above_media"] = True
        message = self._new_bot_message(chat, params, content, reply_target, markup, kind="photo")
        message.caption = params.get("caption") or None
        message.entities = entities
        message.photo = original
        return message.raw

    async def _send_document(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        markup = self._markup(params.get("reply_markup"))
        caption, entities = self._caption(params)
        reply_target = self._reply_target(chat["id"], params)
        stored = self._document_content(
            self._input_file(params.get("document"), uploads, "document")
        )
        content: JSONDict = {"document": stored.as_document()}
        self._with_caption(content, caption, entities)
        message = self._new_bot_message(
            chat, params, content, reply_target, markup, kind="document"
        )
        message.caption = params.get("caption") or None
        message.entities = entities
        message.document = stored.data
        message.file_name = stored.file_name
        message.mime_type = stored.mime_type
        return message.raw

    async def _send_media_group(
        self, params: JSONDict, uploads: dict[str, _Upload]
    ) -> list[JSONDict]:
        chat = self._chat(params.get("chat_id"))
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad("wrong number of messages to send; must be between 2 and 10")
        reply_target = self._reply_target(chat["id"], params)
        kinds = {item.get("type") for item in media if isinstance(item, dict)}
        if "document" in kinds and len(kinds) > 1:
            # "Documents and audio files can be only grouped in an album with messages of the
            # same type" (Bot API, sendMediaGroup; quoted in vendelieu/telegram-bot#420).
            raise _bad("document can't be mixed with other media types")
        prepared = [self._media_content(item, uploads) for item in media]  # validate all first
        group_id = str(10**17 + next(self._counter))
        results = []
        for item, (content, attributes) in zip(media, prepared, strict=True):
            message = self._new_bot_message(
                chat,
                params,
                content,
                reply_target,
                None,
                kind=item["type"],
                media_group_id=group_id,
            )
            message.caption = item.get("caption") or None
            message.parse_mode = item.get("parse_mode")
            message.entities = content.get("caption_entities", [])
            for key, value in attributes.items():
                setattr(message, key, value)
            results.append(message.raw)
        return results

    def _media_content(self, item: Any, uploads: dict[str, _Upload]) -> tuple[JSONDict, JSONDict]:
        """Resolve one InputMedia (photo or document).

        Returns the Message content keys and the `BotMessage` attributes to set.
        """
        if not isinstance(item, dict) or item.get("type") not in ("photo", "document"):
            raise _bad("can't parse InputMedia JSON object (the fake supports photo, document)")
        caption, entities = self._caption(item)
        source = self._input_file(item.get("media"), uploads, "media")
        content: JSONDict = {}
        attributes: JSONDict
        if item["type"] == "photo":
            sizes, original = self._photo_content(source)
            content["photo"] = sizes
            attributes = {"kind": "photo", "photo": original, "document": None, "file_name": None}
        else:
            stored = self._document_content(source)
            content["document"] = stored.as_document()
            attributes = {
                "kind": "document",
                "photo": None,
                "document": stored.data,
                "file_name": stored.file_name,
                "mime_type": stored.mime_type,
            }
        self._with_caption(content, caption, entities)
        return content, attributes

    async def _send_chat_action(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        chat = self._chat(params.get("chat_id"))
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat["id"], action, time.monotonic()))
        return True

    async def _set_message_reaction(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        chat = self._chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or self._find_message(chat["id"], message_id) is None:
            raise _bad("message to react not found")
        reaction = params.get("reaction") or []
        if not isinstance(reaction, list) or len(reaction) > 1:  # bots: at most one
            raise _bad("REACTION_INVALID")
        emoji = []
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji":
                raise _bad("REACTION_INVALID")
            if item.get("emoji") not in REACTION_EMOJI:
                raise _bad("REACTION_INVALID")
            emoji.append(item["emoji"])
        self.reactions[(chat["id"], message_id)] = emoji
        return True

    # --- editing and deleting --------------------------------------------------------------

    def _editable(self, params: JSONDict) -> BotMessage:
        if params.get("inline_message_id") is not None:
            raise _bad("MESSAGE_ID_INVALID")  # inline messages are not modelled
        chat = self._chat(params.get("chat_id"))
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        message = self._bot_messages.get(chat["id"], {}).get(message_id)
        if message is None or message.deleted:
            if message_id in self._user_messages.get(chat["id"], {}):
                raise _bad("message can't be edited")
            raise _bad("message to edit not found")
        return message

    @staticmethod
    def _apply_edit(message: BotMessage, content: JSONDict, markup: JSONDict | None) -> JSONDict:
        """Replace content keys and the inline keyboard; raise if nothing would change."""
        old = message.raw
        new = {key: value for key, value in old.items() if key not in ("reply_markup",)}
        for key, value in content.items():
            if value is None or value == []:
                new.pop(key, None)
            else:
                new[key] = value
        if markup:
            new["reply_markup"] = markup
        compared = ("text", "entities", "caption", "caption_entities", "photo", "document")
        if all(old.get(k) == new.get(k) for k in compared) and _markup_key(
            old.get("reply_markup")
        ) == _markup_key(new.get("reply_markup")):
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        new["edit_date"] = int(time.time())
        message.history.append(old)
        message.raw = new
        message.reply_markup = markup
        message.edits += 1
        return new

    async def _edit_message_text(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        message = self._editable(params)
        markup = self._markup(params.get("reply_markup"), inline_only=True)
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        plain, entities = self._text(params)
        raw = self._apply_edit(message, {"text": plain, "entities": entities}, markup)
        message.text = params["text"]
        message.parse_mode = params.get("parse_mode")
        message.entities = entities
        return raw

    async def _edit_message_caption(
        self, params: JSONDict, uploads: dict[str, _Upload]
    ) -> JSONDict:
        message = self._editable(params)
        markup = self._markup(params.get("reply_markup"), inline_only=True)
        if message.kind == "text":
            raise _bad("there is no caption in the message to edit")
        caption, entities = self._caption(params)
        raw = self._apply_edit(message, {"caption": caption, "caption_entities": entities}, markup)
        message.caption = params.get("caption") or None
        message.parse_mode = params.get("parse_mode")
        message.entities = entities
        return raw

    async def _edit_message_reply_markup(
        self, params: JSONDict, uploads: dict[str, _Upload]
    ) -> JSONDict:
        message = self._editable(params)
        markup = self._markup(params.get("reply_markup"), inline_only=True)
        return self._apply_edit(message, {}, markup)

    async def _edit_message_media(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        """editMessageMedia (core.telegram.org/bots/api#editmessagemedia): "Use this method to
        edit animation, audio, document, photo, or video messages, or to add media to text
        messages. If a message is part of a message album, then it can be edited only to an
        audio for audio albums, only to a document for document albums and to a photo or a
        video otherwise." A text message is refused here, as before Bot API 9.x's "add media
        to text messages" (the bot never does that). The new caption is checked as any
        caption (MAX_CAPTION_LENGTH UTF-16 code units after entity parsing); without one the
        message loses its caption, without reply_markup its keyboard. The same file_id with
        the same caption and keyboard is "message is not modified" (`_apply_edit`). An album
        changed to another type is refused with the MTProto error Telegram forwards
        (MEDIA_GROUPED_INVALID, telegramdesktop/tdesktop#30376)."""
        message = self._editable(params)
        markup = self._markup(params.get("reply_markup"), inline_only=True)
        if message.kind == "text":
            raise _bad("there is no media in the message to edit")
        media = params.get("media")
        if not isinstance(media, dict):
            raise _bad("can't parse InputMedia JSON object")
        if message.media_group_id is not None and media.get("type") != message.kind:
            allowed = ("photo", "video") if message.kind in ("photo", "video") else (message.kind,)
            if media.get("type") not in allowed:
                raise _bad("MEDIA_GROUPED_INVALID")
        content, attributes = self._media_content(media, uploads)
        replaced: JSONDict = {"photo": None, "document": None, "caption": None}
        replaced["caption_entities"] = None
        raw = self._apply_edit(message, {**replaced, **content}, markup)
        message.caption = media.get("caption") or None
        message.parse_mode = media.get("parse_mode")
        message.entities = content.get("caption_entities", [])
        for key, value in attributes.items():
            setattr(message, key, value)
        return raw

    def _delete_one(self, chat_id: int, message_id: Any) -> bool:
        message = self._bot_messages.get(chat_id, {}).get(message_id)
        if message is not None and not message.deleted:
            message.deleted = True
            return True
        user_messages = self._user_messages.get(chat_id, {})
        if message_id in user_messages and (chat_id, message_id) not in self.deleted_user_messages:
            self.deleted_user_messages.add((chat_id, message_id))
            return True
        return False

    async def _delete_message(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        chat = self._chat(params.get("chat_id"))
        if not self._delete_one(chat["id"], params.get("message_id")):
            raise _bad("message to delete not found")
        return True

    async def _delete_messages(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        chat = self._chat(params.get("chat_id"))
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message identifiers are not specified")
        for message_id in ids:
            self._delete_one(chat["id"], message_id)
        return True

    # --- callbacks, commands, files, polling ---------------------------------------------

    async def _answer_callback_query(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        query_id = params.get("callback_query_id")
        query = self._queries.get(query_id) if isinstance(query_id, str) else None
        if (
            query is None
            or query.answered
            or time.monotonic() - query.created > self.callback_query_ttl
        ):
            raise _bad(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        query.answered = True
        keys = ("text", "show_alert", "url", "cache_time")
        self.callback_answers[query_id] = {key: params[key] for key in keys if key in params}
        return True

    async def _set_my_commands(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.fullmatch(
                str(command.get("command", ""))
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._scope_key(params.get("scope"), params.get("language_code"))
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(
        self, params: JSONDict, uploads: dict[str, _Upload]
    ) -> list[JSONDict]:
        key = self._scope_key(params.get("scope"), params.get("language_code"))
        return self.commands.get(key, [])

    async def _delete_my_commands(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        self.commands.pop(self._scope_key(params.get("scope"), params.get("language_code")), None)
        return True

    async def _get_file(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        file_id = params.get("file_id")
        stored = self.files.get(file_id) if isinstance(file_id, str) else None
        if stored is None:
            raise _bad("wrong file_id or the file is temporarily unavailable")
        if len(stored.data) > MAX_DOWNLOAD:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _get_me(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        return dict(self.bot_user)

    async def _true(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        return True

    async def _delete_webhook(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    async def _set_webhook(self, params: JSONDict, uploads: dict[str, _Upload]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, uploads)
        if not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        port = re.match(r"https://[^/:]+(?::(\d+))?", url)
        if port is None or int(port.group(1) or 443) not in (80, 88, 443, 8443):
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {key: value for key, value in params.items() if key != "certificate"}
        return True

    async def _get_webhook_info(self, params: JSONDict, uploads: dict[str, _Upload]) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.webhook_last_error:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return info

    async def _get_updates(self, params: JSONDict, uploads: dict[str, _Upload]) -> list[JSONDict]:
        """Long polling: confirm by ``offset``, then wait up to ``timeout`` for updates."""
        if self.webhook is not None:
            raise TelegramApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        limit = params.get("limit")
        limit = min(max(limit, 1), 100) if isinstance(limit, int) else 100
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        timeout = params.get("timeout")
        timeout = float(timeout) if isinstance(timeout, int | float) else 0.0
        deadline = time.monotonic() + timeout
        while True:
            ready = [update for update in self._updates if self._is_allowed(update)]
            remaining = deadline - time.monotonic()
            if ready or self._closing or remaining <= 0:
                return ready[:limit]
            await self._wait_change(remaining)

"""The callback-data codec: what each inline button sends back when pressed.

Data is `<code>:<value>`, e.g. `a:42` (Accept on round 42): one letter per action, then a
round id, a session id, a page number or a `name=value` setting. Anything else is forged or
stale. Each action also has a regex (`callback_pattern`) that its CallbackQueryHandler is
registered with, so a press reaches exactly one handler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CALLBACK_DATA_LIMIT = 64
"""Most bytes Telegram carries in a button's callback data."""

ACCEPT, EDIT, STOP, RETRY, AUTO = "accept", "edit", "stop", "retry", "auto"  # on a round id
REDRAW = "redraw"  # on a round id
FORMATS, FORMATS_CONFIRM = "formats", "formats_confirm"  # the campaign pack, on a round id
ROUND_ACTIONS = frozenset({ACCEPT, EDIT, STOP, RETRY, AUTO, REDRAW, FORMATS, FORMATS_CONFIRM})
FORMAT_RETRY = "format_retry"  # one format of a pack, on its pack item id
HISTORY = "history"  # on a page number, counted from 1
SESSION, GALLERY = "session", "gallery"  # on a session id
SESSION_ACTIONS = frozenset({SESSION, GALLERY})
SETTING = "setting"  # on "name=value"

_ACTION_CODES = {
    ACCEPT: "a",
    EDIT: "e",
    STOP: "s",
    RETRY: "r",
    AUTO: "u",
    REDRAW: "w",
    HISTORY: "h",
    SESSION: "v",
    GALLERY: "g",
    SETTING: "c",
    FORMATS: "f",
    FORMATS_CONFIRM: "k",
    FORMAT_RETRY: "y",
}
_CODE_ACTIONS = {code: action for action, code in _ACTION_CODES.items()}
_NUMBER = r"[1-9][0-9]{0,17}"
_SETTING = r"[a-z_]{1,20}=[a-z0-9_-]{1,20}"
_NUMBER_RE = re.compile(_NUMBER)
_SETTING_RE = re.compile(_SETTING)


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A decoded button: the action and what it acts on (a number, or `name=value`)."""

    action: str
    value: str

    @property
    def number(self) -> int:
        """The round id, session id or page number the press is about."""
        return int(self.value)


def encode_callback(action: str, value: int | str) -> str:
    """Return the callback data for an action, e.g. `a:42` (always <= 64 bytes)."""
    return f"{_ACTION_CODES[action]}:{value}"


def decode_callback(data: str | None) -> ButtonPress | None:
    """Return the press the data encodes, or None for anything forged or malformed."""
    if not data or len(data.encode()) > CALLBACK_DATA_LIMIT:
        return None
    code, _colon, value = data.partition(":")
    action = _CODE_ACTIONS.get(code)
    if action is None:
        return None
    value_re = _SETTING_RE if action == SETTING else _NUMBER_RE
    if not value_re.fullmatch(value):
        return None
    return ButtonPress(action, value)


def callback_pattern(action: str) -> re.Pattern[str]:
    """Return the regex matching exactly the callback data `decode_callback` accepts for the
    action (for `CallbackQueryHandler(pattern=...)`, which matches from the start)."""
    value = _SETTING if action == SETTING else _NUMBER
    return re.compile(rf"{re.escape(_ACTION_CODES[action])}:{value}\Z")

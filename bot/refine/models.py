"""Values the domain hands to and gets from its callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from storage.records import RoundRecord, SessionRecord

MAX_BRIEF_CHARS = 2000
"""Longer briefs are refused: prompts grow each round, and providers cap prompt length."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a conversation happens: a chat, and the forum topic within it (0 for none)."""

    chat_id: int
    thread_id: int = 0
    chat_type: str = "private"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: a Telegram user id and the name to credit in captions."""

    user_id: int
    name: str


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """How a round ended.

    `error` is set when generation failed (no image) or the critique failed (image, no
    critique); `cancelled` when /cancel stopped it.
    """

    round: RoundRecord
    critique: Critique | None = None
    error: BackendError | None = None
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class StopResult:
    """A stopped session, the round kept, and its full-resolution image."""

    session: SessionRecord
    round: RoundRecord
    image: bytes
    mime: str
    round_count: int


class RoundListener(Protocol):
    """Told about a round's progress so the chat can show it while the round runs."""

    async def generating(self, round: RoundRecord) -> None:
        """The round is stored as pending and the image is being drawn."""

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        """The image is stored; show it. Return the id of the message that shows it, if any."""

    async def critiquing(self, round: RoundRecord) -> None:
        """The critic is looking at the image."""

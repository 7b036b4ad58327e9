"""Values the domain hands to and gets from its callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from storage.records import ChatSettings, RoundRecord, SessionRecord

MAX_BRIEF_CHARS = 2000
"""Longer briefs are refused: prompts grow each round, and providers cap prompt length."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a conversation happens: a chat, and the forum topic within it (0 for none)."""

    chat_id: int
    thread_id: int = 0
    chat_type: str = "private"

    @property
    def is_group(self) -> bool:
        """Whether several people share this scope (group and supergroup ids are negative)."""
        return self.chat_type in ("group", "supergroup") or self.chat_id < 0


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: a Telegram user id and the name to credit in captions."""

    user_id: int
    name: str
    language: str | None = None  # Telegram's language_code of the user


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """Rounds a day per user and per chat (0 = unlimited); exempt users (admins) have none."""

    rounds_per_user_per_day: int = 0
    rounds_per_chat_per_day: int = 0
    exempt_user_ids: frozenset[int] | None = frozenset()  # None: everyone is exempt


@dataclass(frozen=True, slots=True)
class PendingRound:
    """A round stored as pending, its session reserved for it, ready to run."""

    session: SessionRecord
    round: RoundRecord
    actor: Actor
    scope: Scope
    settings: ChatSettings  # as they were when the round began


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
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class ContactSheet:
    """A session's images as one PNG grid."""

    session: SessionRecord
    png: bytes
    sha256: str
    tiles: int


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
        """The round is stored as pending and the image is about to be drawn.

        Raising AudienceGone here cancels the round before anything is paid for.
        """

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        """The image is stored; show it. Return the id of the message that shows it, if any.

        Raising AudienceGone here skips the critique (nobody would read it).
        """

    async def critiquing(self, round: RoundRecord) -> None:
        """The critic is looking at the image."""

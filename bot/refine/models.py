"""Values the domain hands to and gets from its callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from storage.records import (
    AutopilotRunRecord,
    ChatSettings,
    DraftRecord,
    RoundRecord,
    SessionRecord,
)

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


# --- autopilot ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AutopilotPlan:
    """How far an autopilot run may go: rounds, drafts per round, the score that ends it."""

    rounds: int
    drafts: int
    threshold: int

    @property
    def max_images(self) -> int:
        """The most images the run can pay for."""
        return self.rounds * self.drafts


@dataclass(frozen=True, slots=True)
class PendingAutopilot:
    """An autopilot run stored as running, its session reserved for it, ready to run.

    `start` is the round it continues from (None when it starts from a brief).
    """

    session: SessionRecord
    run: AutopilotRunRecord
    start: RoundRecord | None
    plan: AutopilotPlan
    actor: Actor
    scope: Scope
    settings: ChatSettings  # as they were when the run began


@dataclass(frozen=True, slots=True)
class AutopilotProgress:
    """Where a run is, for its listener.

    `stage`: "start" (nothing paid yet), "round" (round `round_index` begins drawing its
    drafts), "draft" (one draft is drawn and judged, or failed), "done" (the round kept its
    best draft). `best` is the best round so far (the start round counts), with `best_quality`.
    """

    plan: AutopilotPlan
    stage: str
    round_index: int = 0
    round: RoundRecord | None = None
    drafts_finished: int = 0
    images: int = 0
    best: RoundRecord | None = None
    best_quality: int | None = None


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    """How one draft ended: its critique, or the error that stopped it."""

    draft: DraftRecord
    critique: Critique | None = None
    error: BackendError | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class AutopilotRound:
    """One round of a run: the round (holding its best draft) and all its drafts.

    `kept` is the number of the draft the round kept (None when none had an image).
    """

    round: RoundRecord
    critique: Critique | None
    drafts: tuple[DraftOutcome, ...]
    error: BackendError | None = None
    kept: int | None = None


@dataclass(frozen=True, slots=True)
class AutopilotOutcome:
    """How a run ended.

    `best` is the best round across the run, the start round included (never simply the
    last); `stop_reason` is one of the STOP_* names in bot/refine/autopilot.py.
    """

    run: AutopilotRunRecord
    session: SessionRecord
    plan: AutopilotPlan
    start: RoundRecord | None
    rounds: tuple[AutopilotRound, ...]
    best: RoundRecord | None
    best_critique: Critique | None
    stop_reason: str
    error: BackendError | None = None
    images: int = 0
    cost_usd: float | None = None

    @property
    def cancelled(self) -> bool:
        return self.stop_reason in ("cancelled", "gone")

    @property
    def failed_round(self) -> RoundRecord | None:
        """The run's last round when it produced no image (it can be retried), else None."""
        if self.rounds and self.rounds[-1].round.image_sha is None:
            return self.rounds[-1].round
        return None


class AutopilotListener(Protocol):
    """Told about an autopilot run's progress so the chat (or a terminal) can show it."""

    async def progress(self, progress: AutopilotProgress) -> None:
        """The run moved on. Raising AudienceGone stops it before the next paid call."""

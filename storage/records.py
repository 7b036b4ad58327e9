"""Plain records read from the database. They carry data only; the domain gives them meaning."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class SessionStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"


class RoundStatus(StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    CRITIQUING = "critiquing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def running(self) -> bool:
        return self in (RoundStatus.PENDING, RoundStatus.GENERATING, RoundStatus.CRITIQUING)


RUNNING_STATUSES: tuple[RoundStatus, ...] = tuple(
    status for status in RoundStatus if status.running
)
"""The statuses of a round (or draft) still in flight: pending, generating, critiquing."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    chat_id: int
    thread_id: int
    started_by: int
    brief: str
    status: SessionStatus
    chosen_round_id: int | None
    created_at: str
    updated_at: str
    reference_sha: str | None = None
    final_message_id: int | None = None  # the message that delivered Stop's document


@dataclass(frozen=True, slots=True)
class RoundRecord:
    id: int
    session_id: int
    parent_round_id: int | None
    number: int
    prompt: str
    action: str
    acted_by: int
    acted_by_name: str
    status: RoundStatus
    error_kind: str | None
    error: str | None
    image_sha: str | None
    critique: str | None
    score: int | None
    message_id: int | None
    created_at: str
    image_at: str | None
    finished_at: str | None
    generate_ms: int | None
    critique_ms: int | None
    fidelity: int | None = None
    autopilot_id: int | None = None
    draft_count: int | None = None
    edit_of: int | None = None  # the round whose picture this one edited; None: a redraw
    instruction: str | None = None  # the change an edit was asked to make
    kind_note: str | None = None  # why it was drawn afresh although an edit was asked for
    size_note: str | None = None  # its picture's size when not the one asked for

    @property
    def kind(self) -> str:
        """ "edit" (the picture of round `edit_of`, changed as `instruction` says) or
        "redraw" (a new picture from `prompt`)."""
        return "redraw" if self.edit_of is None else "edit"


@dataclass(frozen=True, slots=True)
class DraftRecord:
    """One of the images a round drew (a manual round draws one; an autopilot round several,
    in parallel); the round keeps one of them, the best."""

    id: int
    round_id: int
    number: int
    seed: int | None
    status: RoundStatus
    image_sha: str | None
    critique: str | None
    score: int | None
    fidelity: int | None
    error_kind: str | None
    error: str | None
    generate_ms: int | None
    critique_ms: int | None
    created_at: str
    finished_at: str | None
    kept: int = 0  # 1 for the draft its round kept
    edit_of: int | None = None  # the round whose picture this draft edits; None: a redraw
    instruction: str | None = None  # the change the edit was asked to make
    kind_note: str | None = None  # why it was drawn afresh although an edit was asked for
    size_note: str | None = None  # its picture's size when not the one asked for

    @property
    def kind(self) -> str:
        """ "edit" or "redraw", as for a round."""
        return "redraw" if self.edit_of is None else "edit"


@dataclass(frozen=True, slots=True)
class DraftPlan:
    """What one draft of a new round will draw: with `edit_of`, an edit of that round's
    picture as `instruction` says; without, a new picture from the round's prompt."""

    seed: int | None
    edit_of: int | None = None
    instruction: str | None = None


class AutopilotStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class AutopilotRunRecord:
    """One autopilot run: its plan, how it ended and the best round it found."""

    id: int
    session_id: int
    start_round_id: int | None
    rounds: int
    drafts: int
    threshold: int
    status: AutopilotStatus
    stop_reason: str | None
    best_round_id: int | None
    started_by: int
    created_at: str
    finished_at: str | None
    progress_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class ImageRecord:
    sha256: str
    path: str
    mime: str
    width: int
    height: int
    size_bytes: int
    created_at: str


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """A chat's own choices; they apply from its next round."""

    chat_id: int
    image_format: str | None = None  # None: the configured IMAGE_FORMAT
    quality: str | None = None  # None: the configured IMAGE_QUALITY
    language: str | None = None  # None: the acting user's Telegram language
    press_policy: str = "anyone"  # or "starter"
    updated_at: str = ""
    marketplace: str = "off"  # "on": the campaign pack includes a Marketplace image


@dataclass(frozen=True, slots=True)
class PendingEdit:
    chat_id: int
    thread_id: int
    user_id: int
    round_id: int
    prompt_message_id: int | None
    created_at: str


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One paid call (an image or a critique): what it used and its estimated cost."""

    round_id: int
    chat_id: int
    user_id: int
    kind: str
    model: str
    units: dict[str, Any]
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Paid calls of one user in one chat over a period."""

    chat_id: int
    user_id: int
    rounds: int
    images: int
    cost_usd: float | None
    unpriced: int


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A session with the figures `/history` shows."""

    session: SessionRecord
    rounds: int
    best_score: int | None
    edits: int = 0  # rounds that edited an earlier round's picture


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one pruning of old image files did.

    `pruned`: sha256 of every image whose row was marked pruned now (its file deleted, or
    already missing); `freed_bytes`: bytes of the files deleted; `kept_chosen`: images old
    enough to prune that were kept because a stopped session chose them.
    """

    pruned: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_chosen: int = 0


class DeliveryKind(StrEnum):
    """What the chat is owed (see storage/deliveries.py)."""

    ROUND = "round"  # the round's photo, its critique and its buttons
    DOCUMENT = "document"  # Stop's full-resolution document of the kept round
    AUTOPILOT = "autopilot"  # an interrupted run: its progress message ended, its best shown


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One thing the chat must still be sent, owed since `created_at`, tried `attempts`
    times; `round_id` for rounds and documents, `autopilot_id` for autopilot runs."""

    key: str
    kind: DeliveryKind
    round_id: int | None
    autopilot_id: int | None
    created_at: str
    attempts: int

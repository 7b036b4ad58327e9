"""Values the domain hands to and gets from its callers: who asks where, what a run may do,
what is pending, how it ended, and the listener that is told while it runs."""

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
class ContactSheet:
    """A session's images as one PNG grid."""

    session: SessionRecord
    png: bytes
    sha256: str
    tiles: int  # the images it shows: the session's last SHEET_MAX_TILES
    images: int = 0  # the session's images in all (0: as many as it shows)


@dataclass(frozen=True, slots=True)
class StopResult:
    """A stopped session, the round kept, and its full-resolution image."""

    session: SessionRecord
    round: RoundRecord
    image: bytes
    mime: str
    round_count: int
    size: tuple[int, int] | None = None  # the image's (width, height) in pixels

    @property
    def already_delivered(self) -> bool:
        """Whether an earlier Stop on this round already delivered the image."""
        return self.session.final_message_id is not None


@dataclass(frozen=True, slots=True)
class AutopilotDefaults:
    """The autopilot's defaults (AUTOPILOT_* settings) and how far `/auto N` may go."""

    rounds: int = 3
    drafts: int = 2
    threshold: int = 8
    max_rounds: int = 10
    max_drafts: int = 6


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run may do: rounds, drafts per round, the score that ends it early.

    A manual round is a run of 1 x 1 whose image is shown as soon as it exists; an
    autopilot run (`autopilot=True`) shows a progress report and, at the end, its best image.
    """

    rounds: int = 1
    drafts: int = 1
    threshold: int | None = None  # None: no early stop by score (a manual round)
    autopilot: bool = False
    strategy: str = "critic"  # an autopilot's drafts: "critic", "edit" or "redraw" (rules.py)

    @property
    def max_images(self) -> int:
        """The most images the run can pay for."""
        return self.rounds * self.drafts

    @property
    def shows_each_image(self) -> bool:
        """Whether each round's image is shown the moment it is stored (a manual round)."""
        return not self.autopilot


MANUAL_ROUND = RunPlan()
"""The plan of every round a button or a brief asks for."""


@dataclass(frozen=True, slots=True)
class NextRound:
    """What a manual round will draw: the picture `prompt` describes, either new (a redraw)
    or, with `edit_of`, that round's picture changed as `instruction` says (an edit)."""

    prompt: str
    action: str  # what asked for it: brief, accept, edit, redraw, retry
    edit_of: int | None = None
    instruction: str | None = None


@dataclass(frozen=True, slots=True)
class PendingRun:
    """A run whose session is reserved for it, ready to run (see `RefineService.run`).

    `round`: its first round, stored as pending before anything is paid for (a manual
    round; an autopilot run stores each round as it begins). `start`: the round it
    continues from, if any. `run`: the autopilot run's own record (None for a manual round).
    """

    session: SessionRecord
    actor: Actor
    scope: Scope
    settings: ChatSettings  # as they were when the run began
    plan: RunPlan
    round: RoundRecord | None = None
    start: RoundRecord | None = None
    run: AutopilotRunRecord | None = None

    @property
    def name(self) -> str:
        """A name for logs and tasks: `round-<id>` or `autopilot-<id>`."""
        if self.run is not None:
            return f"autopilot-{self.run.id}"
        return f"round-{self.round.id if self.round else 0}"


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    """How one draft ended: its critique, or the error that stopped it."""

    draft: DraftRecord
    critique: Critique | None = None
    error: BackendError | None = None
    cost_usd: float | None = None
    unsaved: bytes | None = None  # a paid image the bot could not store


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """How one round ended: the round (holding its kept draft) and all its drafts.

    `error` is set when no image was drawn, or the kept image has no critique; `cancelled`
    when /cancel (or a chat that is gone) stopped it; `kept` is the number of the draft the
    round kept (None when none had an image).
    """

    round: RoundRecord
    critique: Critique | None = None
    error: BackendError | None = None
    cancelled: bool = False
    cost_usd: float | None = None
    drafts: tuple[DraftOutcome, ...] = ()
    kept: int | None = None
    unsaved: bytes | None = None  # with no image stored: a paid one the bot could not store


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Where a run is, for its listener.

    `stage`: "start" (nothing paid yet), "round" (round `round_index` begins drawing; raising
    AudienceGone here cancels it before anything is paid for), "draft" (one draft is drawn
    and judged, or failed), "done" (the round kept its best draft). `best` is the best round
    so far (the start round counts), with `best_quality`.
    """

    plan: RunPlan
    stage: str
    round_index: int = 0
    round: RoundRecord | None = None
    drafts_finished: int = 0
    images: int = 0
    best: RoundRecord | None = None
    best_quality: int | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended.

    `rounds`: the rounds that finished (an autopilot run's report); `last`: the last round
    the run touched, a cancelled one included (what a manual round shows). `best` is the
    best round across the run, the start round included (never simply the last);
    `stop_reason` is one of the STOP_* names in bot/refine/rules.py.
    """

    pending: PendingRun
    rounds: tuple[RoundOutcome, ...]
    last: RoundOutcome | None
    best: RoundRecord | None
    best_critique: Critique | None
    stop_reason: str
    error: BackendError | None = None
    images: int = 0
    cost_usd: float | None = None
    run: AutopilotRunRecord | None = None

    @property
    def session(self) -> SessionRecord:
        return self.pending.session

    @property
    def plan(self) -> RunPlan:
        return self.pending.plan

    @property
    def start(self) -> RoundRecord | None:
        return self.pending.start

    @property
    def cancelled(self) -> bool:
        """Whether /cancel, or a chat that is gone, ended the run."""
        return self.stop_reason in ("cancelled", "gone")

    @property
    def wins(self) -> dict[str, int]:
        """How often each kind of draft ("edit", "redraw") was the one its round kept."""
        kinds = [r.round.kind for r in self.rounds if r.round.image_sha is not None]
        return {kind: kinds.count(kind) for kind in ("edit", "redraw")}

    @property
    def failed_round(self) -> RoundRecord | None:
        """The run's last round when it produced no image (it can be retried), else None."""
        if self.rounds and self.rounds[-1].round.image_sha is None:
            return self.rounds[-1].round
        return None


class RunListener(Protocol):
    """Told about a run's progress so the chat (or a terminal) can show it while it runs."""

    async def progress(self, progress: RunProgress) -> None:
        """The run moved on. Raising AudienceGone stops it before the next paid call."""

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        """The round's image is stored (plans that show each image); show it. Return the id
        of the message that shows it, if any. Raising AudienceGone only skips the show."""

    async def preview(self, round: RoundRecord, image: bytes) -> None:
        """A partial image of the round's picture arrived while it is drawn (plans that show
        each image, a backend that streams). It is never stored and may come after
        `image_ready` (then it is stale: drop it); the run never waits for it."""

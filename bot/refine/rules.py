"""The refinement rules that need no I/O: briefs, seeds, what a round suggests, which draft
a round keeps and why a run stops."""

from __future__ import annotations

from bot.backends.critique import Critique
from bot.refine.errors import BriefTooLong, EmptyBrief
from bot.refine.models import MAX_BRIEF_CHARS, DraftOutcome
from storage.records import AutopilotStatus, DraftRecord, RoundRecord

EARLIER_CRITIQUES = 5
"""How many of the session's previous critiques the critic sees."""

PATIENCE = 2
"""Rounds in a row without beating the best so far that end an autopilot run."""

STOP_THRESHOLD = "threshold"
STOP_NO_IMPROVEMENT = "no_improvement"
STOP_ROUNDS = "rounds"
STOP_CANCELLED = "cancelled"
STOP_GONE = "gone"
STOP_ERROR = "error"
STOP_QUOTA = "quota"

RUN_STATUS = {
    STOP_THRESHOLD: AutopilotStatus.DONE,
    STOP_NO_IMPROVEMENT: AutopilotStatus.DONE,
    STOP_ROUNDS: AutopilotStatus.DONE,
    STOP_QUOTA: AutopilotStatus.DONE,
    STOP_CANCELLED: AutopilotStatus.CANCELLED,
    STOP_GONE: AutopilotStatus.CANCELLED,
    STOP_ERROR: AutopilotStatus.FAILED,
}
"""How an autopilot run is stored for each reason it stopped."""


def clean_brief(text: str | None) -> str:
    """Return the brief stripped of surrounding space; raise EmptyBrief or BriefTooLong."""
    text = (text or "").strip()
    if not text:
        raise EmptyBrief()
    if len(text) > MAX_BRIEF_CHARS:
        raise BriefTooLong()
    return text


def session_seed(session_id: int) -> int:
    """Return the session's image seed: one per session, so that where a backend honours
    seeds, a revised prompt changes what the critique asked for, not the whole composition."""
    return (session_id * 2_654_435_761) % 4_294_967_294 + 1


def draft_seed(session_id: int, number: int) -> int:
    """Return the seed of draft `number` (1-based) of a round: draft 1 keeps the session's
    seed, the others differ from it (and from each other) but stay fixed too."""
    return (session_seed(session_id) - 1 + (number - 1) * 7_919) % 4_294_967_294 + 1


def fidelity_first(critique: Critique) -> Critique:
    """Return the critique with a low product fidelity named as its top problem."""
    if not critique.low_fidelity:
        return critique
    top = f"The product differs from your photo (fidelity {critique.fidelity}/10)"
    return critique.model_copy(update={"problems": [top, *critique.problems]})


def critique_of(round: RoundRecord | DraftRecord) -> Critique | None:
    """Return the round's (or draft's) stored critique, or None if it has none."""
    return Critique.model_validate_json(round.critique) if round.critique else None


def suggestion_of(round: RoundRecord) -> str:
    """Return the prompt Accept would use: the critic's revision, else the round's own prompt."""
    critique = critique_of(round)
    return critique.revised_prompt if critique else round.prompt


def quality_of(round: RoundRecord | None) -> int | None:
    """Return the figure rounds are ranked by (see `Critique.quality`), or None if unjudged."""
    critique = critique_of(round) if round is not None else None
    return critique.quality if critique is not None else None


def best_draft(drafts: list[DraftOutcome]) -> DraftOutcome | None:
    """Return the draft a round keeps: the best judged one (quality, then score, then the
    lowest number), else the first with an image, else None."""
    judged = [
        (d.critique, d) for d in drafts if d.critique is not None and d.draft.image_sha is not None
    ]
    if judged:
        return max(judged, key=lambda c_d: (c_d[0].quality, c_d[0].score, -c_d[1].draft.number))[1]
    drawn = [d for d in drafts if d.draft.image_sha is not None]
    return drawn[0] if drawn else None

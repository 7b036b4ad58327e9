"""The refinement rules that need no I/O: briefs, seeds, what a round suggests, which draft
a round keeps and why a run stops."""

from __future__ import annotations

import unicodedata

from bot.backends.critique import MAX_PROMPT_CHARS, Critique
from bot.refine.errors import AutopilotPlanInvalid, BriefTooLong, EmptyBrief
from bot.refine.models import (
    MAX_BRIEF_CHARS,
    AutopilotDefaults,
    DraftOutcome,
    NextRound,
    RunPlan,
)
from storage.records import AutopilotStatus, DraftPlan, DraftRecord, RoundRecord

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


INVISIBLE = frozenset("\u115f\u1160\u2800\u3164\uffa0")
"""Characters that draw nothing though Unicode calls them letters or symbols: Hangul fillers,
the Braille blank. With the categories below, what a brief of nothing but them is made of."""
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
"""Controls, format characters (zero-width space and joiners), unassigned and private code
points, spaces, and combining marks (nothing to combine with on their own)."""


def has_visible_character(text: str) -> bool:
    """Return whether the text has a character that shows on a screen."""
    return any(
        char not in INVISIBLE and unicodedata.category(char) not in _INVISIBLE_CATEGORIES
        for char in text
    )


def clean_brief(text: str | None) -> str:
    """Return the brief stripped of surrounding space; raise EmptyBrief (nothing visible: no
    text, only spaces, zero-width or filler characters, combining marks alone) or
    BriefTooLong."""
    text = (text or "").strip()
    if not has_visible_character(text):
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


def edit_suggestion(round: RoundRecord) -> str:
    """Return the change to prefill when Edit is pressed: the critic's edit instruction, else
    a request to fix the problems it found, else the round's own prompt."""
    critique = critique_of(round)
    if critique is None:
        return round.prompt
    if critique.edit_instruction is not None:
        return critique.edit_instruction
    if critique.problems:
        return "Fix: " + "; ".join(critique.problems)
    return critique.revised_prompt


def edited_prompt(prompt: str, instruction: str) -> str:
    """Return the description of a picture after an edit: its prompt, then the change."""
    room = MAX_PROMPT_CHARS - len(instruction) - 2
    return f"{prompt[:room].rstrip()}. {instruction}" if room > 0 else instruction


def accepted(round: RoundRecord) -> NextRound:
    """Return what Accept on the round draws: the critic's choice, an edit of this picture
    with its instruction, or a redraw from its revised prompt."""
    critique = critique_of(round)
    if critique is not None and critique.suggests_edit:
        return NextRound(critique.revised_prompt, "accept", round.id, critique.edit_instruction)
    return NextRound(suggestion_of(round), "accept")


def edited(round: RoundRecord, instruction: str) -> NextRound:
    """Return what the user's own words on the round draw: an edit of its picture."""
    return NextRound(edited_prompt(round.prompt, instruction), "edit", round.id, instruction)


def redrawn(round: RoundRecord) -> NextRound:
    """Return what Redraw on the round draws: a new picture from its suggested prompt."""
    return NextRound(suggestion_of(round), "redraw")


def retried(round: RoundRecord) -> NextRound:
    """Return what Retry on a round that drew nothing draws: the same round again."""
    return NextRound(round.prompt, "retry", round.edit_of, round.instruction)


def draft_plans(
    *,
    session_id: int,
    drafts: int,
    strategy: str,
    source: RoundRecord | None,
    can_edit: bool,
) -> list[DraftPlan]:
    """Return the drafts of an autopilot round: edits of `source` (the best picture so far)
    and redraws from the round's prompt, as `strategy` says. "critic": a single draft follows the
    critic's next step; with two or more, the critic's choice gets all drafts but one and
    the other kind one (so there is always an edit and a redraw); "edit": every draft an
    edit; "redraw": every draft a redraw (as before edits).
    Without a picture to edit (or a server that can edit), every draft is a redraw."""
    seeds = [draft_seed(session_id, n) for n in range(1, drafts + 1)]
    critique = critique_of(source) if source is not None else None
    if source is None or source.image_sha is None or critique is None or not can_edit:
        return [DraftPlan(seed) for seed in seeds]
    instruction = edit_suggestion(source)
    if strategy == "redraw":
        edits = 0
    elif strategy == "edit":
        edits = drafts
    elif drafts == 1:
        edits = 1 if critique.suggests_edit else 0
    else:  # the critic's choice gets all drafts but one; the other kind gets one
        edits = drafts - 1 if critique.suggests_edit else 1
    return [
        DraftPlan(seed, source.id, instruction) if number < edits else DraftPlan(seed)
        for number, seed in enumerate(seeds)
    ]


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


STRATEGIES = ("critic", "edit", "redraw")
"""How an autopilot run's drafts are made (see `draft_plans`)."""


def autopilot_plan(
    defaults: AutopilotDefaults,
    rounds: int | None = None,
    drafts: int | None = None,
    strategy: str = "critic",
) -> RunPlan:
    """Return the plan of an autopilot run of `rounds` x `drafts` (None: the defaults) whose
    drafts follow `strategy` (one of STRATEGIES).

    Raises AutopilotPlanInvalid outside 1..max_rounds or 1..max_drafts, ValueError for an
    unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (use one of {', '.join(STRATEGIES)})")
    rounds = defaults.rounds if rounds is None else rounds
    drafts = defaults.drafts if drafts is None else drafts
    if not 1 <= rounds <= defaults.max_rounds:
        raise AutopilotPlanInvalid("rounds", 1, defaults.max_rounds)
    if not 1 <= drafts <= defaults.max_drafts:
        raise AutopilotPlanInvalid("drafts", 1, defaults.max_drafts)
    return RunPlan(rounds, drafts, defaults.threshold, autopilot=True, strategy=strategy)

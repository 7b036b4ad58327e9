"""The autopilot in the chat: the plan (the most it can pay for), the one progress message
edited as the run goes, how the run ended, and the caption of its best image."""

from __future__ import annotations

from html import escape

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from bot.refine.models import RunOutcome, RunPlan, RunProgress
from bot.ui.refusals import backend_error_text
from bot.ui.rounds import round_caption, short_round_caption
from bot.ui.text import CAPTION_LIMIT, TEXT_LIMIT, count_of, fit_html, fits
from storage.records import RoundRecord

_STOP_REASONS = {
    "threshold": "reached the target score",
    "no_improvement": "two rounds in a row did not improve on the best",
    "rounds": "all planned rounds done",
    "quota": "today's round quota is used up",
    "cancelled": "cancelled",
    "gone": "the chat is gone",
    "error": "a round failed",
}


def autopilot_toast(max_images: int) -> str:
    """Return the 🔁 Auto button's toast: the most images the run can pay for."""
    return f"Autopilot: at most {max_images} images…"


def autopilot_plan_text(plan: RunPlan) -> str:
    """Return the line said before an autopilot run starts: the most it can pay for."""
    return (
        f"🔁 <b>Autopilot</b>: up to {count_of(plan.rounds, 'round')} × "
        f"{count_of(plan.drafts, 'draft')}, so at most "
        f"<b>{count_of(plan.max_images, 'image')}</b> to pay for. I stop early at "
        f"{plan.threshold}/10, or when two rounds in a row don't improve. /cancel stops it."
    )


def autopilot_progress_text(progress: RunProgress) -> str:
    """Return the run's one progress message, e.g. 'Round 2/3 · best 7/10'."""
    plan = progress.plan
    head = autopilot_plan_text(plan)
    if progress.stage == "start" or progress.round_index == 0:
        return fit_html(f"{head}\n⏳ Starting…", TEXT_LIMIT)
    line = f"Round {progress.round_index}/{plan.rounds}"
    if progress.best is not None and progress.best_quality is not None:
        line += f" · best {progress.best_quality}/10"
    if progress.stage == "done":
        line += " · ✓"
    else:
        line += f" · 🎨 drawing and judging {count_of(plan.drafts, 'draft')}…"
    return fit_html(f"{head}\n{line}", TEXT_LIMIT)


def autopilot_final_text(outcome: RunOutcome) -> str:
    """Return the progress message's last state: how the run ended and which round won."""
    plan, best = outcome.plan, outcome.best
    icon = "⏹" if outcome.cancelled else "⚠️" if outcome.stop_reason == "error" else "🏁"
    lines = [
        f"{icon} <b>Autopilot</b>: {count_of(len(outcome.rounds), 'round')}, "
        f"{count_of(outcome.images, 'image')} "
        f"(at most {count_of(plan.max_images, 'image')} planned) · "
        f"{_STOP_REASONS.get(outcome.stop_reason, outcome.stop_reason)}."
    ]
    if outcome.stop_reason == "error" and outcome.error is not None:
        lines.append(escape(backend_error_text(outcome.error)))
    if any(d.draft.kind == "edit" for r in outcome.rounds for d in r.drafts):
        wins = outcome.wins  # which kind each round kept, once both were drawn
        lines.append(f"Kept: {wins['edit']} ✎ edits, {wins['redraw']} ↻ new pictures.")
    if best is not None and outcome.best_critique is not None:
        lines.append(
            f"Best: round {best.number} ({outcome.best_critique.quality}/10), shown below."
        )
    elif best is not None:
        lines.append(f"Best: round {best.number}, shown below.")
    elif outcome.failed_round is None:
        lines.append("No image was finished.")
    return fit_html("\n".join(lines), TEXT_LIMIT)


def autopilot_best_caption(
    round: RoundRecord, critique: Critique | None, error: BackendError | None, group: bool
) -> str:
    """Return the caption of the run's best image: the round's caption marked 🏆 (unmarked
    if the mark would not fit Telegram's caption limit)."""
    caption = round_caption(round, critique, error, group)
    marked = "🏆 " + caption
    return marked if fits(marked, CAPTION_LIMIT) else caption


def autopilot_best_short_caption(
    round: RoundRecord, critique: Critique | None, error: BackendError | None, group: bool
) -> str:
    """Return the best image's caption when Telegram refuses the whole critique as too long:
    the round's first line marked 🏆 and a pointer to the critique sent below it."""
    return fit_html("🏆 " + short_round_caption(round, critique, error, group), CAPTION_LIMIT)


def autopilot_interrupted_text(best: RoundRecord | None) -> str:
    """Return the progress message's last state when a restart cut the run short."""
    line = "⏹ <b>Autopilot</b>: interrupted by a restart."
    if best is None:
        return line + " No round of it was finished."
    return line + f" Best finished: round {best.number}, shown below."

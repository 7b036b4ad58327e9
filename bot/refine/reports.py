"""The log lines that end a round and a run: ids, how it ended, timings and estimated cost,
one line each, so an operator can follow spend and failures with grep."""

from __future__ import annotations

import logging

from bot.refine.models import RoundOutcome, RunOutcome

log = logging.getLogger(__name__)


def log_round_end(outcome: RoundOutcome, *, chat_id: int) -> None:
    """Log the one line that ends a round: ids, how it ended, timings and estimated cost."""
    round = outcome.round
    cost = f"{outcome.cost_usd:.4f}" if outcome.cost_usd is not None else "unknown"
    log.info(
        "round end chat=%s session=%s round=%s number=%s status=%s error=%s score=%s "
        "generate_ms=%s critique_ms=%s cost_usd=%s",
        chat_id,
        round.session_id,
        round.id,
        round.number,
        round.status,
        round.error_kind or "-",
        round.score if round.score is not None else "-",
        round.generate_ms if round.generate_ms is not None else "-",
        round.critique_ms if round.critique_ms is not None else "-",
        cost,
    )


def log_run_end(outcome: RunOutcome) -> None:
    """Log the one line that ends an autopilot run."""
    pending, best = outcome.pending, outcome.best
    quality = outcome.best_critique.quality if outcome.best_critique else None
    log.info(
        "autopilot end chat=%s session=%s run=%s reason=%s rounds=%s images=%s best=%s "
        "quality=%s edit_wins=%s redraw_wins=%s cost_usd=%s",
        pending.session.chat_id,
        pending.session.id,
        pending.run.id if pending.run else "-",
        outcome.stop_reason,
        len(outcome.rounds),
        outcome.images,
        best.number if best else "-",
        quality if quality is not None else "-",
        outcome.wins["edit"],
        outcome.wins["redraw"],
        f"{outcome.cost_usd:.4f}" if outcome.cost_usd is not None else "unknown",
    )

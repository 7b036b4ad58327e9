"""bench/eval_loop.py against the local fakes: the machinery, not the numbers."""

from __future__ import annotations

import io
import json

from bench.eval_loop import SessionResult, evaluate, read_briefs, summarise


def test_the_briefs() -> None:
    briefs = read_briefs()
    assert len(briefs) == 20 and len(set(briefs)) == 20
    assert sum('"' in brief for brief in briefs) >= 4  # text the image must get right


def test_summary_figures() -> None:
    results = [
        SessionResult("a", [5, 7, 6], 7, "rounds", 6, 0.05),
        SessionResult("b", [8], 8, "threshold", 2, None),
        SessionResult("c", [6, 6, 6], 6, "no_improvement", 6, 0.03),
    ]
    summary = summarise(results)
    assert [r["mean_score"] for r in summary["mean_score_per_round"]] == [6.33, 6.5, 6.0]
    assert [r["sessions"] for r in summary["mean_score_per_round"]] == [3, 2, 2]
    assert summary["best_beats_round_1"] == 0.333
    assert summary["images_per_session"] == 4.67 and summary["cost_usd_per_session"] == 0.04


async def test_eval_loop_runs_offline(tmp_path) -> None:
    briefs = read_briefs()[:3]
    results, summary = await evaluate(
        briefs, tmp_path, fakes=True, rounds=2, drafts=2, progress=io.StringIO()
    )
    assert [r.brief for r in results] == briefs
    assert all(1 <= len(r.scores) <= 2 and r.images == 2 * len(r.scores) for r in results)
    assert summary["sessions"] == 3 and summary["cost_usd_per_session"] > 0
    page = (tmp_path / "results.md").read_text()
    assert "| # | brief | score per round |" in page and "best score beats round 1" in page
    assert json.loads((tmp_path / "results.json").read_text())["summary"] == summary
    for number in (1, 2, 3):
        assert (tmp_path / f"{number:02d}" / "report.html").exists()

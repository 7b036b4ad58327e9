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


def test_strategy_comparison_figures() -> None:
    from bench.eval_loop import compare

    results = [
        SessionResult("a", [5, 8, 7], 8, "rounds", 3, None, "edit", 8),
        SessionResult("b", [6, 5], 6, "no_improvement", 2, None, "edit", 8),
        SessionResult("a", [5, 6, 9], 9, "threshold", 3, None, "redraw", 8),
    ]
    edit, redraw = compare(results)
    assert edit["strategy"] == "edit" and edit["sessions"] == 2
    assert edit["final_score"] == 6.0 and edit["best_score"] == 7.0
    assert edit["rounds_to_threshold"] == 2.0 and edit["reached_threshold"] == 0.5
    assert edit["final_worse_than_round_1"] == 0.5
    assert redraw["rounds_to_threshold"] == 3.0 and redraw["final_worse_than_round_1"] == 0.0


async def test_eval_loop_compares_strategies_offline(tmp_path) -> None:
    briefs = read_briefs()[:2]
    results, summary = await evaluate(
        briefs,
        tmp_path,
        fakes=True,
        rounds=2,
        drafts=1,
        strategies=("redraw", "edit", "critic"),
        progress=io.StringIO(),
    )
    assert [r.strategy for r in results] == ["redraw"] * 2 + ["edit"] * 2 + ["critic"] * 2
    assert [row["strategy"] for row in summary["strategies"]] == ["redraw", "edit", "critic"]
    page = (tmp_path / "results.md").read_text()
    assert "| strategy | sessions | final score |" in page
    # The edit strategy really edited: its second rounds are edits of the first.
    for number in (1, 2):
        report = json.loads((tmp_path / "edit" / f"{number:02d}" / "report.json").read_text())
        if len(report["rounds"]) > 1:
            assert report["rounds"][1]["kind"] == "edit"
        redraw = json.loads((tmp_path / "redraw" / f"{number:02d}" / "report.json").read_text())
        assert {r["kind"] for r in redraw["rounds"]} == {"redraw"}

"""Evaluate the refinement loop itself: run the autopilot on every brief and tabulate it.

    python -m bench.eval_loop --fakes              # offline, against the local fakes
    python -m bench.eval_loop                      # the configured backends (real keys: $$)
    python -m bench.eval_loop --limit 5 --rounds 3 --drafts 2 --out bench/results/run1

For each brief of bench/briefs.txt it runs the same domain as `python -m bot refine` (every
image and a report per brief land in OUT/NN/) and writes OUT/results.md and OUT/results.json:

* per brief: the kept score of each round, the best, whether the best beats round 1, the
  images paid for and the estimated cost;
* overall: the mean score per round (over the sessions that reached that round), the share
  of sessions whose best score beats round 1, and images and estimated cost per session.

Against the fakes (which need the test extras: aiohttp) the numbers only check the
machinery: the fake critic's scores are a deterministic random walk, not a judgement. With
real keys the run measures the real thing and costs real money: at most
briefs x rounds x drafts images (the plan is printed before anything is paid for).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.cli.refine import TERMINAL_TOKEN, refine_to_directory
from bot.config import Settings, load_settings

BRIEFS = Path(__file__).with_name("briefs.txt")


def read_briefs(path: Path = BRIEFS) -> list[str]:
    """Return the briefs of the file: one per line, blank lines and # comments skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True, slots=True)
class SessionResult:
    """One brief's run: the kept score per round and what it cost."""

    brief: str
    scores: list[int | None]
    best: int | None
    stop_reason: str
    images: int
    cost_usd: float | None

    @property
    def improved(self) -> bool | None:
        """Whether the best score beats round 1's (None when round 1 has no score)."""
        if not self.scores or self.scores[0] is None or self.best is None:
            return None
        return self.best > self.scores[0]


def session_result(brief: str, report: dict[str, Any]) -> SessionResult:
    """Return the figures of one refine report (bot/cli/refine.py's report.json)."""
    best = report.get("best") or {}
    return SessionResult(
        brief=brief,
        scores=[entry.get("quality") for entry in report["rounds"]],
        best=best.get("quality"),
        stop_reason=report["stop_reason"],
        images=report["images"],
        cost_usd=report.get("cost_usd"),
    )


def summarise(results: list[SessionResult]) -> dict[str, Any]:
    """Return the overall figures: mean score per round, share improved, images and cost."""
    longest = max((len(r.scores) for r in results), default=0)
    per_round = []
    for index in range(longest):
        scores = [r.scores[index] for r in results if len(r.scores) > index]
        known = [s for s in scores if s is not None]
        per_round.append(
            {
                "round": index + 1,
                "sessions": len(known),
                "mean_score": round(sum(known) / len(known), 2) if known else None,
            }
        )
    judged = [r.improved for r in results if r.improved is not None]
    costs = [r.cost_usd for r in results if r.cost_usd is not None]
    return {
        "sessions": len(results),
        "mean_score_per_round": per_round,
        "best_beats_round_1": round(sum(judged) / len(judged), 3) if judged else None,
        "images_per_session": round(sum(r.images for r in results) / len(results), 2)
        if results
        else 0,
        "cost_usd_per_session": round(sum(costs) / len(costs), 4) if costs else None,
        "stop_reasons": {
            reason: sum(r.stop_reason == reason for r in results)
            for reason in sorted({r.stop_reason for r in results})
        },
    }


def _cell(value: object) -> str:
    return "–" if value is None else str(value)


def markdown(results: list[SessionResult], summary: dict[str, Any], header: str) -> str:
    """Return the results as a Markdown page: one row per brief, then the overall figures."""
    lines = [
        f"# Loop evaluation: {header}",
        "",
        "| # | brief | score per round | best | best > round 1 | stop | images | cost (USD) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, r in enumerate(results, 1):
        brief = r.brief if len(r.brief) <= 60 else r.brief[:59] + "…"
        scores = " → ".join(_cell(s) for s in r.scores) or "–"
        improved = {True: "yes", False: "no", None: "–"}[r.improved]
        cost = f"{r.cost_usd:.4f}" if r.cost_usd is not None else "–"
        lines.append(
            f"| {number} | {brief.replace('|', '/')} | {scores} | {_cell(r.best)} | "
            f"{improved} | {r.stop_reason} | {r.images} | {cost} |"
        )
    lines += ["", "| round | sessions | mean score |", "|---|---|---|"]
    for entry in summary["mean_score_per_round"]:
        lines.append(f"| {entry['round']} | {entry['sessions']} | {_cell(entry['mean_score'])} |")
    share = summary["best_beats_round_1"]
    cost = summary["cost_usd_per_session"]
    lines += [
        "",
        f"- sessions: {summary['sessions']}",
        "- best score beats round 1: " + (f"{share:.0%} of sessions" if share is not None else "–"),
        f"- images per session: {summary['images_per_session']}",
        "- estimated cost per session: " + (f"${cost:.4f}" if cost is not None else "unknown"),
        "- stop reasons: " + ", ".join(f"{k} {v}" for k, v in summary["stop_reasons"].items()),
        "",
    ]
    return "\n".join(lines)


def noisy_critic(seed: int = 7) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A fake critic whose scores wander (deterministically) around the default fake's rising
    ones, so the stop rules and best-of-rounds are all exercised offline."""
    from tests.fakes.openai_server import default_critic

    rng = random.Random(seed)

    def critic(body: dict[str, Any]) -> dict[str, Any]:
        answer = default_critic(body)
        answer["score"] = max(0, min(10, answer["score"] + rng.choice((-2, -1, 0, 1, 2))))
        return answer

    return critic


@contextlib.asynccontextmanager
async def fake_settings(rounds: int, drafts: int) -> AsyncIterator[Settings]:
    """Start the local OpenAI-compatible fake; yield Settings pointing every backend at it."""
    from tests.fakes.openai_server import FakeOpenAI

    async with FakeOpenAI(critic=noisy_critic()) as fake:
        yield Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=SecretStr(TERMINAL_TOKEN),
            openai_api_key=SecretStr(fake.api_key),
            openai_base_url=fake.base_url,
            image_backend="openai",
            image_model="gpt-image-1-mini",
            autopilot_rounds=rounds,
            autopilot_drafts=drafts,
        )


async def evaluate(
    briefs: list[str],
    out: Path,
    *,
    fakes: bool,
    rounds: int,
    drafts: int,
    progress: Any = None,
) -> tuple[list[SessionResult], dict[str, Any]]:
    """Run the autopilot on every brief; write OUT/results.md and .json; return the figures."""
    if fakes:
        context = fake_settings(rounds, drafts)
    else:
        context = contextlib.nullcontext(
            load_settings(
                telegram_bot_token=SecretStr(TERMINAL_TOKEN),
                autopilot_rounds=rounds,
                autopilot_drafts=drafts,
            )
        )
    results: list[SessionResult] = []
    async with context as settings:  # type: ignore[attr-defined]
        backend = "fakes" if fakes else f"{settings.image_backend} + {settings.critic_model}"
        print(
            f"{len(briefs)} briefs × {rounds} rounds × {drafts} drafts: at most "
            f"{len(briefs) * rounds * drafts} images ({backend})",
            file=progress or sys.stderr,
        )
        for number, brief in enumerate(briefs, 1):
            print(f"[{number}/{len(briefs)}] {brief[:70]}", file=progress or sys.stderr)
            result = await refine_to_directory(
                settings,
                brief,
                out / f"{number:02d}",
                rounds=rounds,
                drafts=drafts,
                progress_out=progress or io.StringIO(),
            )
            results.append(session_result(brief, result.report))
    summary = summarise(results)
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    header = f"{backend}, {rounds} rounds × {drafts} drafts, {stamp}"
    (out / "results.md").write_text(markdown(results, summary, header), encoding="utf-8")
    payload = {"header": header, "summary": summary, "sessions": [asdict(r) for r in results]}
    (out / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return results, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.eval_loop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--fakes", action="store_true", help="run offline against local fakes")
    parser.add_argument("--briefs", type=Path, default=BRIEFS, help="one brief per line")
    parser.add_argument("--limit", type=int, help="only the first N briefs")
    parser.add_argument("--rounds", type=int, default=3, help="autopilot rounds (default 3)")
    parser.add_argument("--drafts", type=int, default=2, help="drafts per round (default 2)")
    parser.add_argument("--out", type=Path, help="output folder (default bench/results/<time>)")
    args = parser.parse_args(argv)
    briefs = read_briefs(args.briefs)[: args.limit]
    out = args.out or Path("bench/results") / datetime.now().strftime("eval-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(evaluate(briefs, out, fakes=args.fakes, rounds=args.rounds, drafts=args.drafts))
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

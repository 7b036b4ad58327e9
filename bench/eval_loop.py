"""Evaluate the refinement loop itself: run the autopilot on every brief and tabulate it.

    python -m bench.eval_loop --fakes              # offline, against the local fakes
    python -m bench.eval_loop                      # the configured backends (real keys: $$)
    python -m bench.eval_loop --limit 5 --rounds 3 --drafts 2 --out bench/results/run1
    python -m bench.eval_loop --strategy redraw,edit,critic --drafts 1   # compare strategies

For each brief of bench/briefs.txt it runs the same domain as `python -m bot refine` (every
image and a report per brief land in OUT/NN/) and writes OUT/results.md and OUT/results.json:

* per brief: the kept score of each round, the best, whether the best beats round 1, the
  images paid for and the estimated cost;
* overall: the mean score per round (over the sessions that reached that round), the share
  of sessions whose best score beats round 1, and images and estimated cost per session;
* with --strategy, the same briefs once per strategy (how each round's drafts are made:
  `redraw` a new picture every round, as before edit rounds; `edit` always the picture in
  front of the user, changed; `critic` as the critic decides, the autopilot's default) and one
  comparison row per strategy: mean final and best score, rounds to the threshold, images
  paid for, and how often the final image is worse than round 1.

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
from bot.refine.rules import STRATEGIES

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
    strategy: str = "critic"
    threshold: int | None = None

    @property
    def final(self) -> int | None:
        """The last round's score (what a user who kept going ends with)."""
        return self.scores[-1] if self.scores else None

    @property
    def rounds_to_threshold(self) -> int | None:
        """The first round whose score reached the threshold (None: never)."""
        for number, score in enumerate(self.scores, 1):
            if score is not None and self.threshold is not None and score >= self.threshold:
                return number
        return None

    @property
    def final_worse(self) -> bool | None:
        """Whether the final image scores below round 1's (None when either has no score)."""
        if not self.scores or self.scores[0] is None or self.final is None:
            return None
        return self.final < self.scores[0]

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
        strategy=report.get("strategy", "critic"),
        threshold=report["plan"].get("threshold"),
    )


def _mean(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 2) if known else None


def compare(results: list[SessionResult]) -> list[dict[str, Any]]:
    """Return one row per strategy: sessions, mean final and best score, mean rounds to the
    threshold (over the sessions that reached it) and the share that did, images per
    session, and the share of sessions whose final image scores below round 1."""
    rows = []
    for strategy in dict.fromkeys(r.strategy for r in results):
        runs = [r for r in results if r.strategy == strategy]
        reached = [r.rounds_to_threshold for r in runs if r.rounds_to_threshold is not None]
        worse = [r.final_worse for r in runs if r.final_worse is not None]
        rows.append(
            {
                "strategy": strategy,
                "sessions": len(runs),
                "final_score": _mean([r.final for r in runs]),
                "best_score": _mean([r.best for r in runs]),
                "rounds_to_threshold": _mean(list(reached)),
                "reached_threshold": round(len(reached) / len(runs), 3),
                "images_per_session": round(sum(r.images for r in runs) / len(runs), 2),
                "final_worse_than_round_1": round(sum(worse) / len(worse), 3) if worse else None,
            }
        )
    return rows


def comparison_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """Return the strategy comparison as Markdown table lines."""
    lines = [
        "| strategy | sessions | final score | best score | rounds to threshold "
        "| reached | images | final worse than round 1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reached, worse = row["reached_threshold"], row["final_worse_than_round_1"]
        lines.append(
            f"| {row['strategy']} | {row['sessions']} | {_cell(row['final_score'])} | "
            f"{_cell(row['best_score'])} | {_cell(row['rounds_to_threshold'])} | {reached:.0%} "
            f"| {row['images_per_session']} | "
            + (f"{worse:.0%}" if worse is not None else "–")
            + " |"
        )
    return lines


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
        if rng.random() < 0.5:  # local problems: the critic asks for an edit
            answer["next_step"] = "edit"
            answer["edit_instruction"] = "Soften the light; keep the product and the pose"
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
    strategies: tuple[str, ...] = ("critic",),
    progress: Any = None,
) -> tuple[list[SessionResult], dict[str, Any]]:
    """Run the autopilot on every brief, once per strategy; write OUT/results.md and .json;
    return the figures (the summary's "strategies" holds the comparison rows)."""
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
        runs = len(briefs) * len(strategies)
        print(
            f"{len(briefs)} briefs × {len(strategies)} strategies × {rounds} rounds × "
            f"{drafts} drafts: at most {runs * rounds * drafts} images ({backend})",
            file=progress or sys.stderr,
        )
        for strategy in strategies:
            for number, brief in enumerate(briefs, 1):
                where = f"{strategy}/{number:02d}" if len(strategies) > 1 else f"{number:02d}"
                print(f"[{where}] {brief[:70]}", file=progress or sys.stderr)
                result = await refine_to_directory(
                    settings,
                    brief,
                    out / where,
                    rounds=rounds,
                    drafts=drafts,
                    strategy=strategy,
                    progress_out=progress or io.StringIO(),
                )
                results.append(session_result(brief, result.report))
    summary = summarise(results) | {"strategies": compare(results)}
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    header = f"{backend}, {rounds} rounds × {drafts} drafts, {stamp}"
    page = markdown(results, summary, header) + "\n".join(
        comparison_markdown(summary["strategies"])
    )
    (out / "results.md").write_text(page + "\n", encoding="utf-8")
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
    parser.add_argument(
        "--strategy",
        default="critic",
        help="comma-separated: redraw, edit, critic (default critic); each runs every brief",
    )
    args = parser.parse_args(argv)
    strategies = tuple(s.strip() for s in args.strategy.split(",") if s.strip())
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        parser.error(f"--strategy takes {', '.join(STRATEGIES)}; not {', '.join(unknown)}")
    briefs = read_briefs(args.briefs)[: args.limit]
    out = args.out or Path("bench/results") / datetime.now().strftime("eval-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(
        evaluate(
            briefs,
            out,
            fakes=args.fakes,
            rounds=args.rounds,
            drafts=args.drafts,
            strategies=strategies,
        )
    )
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

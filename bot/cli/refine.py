"""`python -m bot refine "brief" [--photo PATH] [--rounds N] [--drafts K] [--out DIR]`.

The same refinement domain as the bot, without Telegram: the autopilot runs with the
configured backends (IMAGE_BACKEND, CRITIC_*, ... from the environment or `.env`; no
Telegram token needed), a progress bar goes to stderr, every image is written to DIR, and a
report is written next to them: `report.json` and `report.html`, a self-contained page with
each round's images, prompt, score and critique. Ctrl-C stops the run and still writes the
report of what was done. Useful for trying the backends before making a bot, and for
evaluation (bench/eval_loop.py builds on `refine_to_directory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr, ValidationError

from bot.cli.report_html import report_html
from bot.config import Settings, describe_errors, load_settings
from bot.images import InvalidImage, prepare_reference
from bot.refine.errors import RefineError
from bot.refine.models import (
    Actor,
    DraftOutcome,
    QuotaPolicy,
    RoundOutcome,
    RunOutcome,
    RunProgress,
    Scope,
)
from bot.refine.outbox import TERMINAL_CHAT_ID
from bot.refine.rules import critique_of
from bot.services import build_critic, build_generator, build_refine
from storage.records import RoundRecord
from storage.store import Store

log = logging.getLogger(__name__)

TERMINAL_TOKEN = "0:terminal-mode-needs-no-telegram-token"
"""Stands in for TELEGRAM_BOT_TOKEN, which the terminal mode never uses."""
TERMINAL_SCOPE = Scope(chat_id=TERMINAL_CHAT_ID, thread_id=0, chat_type="terminal")
TERMINAL_ACTOR = Actor(user_id=0, name="terminal")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class ProgressBar:
    """A RunListener drawing `[#####-----] 3/6 images · round 2/3 · best 7/10`.

    On a terminal the bar is redrawn in place; otherwise (a log file, a pipe) one line is
    written per finished round.
    """

    def __init__(self, out: TextIO, width: int = 24) -> None:
        self._out = out
        self._width = width
        self._tty = out.isatty()
        self._finished = 0
        self._drawn = False

    async def progress(self, progress: RunProgress) -> None:
        plan = progress.plan
        if progress.stage == "draft":
            self._finished += 1
        filled = round(self._width * self._finished / max(plan.max_images, 1))
        bar = "#" * filled + "-" * (self._width - filled)
        best = f" · best {progress.best_quality}/10" if progress.best_quality is not None else ""
        where = f"round {progress.round_index}/{plan.rounds}" if progress.round_index else "start"
        line = f"[{bar}] {self._finished}/{plan.max_images} drafts · {where}{best}"
        if self._tty:
            self._out.write("\r" + line.ljust(78))
            self._drawn = True
        elif progress.stage in ("start", "done"):
            self._out.write(line + "\n")
        self._out.flush()

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        """Nothing to show: the images are written at the end."""
        return None

    async def preview(self, round: RoundRecord, image: bytes) -> None:
        """Nothing to show: no partial images are asked for where drafts are not shown."""

    def close(self) -> None:
        if self._drawn:
            self._out.write("\n")
            self._out.flush()


@dataclass(frozen=True, slots=True)
class RefineResult:
    """What `refine_to_directory` did: the outcome, and the report as written to report.json."""

    outcome: RunOutcome
    report: dict[str, Any]
    out_dir: Path


async def refine_to_directory(
    settings: Settings,
    brief: str,
    out_dir: Path,
    *,
    photo: bytes | None = None,
    rounds: int | None = None,
    drafts: int | None = None,
    strategy: str = "critic",
    progress_out: TextIO | None = None,
    on_start: Any = None,
) -> RefineResult:
    """Run the autopilot on the brief (and product photo) with the configured backends, its
    drafts made as `strategy` says (critic, edit or redraw: bot/refine/rules.py); write every
    image, report.json and report.html into `out_dir`; return the result.

    Raises InvalidImage for an unusable photo and RefineError for a bad brief or plan.
    `on_start(cancel)` is called with a coroutine function that cancels the run (Ctrl-C).
    """
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    reference = await asyncio.to_thread(prepare_reference, photo, max_bytes) if photo else None
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    generator, critic = build_generator(settings), build_critic(settings)
    bar = ProgressBar(progress_out or sys.stderr)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="refinebot-") as scratch:
        store = await Store.open(Path(scratch) / "refine.db")
        try:
            # No quota in the terminal: whoever runs it pays directly.
            refine = build_refine(
                settings, store, generator, critic, QuotaPolicy(exempt_user_ids=None)
            )
            pending = await refine.begin_autopilot(
                TERMINAL_SCOPE,
                TERMINAL_ACTOR,
                brief=brief,
                reference=reference,
                rounds=rounds,
                drafts=drafts,
                strategy=strategy,
            )
            if on_start is not None:
                on_start(lambda: refine.cancel(TERMINAL_SCOPE, TERMINAL_ACTOR))
            try:
                outcome = await refine.run(pending, bar)
            finally:
                bar.close()
            report = await _write_results(store, outcome, out_dir, reference is not None)
        finally:
            await store.close()
            await generator.aclose()
            await critic.aclose()
    report |= {
        "image_backend": settings.image_backend,
        "image_model": generator.model,
        "critic_model": critic.model,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    html = await asyncio.to_thread(report_html, report, out_dir)
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    return RefineResult(outcome, report, out_dir)


ImageWriter = Callable[[str | None, str], Awaitable[str | None]]


async def _write_results(
    store: Store, outcome: RunOutcome, out_dir: Path, has_photo: bool
) -> dict[str, Any]:
    """Copy every image into out_dir under a readable name; return the report (JSON-able)."""

    async def write(sha: str | None, name: str) -> str | None:
        if sha is None:
            return None
        try:
            record, data = await store.images.read(sha)
        except LookupError:
            return None
        filename = f"{name}.{_EXTENSIONS.get(record.mime, 'bin')}"
        await asyncio.to_thread((out_dir / filename).write_bytes, data)
        return filename

    session = outcome.session
    rounds = [await _round_report(result, write) for result in outcome.rounds]
    best = outcome.best
    best_file = await write(best.image_sha, "best") if best is not None else None
    best_critique = critique_of(best) if best is not None else None
    return {
        "brief": session.brief,
        "photo": await write(session.reference_sha, "reference") if has_photo else None,
        "plan": {
            "rounds": outcome.plan.rounds,
            "drafts": outcome.plan.drafts,
            "threshold": outcome.plan.threshold,
            "max_images": outcome.plan.max_images,
        },
        "strategy": outcome.plan.strategy,
        "wins": outcome.wins,
        "stop_reason": outcome.stop_reason,
        "error": str(outcome.error) if outcome.error else None,
        "images": outcome.images,
        "cost_usd": outcome.cost_usd,
        "best": None
        if best is None
        else {
            "round": best.number,
            "file": best_file,
            "score": best.score,
            "fidelity": best.fidelity,
            "quality": best_critique.quality if best_critique else None,
        },
        "rounds": rounds,
    }


async def _round_report(result: RoundOutcome, write: ImageWriter) -> dict[str, Any]:
    """Return one round of the report, writing its drafts' images."""
    round = result.round
    drafts = [
        await _draft_report(d, await write(d.draft.image_sha, _draft_name(round.number, d)))
        for d in result.drafts
    ]
    critique = result.critique
    return {
        "number": round.number,
        "kind": round.kind,
        "edit_of": round.edit_of,
        "prompt": round.prompt,
        "status": str(round.status),
        "score": round.score,
        "fidelity": round.fidelity,
        "quality": critique.quality if critique else None,
        "kept_draft": result.kept,
        "critique": critique.model_dump() if critique else None,
        "error": round.error,
        "drafts": drafts,
    }


def _draft_name(round_number: int, outcome: DraftOutcome) -> str:
    return f"round-{round_number:02d}-draft-{outcome.draft.number}"


async def _draft_report(outcome: DraftOutcome, file: str | None) -> dict[str, Any]:
    """Return one draft of the report (its image written as `file`)."""
    draft, critique = outcome.draft, outcome.critique
    return {
        "number": draft.number,
        "kind": draft.kind,
        "instruction": draft.instruction,
        "seed": draft.seed,
        "status": str(draft.status),
        "file": file,
        "score": draft.score,
        "fidelity": draft.fidelity,
        "quality": critique.quality if critique else None,
        "critique": critique.model_dump() if critique else None,
        "error": draft.error,
        "generate_ms": draft.generate_ms,
        "critique_ms": draft.critique_ms,
    }


# --- report.html ----------------------------------------------------------------------------


def main(
    brief: str,
    photo: str | None = None,
    rounds: int | None = None,
    drafts: int | None = None,
    out: str | None = None,
) -> int:
    """Run `python -m bot refine`; return the exit status (0: an image, 1: none, 2: bad
    input or configuration, 130: interrupted)."""
    try:
        settings = load_settings(telegram_bot_token=SecretStr(TERMINAL_TOKEN))
    except ValidationError as error:
        print(f"refinebot: configuration problem: {describe_errors(error)}.", file=sys.stderr)
        return 2
    from bot.logs import configure_logging

    # Warnings only: the progress bar is the terminal's display.
    configure_logging("WARNING", settings.secret_values(), settings.log_format)
    photo_bytes = None
    if photo is not None:
        try:
            photo_bytes = Path(photo).read_bytes()
        except OSError as error:
            print(f"refinebot: cannot read the photo: {error}", file=sys.stderr)
            return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out) if out else Path(f"refine-{stamp}")
    return asyncio.run(_main(settings, brief, photo_bytes, rounds, drafts, out_dir))


async def _main(
    settings: Settings,
    brief: str,
    photo: bytes | None,
    rounds: int | None,
    drafts: int | None,
    out_dir: Path,
) -> int:
    loop = asyncio.get_running_loop()
    interrupted = False
    stopping: set[asyncio.Task[Any]] = set()

    def on_start(cancel: Any) -> None:
        def stop() -> None:
            nonlocal interrupted
            interrupted = True
            task = loop.create_task(cancel())
            stopping.add(task)
            task.add_done_callback(stopping.discard)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, stop)

    try:
        result = await refine_to_directory(
            settings, brief, out_dir, photo=photo, rounds=rounds, drafts=drafts, on_start=on_start
        )
    except InvalidImage as error:
        print(f"refinebot: the photo can't be used ({error.reason}): {error}", file=sys.stderr)
        return 2
    except RefineError as error:
        from bot.ui.refusals import refusal_text

        text = refusal_text(error)
        print(f"refinebot: {_plain(text)}", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    report = result.report
    best = report.get("best")
    summary = (
        f"best: round {best['round']} ({best['quality']}/10) -> {out_dir / best['file']}"
        if best and best.get("file")
        else "no image was finished"
    )
    print(f"{len(report['rounds'])} rounds, {report['images']} images, {report['stop_reason']}")
    print(summary)
    print(f"report: {out_dir / 'report.html'}")
    if interrupted:
        return 130
    return 0 if best else 1


def _plain(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))

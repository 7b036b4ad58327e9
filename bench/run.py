"""`python -m bench.run` (`make bench`): the bot's own cost, measured against the local fakes.

Scenarios: N chats x 3 rounds at once (a brief, then Accept, then Accept; each user waits for
the round's photo with its buttons before pressing). Figures per run, then the median over
repeats; see README.md (Performance) and bench/harness.py for what is measured and how. Then
the realistic profile (bench/waits.py: image 20 s, critic 4 s, previews off and on).

    python -m bench.run                      # the default: about 17 minutes on 2 cores
    python -m bench.run --realistic 1,50 --time-scale 0.1   # the realistic profile, scaled
    python -m bench.run --quick              # smoke run: ~1 minute
    python -m bench.run --chats 1,50 --repeats 5 --image-latency 1 --critic-latency 0.5
    python -m bench.run --profile            # py-spy over the 50-chat scenario, hotspots

Writes bench/results/latest.md and bench/results/latest.json (and profile-*.txt/.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench.harness import Config, RunResult, median, percentile, run_once
from bench.images import IMAGE_KINDS
from bench.limiter_floor import LIMITER_BURST, TELEGRAM_CEILING, replay
from bench.waits import realistic_config, wait_figures, waits_report
from tests.fakes.openai_server import Latencies

RESULTS = Path(__file__).resolve().parent / "results"

# Price assumptions for the cost comparison (USD per million tokens; list prices, as in
# bot/refine/pricing.py): GPT image models bill the picture as output image tokens; the critic
# (a small GPT vision model) bills image input as input tokens.
IMAGE_OUT_USD_PER_MTOK = 40.0
IMAGE_TEXT_IN_USD_PER_MTOK = 5.0
CRITIC_IN_USD_PER_MTOK = 0.25

TARGETS = {
    # Stated against the floor (bench/limiter_floor.py: an infinitely fast bot under the same
    # 30 messages/s limiter and the same model waits): what the bot adds above it.
    "overhead_p50_over_floor_ms": 50,
    "overhead_p95_over_floor_ms": 200,
    "ttfp_over_floor_ms": 100,
    "rounds_per_s_500_of_floor": 0.95,
    # Not bound by the limiter.
    "lag_p99_ms_500": 100,
    "rss_mb_500": 300,
    "critic_ratio": 0.10,
}
"""Bot CPU per round is reported, not a target: one core carries Telegram's per-bot ceiling
(30 messages/s, 15 rounds/s) at today's figure."""


# --- OpenAI's image-token rule ------------------------------------------------------------------


def image_tokens(width: int, height: int, detail: str | None = "high") -> int:
    """Image input tokens by OpenAI's tile rule (GPT-4o-class vision models).

    detail=low: 85. Otherwise: scale to fit in 2048x2048, then so the shortest side is at most
    768, then 170 per 512-px tile plus 85.
    """
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    scale = min(1.0, 2048 / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 170 * math.ceil(w / 512) * math.ceil(h / 512) + 85


# --- per-run figures ------------------------------------------------------------------------------


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _peak_rate(times: list[float], window: float = 5.0) -> float:
    """The highest number of events per second over any `window`-second span."""
    times = sorted(times)
    best, low = 0, 0
    for high, at in enumerate(times):
        while at - times[low] > window:
            low += 1
        best = max(best, high - low + 1)
    return best / window


def _model_waits(
    result: RunResult,
) -> tuple[list[float], list[float], dict[int, list[tuple[float, float]]]]:
    """Return each completed round's overhead (wall time − what the fakes made it wait) and
    its time to first photo − the image's wait, in seconds; and each chat's rounds' (image
    wait, critic wait) in order."""
    cfg = result.config
    waits = Latencies(cfg.image_latency, cfg.critic_latency, cfg.latency_spread)
    overhead, ttfp = [], []
    per_chat: defaultdict[int, list[tuple[float, float]]] = defaultdict(list)
    for r in sorted(result.completed, key=lambda r: (r.chat_id, r.number)):
        prompt = r.prompt or ""  # the photo always carries it; only a latency spread needs it
        image_wait, critic_wait = waits.for_image(prompt), waits.for_chat(prompt)
        per_chat[r.chat_id].append((image_wait, critic_wait))
        if r.done is not None:
            overhead.append(r.done - r.enqueued - image_wait - critic_wait)
        if r.first_photo is not None:
            ttfp.append(r.first_photo - r.enqueued - image_wait)
    return overhead, ttfp, dict(per_chat)


def summarize_run(result: RunResult) -> dict[str, Any]:
    cfg = result.config
    done = result.completed
    overhead, ttfp, waits = _model_waits(result)
    models_s = max((sum(i + c for i, c in rounds) for rounds in waits.values()), default=0.0)
    floor = replay(list(waits.values()), think_s=cfg.think)
    total = max(result.finished - result.started, 1e-9)
    window = [c for c in result.api_calls if result.started <= c[0] <= result.finished]
    limited = [c for c in window if c[3]]
    methods = Counter(c[1] for c in window)
    n_done = max(len(done), 1)
    answers = result.extra.get("answer_s", [])
    usage_image = [u for kind, u in result.usage if kind == "image"]
    return {
        "chats": cfg.chats,
        "rounds_planned": cfg.chats * cfg.rounds,
        "rounds_done": len(done),
        "rounds_failed": len(result.rounds) - len(done),
        "failures": Counter(r.failed for r in result.rounds if r.failed)
        and dict(Counter(r.failed for r in result.rounds if r.failed)),
        "total_s": total,
        "models_s": models_s,
        "rounds_per_s": len(done) / total,
        "overhead_p50_ms": _ms(percentile(overhead, 50)),
        "overhead_p95_ms": _ms(percentile(overhead, 95)),
        "overhead_max_ms": _ms(max(overhead, default=None)),
        "ttfp_p50_ms": _ms(percentile(ttfp, 50)),
        "ttfp_p95_ms": _ms(percentile(ttfp, 95)),
        "lag_p50_ms": _ms(percentile(result.lag_s, 50)),
        "lag_p99_ms": _ms(percentile(result.lag_s, 99)),
        "lag_max_ms": _ms(max(result.lag_s, default=None)),
        "lag_samples": len(result.lag_s),
        "rss_peak_mb": result.rss_peak_mb,
        "bot_cpu_s": result.bot_cpu_s,
        "bot_cpu_ms_per_round": result.bot_cpu_s * 1000 / n_done,
        "bot_cpu_raw_ms_per_round": result.bot_cpu_raw_s * 1000 / n_done,
        "idle_cpu_ms_per_s": result.idle_cpu_per_s * 1000,
        "bot_cpu_busy": result.bot_cpu_s / total,
        "fakes_cpu_ms_per_round": result.fakes_cpu_s * 1000 / n_done,
        "db_bytes_per_round": (result.db_bytes - result.db_bytes_empty)
        / max(result.rounds_total_in_db, 1),
        "image_store_bytes_per_round": result.image_store_bytes / max(result.rounds_total_in_db, 1),
        "api_calls": len(window),
        "api_calls_per_round": len(window) / n_done,
        "api_calls_per_s": len(window) / total,
        "api_calls_peak_5s_per_s": _peak_rate([c[0] for c in window]),
        "limited_calls": len(limited),
        "limited_calls_per_s": len(limited) / total,
        "limited_calls_per_round": len(limited) / n_done,
        "limiter_floor_s": floor.total_s,
        "limiter_overhead_p50_ms": _ms(percentile(floor.overhead_s, 50)),
        "limiter_overhead_p95_ms": _ms(percentile(floor.overhead_s, 95)),
        "limiter_ttfp_p50_ms": _ms(percentile(floor.first_photo_s, 50)),
        "api_calls_per_cpu_s": len(window) / max(result.bot_cpu_s, 1e-9),
        "methods": dict(methods),
        "failed_api_calls": sum(1 for c in window if not c[2]),
        "failed_callback_answers": result.extra.get("failed_callback_answers", 0),
        "answer_p95_ms": (percentile(answers, 95) or 0.0) * 1000,
        "answer_max_ms": max(answers, default=0.0) * 1000,
        "image_output_tokens": median([u.get("output_tokens") for u in usage_image]),
        "image_text_tokens": median([u.get("input_tokens") for u in usage_image]),
        "critic_images": len(result.critic_images),
        "critic_jpeg_bytes": median([c["bytes"] for c in result.critic_images]),
        "critic_data_url_chars": median([c["data_url_chars"] for c in result.critic_images]),
        "critic_width": median([c["width"] for c in result.critic_images]),
        "critic_height": median([c["height"] for c in result.critic_images]),
        "critic_detail": next((c["detail"] for c in result.critic_images), None),
        "raw_image_bytes": median([g["bytes"] for g in result.generated]),
        "raw_image_format": next((g["format"] for g in result.generated), None),
        "raw_width": median([g["width"] for g in result.generated]),
        "raw_height": median([g["height"] for g in result.generated]),
        "telegram_photo_bytes": median(result.raw_image_bytes),
        "stderr_tail": result.stderr_tail[-5:],
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure over the runs; other values from the first run."""
    out: dict[str, Any] = {"runs": len(runs)}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value is None:
            values = [run.get(key) for run in runs]
            out[key] = value if all(v == value for v in values) else values
            continue
        out[key] = median([run.get(key) for run in runs])
    out["total_s_all"] = [run["total_s"] for run in runs]
    return out


# --- the report -------------------------------------------------------------------------------


def vs_one_chat(sc: dict[str, Any], one: dict[str, Any] | None) -> float | None:
    """Return the scenario's total time relative to one chat's, each first divided by the time
    its slowest chat waited for the models (the same for every scenario unless latencies
    spread), so the ratio is the bot's slowdown, not luck in the latency draws."""
    if not one or not sc.get("models_s") or not one.get("models_s"):
        return None
    return (sc["total_s"] / sc["models_s"]) / (one["total_s"] / one["models_s"])


def floor_vs_one_chat(sc: dict[str, Any], one: dict[str, Any] | None) -> float | None:
    """Return the scenario's limiter floor (bench/limiter_floor.py) relative to one chat's
    measured time, as `vs_one_chat` compares the scenario itself."""
    if sc.get("limiter_floor_s") is None:
        return None
    return vs_one_chat({**sc, "total_s": sc["limiter_floor_s"]}, one)


def _scenario_row(key: str, limiter: str, sc: dict[str, Any], one: dict[str, Any] | None) -> str:
    """Return one scenario's row of the Markdown table."""
    ratio = vs_one_chat(sc, one)
    return (
        f"| {key} | {limiter} | {sc['runs']} | {_fmt(sc['total_s'], 1)} | {_fmt(ratio, 2)} "
        f"| {_fmt(sc['rounds_per_s'], 2)} "
        f"| {_fmt(sc['overhead_p50_ms'])} / {_fmt(sc['overhead_p95_ms'])} "
        f"| {_fmt(sc['ttfp_p50_ms'])} / {_fmt(sc['ttfp_p95_ms'])} "
        f"| {_fmt(sc['lag_p99_ms'])} / {_fmt(sc['lag_max_ms'])} "
        f"| {_fmt(sc['rss_peak_mb'])} | {_fmt(sc['bot_cpu_ms_per_round'], 1)} "
        f"| {_fmt(sc['fakes_cpu_ms_per_round'], 1)} "
        f"| {_fmt(sc['api_calls_per_s'], 1)} ({_fmt(sc['limited_calls_per_s'], 1)}) "
        f"| {_fmt(sc['api_calls_per_round'], 1)} ({_fmt(sc['limited_calls_per_round'], 1)}) "
        f"| {_fmt(sc.get('answer_p95_ms'))} / {_fmt(sc.get('answer_max_ms'))} "
        f"({_fmt(sc['failed_callback_answers'])}) "
        f"| {_fmt(sc['db_bytes_per_round'])} | {_fmt(sc['image_store_bytes_per_round'])} "
        f"| {_fmt(sc['rounds_failed'])} |"
    )


def _fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def _raw_label(sc: dict[str, Any]) -> str:
    if not sc.get("raw_image_bytes"):
        return "none served"
    return (
        f"{sc['raw_width']:.0f}×{sc['raw_height']:.0f} "
        f"{(sc.get('raw_image_format') or 'png').upper()}, {sc['raw_image_bytes']:,.0f} bytes"
    )


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✓" if ok else "✗")


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _ge(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _spread_label(settings: dict[str, Any]) -> str:
    spread = settings.get("latency_spread") or 0
    return f" (each call × 1 ± {spread:g}, fixed by its prompt)" if spread else ""


def build_report(report: dict[str, Any]) -> str:
    s = report["scenarios"]
    settings = report["settings"]
    one = s.get("1")
    fifty = s.get("50")
    big_key = max(s, key=int) if s else None
    big = s.get(big_key) if big_key else None
    lines: list[str] = []
    add = lines.append
    add(f"# refinebot benchmark — {report['date']}")
    add("")
    add(
        f"Machine: {report['machine']['cpus']} cores, Python {report['machine']['python']}. "
        f"Image backend latency {settings['image_latency']:g} s, critic "
        f"{settings['critic_latency']:g} s{_spread_label(settings)}, Telegram fake latency "
        f"{settings['telegram_latency']:g} s; `{settings['image_kind']}` images as the bot "
        f"requested them ({_raw_label(big or one or {})}); "
        f"rate limiter {'as configured' if settings['rate_limiter'] else 'OFF'}; "
        "previews off (IMAGE_PREVIEWS=0: the photo, then its caption edit). "
        "Medians over runs (runs per scenario in the table)."
    )
    add("")
    add("## Targets")
    add("")
    add("| Figure | Measured | Target | | Best any bot can do under the 30/s limit |")
    add("|---|---:|---:|:-:|---:|")

    def row(name: str, value: str, target: str, ok: bool | None, floor: str = "") -> None:
        add(f"| {name} | {value} | {target} | {_mark(ok)} | {floor} |")

    def over_floor(name: str, sc: dict[str, Any], floor_key: str, target: str) -> None:
        value, floor = sc[name], sc.get(floor_key)
        limit = TARGETS[target]
        row(
            f"{label_of[name]} ({sc['chats']:g} chat{'' if sc['chats'] == 1 else 's'})",
            _fmt(value, 0, " ms"),
            f"≤ floor + {limit} ms",
            None if floor is None else _le(value, floor + limit),
            _fmt(floor, 0, " ms"),
        )

    label_of = {
        "overhead_p50_ms": "Overhead per round p50",
        "overhead_p95_ms": "Overhead per round p95",
        "ttfp_p50_ms": "Time to first photo − image latency, p50",
    }
    for sc in (one, fifty):
        if sc is None:
            continue
        over_floor("overhead_p50_ms", sc, "limiter_overhead_p50_ms", "overhead_p50_over_floor_ms")
        over_floor("overhead_p95_ms", sc, "limiter_overhead_p95_ms", "overhead_p95_over_floor_ms")
        over_floor("ttfp_p50_ms", sc, "limiter_ttfp_p50_ms", "ttfp_over_floor_ms")
    cpu_sc = fifty or big or one
    if cpu_sc:
        row(
            f"Bot CPU per round, user+sys ({cpu_sc['chats']:g} chats)",
            _fmt(cpu_sc["bot_cpu_ms_per_round"], 1, " ms"),
            "reported",
            None,
        )
    ratio = vs_one_chat(fifty, one) if fifty else None
    if ratio is not None:
        row(
            "50 chats × 3 rounds vs 1 chat",
            _fmt(ratio, 2, "×"),
            "reported",
            None,
            _fmt(floor_vs_one_chat(fifty, one), 2, "×"),
        )
    if big and big_key and int(big_key) > 50:
        label = f"{big_key} chats"
        floor_rate = big["rounds_done"] / big["limiter_floor_s"]
        share = TARGETS["rounds_per_s_500_of_floor"]
        row(
            f"Rounds per second ({label})",
            _fmt(big["rounds_per_s"], 1),
            f"≥ {share:g} × floor ({floor_rate * share:.1f})",
            _ge(big["rounds_per_s"], floor_rate * share),
            _fmt(floor_rate, 1),
        )
        row(
            f"Event-loop lag p99 ({label})",
            _fmt(big["lag_p99_ms"], 0, " ms"),
            "≤ 100 ms",
            _le(big["lag_p99_ms"], TARGETS["lag_p99_ms_500"]),
        )
        row(
            f"Peak RSS ({label})",
            _fmt(big["rss_peak_mb"], 0, " MB"),
            "≤ 300 MB",
            _le(big["rss_peak_mb"], TARGETS["rss_mb_500"]),
        )
    if big:
        row(
            f"Bot API calls/s sustained ({big['chats']:g} chats)",
            _fmt(big["api_calls_per_s"], 1),
            "≈ 30 (Telegram's ceiling)",
            _ge(big["api_calls_per_s"], TELEGRAM_CEILING * 0.9),
        )
        row(
            f"Bot API calls per bot CPU-second ({big['chats']:g} chats)",
            _fmt(big["api_calls_per_cpu_s"], 0),
            "≥ 30 (one core reaches the ceiling)",
            _ge(big["api_calls_per_cpu_s"], TELEGRAM_CEILING),
        )
    critic = report.get("critic")
    if critic:
        row(
            "Critic payload / raw image bytes",
            _fmt(critic["jpeg_ratio"] * 100, 1, " %"),
            "≤ 10 %",
            _le(critic["jpeg_ratio"], TARGETS["critic_ratio"]),
        )
    add("")
    add("## Scenarios (N chats × 3 rounds at once)")
    add("")
    add(
        "| Chats | Limiter | Runs | Total s | × 1 chat | Rounds/s | Overhead p50 / p95 ms "
        "| First photo − image p50 / p95 ms | Loop lag p99 / max ms | Peak RSS MB "
        "| Bot CPU ms/round | Fakes CPU ms/round | API calls/s (limited) "
        "| Calls/round (limited) | Button answer p95 / max ms (late) | DB B/round "
        "| Image files B/round "
        "| Failed rounds |"
    )
    add("|" + "---:|" * 18)
    for limiter, scenarios in (("on", s), ("**off**", report.get("no_limiter", {}))):
        for key in sorted(scenarios, key=int):
            add(_scenario_row(key, limiter, scenarios[key], one))
    add("")
    add(
        "Overhead = round wall time (the user's update enqueued at the fake → the caption edit "
        "with the buttons arriving at the fake) − the image and critic latencies it met. First "
        "photo = enqueued → sendPhoto arriving, − the image latency. Loop lag is sampled inside "
        "the bot every 20 ms. Bot CPU = user+sys of the bot process over the scenario ÷ rounds, "
        "less the lag sampler's own cost (the bot's idle CPU rate, measured before each scenario; "
        "raw figures in latest.json). The fakes' (and driver's) CPU is this harness process's. "
        "API calls = every Bot API call but getUpdates; *limited* = the calls the bot's rate "
        "limiter meters at 30/s (every call with a chat_id but chat actions and reactions, "
        "which are not messages: bot/rate_limit.py). Button answer = a press → its "
        "answerCallbackQuery at the fake; late = refused as too old (> 15 s). DB B/round = "
        "database file growth ÷ rounds stored (the warm-up round included); image files are "
        "stored beside it."
    )
    add("")
    add("## Rate limiter vs the bot's own work")
    add("")
    if one:
        per_round = one["limited_calls_per_round"]
        add(
            f"The rate limiter meters messages (sends, edits, deletes): a burst of "
            f"{LIMITER_BURST}, then 30/s. A round makes {per_round:.1f} such calls with one "
            f"chat, which caps the bot at {TELEGRAM_CEILING / per_round:.1f} rounds/s whatever "
            f"its CPU. *Floor* (here and in the targets' last column) = the same rounds (the "
            f"same model waits) replayed by an infinitely fast bot whose messages go through the "
            f"same limiter (`bench/limiter_floor.py`): no bot sending these messages does better."
        )
        add("")
    for key in sorted(s, key=int):
        sc = s[key]
        off = report.get("no_limiter", {}).get(key)
        floor_ratio = floor_vs_one_chat(sc, one)
        text = (
            f"- **{key} chat{'' if key == '1' else 's'}**: {sc['limited_calls']:.0f} "
            f"rate-limited calls in {sc['total_s']:.1f} s = {sc['limited_calls_per_s']:.1f}/s "
            f"against the limiter's 30/s. Floor: {sc['limiter_floor_s']:.1f} s"
            f"{'' if floor_ratio is None else f' ({floor_ratio:.2f}× one chat)'}, overhead "
            f"p50 / p95 {_fmt(sc['limiter_overhead_p50_ms'])} / "
            f"{_fmt(sc['limiter_overhead_p95_ms'])} ms. The bot's own CPU was "
            f"{sc['bot_cpu_s']:.1f} s ({sc['bot_cpu_busy'] * 100:.0f} % of one core over the "
            f"run)."
        )
        if off:
            share = max(0.0, (sc["total_s"] - off["total_s"]) / sc["total_s"])
            text += (
                f" Without the limiter the same scenario took {off['total_s']:.1f} s "
                f"({off['rounds_per_s']:.1f} rounds/s): the limiter accounts for ≈ "
                f"{share * 100:.0f} % of the wall time."
            )
        add(text)
    add("")
    if critic:
        add("## Critic payload per round")
        add("")
        add("| | Bytes | Share of raw | Image tokens (tile rule) | USD per round |")
        add("|---|---:|---:|---:|---:|")
        add(
            f"| Raw generated image ({critic['raw_width']}×{critic['raw_height']} "
            f"{critic['raw_format']}) "
            f"| {_fmt(critic['raw_bytes'])} | 100 % | {critic['raw_tokens']} "
            f"| {critic['raw_usd']:.5f} |"
        )
        add(
            f"| Critic JPEG as sent ({critic['width']}×{critic['height']}, "
            f"detail={critic['detail']}) | {_fmt(critic['jpeg_bytes'])} "
            f"| {critic['jpeg_ratio'] * 100:.1f} % | {critic['tokens']} "
            f"| {critic['usd']:.5f} |"
        )
        add(
            f"| … its base64 data URL on the wire | {_fmt(critic['data_url_chars'])} "
            f"| {critic['data_url_ratio'] * 100:.1f} % | | |"
        )
        add(
            f"| Image generation itself ({critic['image_output_tokens']:.0f} output image "
            f"tokens) | | | | {critic['image_usd']:.4f} |"
        )
        add("")
        add(
            f"The critic's image costs {critic['usd'] / critic['image_usd'] * 100:.2f} % of "
            "the image generation. By the tile rule a 1024×1024 image and its 768×768 copy are "
            "the same 4 tiles (765 tokens): the downscale saves upload bytes (and pixels for "
            "self-hosted critics that bill by them), not OpenAI tokens. Prices assumed: image "
            "output tokens "
            f"${IMAGE_OUT_USD_PER_MTOK:g}/M and text input ${IMAGE_TEXT_IN_USD_PER_MTOK:g}/M "
            f"(GPT image models), critic input ${CRITIC_IN_USD_PER_MTOK:g}/M (a small GPT "
            "vision model); token counts from the usage the fake returns (its image usage "
            "follows the GPT-image medium-quality rate: 1056 tokens per 1024² image)."
        )
        add("")
    lines.extend(waits_report(report))
    add("## Reproduce")
    add("")
    add(f"`{report['command']}` (the default is `make bench`).")
    add("")
    return "\n".join(lines)


def critic_summary(sc: dict[str, Any]) -> dict[str, Any] | None:
    if not sc.get("critic_jpeg_bytes") or not sc.get("raw_image_bytes"):
        return None
    raw_w, raw_h = int(sc["raw_width"]), int(sc["raw_height"])
    width, height = int(sc["critic_width"]), int(sc["critic_height"])
    detail = sc.get("critic_detail") or "auto"
    tokens = image_tokens(width, height, detail)
    raw_tokens = image_tokens(raw_w, raw_h, detail)
    out_tokens = sc.get("image_output_tokens") or 0
    text_tokens = sc.get("image_text_tokens") or 0
    return {
        "raw_bytes": sc["raw_image_bytes"],
        "raw_width": raw_w,
        "raw_height": raw_h,
        "raw_tokens": raw_tokens,
        "raw_format": (sc.get("raw_image_format") or "png").upper(),
        "raw_usd": raw_tokens * CRITIC_IN_USD_PER_MTOK / 1e6,
        "jpeg_bytes": sc["critic_jpeg_bytes"],
        "jpeg_ratio": sc["critic_jpeg_bytes"] / sc["raw_image_bytes"],
        "data_url_chars": sc["critic_data_url_chars"],
        "data_url_ratio": sc["critic_data_url_chars"] / sc["raw_image_bytes"],
        "width": width,
        "height": height,
        "detail": detail,
        "tokens": tokens,
        "usd": tokens * CRITIC_IN_USD_PER_MTOK / 1e6,
        "image_output_tokens": out_tokens,
        "image_usd": (
            out_tokens * IMAGE_OUT_USD_PER_MTOK + text_tokens * IMAGE_TEXT_IN_USD_PER_MTOK
        )
        / 1e6,
    }


# --- running ---------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=_ints, default=[1, 50, 500], help="N list (1,50,500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per N up to 50 (3)")
    parser.add_argument(
        "--repeats-large", type=int, default=1, help="runs per N above 50 (1: ~5 min each)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per chat (3)")
    parser.add_argument("--image-latency", type=float, default=2.0, help="seconds (2.0)")
    parser.add_argument("--critic-latency", type=float, default=1.0, help="seconds (1.0)")
    parser.add_argument(
        "--latency-spread",
        type=float,
        default=0.0,
        metavar="F",
        help="each image and critic call waits its latency × a factor in [1-F, 1+F] "
        "(0: all calls wait exactly as long, so every wave of rounds lands at once)",
    )
    parser.add_argument("--telegram-latency", type=float, default=0.0, help="seconds (0)")
    parser.add_argument("--image", choices=IMAGE_KINDS, default="photo", help="(photo)")
    parser.add_argument(
        "--no-limiter",
        type=_ints,
        default=[50],
        metavar="N,...",
        help="also run these N with the rate limiter off, once each (50); '' for none",
    )
    parser.add_argument("--think", type=float, default=0.0, help="user think time, s (0)")
    parser.add_argument("--stall-timeout", type=float, default=120.0, help="seconds (120)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 and 20 chats once, realistic 1 × 0.1"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const=50,
        type=int,
        metavar="N",
        help="only profile the N-chat scenario (50) with py-spy and report hotspots",
    )
    parser.add_argument(
        "--realistic",
        type=_ints,
        default=[1, 50],
        metavar="N,...",
        help="also run these N with the realistic profile (image 20 s, critic 4 s, ±50 %%), "
        "previews off and on (1,50); '' for none",
    )
    parser.add_argument("--realistic-repeats", type=int, default=1, help="runs each (1)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="the realistic profile's model waits × F (1.0; 0.1: a tenth of the time)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.chats, args.repeats, args.repeats_large, args.no_limiter = [1, 20], 1, 1, [20]
        args.realistic, args.time_scale = [1], 0.1
    return args


def _config(args: argparse.Namespace, chats: int, *, rate_limiter: bool = True) -> Config:
    return Config(
        chats=chats,
        rounds=args.rounds,
        image_latency=args.image_latency,
        critic_latency=args.critic_latency,
        latency_spread=args.latency_spread,
        telegram_latency=args.telegram_latency,
        image_kind=args.image,
        rate_limiter=rate_limiter,
        think=args.think,
        stall_timeout=args.stall_timeout,
    )


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _scenario(args: argparse.Namespace, chats: int, runs: int, limiter: bool) -> dict:
    summaries = []
    for index in range(runs):
        began = time.monotonic()
        result = await run_once(_config(args, chats, rate_limiter=limiter))
        summary = summarize_run(result)
        summaries.append(summary)
        _log(
            f"  {chats:>4} chats, limiter {'on ' if limiter else 'off'} run {index + 1}/{runs}: "
            f"{summary['total_s']:.1f} s, {summary['rounds_done']}/{summary['rounds_planned']} "
            f"rounds, overhead p50 {_fmt(summary['overhead_p50_ms'])} ms, bot CPU "
            f"{summary['bot_cpu_ms_per_round']:.1f} ms/round "
            f"(took {time.monotonic() - began:.0f} s)"
        )
        if summary["rounds_failed"]:
            _log(f"    failed rounds: {summary['failures']}; bot stderr: {summary['stderr_tail']}")
    return aggregate(summaries)


async def _realistic(args: argparse.Namespace, chats: int, previews: int) -> dict[str, Any]:
    """Run the realistic profile (bench/waits.py) `--realistic-repeats` times; the medians."""
    cfg = realistic_config(
        _config(args, chats), chats, previews=previews, time_scale=args.time_scale
    )
    figures = []
    for index in range(args.realistic_repeats):
        began = time.monotonic()
        figures.append(wait_figures(await run_once(cfg)))
        last = figures[-1]
        _log(
            f"  realistic {chats:>4} chats, previews {'on ' if previews else 'off'} run "
            f"{index + 1}/{args.realistic_repeats}: buttons p50 {_fmt(last['buttons_p50'], 2)} s, "
            f"first preview p50 {_fmt(last['preview_p50'], 2)} s, "
            f"{last['messages_per_round']:.1f} messages/round "
            f"(took {time.monotonic() - began:.0f} s)"
        )
    return aggregate(figures)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "-m", "bench.run", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "image_latency": args.image_latency,
            "critic_latency": args.critic_latency,
            "latency_spread": args.latency_spread,
            "telegram_latency": args.telegram_latency,
            "image_kind": args.image,
            "rounds": args.rounds,
            "rate_limiter": True,
            "repeats": args.repeats,
            "repeats_large": args.repeats_large,
            "think": args.think,
        },
        "targets": TARGETS,
        "scenarios": {},
        "no_limiter": {},
    }
    for chats in args.chats:
        runs = args.repeats if chats <= 50 else args.repeats_large
        report["scenarios"][str(chats)] = await _scenario(args, chats, runs, True)
    for chats in args.no_limiter:
        report["no_limiter"][str(chats)] = await _scenario(args, chats, 1, False)
    report["realistic_settings"] = {
        "time_scale": args.time_scale,
        "repeats": args.realistic_repeats,
    }
    report["realistic"] = {}
    for chats in args.realistic:
        for previews in (0, 1):
            key = f"{chats}:{previews}"
            report["realistic"][key] = await _realistic(args, chats, previews)
    scenarios = report["scenarios"]
    source = scenarios.get("50") or next(iter(scenarios.values()), None)
    report["critic"] = critic_summary(source) if source else None
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # The fakes' server logs (client disconnects when the bot stops) go to a file, not the tty.
    fakes_log = logging.FileHandler(args.out / "fakes.log", mode="w")
    fakes_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("aiohttp").addHandler(fakes_log)
    logging.getLogger("aiohttp").propagate = False
    if args.profile is not None:
        from bench.profile import profile_scenario

        return uvloop.run(profile_scenario(_config(args, args.profile), args.out))
    began = time.monotonic()
    # The fakes stand in for remote servers: uvloop keeps their CPU off the bot's cores.
    report = uvloop.run(main_async(args))
    report["elapsed_s"] = time.monotonic() - began
    markdown = build_report(report)
    (args.out / "latest.md").write_text(markdown)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(markdown)
    _log(f"wrote {args.out / 'latest.md'} and latest.json in {report['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

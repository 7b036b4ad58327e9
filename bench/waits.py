"""What the user waits for with real models: the "realistic" latency profile, with and
without live previews.

The default scenarios (bench/run.py) use short model waits to measure the bot's own cost. Real
GPT image calls take tens of seconds, and what a user then feels is the model's wait: the
realistic profile draws each image in 20 s and critiques it in 4 s, each call × 1 ± 0.5 (fixed
by its prompt), and the fake streams the first partial image at 40 % of the image's time. Each
N chats runs with IMAGE_PREVIEWS=0 (today's photo) and 1 (the preview photo, then the final
image in its place), and reports, from the brief or the press: the first preview, the final
image, the buttons (p50 / p95), and the Telegram messages a round costs, beside the floor (the
same rounds replayed by an infinitely fast bot through the same limiter,
bench/limiter_floor.py). `--time-scale` shrinks every model wait by one factor (a 0.1 run takes
a tenth of the time; the bot's own milliseconds are not scaled, so the shares it reports are, if
anything, worse than at full scale).
"""

from __future__ import annotations

from typing import Any

from bench.harness import Config, RunResult, percentile
from bench.limiter_floor import replay
from tests.fakes.openai_server import Latencies

REALISTIC_IMAGE_S = 20.0
REALISTIC_CRITIC_S = 4.0
REALISTIC_SPREAD = 0.5
FIRST_PARTIAL_AT = 0.4

PREVIEW_SHARE_TARGET = 0.45
"""First preview ≤ 45 % of the image latency, p50 (previews on)."""
BUTTONS_OVER_FLOOR_MS = 100
"""Buttons ≤ the floor's + 100 ms, p50 (previews on)."""


def realistic_config(base: Config, chats: int, *, previews: int, time_scale: float = 1.0) -> Config:
    """Return the realistic profile's run of `chats` chats (the rest as `base`)."""
    return Config(
        chats=chats,
        rounds=base.rounds,
        image_latency=REALISTIC_IMAGE_S * time_scale,
        critic_latency=REALISTIC_CRITIC_S * time_scale,
        latency_spread=REALISTIC_SPREAD,
        telegram_latency=base.telegram_latency,
        image_kind=base.image_kind,
        think=base.think,
        stall_timeout=max(base.stall_timeout, 4 * REALISTIC_IMAGE_S * time_scale),
        previews=previews,
        first_partial_at=FIRST_PARTIAL_AT,
    )


def wait_figures(result: RunResult) -> dict[str, Any]:
    """Return one run's waits (seconds, from the brief or press) and messages per round,
    measured and as the floor has them."""
    cfg = result.config
    waits = Latencies(cfg.image_latency, cfg.critic_latency, cfg.latency_spread)
    rounds = sorted(result.completed, key=lambda r: (r.chat_id, r.number))
    per_chat: dict[int, list[tuple[float, float]]] = {}
    preview, share, final, buttons, over = [], [], [], [], []
    for r in rounds:
        image_wait = waits.for_image(r.prompt or "")
        critic_wait = waits.for_chat(r.prompt or "")
        per_chat.setdefault(r.chat_id, []).append((image_wait, critic_wait))
        if r.first_preview is not None:
            preview.append(r.first_preview - r.enqueued)
            share.append((r.first_preview - r.enqueued) / image_wait)
        if r.first_photo is not None:
            final.append(r.first_photo - r.enqueued)
        if r.done is not None:
            buttons.append(r.done - r.enqueued)
            over.append(r.done - r.enqueued - image_wait - critic_wait)
    floor = replay(
        list(per_chat.values()),
        think_s=cfg.think,
        preview_at=cfg.first_partial_at if cfg.previews else None,
    )
    out: dict[str, Any] = {
        "chats": cfg.chats,
        "previews": cfg.previews,
        "rounds_done": len(rounds),
        "rounds_failed": len(result.rounds) - len(rounds),
        "messages_per_round": sum(r.messages for r in rounds) / max(len(rounds), 1),
        "rounds_with_preview": len(preview),
        "total_s": result.finished - result.started,
    }
    for name, values in (
        ("preview", preview),
        ("preview_share", share),
        ("final", final),
        ("buttons", buttons),
        ("buttons_over_models", over),
        ("floor_preview", floor.preview_s),
        ("floor_preview_share", floor.preview_share),
        ("floor_final", floor.final_s),
        ("floor_buttons", floor.buttons_s),
        ("floor_buttons_over_models", floor.overhead_s),
    ):
        out[f"{name}_p50"] = percentile(values, 50)
        out[f"{name}_p95"] = percentile(values, 95)
    return out


def _s(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{round(value, digits) + 0.0:.{digits}f}"  # no "-0"


def _pair(sc: dict[str, Any], name: str, digits: int = 2) -> str:
    return f"{_s(sc.get(f'{name}_p50'), digits)} / {_s(sc.get(f'{name}_p95'), digits)}"


def waits_report(report: dict[str, Any]) -> list[str]:
    """Return the Markdown section of the realistic profile (empty when it was not run)."""
    runs: dict[str, dict[str, Any]] = report.get("realistic") or {}
    if not runs:
        return []
    settings = report.get("realistic_settings", {})
    scale = settings.get("time_scale", 1.0)
    lines = [
        "## What the user waits for (realistic profile)",
        "",
        f"Image {REALISTIC_IMAGE_S * scale:g} s and critic {REALISTIC_CRITIC_S * scale:g} s, "
        f"each × 1 ± {REALISTIC_SPREAD:g}, first partial image at "
        f"{FIRST_PARTIAL_AT * 100:.0f} % of the image's time"
        + (f" (time scale {scale:g} of the 20 s / 4 s profile)" if scale != 1 else "")
        + f"; {settings.get('repeats', 1)} run(s) each, medians. Seconds from the brief or "
        "the press to each event at the Telegram fake, p50 / p95; floor = an infinitely fast "
        "bot under the same 30/s limiter and the same model waits.",
        "",
        "| Chats | Previews | First preview s | Final image s | Buttons s | Buttons − models "
        "ms (floor) | First preview / image latency p50 (floor) | Telegram messages / round "
        "| Failed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(runs, key=lambda k: (int(k.split(":")[0]), k)):
        sc = runs[key]
        over = sc.get("buttons_over_models_p50")
        floor_over = sc.get("floor_buttons_over_models_p50")
        lines.append(
            f"| {sc['chats']:g} | {'on' if sc['previews'] else 'off'} "
            f"| {_pair(sc, 'preview')} | {_pair(sc, 'final')} | {_pair(sc, 'buttons')} "
            f"| {_s(None if over is None else over * 1000, 0)} "
            f"({_s(None if floor_over is None else floor_over * 1000, 0)}) "
            f"| {_s(sc.get('preview_share_p50'))} ({_s(sc.get('floor_preview_share_p50'))}) "
            f"| {_s(sc.get('messages_per_round'), 1)} | {sc.get('rounds_failed', 0):g} |"
        )
    lines += ["", "| Target (previews on) | Measured | Target | |", "|---|---:|---:|:-:|"]
    for key in sorted(runs, key=lambda k: int(k.split(":")[0])):
        sc = runs[key]
        if not sc["previews"]:
            continue
        share = sc.get("preview_share_p50")
        ok = None if share is None else share <= PREVIEW_SHARE_TARGET
        lines.append(
            f"| First preview / image latency p50, {sc['chats']:g} chat(s) | {_s(share)} "
            f"| ≤ {PREVIEW_SHARE_TARGET:g} | {_mark(ok)} |"
        )
        over, floor_over = (
            sc.get("buttons_over_models_p50"),
            sc.get("floor_buttons_over_models_p50"),
        )
        ok = (
            None
            if over is None or floor_over is None
            else (over * 1000 <= floor_over * 1000 + BUTTONS_OVER_FLOOR_MS)
        )
        lines.append(
            f"| Buttons − models p50, {sc['chats']:g} chat(s) "
            f"| {_s(None if over is None else over * 1000, 0)} ms "
            f"| ≤ floor + {BUTTONS_OVER_FLOOR_MS} ms "
            f"({_s(None if floor_over is None else floor_over * 1000 + BUTTONS_OVER_FLOOR_MS, 0)} "
            f"ms) | {_mark(ok)} |"
        )
    lines.append("")
    return lines


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✓" if ok else "✗")

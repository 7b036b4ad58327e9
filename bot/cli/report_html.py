"""The terminal mode's report.html: every round and draft with its critique, the images
embedded as small JPEG previews, so the file can be mailed or opened anywhere."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from bot.images import critic_jpeg

PREVIEW_SIDE = 640
"""Long side of the JPEG previews embedded in report.html."""

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;
color:#222;background:#fafafa}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:0 0 .4rem}
.meta{color:#555}.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1rem;
margin:1rem 0}.best{border:2px solid #2a8a3e}.drafts{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;max-width:320px}figure img{max-width:320px;border-radius:4px;display:block}
figcaption{font-size:.85rem;color:#444}.kept img{outline:3px solid #2a8a3e}
.prompt{font-family:ui-monospace,monospace;background:#f3f3f3;padding:.4rem;border-radius:4px;
white-space:pre-wrap}ul{margin:.2rem 0 .4rem 1.2rem;padding:0}.bad{color:#a33}
"""


def _preview(path: Path) -> str:
    """Return a data URL of a small JPEG of the image file (empty if it cannot be read)."""
    try:
        jpeg = critic_jpeg(path.read_bytes(), PREVIEW_SIDE, quality=80)
    except (OSError, ValueError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _critique_html(critique: dict[str, Any] | None) -> str:
    if not critique:
        return ""
    strengths = "".join(f"<li>✓ {escape(s)}</li>" for s in critique.get("strengths") or [])
    problems = "".join(f"<li>✗ {escape(p)}</li>" for p in critique.get("problems") or [])
    revised = escape(critique.get("revised_prompt") or "")
    return (
        f"<ul>{strengths}{problems}</ul>"
        f"<div>Suggested next prompt:</div><div class=prompt>{revised}</div>"
    )


def _score(entry: dict[str, Any]) -> str:
    if entry.get("score") is None:
        return "no score"
    text = f"{entry['score']}/10"
    if entry.get("fidelity") is not None:
        text += f" · product {entry['fidelity']}/10"
    return text


def report_html(report: dict[str, Any], out_dir: Path) -> str:
    """Return a self-contained HTML page of the report: previews are embedded as data URLs."""
    best = report.get("best") or {}
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>refinebot: {escape(report['brief'][:60])}</title><style>{_CSS}</style></head>",
        f"<body><h1>refinebot report</h1><p class=prompt>{escape(report['brief'])}</p>",
        "<p class=meta>"
        + escape(
            f"{report.get('image_backend', '?')} {report.get('image_model', '')} · critic "
            f"{report.get('critic_model', '')} · {report['plan']['rounds']} rounds × "
            f"{report['plan']['drafts']} drafts, threshold {report['plan']['threshold']}/10 · "
            f"{report['images']} images"
            + (f" · ≈ ${report['cost_usd']:.3f}" if report.get("cost_usd") is not None else "")
            + f" · stopped: {report['stop_reason']}"
        )
        + "</p>",
    ]
    if report.get("photo"):
        parts.append(
            f"<div class=card><h2>Product photo</h2><figure><img alt='product photo' "
            f"src='{_preview(out_dir / report['photo'])}'></figure></div>"
        )
    if best.get("file"):
        parts.append(
            f"<div class='card best'><h2>Best: round {best['round']} · {_score(best)}</h2>"
            f"<figure><a href='{escape(best['file'])}'><img alt='best image' "
            f"src='{_preview(out_dir / best['file'])}'></a></figure></div>"
        )
    for entry in report["rounds"]:
        is_best = entry["number"] == best.get("round")
        parts.append(f"<div class='card{' best' if is_best else ''}'>")
        parts.append(f"<h2>Round {entry['number']} · {escape(_score(entry))}</h2>")
        parts.append(f"<div>Prompt:</div><div class=prompt>{escape(entry['prompt'])}</div>")
        if entry.get("error"):
            parts.append(f"<p class=bad>{escape(entry['error'])}</p>")
        parts.append(_critique_html(entry.get("critique")))
        parts.append("<div class=drafts>")
        for draft in entry["drafts"]:
            kept = " kept" if draft["number"] == entry.get("kept_draft") else ""
            label = f"Draft {draft['number']} · {_score(draft)}" + (" · kept" if kept else "")
            if draft.get("error"):
                label += f" · {draft['error']}"
            image = ""
            if draft.get("file"):
                image = (
                    f"<a href='{escape(draft['file'])}'><img alt='draft {draft['number']}' "
                    f"src='{_preview(out_dir / draft['file'])}'></a>"
                )
            parts.append(
                f"<figure class='{kept.strip()}'>{image}<figcaption>{escape(label)}"
                f"</figcaption></figure>"
            )
        parts.append("</div></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- the command --------------------------------------------------------------------------

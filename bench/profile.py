"""Where the bot's own CPU goes: py-spy over one scenario, folded into per-round hotspots.

`python -m bench.run --profile [N]` runs the N-chat scenario (50 by default) with
`py-spy record --threads --nonblocking --format raw` attached to the bot process after the
warm-up round, then folds the sampled stacks three ways:

* by the innermost frame in the bot's own code (bot/, storage/): what each of our functions
  costs including the library work it asks for (PTB, httpx, openai, Pillow, sqlite);
* by leaf frame (self time), to name the library routines themselves;
* by thread: the event loop versus worker threads (asyncio.to_thread, the store's thread).

Idle threads are not sampled (py-spy's default). Shares are of all samples; the ms per round
next to them scale the share by the bot's measured CPU per round.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Config, run_once

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+?)(?::(?P<line>\d+))?\)$")
_OWN = ("bot/", "storage/")


def _frame(text: str) -> tuple[str, str]:
    """Return (function, path) of a py-spy frame `func (path:line)`; py-spy already shortens
    paths to the sys.path entry (`bot/images.py`, `telegram/_bot.py`, `asyncio/events.py`)."""
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), ""
    path = match.group("file")
    root = str(ROOT) + "/"
    if path.startswith(root):
        path = path[len(root) :]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    return match.group("func"), path


_THREADS = {
    "MainThread": "event loop (main thread)",
    "asyncio": "asyncio.to_thread workers",
    "uvloop": "asyncio.to_thread workers",  # uvloop's default executor names its threads so
    "store": "store thread (SQLite, image files)",
    "loopmon": "benchmark's lag sampler",
}
_ENTRY = ("Handle._run", "_WorkItem.run")
"""Frames after which a callback, a task step or a thread-pool job starts."""
_WAITING = {
    ("Application.__run", "telegram/ext/_application.py"),
    ("_worker", "concurrent/futures/thread.py"),
}
"""Innermost frames of threads that wait in C: the frame that runs the bot's event loop (on
uvloop, a sample ending there is in the loop's own C code, mostly its epoll wait) and a thread
pool worker between jobs (blocked on its queue). py-spy only recognises Python-level waits
such as selectors' as idle, so these samples are counted apart, not in the shares."""


def fold(raw: str) -> dict[str, Any]:
    """Fold py-spy raw (collapsed) stacks, recorded with --threads, into the three views."""
    own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        thread = "other"
        if parts[0].startswith("thread "):
            name = parts.pop(0).partition(": ")[2].strip()
            thread = name.rstrip("0123456789").rstrip("_-") or name
        frames = [_frame(part) for part in parts]
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        if frames[-1] in _WAITING:
            waiting += count
            continue
        total += count
        threads[_THREADS.get(thread, f"other thread ({thread})")] += count
        func, path = frames[-1]
        leaf[f"{path}:{func}"] += count
        mine = [f for f in frames if f[1].startswith(_OWN)]
        if mine:
            own_func, own_path = mine[-1]
            own[f"{own_path}:{own_func}"] += count
            continue
        entries = [i for i, (fn, _) in enumerate(frames) if fn in _ENTRY]
        first = frames[entries[-1] + 1] if entries and entries[-1] + 1 < len(frames) else None
        package = (first or frames[-1])[1].split("/", 1)[0].removesuffix(".py")
        own[f"(no bot frame: {package})"] += count
    return {
        "total": total,
        "waiting": waiting,
        "own": own,
        "leaf": leaf,
        "threads": threads,
    }


def render(folded: dict[str, Any], rate: int, rounds: int, cpu_s: float, top: int = 20) -> str:
    total = max(folded["total"], 1)
    cpu_ms_per_round = cpu_s * 1000 / max(rounds, 1)

    def table(title: str, counter: Counter[str]) -> list[str]:
        out = [f"### {title}", "", "| Share | ≈ CPU ms/round | Where |", "|---:|---:|---|"]
        for key, count in counter.most_common(top):
            share = count / total
            out.append(f"| {share * 100:.1f} % | {share * cpu_ms_per_round:.1f} | `{key}` |")
        out.append("")
        return out

    sampled_s = folded["total"] / rate
    lines = [
        f"{folded['total']} samples at {rate} Hz ({sampled_s:.1f} s of running or runnable "
        f"threads); the bot's measured CPU (user+sys) over the same scenario: {cpu_s:.1f} s = "
        f"{cpu_ms_per_round:.1f} ms per round over {rounds} rounds. `≈ CPU ms/round` = share × "
        "that figure (py-spy also samples threads that are runnable but waiting for a core, "
        "so raw sample time overstates CPU on a busy machine; shares are what to compare). "
        f"Left out: {folded['waiting']} samples of threads waiting in C (uvloop's epoll wait, "
        "thread-pool workers between jobs), which py-spy does not recognise as idle.",
        "",
    ]
    lines += table("By thread", folded["threads"])
    lines += table("By the bot's own function (innermost bot/ or storage/ frame)", folded["own"])
    lines += table("By leaf function (self time, native code included)", folded["leaf"])
    return "\n".join(lines)


async def profile_scenario(cfg: Config, out: Path, rate: int = 200) -> int:
    raw_path = out / f"profile-{cfg.chats}.txt"
    cfg.profile = raw_path
    cfg.profile_rate = rate
    result = await run_once(cfg)
    rounds = len(result.completed)
    raw = raw_path.read_text() if raw_path.exists() else ""
    if not raw:
        print("py-spy wrote no samples (is ptrace allowed? run as root)")
        return 1
    report = (
        f"# Profile: {cfg.chats} chats × {cfg.rounds} rounds\n\n"
        f"Image latency {cfg.image_latency:g} s, critic {cfg.critic_latency:g} s, "
        f"`{cfg.image_kind}` images; py-spy {rate} Hz, non-blocking, "
        "idle frames excluded. Raw stacks: "
        f"`{raw_path.name}` (feed to speedscope or flamegraph.pl).\n\n"
        + render(fold(raw), rate, rounds, result.bot_cpu_s)
    )
    (out / f"profile-{cfg.chats}.md").write_text(report)
    print(report)
    return 0

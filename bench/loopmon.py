"""Event-loop lag, sampled inside a process whose code the benchmark does not change.

How: `install()` wraps `asyncio.BaseEventLoop.run_forever` (which `run_until_complete` uses
too), so the first time any event loop of the process starts running, a timer chain is put on
it (uvloop's loops, which are not BaseEventLoops, get it when `uvloop.new_event_loop()` makes
them): every `interval` seconds a callback is scheduled with `loop.call_at(deadline)`, and when
it runs, `loop.time() - deadline` is the lag: how long ready work kept the loop from serving
a timer that was due (the same delay every socket read and every handler sees). Nothing
depends on python-telegram-bot; the application never knows.

Samples `(time.monotonic(), lag_seconds)` go to a deque; a daemon thread appends them to a
text file every half second and at exit, one `"<monotonic> <lag>"` line each. CLOCK_MONOTONIC
is system-wide on Linux, so the harness can cut the samples to a scenario's time window.

Cost: every tick wakes an idle loop out of epoll (~0.2 ms of CPU each on the 2-core bench
machine, ~11 ms of CPU per second at the default 20 ms interval). The harness measures that
idle cost before each scenario and subtracts it from the bot's CPU.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import atexit
import threading
import time
import weakref
from collections import deque
from pathlib import Path

__all__ = ["install", "read_samples"]

_attached: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_installed = False


class _Sampler:
    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        self.samples: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()
        path.write_text("")

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        def tick(deadline: float) -> None:
            now = loop.time()
            self.samples.append((time.monotonic(), max(0.0, now - deadline)))
            next_deadline = now + self.interval
            loop.call_at(next_deadline, tick, next_deadline)

        first = loop.time() + self.interval
        loop.call_at(first, tick, first)

    def flush(self) -> None:
        with self._lock:
            lines = []
            while self.samples:
                at, lag = self.samples.popleft()
                lines.append(f"{at:.6f} {lag:.6f}\n")
            if lines:
                with self.path.open("a") as out:
                    out.writelines(lines)

    def run_flusher(self) -> None:
        while True:
            time.sleep(0.5)
            self.flush()


def install(path: str | Path, interval: float = 0.02) -> None:
    """Sample the lag of every event loop this process runs, into `path`."""
    global _installed
    if _installed:
        return
    _installed = True
    sampler = _Sampler(Path(path), interval)
    original = asyncio.base_events.BaseEventLoop.run_forever

    def run_forever(self: asyncio.base_events.BaseEventLoop) -> None:
        if self not in _attached:
            _attached.add(self)
            sampler.attach(self)
        return original(self)

    asyncio.base_events.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign]
    _attach_to_uvloop(sampler)
    threading.Thread(target=sampler.run_flusher, name="loopmon", daemon=True).start()
    atexit.register(sampler.flush)


def _attach_to_uvloop(sampler: _Sampler) -> None:
    try:
        import uvloop
    except ImportError:
        return
    original = uvloop.new_event_loop

    def new_event_loop() -> asyncio.AbstractEventLoop:
        loop = original()
        _attached.add(loop)
        sampler.attach(loop)
        return loop

    uvloop.new_event_loop = new_event_loop


def read_samples(path: str | Path) -> list[tuple[float, float]]:
    """Return the `(monotonic, lag_seconds)` samples written to `path`."""
    samples = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            samples.append((float(parts[0]), float(parts[1])))
    return samples

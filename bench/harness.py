"""One benchmark run: the fakes in this process, the real bot in its own, users driven through
the Telegram fake, and every figure read from the outside.

* The fakes (`tests/fakes`) run on this process's event loop: the Telegram Bot API (in its fast
  mode: uploaded photos are not re-encoded), the OpenAI API with the configured latencies and
  the benchmark's photo-like picture. Their CPU is this process's CPU, reported apart.
* The bot is `python -m bench.botproc` (= `python -m bot` plus the loop-lag sampler), configured
  only by environment variables, with its database in a temporary folder. Its CPU comes from
  /proc/<pid>/stat (user + sys, all threads), its peak RSS from /proc/<pid>/status (VmHWM).
* Users are driven by events, not polling: every Bot API call the fake records passes through
  `_CallLog.append`, so the harness sees the round's photo and the caption edit that adds the
  Accept button the moment the fake answers them, and presses Accept right then.

Times are `time.monotonic()`; a fake's `Call.at` is when the request arrived at the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import loopmon
from bench.images import renderer
from bot.rate_limit import UNPACED_ENDPOINTS
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.pngs import prompt_of
from tests.fakes.telegram_server import Call, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
USER_ID_BASE = 7_000_000
WARMUP_USER_ID = 6_999_999

BRIEFS = (
    "black-purple Banarasi saree on a plain backdrop, gold jewellery",
    "ceramic vase with dried flowers on a linen table, morning light",
    "amber glass serum bottle with a white label, water droplets, marble",
    "hand-stitched leather wallet, open, on a walnut desk",
    "matte black wireless earbuds in their case, soft shadow, grey studio",
)


@dataclass
class Config:
    chats: int
    rounds: int = 3
    image_latency: float = 2.0
    critic_latency: float = 1.0
    latency_spread: float = 0.0
    telegram_latency: float = 0.0
    image_kind: str = "photo"
    rate_limiter: bool = True
    think: float = 0.0
    stall_timeout: float = 90.0
    warmup: bool = True
    profile: Path | None = None
    profile_rate: int = 200
    keep_dir: Path | None = None
    previews: int = 0  # IMAGE_PREVIEWS of the bot (0: no streaming, today's photo)
    first_partial_at: float = 0.4  # the fake's first partial image, × the image latency


@dataclass
class RoundTiming:
    chat_id: int
    number: int
    enqueued: float
    first_photo: float | None = None  # the final image reaching the chat (photo or media edit)
    first_preview: float | None = None  # the preview photo ("drawing…") reaching the chat
    messages: int = 0  # calls the rate limiter meters, made for this round
    prompt: str | None = None  # read back from the photo: it sets the fakes' latencies
    done: float | None = None
    failed: str | None = None


@dataclass
class RunResult:
    config: Config
    rounds: list[RoundTiming]
    started: float
    finished: float
    bot_cpu_s: float
    bot_cpu_raw_s: float
    idle_cpu_per_s: float
    fakes_cpu_s: float
    rss_peak_mb: float
    lag_s: list[float]
    api_calls: list[tuple[float, str, bool, bool]]  # (at, method, ok, counted by the limiter)
    db_bytes: int
    db_bytes_empty: int
    image_store_bytes: int
    rounds_total_in_db: int
    usage: list[tuple[str, dict[str, Any]]]
    critic_images: list[dict[str, Any]]
    raw_image_bytes: list[int]
    generated: list[dict[str, Any]]
    stderr_tail: list[str]
    profile_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> list[RoundTiming]:
        return [r for r in self.rounds if r.done is not None and r.failed is None]


class _CallLog(list):  # type: ignore[type-arg]
    """The fake's `calls` list, calling `on_append` for every recorded call."""

    def __init__(self, on_append: Callable[[Call], None]) -> None:
        super().__init__()
        self._on_append = on_append

    def append(self, call: Call) -> None:  # type: ignore[override]
        super().append(call)
        self._on_append(call)


def _has_accept(markup: Any) -> bool:
    if not isinstance(markup, dict):
        return False
    rows = markup.get("inline_keyboard") or []
    return any("Accept" in str(button.get("text", "")) for row in rows for button in row)


@dataclass
class _Chat:
    chat: dict[str, Any]
    user: dict[str, Any]
    rounds_wanted: int
    timings: list[RoundTiming] = field(default_factory=list)
    query_id: str | None = None

    @property
    def current(self) -> RoundTiming | None:
        if self.timings and self.timings[-1].done is None and self.timings[-1].failed is None:
            return self.timings[-1]
        return None


class Driver:
    """Acts as the users: a brief, then Accept on each finished round, per chat."""

    def __init__(self, telegram: FakeTelegram, think: float) -> None:
        self.telegram = telegram
        self.think = think
        self.chats: dict[int, _Chat] = {}
        self.api_calls: list[tuple[float, str, bool, bool]] = []
        self.raw_image_bytes: list[int] = []
        self.failed_answers = 0
        self.pressed_at: dict[str, float] = {}  # callback query id -> when it was pressed
        self.answer_s: list[float] = []  # press -> answerCallbackQuery at the fake
        self.progress = 0
        self.last_progress = time.monotonic()
        self.all_done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._outstanding = 0
        telegram.calls = _CallLog(self._on_call)

    def add_chat(self, user_id: int, rounds: int) -> _Chat:
        user = self.telegram.make_user(user_id, f"User{user_id}", username=f"u{user_id}")
        chat = self.telegram.private_chat(user)
        state = _Chat(chat, user, rounds)
        self.chats[chat["id"]] = state
        self._outstanding += rounds
        return state

    def send_brief(self, state: _Chat, text: str) -> None:
        state.timings.append(RoundTiming(state.chat["id"], 1, time.monotonic()))
        self.telegram.user_sends_text(state.chat, state.user, text)

    def _press_accept(self, state: _Chat, message_id: int) -> None:
        number = len(state.timings) + 1
        state.timings.append(RoundTiming(state.chat["id"], number, time.monotonic()))
        state.query_id = self.telegram.user_presses(state.chat, state.user, message_id, "Accept")
        self.pressed_at[state.query_id] = state.timings[-1].enqueued

    def _finish(self, state: _Chat, timing: RoundTiming) -> None:
        self._outstanding -= 1
        self.progress += 1
        self.last_progress = time.monotonic()
        if self._outstanding <= 0:
            self.all_done.set()

    def _on_call(self, call: Call) -> None:
        if call.method == "getUpdates":
            return
        params = call.params
        metered = "chat_id" in params and call.method not in UNPACED_ENDPOINTS
        self.api_calls.append((call.at, call.method, call.ok, metered))
        chat_id = params.get("chat_id")
        state = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if call.method == "answerCallbackQuery":
            pressed = self.pressed_at.pop(str(params.get("callback_query_id")), None)
            if pressed is not None:
                self.answer_s.append(call.at - pressed)
            if not call.ok:
                self.failed_answers += 1
            return
        if state is None:
            return
        current = state.current
        if current is None or not call.ok:
            return
        if metered:
            current.messages += 1
        if call.method == "sendPhoto" and "drawing…" in str(params.get("caption") or ""):
            if current.first_preview is None:
                current.first_preview = call.at
        elif call.method in ("sendPhoto", "editMessageMedia"):
            photo = call.files.get("photo") or next(iter(call.files.values()), None)
            if photo is not None:
                self.raw_image_bytes.append(len(photo))
                current.prompt = prompt_of(photo)
            if current.first_photo is None:
                current.first_photo = call.at
        markup = params.get("reply_markup")
        if call.method in ("sendPhoto", "editMessageCaption") and _has_accept(markup):
            current.done = call.at
            message_id = (
                params.get("message_id")
                if call.method == "editMessageCaption"
                else (call.result or {}).get("message_id")
            )
            self._finish(state, current)
            if len(state.timings) < state.rounds_wanted:
                self._loop.call_later(self.think, self._press_accept, state, message_id)
        elif call.method in ("sendMessage", "editMessageText"):
            text = str(params.get("text") or "")
            if text.startswith("⚠") or "failed" in text.lower():
                current.failed = text[:120]
                self._finish(state, current)

    async def wait(self, stall_timeout: float) -> bool:
        """Wait until every round is done; False if nothing progressed for `stall_timeout`."""
        while not self.all_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), 1.0)
            if time.monotonic() - self.last_progress > stall_timeout:
                for state in self.chats.values():
                    current = state.current
                    if current is not None:
                        current.failed = "no answer (stalled)"
                return False
        return True

    def timings(self) -> list[RoundTiming]:
        return [t for state in self.chats.values() for t in state.timings]


# --- the bot process -------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (all its threads, live and finished), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_threads_cpu_seconds(pid: int) -> float:
    """CPU of the process's live threads from schedstat (nanosecond precision), in seconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


async def idle_cpu_rate(pid: int, seconds: float = 2.0) -> float:
    """The bot's CPU seconds per second while idle: the lag sampler's ticks, idle polling."""
    before = proc_threads_cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (proc_threads_cpu_seconds(pid) - before) / seconds


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def bot_environment(
    telegram: FakeTelegram, openai_fake: FakeOpenAI, data_dir: Path, lag_file: Path, cfg: Config
) -> dict[str, str]:
    from bot.config import Settings

    # Nothing of the bot's configuration is inherited from the shell: every key it reads
    # (whatever keys it has by now) is dropped, then the benchmark's own are set.
    own_keys = {name.upper() for name in Settings.model_fields}
    prefixes = ("OPENAI_", "TELEGRAM_", "CRITIC_", "IMAGE_", "STABILITY_", "BENCH_")
    env = {k: v for k, v in os.environ.items() if k not in own_keys and not k.startswith(prefixes)}
    env.update(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_BASE_URL=telegram.base_url,
        TELEGRAM_FILE_BASE_URL=telegram.base_file_url,
        OPENAI_API_KEY=openai_fake.api_key,
        OPENAI_BASE_URL=openai_fake.base_url,
        DATABASE_PATH=str(data_dir / "refinebot.db"),
        ALLOWED_USER_IDS="*",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        BENCH_LAG_FILE=str(lag_file),
        IMAGE_PREVIEWS=str(cfg.previews),
    )
    if not cfg.rate_limiter:
        env["BENCH_RATE_LIMITER"] = "off"
    return env


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _empty_db_bytes(folder: Path) -> int:
    """Size of a freshly migrated database (the baseline for bytes per round)."""
    from storage.store import Store

    # Closing the only connection checkpoints the WAL into the file and deletes it.
    Store.open_sync(folder / "empty.db").close_sync()
    return (folder / "empty.db").stat().st_size


def _read_db(db_path: Path) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    import json
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        rounds = conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        usage = [
            (kind, json.loads(units or "{}"))
            for kind, units in conn.execute("SELECT kind, units FROM usage").fetchall()
        ]
        conn.close()
    except sqlite3.Error:
        return 0, []
    return rounds, usage


def _critic_payloads(openai_fake: FakeOpenAI) -> list[dict[str, Any]]:
    payloads = []
    for record in openai_fake.requests_to("chat"):
        body = record.json if isinstance(record.json, dict) else {}
        url_chars = 0
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url_chars += len(str((part.get("image_url") or {}).get("url", "")))
        for image in record.images:
            payloads.append(
                {
                    "mime": image.mime,
                    "bytes": image.size_bytes,
                    "width": image.width,
                    "height": image.height,
                    "detail": image.detail,
                    "data_url_chars": url_chars,
                }
            )
    return payloads


def _generated_images(openai_fake: FakeOpenAI, sample: int = 20) -> list[dict[str, Any]]:
    """What the image backend returned (size, format, bytes) for the first `sample` requests.

    The fake serves its cached picture with the prompt embedded; the same call gives the exact
    bytes the bot received, whatever size and format the bot asked for.
    """
    from tests.fakes.pngs import image_size, with_prompt

    out = []
    for record in openai_fake.requests_to("images")[:sample]:
        body = record.json if isinstance(record.json, dict) else {}
        size = str(body.get("size") or "1024x1024")
        fmt = str(body.get("output_format") or "png")
        width, height = (1024, 1024) if size == "auto" else (int(v) for v in size.split("x"))
        picture = openai_fake.render(width, height, fmt)
        if fmt in ("png", "jpeg"):
            picture = with_prompt(picture, str(body.get("prompt", "")))
        width, height = image_size(picture)
        out.append(
            {"size": size, "format": fmt, "bytes": len(picture), "width": width, "height": height}
        )
    return out


async def _start_profiler(pid: int, out: Path, rate: int) -> asyncio.subprocess.Process:
    py_spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _stop_profiler(profiler: asyncio.subprocess.Process) -> str:
    profiler.send_signal(signal.SIGINT)
    try:
        _, err = await asyncio.wait_for(profiler.communicate(), 60)
    except TimeoutError:
        profiler.kill()
        _, err = await profiler.communicate()
    return err.decode(errors="replace")


async def run_once(cfg: Config) -> RunResult:
    """Start fakes and bot, drive `cfg.chats` chats through `cfg.rounds` rounds, measure."""
    temp = tempfile.TemporaryDirectory(prefix="refinebot-bench-")
    work = Path(temp.name) if cfg.keep_dir is None else cfg.keep_dir
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    lag_file = work / "loop-lag.txt"
    stderr_path = work / "bot.stderr"
    telegram = FakeTelegram(render_photo_sizes=False, callback_query_ttl=15.0)
    telegram.latency = cfg.telegram_latency
    openai_fake = FakeOpenAI(
        image_latency=cfg.image_latency,
        chat_latency=cfg.critic_latency,
        latency_spread=cfg.latency_spread,
        render=renderer(cfg.image_kind),
    )
    openai_fake.first_partial_at = cfg.first_partial_at
    await telegram.start()
    await openai_fake.start()
    process: asyncio.subprocess.Process | None = None
    profiler: asyncio.subprocess.Process | None = None
    try:
        driver = Driver(telegram, cfg.think)
        env = bot_environment(telegram, openai_fake, data_dir, lag_file, cfg)
        with stderr_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.botproc",
                env=env,
                cwd=work,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        await _wait_ready(telegram, process)

        if cfg.warmup:
            state = driver.add_chat(WARMUP_USER_ID, 1)
            driver.send_brief(state, "warm-up: a plain white mug on a wooden table")
            if not await driver.wait(60):
                raise RuntimeError("warm-up round did not finish; see " + str(stderr_path))
            await asyncio.sleep(0.5)  # let the warm-up round's last calls settle
            del driver.chats[state.chat["id"]]
            driver.all_done.clear()
        idle_rate = await idle_cpu_rate(process.pid)
        driver.api_calls.clear()
        driver.raw_image_bytes.clear()
        openai_fake.requests.clear()

        cpu_before = proc_cpu_seconds(process.pid)
        fakes_before = time.process_time()
        if cfg.profile is not None:
            profiler = await _start_profiler(process.pid, cfg.profile, cfg.profile_rate)
            await asyncio.sleep(1.0)  # py-spy attaches
            cpu_before = proc_cpu_seconds(process.pid)
            fakes_before = time.process_time()

        started = time.monotonic()
        driver.last_progress = started
        states = [driver.add_chat(USER_ID_BASE + i, cfg.rounds) for i in range(cfg.chats)]
        for i, state in enumerate(states):
            driver.send_brief(state, f"{BRIEFS[i % len(BRIEFS)]} (#{i})")
        completed = await driver.wait(cfg.stall_timeout)
        cpu_after = proc_cpu_seconds(process.pid)
        fakes_after = time.process_time()
        rss_peak_mb = proc_status_kb(process.pid, "VmHWM") / 1024
        timings = driver.timings()
        finished = max((t.done for t in timings if t.done is not None), default=time.monotonic())
        if profiler is not None:
            await _stop_profiler(profiler)
            profiler = None
        critic_images = _critic_payloads(openai_fake)
        generated = _generated_images(openai_fake)
    finally:
        if profiler is not None:
            await _stop_profiler(profiler)
        if process is not None:
            await _stop_bot(process)
        await openai_fake.stop()
        await telegram.stop()

    lag = [lag for at, lag in loopmon.read_samples(lag_file) if started <= at <= finished]
    db_path = data_dir / "refinebot.db"
    rounds_in_db, usage = _read_db(db_path)
    result = RunResult(
        config=cfg,
        rounds=timings,
        started=started,
        finished=finished,
        bot_cpu_s=max(0.0, cpu_after - cpu_before - idle_rate * (finished - started)),
        bot_cpu_raw_s=cpu_after - cpu_before,
        idle_cpu_per_s=idle_rate,
        fakes_cpu_s=fakes_after - fakes_before,
        rss_peak_mb=rss_peak_mb,
        lag_s=lag,
        api_calls=list(driver.api_calls),
        db_bytes=db_path.stat().st_size if db_path.exists() else 0,
        db_bytes_empty=_empty_db_bytes(work),
        image_store_bytes=_dir_bytes(data_dir / "images"),
        rounds_total_in_db=rounds_in_db,
        usage=usage,
        critic_images=critic_images,
        raw_image_bytes=list(driver.raw_image_bytes),
        generated=generated,
        stderr_tail=stderr_path.read_text(errors="replace").splitlines()[-20:],
        profile_path=cfg.profile,
        extra={
            "completed_all": completed,
            "failed_callback_answers": driver.failed_answers,
            "answer_s": driver.answer_s,
        },
    )
    if cfg.keep_dir is None:
        temp.cleanup()
    return result


async def _wait_ready(telegram: FakeTelegram, process: asyncio.subprocess.Process) -> None:
    """Wait until the bot starts polling (initialised, services built, commands set).

    The fake records a call when it has answered it, and the first getUpdates is a long poll,
    so the sign is deleteWebhook: python-telegram-bot's last call before it polls.
    """
    deadline = time.monotonic() + 60
    while not any(call.method in ("deleteWebhook", "getUpdates") for call in telegram.calls):
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with {process.returncode} before polling")
        if time.monotonic() > deadline:
            raise RuntimeError("the bot did not start polling within 60 s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


async def _stop_bot(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


# --- small statistics ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

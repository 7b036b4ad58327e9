"""Running `python -m bot ...` as a real process in tests, configured only by environment keys."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ANA_ID

ROOT = Path(__file__).resolve().parent.parent

_OWN_PREFIXES = (
    "TELEGRAM_",
    "OPENAI_",
    "IMAGE_",
    "CRITIC_",
    "STABILITY_",
    "WEBHOOK_",
    "LOG_",
    "ALLOWED_",
    "ADMIN_",
    "DATABASE_",
)


def clean_environment(**values: str) -> dict[str, str]:
    """Return this process's environment without any refinebot key, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(values)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.strip().splitlines()


async def run_cli(*args: str, env: dict[str, str], cwd: Path, limit: float = 60) -> Finished:
    """Run `python -m bot ARGS` to completion (the test's event loop keeps serving the fakes)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fakes_environment(telegram, openai_fake, data_dir: Path, **extra: str) -> dict[str, str]:
    """Return a clean environment that points the bot at the fakes, Ana as admin, DEBUG logs;
    `extra` keys are added or override."""
    values = {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_FILE_BASE_URL": telegram.base_file_url,
        "OPENAI_API_KEY": openai_fake.api_key,
        "OPENAI_BASE_URL": openai_fake.base_url,
        "DATABASE_PATH": str(data_dir / "refinebot.db"),
        "ADMIN_USER_IDS": str(ANA_ID),
        "LOG_LEVEL": "DEBUG",
        # Today's messages (a photo, one caption edit); previews: test_e2e_previews.py.
        "IMAGE_PREVIEWS": "0",
    }
    values.update(extra)
    return clean_environment(**values)


async def start_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """Start `python -m bot` (running the bot) with this environment."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_bot(process: asyncio.subprocess.Process) -> str:
    """Stop the bot with SIGTERM, as systemd or Docker would; return what it logged."""
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    return stderr.decode()


async def kill_bot(process: asyncio.subprocess.Process) -> None:
    """End the bot the hard way, as a crash or a power cut would."""
    process.kill()
    await asyncio.wait_for(process.communicate(), timeout=30)

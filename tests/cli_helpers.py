"""Running `python -m bot ...` as a real process in tests, configured only by environment keys."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

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

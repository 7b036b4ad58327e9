"""Liveness: the heartbeat the running bot writes, and the check `python -m bot health` runs.

While the bot runs, a job on its own event loop rewrites `<data dir>/heartbeat.json` every
`HEARTBEAT_INTERVAL` seconds, but only while the update loop (long polling, or the webhook
server) is running. So the file goes stale when the process is gone, when its event loop is
wedged, or when the update loop has stopped; `check_health` turns that into a yes or no that
Docker's HEALTHCHECK (or a monitoring script) can act on, together with a database that opens
and, in webhook mode, a webhook port that accepts connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from storage.startup import RESTORE_HINT, integrity_problem

if TYPE_CHECKING:
    from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)

HEARTBEAT_FILE = "heartbeat.json"
HEARTBEAT_INTERVAL = 30.0
"""Seconds between heartbeats."""
DEFAULT_MAX_AGE = 120.0
"""A heartbeat older than this (four missed beats) means the bot is not healthy."""
CONNECT_TIMEOUT = 3.0


def heartbeat_path(data_dir: Path) -> Path:
    """Return where the heartbeat file lives for this data directory."""
    return Path(data_dir) / HEARTBEAT_FILE


def write_heartbeat(
    data_dir: Path, mode: str, listen: str | None = None, port: int | None = None
) -> Path:
    """Atomically (re)write the heartbeat file (owner-only) with the current time; return it.

    `mode` is `polling` or `webhook`; in webhook mode `listen` and `port` say where the webhook
    server listens, so the health check can knock on it.
    """
    path = heartbeat_path(data_dir)
    payload = {"at": time.time(), "pid": os.getpid(), "mode": mode}
    if mode == "webhook":
        payload |= {"listen": listen, "port": port}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(temporary, path)
    return path


def schedule_heartbeat(application: Application, settings: Settings) -> None:
    """Register the heartbeat job on the Application's JobQueue (first beat within a second)."""
    if application.job_queue is None:
        log.warning("no job queue (install python-telegram-bot[job-queue]): no heartbeat")
        return
    mode = "webhook" if settings.webhook_mode else "polling"

    async def beat(context: ContextTypes.DEFAULT_TYPE) -> None:
        app = context.application
        if not (app.running and app.updater is not None and app.updater.running):
            return  # the update loop is down: let the heartbeat go stale
        try:
            await asyncio.to_thread(
                write_heartbeat,
                settings.data_dir,
                mode,
                settings.webhook_listen,
                settings.webhook_port,
            )
        except OSError as error:
            log.warning("could not write the heartbeat: %s", error)

    application.job_queue.run_repeating(
        beat, interval=HEARTBEAT_INTERVAL, first=0.5, name="heartbeat"
    )


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The outcome of `check_health`: `ok`, and one line saying why (for people and logs)."""

    ok: bool
    line: str


def check_health(
    database_path: Path, max_age: float = DEFAULT_MAX_AGE, now: float | None = None
) -> HealthReport:
    """Check that the database opens read-only and answers, that the heartbeat is younger than
    `max_age` seconds and, in webhook mode, that the webhook port accepts a connection.

    Never creates, migrates or writes anything. Returns the first problem found, or ok.
    """
    database_path = Path(database_path)
    problem = _database_problem(database_path)
    if problem:
        return HealthReport(False, f"unhealthy: {problem}")
    beat = _read_heartbeat(heartbeat_path(database_path.parent))
    if beat is None:
        return HealthReport(
            False, "unhealthy: no heartbeat yet (is the bot running with this DATABASE_PATH?)"
        )
    age = (time.time() if now is None else now) - float(beat.get("at", 0))
    if age > max_age:
        return HealthReport(
            False,
            f"unhealthy: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s): "
            "the bot or its update loop has stopped",
        )
    mode = str(beat.get("mode", "polling"))
    if mode == "webhook":
        problem = _port_problem(beat.get("listen"), beat.get("port"))
        if problem:
            return HealthReport(False, f"unhealthy: {problem}")
    return HealthReport(True, f"healthy: {mode}, heartbeat {max(age, 0):.0f} s ago, database ok")


def _database_problem(database_path: Path) -> str | None:
    if not database_path.is_file():
        return f"database {database_path} does not exist"
    try:
        uri = database_path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            conn.execute("SELECT COUNT(*) FROM migrations").fetchone()
            damage = integrity_problem(conn)
        finally:
            conn.close()
    except sqlite3.Error as error:
        return f"database {database_path} does not answer: {error}"
    if damage:
        return f"database {database_path} is damaged ({damage}); {RESTORE_HINT}"
    return None


def _read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _port_problem(listen: object, port: object) -> str | None:
    if not isinstance(port, int):
        return "the heartbeat names no webhook port"
    host = str(listen or "")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as error:
        return f"the webhook server on {host}:{port} does not accept connections ({error})"

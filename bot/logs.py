"""Logging set-up that keeps secrets out of every log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class QuietConflicts(logging.Filter):
    """Drops the traceback of a 409 Conflict (another process polls with the bot's token):
    the bot stops with one line saying so (bot/handlers/gate.py), and python-telegram-bot's
    last getUpdates on the way out meets the same Conflict. Its message line stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if type(error).__name__ == "Conflict" and type(error).__module__ == "telegram.error":
            record.exc_info, record.exc_text = None, None
        return True


class RedactSecrets(logging.Filter):
    """Replaces every configured secret in a record's final message with `***`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "***")
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self._secrets:
                text = text.replace(secret, "***")
            record.exc_text = text
            record.exc_info = None
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line, for log collectors.

    Keys: `time` (UTC, ISO-8601 with milliseconds), `level`, `logger`, `message`, and
    `exception` (the formatted traceback) when the record carries one. Redaction is the
    handler's `RedactSecrets` filter's job; it runs before this formatter.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str, secrets: Iterable[str], fmt: Literal["text", "json"] = "text"
) -> None:
    """Log to stderr at `level` as text lines or JSON objects (`fmt`), with secrets redacted
    and noisy HTTP request logs quieted.

    httpx logs every request URL at INFO, and Telegram URLs contain the bot token. In JSON mode
    Python warnings are logged too, so that every line on stderr is one JSON object.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(QuietConflicts())
    handler.addFilter(RedactSecrets(secrets))
    logging.captureWarnings(fmt == "json")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpx2", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

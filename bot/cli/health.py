"""`python -m bot health`: exit 0 if the running bot is healthy, 1 if not (Docker HEALTHCHECK)."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.config import DataSettings
from bot.health import DEFAULT_MAX_AGE, check_health


def main(max_age: float = DEFAULT_MAX_AGE, out: TextIO | None = None) -> int:
    """Print one line (`healthy: ...` or `unhealthy: ...`); return 0 if healthy, else 1.

    Reads only DATABASE_PATH, so it works whatever else the configuration lacks.
    """
    report = check_health(DataSettings().database_path, max_age)
    print(report.line, file=out or sys.stdout)
    return 0 if report.ok else 1

"""The Database check of `python -m bot check`: the file opens, or can be created."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from bot.cli.check_result import CheckResult


def check_database(database_path: Path) -> CheckResult:
    """Check that the database opens (read-only) or, if it does not exist yet, can be created."""
    path = Path(database_path)
    if path.exists():
        try:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
            try:
                sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as error:
            return CheckResult(
                "Database",
                False,
                f"{path} does not open: {error}",
                "restore it from a backup (deploy/README.md) or point DATABASE_PATH elsewhere",
            )
        return CheckResult("Database", True, f"{path} ({sessions} sessions)")
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is None or not _writable(folder):
        return CheckResult(
            "Database",
            False,
            f"{path} cannot be created: {folder} is not writable",
            "make DATABASE_PATH's folder writable by the bot's user",
        )
    return CheckResult("Database", True, f"{path} (will be created on first start)")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)

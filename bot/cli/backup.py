"""`python -m bot backup PATH`: a consistent copy of the database and the image store, online.

The database is copied with SQLite's online backup API from a read-only connection: in WAL mode
this is a snapshot of one moment that never blocks the running bot's writes. The copy is
switched out of WAL (one self-contained file), checked with `PRAGMA quick_check`, and only then
renamed into place, owner-readable only.

Images are copied after the database. They are immutable, content-addressed files written
(and fsynced) before their rows, so every image the database copy refers to already exists
when the copy is taken; files already in PATH (same name, same content) are skipped, so
running backup into the same folder again only copies what is new.

Restore (bot stopped): see deploy/README.md.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.config import DataSettings

DATABASE_NAME = "refinebot.db"
IMAGES_DIR = "images"


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What one backup wrote: the database copy and its counts, and the image files."""

    database: Path
    sessions: int
    rounds: int
    images_copied: int
    images_present: int
    bytes_copied: int


class BackupError(Exception):
    """The backup could not be made; the message says why in one line."""


def backup(database_path: Path, target: Path) -> BackupReport:
    """Copy the database (online, consistent) and the image store into `target`; return what
    was done. Creates `target` (owner-only) if needed; the database copy is mode 0600.

    Raises BackupError if the database is missing or the copy fails its integrity check.
    """
    database_path, target = Path(database_path), Path(target)
    if not database_path.is_file():
        raise BackupError(f"no database at {database_path} (check DATABASE_PATH)")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    copy = target / DATABASE_NAME
    sessions, rounds = _backup_database(database_path, copy)
    copied, present, size = _copy_images(database_path.parent / IMAGES_DIR, target / IMAGES_DIR)
    return BackupReport(copy, sessions, rounds, copied, present, size)


def _backup_database(source_path: Path, copy: Path) -> tuple[int, int]:
    partial = copy.with_name(f".{copy.name}.partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    source = sqlite3.connect(source_path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)
            destination.execute("PRAGMA journal_mode=DELETE")
            check = destination.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
            sessions = destination.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            rounds = destination.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        finally:
            destination.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    _fsync(partial)
    os.replace(partial, copy)
    os.chmod(copy, 0o600)
    return int(sessions), int(rounds)


def _copy_images(source: Path, target: Path) -> tuple[int, int, int]:
    """Copy every image file not yet in `target`; return (copied, already there, bytes)."""
    copied = present = size = 0
    if not source.is_dir():
        return copied, present, size
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        destination = target / path.relative_to(source)
        if destination.exists():
            present += 1
            continue
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = destination.with_name(destination.name + ".tmp")
        try:
            shutil.copy2(path, partial)
        except FileNotFoundError:
            continue  # pruned by retention while we were copying
        os.replace(partial, destination)
        copied += 1
        size += destination.stat().st_size
    return copied, present, size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(target: str, out: TextIO | None = None) -> int:
    """Run `backup TARGET` for DATABASE_PATH; print what was copied; return the exit status."""
    out = out or sys.stdout
    settings = DataSettings()
    try:
        report = backup(settings.database_path, Path(target))
    except (BackupError, OSError, sqlite3.Error) as error:
        print(f"refinebot: backup failed: {error}", file=sys.stderr)
        return 1
    print(
        f"database: {settings.database_path} -> {report.database} "
        f"({report.sessions} sessions, {report.rounds} rounds, integrity ok)",
        file=out,
    )
    print(
        f"images: {report.images_copied} copied ({report.bytes_copied / 1e6:.1f} MB), "
        f"{report.images_present} already there -> {report.database.parent / IMAGES_DIR}",
        file=out,
    )
    return 0

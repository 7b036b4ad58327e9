"""What `python -m bot` checks of its data before it starts.

One process per database: an OS lock on `<DATABASE_PATH>.lock`, held for the process's
lifetime (the OS drops it when the process dies, so a crash never leaves it behind). A second
bot on the same database would take over the first one's rounds after its "restart"
recovery and pay for them twice. Then the database must open, migrate and pass SQLite's
`quick_check`. Each problem is one sentence that says what to do, and nothing is changed in a
file that is not a refinebot database.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from pathlib import Path

from storage.database import Database

RESTORE_HINT = (
    "stop the bot and restore the latest copy made by `python -m bot backup` "
    "(README, Operations: copy the backup's refinebot.db and images/ into the data folder)"
)


class StorageProblem(Exception):
    """The data cannot be used as it is; the message says why and what to do."""


class DatabaseLock:
    """The exclusive lock on a database, held until `release` or the process ends."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        """Let another process use the database."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


def lock_database(database_path: Path) -> DatabaseLock:
    """Make sure the database's folder is usable and take the database's lock; return it.

    Raises StorageProblem when another process holds the lock (naming its pid) or the folder
    cannot be used (DATABASE_PATH a folder, under a file, or not writable).
    """
    path = Path(database_path)
    if path.is_dir():
        raise StorageProblem(
            f"DATABASE_PATH {path} is a folder; name a file in it, e.g. {path / 'refinebot.db'}"
        )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except (FileExistsError, NotADirectoryError):
        raise StorageProblem(
            f"DATABASE_PATH {path} is inside a file, not a folder; choose a path in a folder"
        ) from None
    except OSError as error:
        raise StorageProblem(_folder_problem(path, error)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StorageProblem(
            f"another refinebot (pid {holder}) is already running on {path}; stop it first, "
            "or give this one its own DATABASE_PATH"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return DatabaseLock(fd)


def check_database(database_path: Path) -> None:
    """Open the database as the bot will (creating and migrating it if needed) and check its
    integrity. Raises StorageProblem: not writable, not a database (left untouched), damaged
    (with how to restore it)."""
    path = Path(database_path)
    if path.exists() and not _is_sqlite(path):
        raise StorageProblem(
            f"{path} is not a refinebot database (it is not an SQLite file) and was left as it "
            "is; move it away or choose another DATABASE_PATH"
        )
    try:
        database = Database.open_sync(path)
    except sqlite3.DatabaseError as error:
        if "readonly" in str(error) or "read-only" in str(error):
            raise StorageProblem(_folder_problem(path, error)) from None
        raise StorageProblem(
            f"the database {path} cannot be used ({error}); {RESTORE_HINT}"
        ) from None
    except OSError as error:
        raise StorageProblem(_folder_problem(path, error)) from None
    try:
        problem = integrity_problem(database.connection)
    finally:
        database.close_sync()
    if problem:
        raise StorageProblem(f"the database {path} is damaged ({problem}); {RESTORE_HINT}")


def integrity_problem(connection: sqlite3.Connection) -> str | None:
    """Return what SQLite's quick_check found wrong (its first lines), or None if it is ok."""
    try:
        rows = [str(row[0]) for row in connection.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as error:
        return str(error)
    return None if rows == ["ok"] else "; ".join(rows)


def _is_sqlite(path: Path) -> bool:
    """Whether the file is empty (new) or starts with SQLite's header."""
    try:
        with path.open("rb") as file:
            header = file.read(16)
    except OSError:
        return True  # the open that follows says what is wrong
    return header in (b"", b"SQLite format 3\x00")


def _folder_problem(path: Path, error: Exception) -> str:
    reason = getattr(error, "strerror", None) or str(error)
    code = getattr(error, "errno", None)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in str(error):
        reason = "it is read-only or not writable by this user"
    return (
        f"cannot write the database {path} in {path.parent} ({reason}); give the bot's user "
        "write access to that folder or choose another DATABASE_PATH"
    )

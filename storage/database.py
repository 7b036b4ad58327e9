"""The database file, its two connections and their worker threads.

Writes run on one dedicated worker thread with its own connection (`run`), reads on another
(`read`), so the event loop never waits on disk, no connection is used by two threads at
once, and in WAL mode a read never waits for a writer: a write lock held elsewhere (a backup,
another tool) stalls only writes. A write that cannot get the lock within WRITE_WAIT seconds
fails with StoreBusy, so that one request says so instead of every chat freezing. The parts
of the store (storage/sessions.py, rounds.py, images.py, chats.py) hand this class a blocking
function of their own, which reads with `one` / `all` / `count` (on whichever connection its
thread owns) and writes inside `transaction`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlite_utils

from storage.schema import migrate
from storage.transactions import transaction

T = TypeVar("T")
P = ParamSpec("P")

Params = Sequence[Any]
"""Positional parameters of one SQL statement."""

WRITE_WAIT = 5.0
"""Seconds a write waits for a lock another connection holds before it fails (StoreBusy)."""


class StoreBusy(Exception):
    """Another process holds the database's write lock (a backup, a tool): this write gave up
    after WRITE_WAIT seconds. Nothing was written; the same request can be tried again."""


class Database:
    """The store's SQLite connections and worker threads. Open it with `Database.open_sync`."""

    def __init__(
        self, db: sqlite_utils.Database, reader: sqlite3.Connection, data_dir: Path
    ) -> None:
        self._db = db
        self._reader = reader
        self._data_dir = data_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-read")
        self._on_reader = threading.local()

    @classmethod
    def open_sync(cls, database_path: Path) -> Database:
        """Open (creating if needed) the database file, owner-readable only (0600, in a 0700
        folder if it makes one), in WAL mode with synchronous=FULL and foreign keys on,
        migrated to the latest schema; return it. Blocking.

        Raises sqlite3.Error if the file is not a usable database, OSError if it cannot be
        created.
        """
        database_path = Path(database_path)
        database_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not database_path.exists():
            os.close(os.open(database_path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(database_path, check_same_thread=False, timeout=WRITE_WAIT)
        conn.row_factory = sqlite3.Row
        db = sqlite_utils.Database(conn)
        db.enable_wal()
        # FULL: each commit is fsynced to the WAL before it returns. With NORMAL (WAL's
        # default), a commit survives a crash of the process but not of the machine: a paid,
        # shown round committed a second before a power cut could vanish. The cost is one
        # fsync per commit, a few per round, on the store's own thread.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db)
        reader = sqlite3.connect(database_path, check_same_thread=False, timeout=WRITE_WAIT)
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only=ON")
        return cls(db, reader, database_path.parent)

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection, for checks run before the worker thread is in use."""
        conn: sqlite3.Connection = self._db.conn
        return conn

    @property
    def data_dir(self) -> Path:
        """The folder of the database file, where the image files live too."""
        return self._data_dir

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the blocking `fn(*args, **kwargs)` on the writer's thread (after the work
        queued before it); return what it returns, or raise what it raises (StoreBusy when
        another process held the write lock too long)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise StoreBusy(str(error)) from error
            raise

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the blocking, read-only `fn(*args, **kwargs)` on the reader's thread: it sees
        every write that returned before it started, and never waits for a writer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._read_executor, functools.partial(self._reading, fn, *args, **kwargs)
        )

    def _reading(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        self._on_reader.active = True
        try:
            return fn(*args, **kwargs)
        finally:
            self._on_reader.active = False

    def _connection(self) -> sqlite3.Connection:
        """The connection of the calling thread's worker: the reader's or the writer's."""
        if getattr(self._on_reader, "active", False):
            return self._reader
        conn: sqlite3.Connection = self._db.conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block's statements as one transaction: all of them are kept, or, if the
        block raises, none (see storage/transactions.py). Worker thread only."""
        with transaction(self._db):
            yield

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Execute one statement; return its cursor. A write outside `transaction` is
        committed on its own (sqlite-utils)."""
        return self._db.execute(sql, params)

    def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """Execute one statement once per parameter row, inside the open transaction."""
        self._db.conn.executemany(sql, rows)

    def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Return the first row the statement gives, or None if it gives none."""
        row: sqlite3.Row | None = self._connection().execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Return every row the statement gives."""
        rows: list[sqlite3.Row] = self._connection().execute(sql, params).fetchall()
        return rows

    def count(self, sql: str, params: Params = ()) -> int:
        """Return the first column of the one row a `SELECT COUNT(*) ...` (or any single
        number) gives."""
        row = self._connection().execute(sql, params).fetchone()
        return int(row[0])

    def write(self, sql: str, params: Params = ()) -> None:
        """Execute one write statement as its own transaction."""
        with self.transaction():
            self._db.execute(sql, params)

    def write_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Execute one write statement (`... RETURNING *`) as its own transaction; return the
        first row it gives, or None if it gives none."""
        with self.transaction():
            rows = self.all(sql, params)  # to the end: a write still stepping cannot commit
        return rows[0] if rows else None

    async def close(self) -> None:
        """Finish the queued work, close the connections and stop the worker threads."""
        await self.read(self._reader.close)
        await self.run(self._db.conn.close)
        self._read_executor.shutdown(wait=True)
        self._executor.shutdown(wait=True)

    def close_sync(self) -> None:
        """Blocking variant of `close`, outside any event loop (the CLI, benchmarks)."""
        self._read_executor.submit(self._reader.close).result()
        self._executor.submit(self._db.conn.close).result()
        self._read_executor.shutdown(wait=True)
        self._executor.shutdown(wait=True)

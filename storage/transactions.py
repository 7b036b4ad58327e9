"""One way to make a block of statements one transaction, for the store and the migrations.

Why not plain `sqlite_utils.Database.atomic()`: it opens the transaction with a DEFERRED
`BEGIN`, which takes the write lock only at the first write. A write that reads first (the
next round's number, retention's re-check of a file it is about to delete, a migration that
inspects a table before it alters it) could then find, at that first write, that another
connection (a second bot process during a deploy, an operator's sqlite3 shell) committed
since its read: SQLite fails that upgrade at once with SQLITE_BUSY, without waiting for the
busy timeout. `BEGIN IMMEDIATE` takes the write lock up front (waiting for it if needed), so
what the block read stays true until it commits. Inside an open transaction the block is
`atomic()`'s savepoint, so write helpers compose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlite_utils


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """Run the block as one transaction (BEGIN IMMEDIATE ... COMMIT): every statement is
    kept, or, if the block raises, none; the exception propagates.

    Nested inside an open transaction, the block is a savepoint of it (sqlite-utils'
    `atomic()`): its statements are undone if it raises, and kept only if the outer
    transaction commits.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.commit()
    except BaseException:
        db.rollback()
        raise

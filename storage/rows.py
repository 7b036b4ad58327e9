"""Rows of the database as the records of storage/records.py, and SQL spelled from enums."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import fields
from enum import StrEnum
from typing import Any, TypeVar

from storage.records import (
    RUNNING_STATUSES,
    AutopilotRunRecord,
    AutopilotStatus,
    ChatSettings,
    DraftRecord,
    ImageRecord,
    PendingEdit,
    RoundRecord,
    RoundStatus,
    SessionRecord,
    SessionStatus,
)

T = TypeVar("T")


def sql_list(values: Iterable[StrEnum]) -> str:
    """Return the values as an SQL list of string literals, e.g. `('pending', 'done')`.

    Only for enum members (fixed, quote-free strings), never for input.
    """
    return "(" + ", ".join(f"'{value.value}'" for value in values) + ")"


RUNNING_SQL = sql_list(RUNNING_STATUSES)
"""`('pending', 'generating', 'critiquing')`: for `status IN {RUNNING_SQL}`."""


def _columns(cls: type[Any], row: sqlite3.Row) -> dict[str, Any]:
    """Return the row's values of the record's fields (rows may have more columns)."""
    return {f.name: row[f.name] for f in fields(cls)}


def maybe(convert: Callable[[sqlite3.Row], T], row: sqlite3.Row | None) -> T | None:
    """Return `convert(row)`, or None if there is no row."""
    return None if row is None else convert(row)


def session_record(row: sqlite3.Row) -> SessionRecord:
    """Return a `sessions` row as a record."""
    values = _columns(SessionRecord, row)
    return SessionRecord(**values | {"status": SessionStatus(values["status"])})


def round_record(row: sqlite3.Row) -> RoundRecord:
    """Return a `rounds` row as a record."""
    values = _columns(RoundRecord, row)
    return RoundRecord(**values | {"status": RoundStatus(values["status"])})


def draft_record(row: sqlite3.Row) -> DraftRecord:
    """Return a `drafts` row as a record."""
    values = _columns(DraftRecord, row)
    return DraftRecord(**values | {"status": RoundStatus(values["status"])})


def run_record(row: sqlite3.Row) -> AutopilotRunRecord:
    """Return an `autopilot_runs` row as a record."""
    values = _columns(AutopilotRunRecord, row)
    return AutopilotRunRecord(**values | {"status": AutopilotStatus(values["status"])})


def image_record(row: sqlite3.Row) -> ImageRecord:
    """Return an `images` row as a record."""
    return ImageRecord(**_columns(ImageRecord, row))


def settings_record(row: sqlite3.Row) -> ChatSettings:
    """Return a `chat_settings` row as a record."""
    return ChatSettings(**_columns(ChatSettings, row))


def pending_edit_record(row: sqlite3.Row) -> PendingEdit:
    """Return a `pending_edits` row as a record."""
    return PendingEdit(**_columns(PendingEdit, row))


def found(row: sqlite3.Row | None, what: str) -> sqlite3.Row:
    """Return the row a write returned; raise LookupError naming `what` if there is none."""
    if row is None:
        raise LookupError(f"no {what}")
    return row

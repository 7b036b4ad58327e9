"""The database schema as numbered, idempotent migrations.

Each migration runs once and is recorded in `migrations`, both in ONE transaction: a migration
failing half-way leaves the schema and `migrations` as they were. Running `migrate` again on an
up-to-date database changes nothing. Append new migrations; never change what an applied one
does. A migration writes through `db.execute` (or `_script`), never `executescript`, which
commits the open transaction first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import sqlite_utils

from storage.transactions import transaction


def _statements(script: str) -> Iterator[str]:
    """Yield the SQL statements of a script one by one (semicolons in comments and string
    literals do not split them)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement.strip()
            statement = ""


def _script(db: sqlite_utils.Database, script: str) -> None:
    """Execute each statement of the script inside the open transaction (unlike
    `executescript`, which commits first)."""
    for statement in _statements(script):
        db.execute(statement)


_INITIAL_SCHEMA = """
        CREATE TABLE IF NOT EXISTS chats (
            id INTEGER PRIMARY KEY,
            type TEXT NOT NULL,
            title TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS sessions (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id),
            thread_id INTEGER NOT NULL DEFAULT 0,
            started_by INTEGER NOT NULL,
            brief TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',
            chosen_round_id INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS sessions_by_chat ON sessions(chat_id, thread_id, id);
        CREATE TABLE IF NOT EXISTS images (
            sha256 TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            mime TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS rounds (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id),
            parent_round_id INTEGER REFERENCES rounds(id),
            number INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            action TEXT NOT NULL,
            acted_by INTEGER NOT NULL,
            acted_by_name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending',
            error_kind TEXT,
            error TEXT,
            image_sha TEXT REFERENCES images(sha256),
            critique TEXT,
            score INTEGER,
            message_id INTEGER,
            created_at TEXT NOT NULL,
            image_at TEXT,
            finished_at TEXT,
            generate_ms INTEGER,
            critique_ms INTEGER
        );
        CREATE INDEX IF NOT EXISTS rounds_by_session ON rounds(session_id, number);
        CREATE INDEX IF NOT EXISTS rounds_by_status ON rounds(status);
        CREATE TABLE IF NOT EXISTS usage (
            id INTEGER PRIMARY KEY,
            round_id INTEGER REFERENCES rounds(id),
            chat_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            units TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS usage_by_user_day ON usage(user_id, created_at);
        CREATE TABLE IF NOT EXISTS pending_edits (
            chat_id INTEGER NOT NULL,
            thread_id INTEGER NOT NULL DEFAULT 0,
            user_id INTEGER NOT NULL,
            round_id INTEGER NOT NULL REFERENCES rounds(id),
            prompt_message_id INTEGER,
            created_at TEXT NOT NULL,
            PRIMARY KEY (chat_id, thread_id, user_id)
        );
        """
"""Migration 1: the tables every later migration builds on."""


def _m001_initial(db: sqlite_utils.Database) -> None:
    _script(db, _INITIAL_SCHEMA)


def _m002_usage_cost(db: sqlite_utils.Database) -> None:
    if "cost_usd" not in db["usage"].columns_dict:
        db.execute("ALTER TABLE usage ADD COLUMN cost_usd REAL")
    db.execute("CREATE INDEX IF NOT EXISTS rounds_by_actor ON rounds(acted_by, created_at)")
    db.execute("CREATE INDEX IF NOT EXISTS usage_by_chat_day ON usage(chat_id, created_at)")


def _m003_image_retention(db: sqlite_utils.Database) -> None:
    # IMAGE_RETENTION_DAYS deletes old image files but keeps their rows, marked here.
    if "pruned_at" not in db["images"].columns_dict:
        db.execute("ALTER TABLE images ADD COLUMN pruned_at TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS images_by_created ON images(created_at)")


def _m004_chat_settings(db: sqlite_utils.Database) -> None:
    _script(
        db,
        """
        CREATE TABLE IF NOT EXISTS chat_settings (
            chat_id INTEGER PRIMARY KEY,
            image_format TEXT,
            quality TEXT,
            language TEXT,
            press_policy TEXT NOT NULL DEFAULT 'anyone',
            updated_at TEXT NOT NULL
        );
        -- What Telegram already holds, so an image is uploaded once and re-sent by file_id.
        CREATE TABLE IF NOT EXISTS telegram_files (
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL,
            file_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (sha256, kind)
        );
        CREATE INDEX IF NOT EXISTS rounds_by_message ON rounds(message_id);
        """,
    )


def _m005_photos_and_autopilot(db: sqlite_utils.Database) -> None:
    # Photo briefs: the session's reference photo (an image row), kept for every round.
    if "reference_sha" not in db["sessions"].columns_dict:
        db.execute("ALTER TABLE sessions ADD COLUMN reference_sha TEXT REFERENCES images(sha256)")
    _script(
        db,
        """
        CREATE TABLE IF NOT EXISTS autopilot_runs (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id),
            start_round_id INTEGER REFERENCES rounds(id),
            rounds INTEGER NOT NULL,
            drafts INTEGER NOT NULL,
            threshold INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            stop_reason TEXT,
            best_round_id INTEGER REFERENCES rounds(id),
            started_by INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX IF NOT EXISTS autopilot_runs_by_session ON autopilot_runs(session_id, id);
        CREATE TABLE IF NOT EXISTS drafts (
            id INTEGER PRIMARY KEY,
            round_id INTEGER NOT NULL REFERENCES rounds(id),
            number INTEGER NOT NULL,
            seed INTEGER,
            status TEXT NOT NULL DEFAULT 'generating',
            image_sha TEXT REFERENCES images(sha256),
            critique TEXT,
            score INTEGER,
            fidelity INTEGER,
            error_kind TEXT,
            error TEXT,
            generate_ms INTEGER,
            critique_ms INTEGER,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            kept INTEGER NOT NULL DEFAULT 0,
            UNIQUE (round_id, number)
        );
        """,
    )
    # A round of an autopilot run keeps the best of its drafts: image, critique and scores.
    columns = db["rounds"].columns_dict
    if "fidelity" not in columns:
        db.execute("ALTER TABLE rounds ADD COLUMN fidelity INTEGER")
    if "autopilot_id" not in columns:
        db.execute(
            "ALTER TABLE rounds ADD COLUMN autopilot_id INTEGER REFERENCES autopilot_runs(id)"
        )
    if "draft_count" not in columns:
        db.execute("ALTER TABLE rounds ADD COLUMN draft_count INTEGER")


def _m006_chat_upgrades(db: sqlite_utils.Database) -> None:
    # A supergroup remembers the group it was upgraded from: access granted to the group's id
    # (ALLOWED_CHAT_IDS) carries over.
    if "migrated_from" not in db["chats"].columns_dict:
        db.execute("ALTER TABLE chats ADD COLUMN migrated_from INTEGER")


def _m007_every_round_has_drafts(db: sqlite_utils.Database) -> None:
    # Every round draws its images as drafts; a manual round is a round with one draft. A round
    # an older version stored without drafts gets its one draft: its own image, critique,
    # status and timings, kept if it has an image.
    db.execute(
        "INSERT INTO drafts (round_id, number, seed, status, image_sha, critique, score, "
        "fidelity, error_kind, error, generate_ms, critique_ms, created_at, finished_at, kept) "
        "SELECT r.id, 1, NULL, r.status, r.image_sha, r.critique, r.score, r.fidelity, "
        "r.error_kind, r.error, r.generate_ms, r.critique_ms, r.created_at, r.finished_at, "
        "r.image_sha IS NOT NULL FROM rounds r "
        "WHERE NOT EXISTS (SELECT 1 FROM drafts d WHERE d.round_id = r.id) ORDER BY r.id"
    )
    db.execute("UPDATE rounds SET draft_count = 1 WHERE draft_count IS NULL")


def _m008_edit_rounds(db: sqlite_utils.Database) -> None:
    # A round (and each draft) is an edit of an earlier round's picture, or a redraw: the round
    # edited, the instruction, and why an edit asked for became a redraw.
    for table in ("rounds", "drafts"):
        columns = db[table].columns_dict
        if "edit_of" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN edit_of INTEGER REFERENCES rounds(id)")
        if "instruction" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN instruction TEXT")
        if "kind_note" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN kind_note TEXT")


def _m009_final_delivery(db: sqlite_utils.Database) -> None:
    # The message that delivered a stopped session's full-resolution image: Stop pressed again
    # re-sends it only if that delivery never went out.
    if "final_message_id" not in db["sessions"].columns_dict:
        db.execute("ALTER TABLE sessions ADD COLUMN final_message_id INTEGER")


def _m010_edit_prompts(db: sqlite_utils.Database) -> None:
    # Every Edit prompt the bot sent, and the round it asks about: a reply to the prompt edits
    # that round even after the pending edit was dropped (/new, a new brief).
    db.execute(
        "CREATE TABLE IF NOT EXISTS edit_prompts (chat_id INTEGER NOT NULL, "
        "message_id INTEGER NOT NULL, user_id INTEGER NOT NULL, "
        "round_id INTEGER NOT NULL REFERENCES rounds(id), created_at TEXT NOT NULL, "
        "PRIMARY KEY (chat_id, message_id))"
    )


def _m011_deliveries(db: sqlite_utils.Database) -> None:
    # The outbox: what the chat must still be sent (a round's photo with its critique and
    # buttons, Stop's document, an interrupted autopilot run's ending), written in the same
    # transaction as what makes it owed and marked when Telegram confirms it, so a restart
    # sends what never arrived. Rows older than this migration owe nothing.
    db.execute(
        "CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, kind TEXT NOT NULL, "
        "round_id INTEGER REFERENCES rounds(id), "
        "autopilot_id INTEGER REFERENCES autopilot_runs(id), "
        "created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "delivered_at TEXT, message_id INTEGER)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_owed ON deliveries(created_at) "
        "WHERE delivered_at IS NULL"
    )
    # An autopilot run's progress message: a restart finishes it instead of leaving it frozen.
    if "progress_message_id" not in db["autopilot_runs"].columns_dict:
        db.execute("ALTER TABLE autopilot_runs ADD COLUMN progress_message_id INTEGER")


def _m012_size_notes(db: sqlite_utils.Database) -> None:
    # A kept picture whose pixel size is not the one asked for ("640x480 for 1024x1024"), on
    # its draft and on the round that takes it.
    for table in ("rounds", "drafts"):
        if "size_note" not in db[table].columns_dict:
            db.execute(f"ALTER TABLE {table} ADD COLUMN size_note TEXT")


def _m013_campaign_packs(db: sqlite_utils.Database) -> None:
    # The campaign pack: one row per kept round and format (Square, Story, ...), so a restart
    # resumes a pack half made and a second press re-sends the stored files by file id.
    _script(
        db,
        """
        CREATE TABLE IF NOT EXISTS pack_items (
            id INTEGER PRIMARY KEY,
            round_id INTEGER NOT NULL REFERENCES rounds(id),
            format TEXT NOT NULL,
            chat_id INTEGER NOT NULL,
            thread_id INTEGER NOT NULL DEFAULT 0,
            user_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            method TEXT,
            image_sha TEXT REFERENCES images(sha256),
            width INTEGER,
            height INTEGER,
            cost_usd REAL,
            error TEXT,
            check_note TEXT,
            preview_file_id TEXT,
            document_file_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (round_id, format)
        );
        CREATE INDEX IF NOT EXISTS pack_items_by_status ON pack_items(status);
        CREATE INDEX IF NOT EXISTS pack_items_by_chat ON pack_items(chat_id, created_at);
        """,
    )
    if "marketplace" not in db["chat_settings"].columns_dict:
        db.execute("ALTER TABLE chat_settings ADD COLUMN marketplace TEXT NOT NULL DEFAULT 'off'")


Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema", _m001_initial),
    (2, "usage cost, indexes for quotas", _m002_usage_cost),
    (3, "images.pruned_at for image retention", _m003_image_retention),
    (4, "per-chat settings, Telegram file ids", _m004_chat_settings),
    (5, "reference photos, autopilot runs and their drafts", _m005_photos_and_autopilot),
    (6, "chats.migrated_from for groups upgraded to supergroups", _m006_chat_upgrades),
    (7, "a draft for every round (a manual round is one draft)", _m007_every_round_has_drafts),
    (8, "edit rounds: edit_of, instruction, kind_note", _m008_edit_rounds),
    (9, "sessions.final_message_id: Stop's document delivered", _m009_final_delivery),
    (10, "edit_prompts: the round each Edit prompt asks about", _m010_edit_prompts),
    (11, "deliveries: the outbox; autopilot_runs.progress_message_id", _m011_deliveries),
    (12, "size_note on rounds and drafts: a size other than asked", _m012_size_notes),
    (
        13,
        "pack_items: the campaign pack's formats; chat_settings.marketplace",
        _m013_campaign_packs,
    ),
]


def now_iso() -> str:
    """Return the current UTC time as an ISO-8601 string with seconds precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def migrate(db: sqlite_utils.Database) -> list[int]:
    """Apply every migration not yet recorded, each with its record in one transaction;
    return the numbers applied now.

    Raises what a failing migration raises; that migration, and those after it, are then
    not applied (the ones before it stay applied).
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS migrations "
        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = _applied(db)
    applied = []
    for number, name, apply in MIGRATIONS:
        if number in done:
            continue
        with transaction(db):
            if number in _applied(db):  # another process applied it meanwhile
                continue
            apply(db)
            db.execute(
                "INSERT INTO migrations (id, name, applied_at) VALUES (?, ?, ?)",
                (number, name, now_iso()),
            )
        applied.append(number)
    return applied


def _applied(db: sqlite_utils.Database) -> set[int]:
    return {int(row[0]) for row in db.execute("SELECT id FROM migrations").fetchall()}

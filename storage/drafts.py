"""The statements on drafts that other parts of the store compose into their own transactions.

A draft is one image a round draws (a manual round draws one, an autopilot round several), with
its own critique; the round keeps one of its drafts. The Rounds part (storage/rounds.py) owns
the drafts' writes; these functions are the pieces a write spanning parts needs
(`Store.save_draft_image`). Each runs on the store's worker, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.database import Database
from storage.deliveries import owe
from storage.records import DeliveryKind, DraftPlan, RoundStatus
from storage.rows import RUNNING_SQL, found
from storage.schema import now_iso

ENDINGS = (RoundStatus.FAILED, RoundStatus.DONE)
"""How a round or draft can end with an error: failed (no image) or done (an image, no
critique)."""


def check_ending(status: RoundStatus) -> None:
    """Raise ValueError unless `status` is how a round or draft ends with an error."""
    if status not in ENDINGS:
        raise ValueError(f"a round or draft ends with an error as failed or done, not {status}")


def insert_drafts(database: Database, round_id: int, plans: Sequence[DraftPlan], now: str) -> None:
    """Insert the round's pending drafts, numbered from 1, one per plan, created at `now`."""
    database.execute_many(
        "INSERT INTO drafts (round_id, number, seed, edit_of, instruction, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (round_id, number, plan.seed, plan.edit_of, plan.instruction, RoundStatus.PENDING, now)
            for number, plan in enumerate(plans, start=1)
        ],
    )


def take_image(
    database: Database,
    draft_id: int,
    *,
    sha: str,
    generate_ms: int,
    round_takes_it: bool,
    redrawn_because: str | None = None,
    size_note: str | None = None,
) -> None:
    """Inside the caller's transaction: the draft takes its drawn image `sha` and is to be
    critiqued; with `round_takes_it`, its round takes the image too (image_at now), the
    draft is the round's kept one, and the chat is owed the round (storage/deliveries.py).
    With `redrawn_because`, an edit that was drawn afresh instead: the draft is a redraw,
    noting why. `size_note`: the image's size is not the one asked for (kept on the draft,
    and on the round that takes it). Worker thread only.

    Raises LookupError if there is no such draft (the caller's transaction then rolls back).
    """
    row = database.one(
        "UPDATE drafts SET image_sha = ?, generate_ms = ?, status = ? WHERE id = ? "
        "RETURNING round_id",
        (sha, generate_ms, RoundStatus.CRITIQUING, draft_id),
    )
    round_id = int(found(row, f"draft {draft_id}")[0])
    if redrawn_because is not None:
        database.execute(
            "UPDATE drafts SET edit_of = NULL, instruction = NULL, kind_note = ? WHERE id = ?",
            (redrawn_because, draft_id),
        )
    if round_takes_it:
        database.execute("UPDATE drafts SET kept = 1 WHERE id = ?", (draft_id,))
        database.execute(
            "UPDATE rounds SET image_sha = ?, image_at = ?, generate_ms = ?, status = ?, "
            "edit_of = d.edit_of, instruction = d.instruction, kind_note = d.kind_note "
            "FROM (SELECT edit_of, instruction, kind_note FROM drafts WHERE id = ?) AS d "
            "WHERE rounds.id = ?",
            (sha, now_iso(), generate_ms, RoundStatus.CRITIQUING, draft_id, round_id),
        )
        owe(database, DeliveryKind.ROUND, round_id)
    if size_note is not None:
        database.execute("UPDATE drafts SET size_note = ? WHERE id = ?", (size_note, draft_id))
        if round_takes_it:
            database.execute("UPDATE rounds SET size_note = ? WHERE id = ?", (size_note, round_id))


def end_unfinished(
    database: Database, *, round_id: int | None, error_kind: str, error: str, now: str
) -> None:
    """Inside the caller's transaction: end the drafts still running (of `round_id`, or of
    every round when None) with the error: done if they have an image, else failed."""
    where = f"status IN {RUNNING_SQL}" + ("" if round_id is None else " AND round_id = ?")
    database.execute(
        "UPDATE drafts SET status = CASE WHEN image_sha IS NULL THEN ? ELSE ? END, "
        f"error_kind = ?, error = ?, finished_at = ? WHERE {where}",
        (RoundStatus.FAILED, RoundStatus.DONE, error_kind, error, now)
        + (() if round_id is None else (round_id,)),
    )

"""The Store the domain talks to: SQLite through sqlite-utils, plus the content-addressed images.

`Store` owns the one connection and worker thread (storage/database.py) and exposes the
store's parts as attributes, one per aggregate, each a coroutine API:

- `store.sessions` (storage/sessions.py): sessions and autopilot runs;
- `store.rounds` (storage/rounds.py): rounds and their drafts;
- `store.images` (storage/images.py): image rows and files, and retention's pruning;
- `store.chats` (storage/chats.py): chat settings, pending edits, Telegram file ids, usage
  and quota counts, chat migration;
- `store.deliveries` (storage/deliveries.py): the outbox, what a chat must still be sent.
- `store.packs` (storage/packs.py): the campaign pack's formats of a kept round.

Writes that one transaction must span across parts are methods of the Store itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.chats import Chats, insert_usage
from storage.database import Database
from storage.deliveries import Deliveries
from storage.drafts import take_image
from storage.images import Images
from storage.packs import PackResult, Packs
from storage.records import ImageRecord, UsageEntry
from storage.rounds import Rounds
from storage.sessions import Sessions


class Store:
    """Async access to the bot's database and image files. Create it with `Store.open`."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.sessions = Sessions(database)
        self.rounds = Rounds(database)
        self.images = Images(database)
        self.chats = Chats(database)
        self.deliveries = Deliveries(database)
        self.packs = Packs(database)

    @classmethod
    async def open(cls, database_path: Path) -> Store:
        """Open (creating if needed) the database file, owner-readable only, migrated and in
        WAL; return the store. Raises sqlite3.Error or OSError as `Database.open_sync`."""
        return await asyncio.to_thread(cls.open_sync, database_path)

    @classmethod
    def open_sync(cls, database_path: Path) -> Store:
        """Blocking variant of `open`, for the CLI and tests."""
        return cls(Database.open_sync(database_path))

    async def close(self) -> None:
        """Finish queued work and close the connection."""
        await self._database.close()

    def close_sync(self) -> None:
        """Blocking variant of `close`, outside any event loop."""
        self._database.close_sync()

    async def save_draft_image(
        self,
        draft_id: int,
        *,
        data: bytes,
        mime: str,
        width: int,
        height: int,
        usage: UsageEntry | None,
        generate_ms: int,
        round_takes_it: bool,
        redrawn_because: str | None = None,
        size_note: str | None = None,
    ) -> ImageRecord:
        """Store the image a draft drew and everything that goes with it; return its record.

        The file is written and fsynced first; then ONE transaction holds the image row, the
        `usage` row of the paid call (if given), and the draft taking the image (image_sha,
        generate_ms, status critiquing). With `round_takes_it` (a round showing its image as
        soon as it is drawn, e.g. a manual round) the draft's round takes it as well
        (image_sha, image_at now, generate_ms, status critiquing) and the draft is its kept
        one: a crash never leaves a stored, paid image its round does not know. With
        `redrawn_because`, the draft (an edit drawn afresh instead) becomes a redraw noting why;
        with `size_note`, the draft (and the round taking it) notes the image's size is not the
        one asked for.

        Raises LookupError if there is no such draft, sqlite3.IntegrityError if the usage's
        round does not exist, OSError if the file cannot be written; then no row is kept.
        """

        def within(sha: str) -> None:
            if usage is not None:
                insert_usage(self._database, usage)
            take_image(
                self._database,
                draft_id,
                sha=sha,
                generate_ms=generate_ms,
                round_takes_it=round_takes_it,
                redrawn_because=redrawn_because,
                size_note=size_note,
            )

        return await self.images.save(data, mime=mime, width=width, height=height, also=within)

    async def save_pack_image(
        self,
        item_id: int,
        *,
        data: bytes,
        mime: str,
        result: PackResult,
        usage: UsageEntry | None,
    ) -> ImageRecord:
        """Store one finished format of a campaign pack; return its image's record.

        The file is written and fsynced first; then ONE transaction holds the image row, the
        usage row of the paid call (if any) and the pack row marked done with the image, its
        method, size, cost and check: a paid format is never lost nor paid for again.
        Raises LookupError if there is no such pack row, OSError if the file cannot be
        written; then no row is kept.
        """

        def within(sha: str) -> None:
            self.packs.finish_within(item_id, sha, result, usage)

        return await self.images.save(
            data, mime=mime, width=result.width, height=result.height, also=within
        )

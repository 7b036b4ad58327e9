"""What a chat looks up about its sessions, and the few things it keeps besides rounds.

Pages of sessions, one session's rounds, its contact sheet, the latest round to continue,
today's usage, the chat's settings and the platform's ids for content already sent. Nothing
here draws, critiques or changes a round (that is bot/refine/service.py); every lookup is
confined to the asking chat's scope. Knows nothing of Telegram.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from bot.images import SHEET_MAX_TILES, SheetTile, contact_sheet
from bot.refine.chat_settings import InvalidSetting, with_choice
from bot.refine.errors import NothingToContinue, NothingToShow, RoundNotFound, SessionStopped
from bot.refine.models import ContactSheet, Scope
from storage.records import (
    ChatSettings,
    RoundRecord,
    RoundStatus,
    SessionRecord,
    SessionStatus,
    SessionSummary,
    UsageSummary,
)
from storage.store import Store


def start_of_day(now: datetime) -> datetime:
    """Return midnight of `now`'s day (in `now`'s time zone): where daily quotas and usage
    start."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def round_image(store: Store, round: RoundRecord) -> bytes | None:
    """Return the round's stored image bytes, or None if it has none (or it is gone)."""
    if round.image_sha is None:
        return None
    try:
        return (await store.images.read(round.image_sha))[1]
    except LookupError:
        return None


class ChatHistory:
    """A chat's sessions, settings and usage, read from the store for its own scope."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def scope_of_session(self, session_id: int, scope: Scope) -> Scope:
        """Return `scope` in the forum topic of the session, if the session is its chat's;
        else `scope` as it is (the lookups that follow refuse it)."""
        session = await self._store.sessions.get(session_id)
        if session is None or session.chat_id != scope.chat_id:
            return scope
        return replace(scope, thread_id=session.thread_id)

    async def scope_of_round(self, round_id: int, scope: Scope) -> Scope:
        """Return `scope` in the forum topic of the round's session (see `scope_of_session`)."""
        round = await self._store.rounds.get(round_id)
        return scope if round is None else await self.scope_of_session(round.session_id, scope)

    async def sessions_page(
        self, scope: Scope, page: int, per_page: int
    ) -> tuple[list[SessionSummary], int]:
        """Return one page (0-based) of the scope's sessions, newest first, and the total."""
        summaries = await self._store.sessions.of_chat(
            scope.chat_id, scope.thread_id, limit=per_page, offset=page * per_page
        )
        return summaries, await self._store.sessions.count(scope.chat_id, scope.thread_id)

    async def session_detail(
        self, session_id: int, scope: Scope
    ) -> tuple[SessionRecord, list[RoundRecord]]:
        """Return the session and its rounds; raise RoundNotFound unless it is the scope's."""
        session = await self._store.sessions.get(session_id)
        if session is None or (session.chat_id, session.thread_id) != (
            scope.chat_id,
            scope.thread_id,
        ):
            raise RoundNotFound()
        return session, await self._store.rounds.of_session(session.id)

    async def contact_sheet(self, scope: Scope, session_id: int | None = None) -> ContactSheet:
        """Return a PNG grid of the session's images (the scope's latest session if None).

        Raises NothingToShow when there is no session or it has no image yet.
        """
        if session_id is None:
            latest = await self._store.sessions.of_chat(scope.chat_id, scope.thread_id, limit=1)
            if not latest:
                raise NothingToShow()
            session_id = latest[0].session.id
        session, rounds = await self.session_detail(session_id, scope)
        tiles = []
        for r in rounds:
            if r.image_sha is None:
                continue
            image = await round_image(self._store, r)
            score = f"{r.score}/10" if r.score is not None else "-"
            tiles.append(
                SheetTile(image, f"R{r.number} · {score}", r.id == session.chosen_round_id)
            )
        if not tiles:
            raise NothingToShow()
        shown = tiles[-SHEET_MAX_TILES:]
        png = await asyncio.to_thread(contact_sheet, shown)
        digest = hashlib.sha256(png).hexdigest()
        return ContactSheet(session, png, digest, len(shown), images=len(tiles))

    async def latest_round(self, scope: Scope) -> RoundRecord:
        """Return the newest finished round of the scope's newest session (for `/auto`).

        Raises NothingToContinue if there is none, SessionStopped if that session ended.
        """
        summaries = await self._store.sessions.of_chat(scope.chat_id, scope.thread_id, limit=1)
        if not summaries:
            raise NothingToContinue()
        session = summaries[0].session
        if session.status is SessionStatus.STOPPED:
            raise SessionStopped()
        for round in reversed(await self._store.rounds.of_session(session.id)):
            if round.status is RoundStatus.DONE and round.image_sha is not None:
                return round
        raise NothingToContinue()

    async def upgraded_from(self, chat_id: int) -> int | None:
        """Return the id of the group this supergroup was upgraded from, if it was."""
        return await self._store.chats.migrated_from(chat_id)

    async def round_shown_by(self, scope: Scope, message_id: int) -> RoundRecord | None:
        """Return the round whose photo is this message of the scope's chat, if any."""
        return await self._store.rounds.by_message(scope.chat_id, message_id)

    async def image_of(self, round: RoundRecord) -> bytes | None:
        """Return the round's image bytes, or None if it has none (or it is gone)."""
        return await round_image(self._store, round)

    async def usage_today(self, user_id: int | None = None) -> list[UsageSummary]:
        """Return today's (UTC) usage per chat and user; with `user_id`, only that user's."""
        since = start_of_day(datetime.now(UTC)).isoformat(timespec="milliseconds")
        return await self._store.chats.usage_since(since, user_id=user_id)

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        """Return the chat's settings (defaults where it chose nothing)."""
        return await self._store.chats.settings(chat_id)

    async def choose_setting(self, chat_id: int, name: str, value: str) -> ChatSettings:
        """Store one choice of the chat's; it applies from the next round."""
        try:
            chosen = with_choice(await self._store.chats.settings(chat_id), name, value)
        except InvalidSetting:
            raise RoundNotFound() from None  # a forged button: nothing to act on
        return await self._store.chats.save_settings(chosen)

    async def delivered_id(self, sha: str, kind: str) -> str | None:
        """Return the id the chat platform gave this content when it was last sent as `kind`."""
        return await self._store.chats.file_id(sha, kind)

    async def remember_delivery(self, sha: str, kind: str, delivered_id: str) -> None:
        """Remember the platform's id for this content, so it is never uploaded twice."""
        await self._store.chats.remember_file_id(sha, kind, delivered_id)

"""PackService: the campaign pack of a finished round, from the offer to the stored formats.

`offer` says which formats the kept image needs and what they cost (nothing is stored);
`begin` checks the press, the quota (each paid format counts as one image) and that no pack of
the round is being made, and stores the pack's formats as pending in one transaction;
`make` makes each pending format (`PackMaker`), storing each one's image, usage and check in
one transaction as it is done, or its error. `begin_retry` sets one failed format pending
again. `interrupted` finds the formats a restart left unfinished, for `make` to finish: the
formats already done are never made (nor paid for) twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.backends.errors import BackendError
from bot.refine.checks import check_press_policy, check_quota, round_in_scope
from bot.refine.errors import ImageExpired, RoundNotFound, RoundNotReady, SessionBusy
from bot.refine.history import round_image
from bot.refine.models import Actor, QuotaPolicy, Scope
from bot.refine.pack_maker import FormatJob, PackMaker
from bot.refine.pack_plan import PackEstimate, PackFormat, format_named, pack_formats, preset_of
from storage.packs import PackItemRecord, PackStatus
from storage.records import ChatSettings, RoundRecord, RoundStatus, SessionRecord, UsageEntry
from storage.store import Store

log = logging.getLogger(__name__)

EstimateFn = Callable[[Sequence[PackFormat], str | None], PackEstimate]
"""The cost of making some formats at a quality (bound to the configured backends)."""


@dataclass(frozen=True, slots=True)
class PackOffer:
    """What the 📐 button offers for a round: the pack's formats, those still to make and
    their estimated cost, and the rows stored so far."""

    round: RoundRecord
    session: SessionRecord
    formats: tuple[PackFormat, ...]
    to_make: tuple[PackFormat, ...]
    estimate: PackEstimate
    stored: tuple[PackItemRecord, ...]
    kept_in: PackFormat | None  # the preset the kept image already is

    @property
    def ready(self) -> bool:
        """Whether every format of the pack is stored finished: pressing again re-sends."""
        return not self.to_make and all(item.finished for item in self.stored)

    @property
    def in_progress(self) -> bool:
        """Whether some format of the pack is still being made."""
        return any(not item.finished for item in self.stored)


@dataclass(frozen=True, slots=True)
class PendingPack:
    """A pack whose pending formats are about to be made: its round and who asked."""

    round: RoundRecord
    session: SessionRecord
    scope: Scope
    actor: Actor
    settings: ChatSettings
    items: tuple[PackItemRecord, ...]


class PackService:
    """The campaign pack's domain entry points (Telegram-free)."""

    def __init__(
        self,
        *,
        store: Store,
        maker: PackMaker,
        quota: QuotaPolicy,
        estimate: EstimateFn,
    ) -> None:
        self._store = store
        self._maker = maker
        self._quota = quota
        self._estimate = estimate
        self._busy: set[int] = set()  # rounds whose pack is being made

    async def offer(self, round_id: int, scope: Scope, actor: Actor) -> PackOffer:
        """Return what the pack of the round holds and costs. Raises RoundNotFound,
        RoundNotReady, NotYourSession or ImageExpired."""
        round, session, settings = await round_in_scope(self._store, round_id, scope)
        if round.status is not RoundStatus.DONE or round.image_sha is None:
            raise RoundNotReady()
        check_press_policy(session, settings, actor)
        try:
            image = (await self._store.images.read(round.image_sha))[0]
        except LookupError:
            raise ImageExpired() from None
        formats = pack_formats(image.width, image.height, marketplace=settings.marketplace == "on")
        stored = await self._store.packs.of_round(round.id)
        done = {item.format for item in stored if item.status is PackStatus.DONE}
        failed = {item.format for item in stored if item.status is PackStatus.FAILED}
        to_make = tuple(f for f in formats if f.name not in done | failed)
        return PackOffer(
            round,
            session,
            tuple(formats),
            to_make,
            self._estimate(to_make, settings.quality),
            tuple(item for item in stored if item.format in {f.name for f in formats}),
            preset_of(image.width, image.height),
        )

    async def begin(self, round_id: int, scope: Scope, actor: Actor) -> PendingPack:
        """Store the formats still to make as pending (after the checks and the quota);
        return the pending pack. Raises SessionBusy when the round's pack is being made,
        QuotaExceeded, and what `offer` raises."""
        offer = await self.offer(round_id, scope, actor)
        return await self._pending(offer, scope, actor, [f.name for f in offer.to_make])

    async def begin_retry(self, item_id: int, scope: Scope, actor: Actor) -> PendingPack:
        """Set one format that failed (or failed its check) pending again; return it as a
        pending pack. Raises RoundNotFound for an unknown format, and what `begin` raises."""
        item = await self._store.packs.get(item_id)
        if item is None:
            raise RoundNotFound()
        offer = await self.offer(item.round_id, scope, actor)
        return await self._pending(offer, scope, actor, [item.format], retry=item)

    async def _pending(
        self,
        offer: PackOffer,
        scope: Scope,
        actor: Actor,
        names: list[str],
        *,
        retry: PackItemRecord | None = None,
    ) -> PendingPack:
        round = offer.round
        if round.id in self._busy or offer.in_progress:
            raise SessionBusy()
        settings = await self._store.chats.settings(scope.chat_id)
        fmts = [format_named(name) for name in names]
        paid = self._estimate(fmts, settings.quality).images
        if paid:
            await check_quota(self._store, self._quota, scope, actor, adding=paid)
        self._busy.add(round.id)
        try:
            if retry is not None:
                await self._store.packs.retry(retry.id)
            rows = await self._store.packs.create(
                round.id,
                names,
                chat_id=scope.chat_id,
                thread_id=scope.thread_id,
                user_id=actor.user_id,
            )
        except BaseException:
            self._busy.discard(round.id)
            raise
        items = tuple(row for row in rows if not row.finished)
        return PendingPack(round, offer.session, scope, actor, settings, items)

    async def make(self, pending: PendingPack) -> list[PackItemRecord]:
        """Make every pending format of the pack at once, each stored as it is done (or
        failed, with its error kind); release the round; return all the pack's rows."""
        try:
            kept = await round_image(self._store, pending.round)
            if kept is None:
                for item in pending.items:
                    await self._store.packs.fail(item.id, "picture_gone")
            else:
                await asyncio.gather(
                    *(self._make_one(pending, item, kept) for item in pending.items)
                )
        finally:
            self._busy.discard(pending.round.id)
        return await self._store.packs.of_round(pending.round.id)

    async def _make_one(self, pending: PendingPack, item: PackItemRecord, kept: bytes) -> None:
        """Make one format and store it (or its failure); never raises but CancelledError."""
        job = FormatJob(
            fmt=format_named(item.format),
            kept=kept,
            prompt=pending.round.prompt,
            brief=pending.session.brief,
            round_id=pending.round.id,
            chat_id=pending.scope.chat_id,
            actor=pending.actor,
            quality=pending.settings.quality,
        )
        try:
            await self._store.packs.start(item.id)
            made = await self._maker.make(job)
            usage = None
            if made.image is not None:
                usage = UsageEntry(
                    pending.round.id,
                    pending.scope.chat_id,
                    pending.actor.user_id,
                    "image",
                    made.image.model,
                    made.image.usage,
                    made.result.cost_usd,
                )
            await self._store.save_pack_image(
                item.id, data=made.data, mime="image/jpeg", result=made.result, usage=usage
            )
        except BackendError as error:
            log.warning("pack %s of round %s failed: %s", item.format, item.round_id, error)
            await self._fail_quietly(item, f"{error.kind}: {error.detail}"[:300])
        except Exception:  # a bug or a full disk: this format fails, the others go on
            log.exception("pack %s of round %s failed", item.format, item.round_id)
            await self._fail_quietly(item, "internal")

    async def _fail_quietly(self, item: PackItemRecord, error: str) -> None:
        try:
            await self._store.packs.fail(item.id, error)
        except Exception:
            log.exception("pack item %s: the failure could not be stored", item.id)

    async def interrupted(self) -> list[PendingPack]:
        """Return the packs a restart left with formats pending or being made (the formats
        done are kept), each reserved for `make`."""
        by_round: dict[int, list[PackItemRecord]] = {}
        for item in await self._store.packs.unfinished():
            by_round.setdefault(item.round_id, []).append(item)
        pending = []
        for round_id, items in by_round.items():
            found = await self._store.rounds.with_context(round_id)
            if found is None or round_id in self._busy:
                continue
            round, session, settings = found
            first = items[0]
            scope = Scope(
                first.chat_id, first.thread_id, "group" if first.chat_id < 0 else "private"
            )
            self._busy.add(round_id)
            actor = Actor(first.user_id, str(first.user_id))
            pending.append(PendingPack(round, session, scope, actor, settings, tuple(items)))
        return pending

    async def image(self, item: PackItemRecord) -> bytes:
        """Return the stored JPEG of a finished format. Raises ImageExpired when its file is
        gone (or it has none)."""
        if item.image_sha is None:
            raise ImageExpired()
        try:
            return (await self._store.images.read(item.image_sha))[1]
        except LookupError:
            raise ImageExpired() from None

    async def remember_files(
        self, item: PackItemRecord, *, preview: str | None, document: str | None
    ) -> None:
        """Keep the ids Telegram gave the format's preview and document, for re-sending."""
        await self._store.packs.remember_files(
            item.id, preview_file_id=preview, document_file_id=document
        )

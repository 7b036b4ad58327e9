"""The campaign pack in the chat: made in the background, then one album of previews and one
album of documents, and a message with a Retry per format that failed.

An album (sendMediaGroup) holds 2-10 items, photos and documents never mixed ("Documents
and audio files can be only grouped in an album with messages of the same type", Bot API,
sendMediaGroup): a pack of one format goes as one photo and one document instead. Items
Telegram already holds go by file id (a second press pays nothing and uploads nothing); new
ones are uploaded and their file ids kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, InputMediaDocument, InputMediaPhoto, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.chat.context import BotContext, services_of
from bot.chat.updates import thread_kwargs
from bot.refine.errors import ImageExpired
from bot.refine.models import Scope
from bot.refine.packs import PackService, PendingPack
from bot.ui.packs import (
    PACK_NOT_SENT,
    document_name,
    item_caption,
    needs_retry,
    retry_keyboard,
    retry_text,
)
from storage.packs import PackItemRecord, PackStatus
from storage.records import RoundRecord, SessionRecord

log = logging.getLogger(__name__)


async def make_and_deliver(
    bot: Bot, packs: PackService, pending: PendingPack, *, only_pending: bool = False
) -> None:
    """Make the pending formats, then deliver the pack (with `only_pending`, just those
    formats: a Retry) to the pack's scope."""
    items = await packs.make(pending)
    if only_pending:
        wanted = {item.id for item in pending.items}
        items = [item for item in items if item.id in wanted]
    await deliver(bot, packs, pending.scope, pending.round, pending.session, items)


async def deliver(
    bot: Bot,
    packs: PackService,
    scope: Scope,
    round: RoundRecord,
    session: SessionRecord,
    items: Sequence[PackItemRecord],
) -> None:
    """Send the finished formats as an album of previews and an album of documents, then
    the formats that failed (or failed their check) with a Retry each; a failure to send is
    logged and said in one sentence."""
    done = [item for item in items if item.status is PackStatus.DONE and item.image_sha]
    try:
        if done:
            await _albums(bot, packs, scope, round, session, done)
        retry = [item for item in items if needs_retry(item)]
        if retry:
            await bot.send_message(
                scope.chat_id,
                retry_text(retry),
                reply_markup=retry_keyboard(retry),
                **thread_kwargs(scope),
            )
    except (TelegramError, ImageExpired) as error:
        log.warning("round %s: the pack was not sent: %s", round.id, error)
        try:
            await bot.send_message(scope.chat_id, PACK_NOT_SENT, **thread_kwargs(scope))
        except TelegramError:
            log.warning("round %s: could not say the pack was not sent", round.id)


async def _albums(
    bot: Bot,
    packs: PackService,
    scope: Scope,
    round: RoundRecord,
    session: SessionRecord,
    done: list[PackItemRecord],
) -> None:
    try:
        await _send_both(bot, packs, scope, round, session, done, by_id=True)
    except BadRequest as error:  # a file id Telegram no longer takes: upload them all
        log.info("round %s: stored file ids refused (%s); uploading", round.id, error)
        await _send_both(bot, packs, scope, round, session, done, by_id=False)


async def _send_both(
    bot: Bot,
    packs: PackService,
    scope: Scope,
    round: RoundRecord,
    session: SessionRecord,
    done: list[PackItemRecord],
    *,
    by_id: bool,
) -> None:
    previews, documents = [], []
    for item in done:
        caption = item_caption(item)
        preview_id = item.preview_file_id if by_id else None
        document_id = item.document_file_id if by_id else None
        data = b"" if preview_id and document_id else await packs.image(item)
        name = document_name(session.id, round.number, item)
        previews.append(
            # Bytes, not an InputFile: PTB then gives each upload its own attach:// name.
            InputMediaPhoto(
                preview_id or data,
                caption=caption,
                filename=name,
                parse_mode=ParseMode.HTML,
            )
        )
        documents.append(
            InputMediaDocument(
                document_id or data,
                caption=caption,
                filename=name,
                parse_mode=ParseMode.HTML,
            )
        )
    shown = await _send_group(bot, scope, previews)
    filed = await _send_group(bot, scope, documents)
    for item, preview, document in zip(done, shown, filed, strict=True):
        photo_id = preview.photo[-1].file_id if preview.photo else None
        document_id = document.document.file_id if document.document else None
        if (photo_id, document_id) != (item.preview_file_id, item.document_file_id):
            await packs.remember_files(item, preview=photo_id, document=document_id)


async def _send_group(
    bot: Bot, scope: Scope, media: list[InputMediaPhoto] | list[InputMediaDocument]
) -> Sequence[Message]:
    """Send the media as one album (or, alone, as one photo or document)."""
    if len(media) > 1:
        return await bot.send_media_group(scope.chat_id, media, **thread_kwargs(scope))
    [only] = media
    if isinstance(only, InputMediaPhoto):
        sent = await bot.send_photo(
            scope.chat_id, only.media, caption=only.caption, **thread_kwargs(scope)
        )
    else:
        sent = await bot.send_document(
            scope.chat_id, only.media, caption=only.caption, **thread_kwargs(scope)
        )
    return [sent]


async def resume_packs(context: BotContext) -> None:
    """Finish the packs a crash or restart left half made: the formats already done are
    kept; the rest are made, then the whole pack is delivered."""
    services = services_of(context.application)
    packs = services.packs
    if packs is None:
        return
    for pending in await packs.interrupted():
        log.info("resuming the pack of round %s (%d formats)", pending.round.id, len(pending.items))
        try:
            await make_and_deliver(context.bot, packs, pending)
        except Exception:  # one broken pack must not strand the others
            log.exception("could not resume the pack of round %s", pending.round.id)

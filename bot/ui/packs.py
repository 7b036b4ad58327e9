"""The campaign pack as the chat sees it: the 📐 button, the cost message and its ✅ button,
the albums' captions, and the failed formats with a Retry each."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.refine.pack_plan import METHOD_CROP, PackFormat, format_named
from bot.refine.packs import PackOffer
from bot.ui.callbacks import FORMAT_RETRY, FORMATS, FORMATS_CONFIRM, GALLERY, encode_callback
from bot.ui.text import CAPTION_LIMIT, fit_html, shorten
from storage.packs import PackItemRecord, PackStatus

FORMATS_LABEL = "📐 All formats"
MAKING_TOAST = "Making the formats…"
RESENDING_TOAST = "Sending the formats again (no new images)."
NOTHING_TO_MAKE = "This image is already in every format."
PACK_NOT_SENT = "I couldn't send the formats. Press 📐 All formats again to resend them."

_FAILURES = {
    "blocked": "the image service blocked it as unsafe content",
    "unavailable": "the image service did not answer in time",
    "rate_limited": "the image service is busy (rate limited)",
    "credits": "the image service has no credits left",
    "auth": "the image service rejected the bot's API key",
    "rejected": "the image service refused the request",
    "refused_setting": "the image service refused one of the bot's settings",
    "bad_output": "the image service sent back something unusable",
    "picture_gone": "the kept image was deleted by the retention policy",
    "internal": "something went wrong on the bot's side",
}


def formats_button(round_id: int) -> InlineKeyboardButton:
    """Return the 📐 All formats button of a finished round."""
    return InlineKeyboardButton(FORMATS_LABEL, callback_data=encode_callback(FORMATS, round_id))


def stop_keyboard(session_id: int, round_id: int) -> InlineKeyboardMarkup:
    """Return the buttons of Stop's document: 🖼 Contact sheet and 📐 All formats."""
    sheet = InlineKeyboardButton(
        "🖼 Contact sheet", callback_data=encode_callback(GALLERY, session_id)
    )
    return InlineKeyboardMarkup([[sheet, formats_button(round_id)]])


def _money(cost: float | None) -> str:
    return (
        "cost unknown (this model is not in the price table)" if cost is None else f"≈ ${cost:.2f}"
    )


def offer_text(offer: PackOffer) -> str:
    """Return the cost message: the formats to make, images and estimated money."""
    estimate = offer.estimate
    names = ", ".join(f"{f.label} ({f.size_text})" for f in offer.to_make)
    lines = [f"📐 <b>All formats</b> of round {offer.round.number}: {escape(names)}."]
    if estimate.images:
        lines.append(
            f"That is {estimate.images} new image{'s' if estimate.images > 1 else ''}, "
            f"{_money(estimate.cost_usd)} estimated, plus a short check of each; they count "
            "towards today's quota."
        )
    if estimate.crops:
        lines.append(
            f"{estimate.crops} will be cropped (free): this image service cannot extend pictures."
        )
    if offer.kept_in is not None:
        lines.append(f"The kept image is already {offer.kept_in.label}.")
    lines.append("Press ✅ to make them.")
    return "\n".join(lines)


def offer_keyboard(offer: PackOffer) -> InlineKeyboardMarkup:
    """Return the ✅ confirm button of the cost message."""
    count = len(offer.to_make)
    label = f"✅ Make {count} format{'s' if count > 1 else ''}"
    button = InlineKeyboardButton(
        label, callback_data=encode_callback(FORMATS_CONFIRM, offer.round.id)
    )
    return InlineKeyboardMarkup([[button]])


def making_text(count: int) -> str:
    """Return the cost message once confirmed."""
    return f"📐 Making {count} format{'s' if count > 1 else ''}… the albums follow."


def failure_text(error: str | None) -> str:
    """Return why a format failed, in words (its stored error kind)."""
    kind = (error or "internal").partition(":")[0]
    return _FAILURES.get(kind, "it could not be made")


def item_caption(item: PackItemRecord) -> str:
    """Return one album item's caption: format, pixel size, a crop's label, its check."""
    fmt: PackFormat = format_named(item.format)
    lines = [f"📐 <b>{fmt.label}</b> · {item.width or fmt.width}×{item.height or fmt.height}"]
    if item.method == METHOD_CROP:
        lines.append("✂️ Cropped, not recomposed: this image service cannot extend pictures.")
    if item.check_note:
        lines.append(f"⚠️ Check failed: {escape(shorten(item.check_note, 300))}")
    else:
        lines.append("✓ Checked")
    return fit_html("\n".join(lines), CAPTION_LIMIT)


def needs_retry(item: PackItemRecord) -> bool:
    """Whether the format gets a Retry: it failed, or it failed its check."""
    return item.status is PackStatus.FAILED or (
        item.status is PackStatus.DONE and item.check_note is not None
    )


def retry_text(items: list[PackItemRecord]) -> str:
    """Return the message under the albums naming each format that failed or failed its
    check, and why."""
    lines = ["⚠️ <b>Not every format is ready</b>"]
    for item in items:
        label = format_named(item.format).label
        if item.status is PackStatus.FAILED:
            lines.append(f"{label}: failed: {failure_text(item.error)}.")
        else:
            lines.append(f"{label}: check failed: {escape(shorten(item.check_note or '', 200))}")
    lines.append("Retry makes that format alone again.")
    return "\n".join(lines)


def retry_keyboard(items: list[PackItemRecord]) -> InlineKeyboardMarkup:
    """Return one 🔁 Retry button per format that failed or failed its check."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    f"🔁 Retry {format_named(item.format).label}",
                    callback_data=encode_callback(FORMAT_RETRY, item.id),
                )
            ]
            for item in items
        ]
    )


def document_name(session_id: int, round_number: int, item: PackItemRecord) -> str:
    """Return the file name of a format's full-resolution document."""
    fmt = format_named(item.format)
    return f"refinebot-{session_id}-round-{round_number}-{fmt.name}-{fmt.width}x{fmt.height}.jpg"

"""Looking back: the chat's sessions a page at a time, one session's rounds, its contact sheet
and today's usage."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.refine.models import ContactSheet
from bot.ui.callbacks import FORMATS, GALLERY, HISTORY, SESSION, encode_callback
from bot.ui.text import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    count_of,
    fit_html,
    minute_of,
    shorten,
    visible_length,
)
from storage.records import RoundRecord, RoundStatus, SessionRecord, SessionSummary, UsageSummary

HISTORY_PAGE_SIZE = 5
"""Sessions on one page of /history."""
NO_HISTORY = "No sessions here yet. Start one with /new and a description."
DRAWING_CONTACT_SHEET = "Drawing the contact sheet…"
"""The 🖼 button's toast."""

_STATUS_ICONS = {
    RoundStatus.DONE: "✓",
    RoundStatus.FAILED: "⚠️",
    RoundStatus.CANCELLED: "⏹",
}


def history_page_text(summaries: list[SessionSummary], page: int, total: int) -> str:
    """Return one page (counted from 0) of the chat's sessions: brief, rounds, best score,
    status, date; NO_HISTORY when there are none."""
    if not summaries:
        return NO_HISTORY
    pages = -(-total // HISTORY_PAGE_SIZE)
    lines = [f"<b>Sessions</b> · page {page + 1} of {pages} · choose one to see its rounds"]
    for summary in summaries:
        session = summary.session
        best = f"best {summary.best_score}/10" if summary.best_score is not None else "no score"
        edits = f" ({summary.edits} ✎ edits)" if summary.edits else ""
        lines.append(
            f"\n<b>#{session.id}</b> <i>{escape(shorten(session.brief, 100))}</i>\n"
            f"{summary.rounds} rounds{edits} · {best} · {session.status} · "
            f"{minute_of(session.created_at)}"
        )
    return fit_html("\n".join(lines), TEXT_LIMIT)


def history_keyboard(
    summaries: list[SessionSummary], page: int, total: int
) -> InlineKeyboardMarkup:
    """Return a button per session on the page, then ◀ ▶ to page through the rest."""
    rows = [
        [
            InlineKeyboardButton(
                f"#{s.session.id} {shorten(s.session.brief, 40)}",
                callback_data=encode_callback(SESSION, s.session.id),
            )
        ]
        for s in summaries
    ]
    paging = []
    if page > 0:
        paging.append(InlineKeyboardButton("◀ Newer", callback_data=encode_callback(HISTORY, page)))
    if (page + 1) * HISTORY_PAGE_SIZE < total:
        paging.append(
            InlineKeyboardButton("Older ▶", callback_data=encode_callback(HISTORY, page + 2))
        )
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(rows)


def session_text(session: SessionRecord, rounds: list[RoundRecord]) -> str:
    """Return a session's rounds (kind, prompt, score, time, status): `R3 ✎ R2` is an edit of
    round 2's picture, `R3 ↻` a new picture (`← R1`: drawn from an earlier round's prompt).
    Within Telegram's 4096 UTF-16 code units: the oldest rounds are left out first."""
    numbers = {r.id: r.number for r in rounds}
    lines = [
        f"<b>Session #{session.id}</b> · {session.status} · {minute_of(session.created_at)}",
        f"<i>{escape(shorten(session.brief, 200))}</i>",
        "",
    ]
    for r in rounds:
        score = f"{r.score}/10" if r.score is not None else "-"
        icon = _STATUS_ICONS.get(r.status, "⏳")
        parent = numbers.get(r.parent_round_id) if r.parent_round_id else None
        edited = numbers.get(r.edit_of) if r.edit_of else None
        branch = f" ✎ R{edited}" if edited is not None else " ↻"
        if edited is None and parent is not None and parent != r.number - 1:
            branch += f" ← R{parent}"
        kept = " ⭐ kept" if session.chosen_round_id == r.id else ""
        lines.append(
            f"{icon} <b>R{r.number}</b>{branch} · {score} · {minute_of(r.created_at)[5:]} · "
            f"{r.status}{kept}\n    {escape(shorten(r.instruction or r.prompt, 160))}"
        )
    text = "\n".join(lines)
    while visible_length(text) > TEXT_LIMIT and len(lines) > 4:
        del lines[3]  # oldest rounds first
        text = "\n".join(lines)
    return fit_html(text, TEXT_LIMIT)


def session_keyboard(
    session: SessionRecord, pack_round_id: int | None = None
) -> InlineKeyboardMarkup:
    """Return the contact-sheet and back-to-history buttons of a session view, and with
    `pack_round_id` (the kept round, else the latest finished one) 📐 All formats for it."""
    rows = [
        [
            InlineKeyboardButton(
                "🖼 Contact sheet", callback_data=encode_callback(GALLERY, session.id)
            ),
            InlineKeyboardButton("◀ Sessions", callback_data=encode_callback(HISTORY, 1)),
        ]
    ]
    if pack_round_id is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    "📐 All formats", callback_data=encode_callback(FORMATS, pack_round_id)
                )
            ]
        )
    return InlineKeyboardMarkup(rows)


def pack_round(session: SessionRecord, rounds: list[RoundRecord]) -> int | None:
    """Return the round a session view offers the campaign pack of: the kept one, else the
    latest finished round with an image; None when there is none."""
    if session.chosen_round_id is not None:
        return session.chosen_round_id
    finished = [r for r in rounds if r.status is RoundStatus.DONE and r.image_sha is not None]
    return finished[-1].id if finished else None


def gallery_caption(sheet: ContactSheet) -> str:
    """Return the contact sheet's caption: the session, its number of images, its brief."""
    shown = count_of(sheet.tiles, "image")
    if sheet.images > sheet.tiles:
        shown = f"the last {sheet.tiles} of {sheet.images} images"
    caption = (
        f"🖼 Session #{sheet.session.id}: {shown} · "
        f"<i>{escape(shorten(sheet.session.brief, 200))}</i>"
    )
    return fit_html(caption, CAPTION_LIMIT)


def gallery_keyboard(session_id: int) -> InlineKeyboardMarkup:
    """Return the 🖼 button shown on a finished session."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "🖼 Contact sheet", callback_data=encode_callback(GALLERY, session_id)
                )
            ]
        ]
    )


def _cost(summaries: list[UsageSummary]) -> str:
    """Return the summed estimated cost, e.g. `≈ $0.42`, saying if some calls had no price."""
    total = sum(s.cost_usd or 0.0 for s in summaries)
    unpriced = sum(s.unpriced for s in summaries)
    text = f"≈ ${total:.2f}"
    return text + (" (some calls unpriced)" if unpriced else "")


def usage_text(own: list[UsageSummary], everyone: list[UsageSummary] | None) -> str:
    """Return today's usage: one's own, then (for admins) each chat's, within Telegram's 4096
    UTF-16 code units."""
    rounds = sum(s.rounds for s in own)
    images = sum(s.images for s in own)
    lines = [
        "<b>Today (UTC)</b>",
        f"You: {rounds} rounds, {images} images, {_cost(own)}" if own else "You: nothing yet.",
    ]
    if everyone is not None:
        by_chat: dict[int, list[UsageSummary]] = {}
        for summary in everyone:
            by_chat.setdefault(summary.chat_id, []).append(summary)
        lines.append("\n<b>All chats</b>" if by_chat else "\nNo usage in any chat today.")
        for chat_id, summaries in by_chat.items():
            lines.append(
                f"Chat <code>{chat_id}</code>: {sum(s.rounds for s in summaries)} rounds, "
                f"{sum(s.images for s in summaries)} images, {_cost(summaries)}"
            )
    text = "\n".join(lines)
    while visible_length(text) > TEXT_LIMIT and len(lines) > 2:
        lines.pop()
        text = "\n".join(lines)
    return fit_html(text, TEXT_LIMIT)

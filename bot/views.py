"""What the chat shows: user-facing strings, captions, keyboards and the callback-data codec.

All text is HTML (parse_mode="HTML"); everything that came from a user or a model is escaped.
Telegram counts caption and message length after entity parsing, so limits are checked
against the visible text, not the markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.backends.critique import Critique
from bot.backends.errors import BackendError
from bot.refine import errors as refine_errors
from bot.refine.models import AutopilotOutcome, AutopilotPlan, AutopilotProgress
from storage.records import RoundRecord, RoundStatus, SessionSummary, UsageSummary

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64

# --- callback data ------------------------------------------------------------------------

ACCEPT, EDIT, STOP, RETRY, AUTO = "accept", "edit", "stop", "retry", "auto"
# Reserved by other features: h g v c p.
_ACTION_CODES = {ACCEPT: "a", EDIT: "e", STOP: "s", RETRY: "r", AUTO: "u"}
_CODE_ACTIONS = {code: action for action, code in _ACTION_CODES.items()}
_CALLBACK_RE = re.compile(r"^([a-z]):([1-9][0-9]{0,17})$")


@dataclass(frozen=True, slots=True)
class ButtonPress:
    action: str
    round_id: int


def encode_callback(action: str, round_id: int) -> str:
    """Return the callback data for an action on a round, e.g. `a:42` (always <= 64 bytes)."""
    return f"{_ACTION_CODES[action]}:{round_id}"


def decode_callback(data: str | None) -> ButtonPress | None:
    """Return the press the data encodes, or None for anything forged or malformed."""
    if not data or len(data.encode()) > CALLBACK_DATA_LIMIT:
        return None
    match = _CALLBACK_RE.match(data)
    if not match or match.group(1) not in _CODE_ACTIONS:
        return None
    return ButtonPress(_CODE_ACTIONS[match.group(1)], int(match.group(2)))


def round_keyboard(round_id: int) -> InlineKeyboardMarkup:
    """Return a round's keyboard: Accept / Edit / Stop, then 🔁 Auto on a row of its own."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("✅ Accept", callback_data=encode_callback(ACCEPT, round_id)),
                InlineKeyboardButton("✏️ Edit", callback_data=encode_callback(EDIT, round_id)),
                InlineKeyboardButton("⏹ Stop", callback_data=encode_callback(STOP, round_id)),
            ],
            [InlineKeyboardButton("🔁 Auto", callback_data=encode_callback(AUTO, round_id))],
        ]
    )


def retry_keyboard(round_id: int) -> InlineKeyboardMarkup:
    """Return the keyboard of a round that produced no image: one Retry button."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("🔁 Retry", callback_data=encode_callback(RETRY, round_id))]]
    )


# --- length rules ----------------------------------------------------------------------------


def visible_length(html: str) -> int:
    """Return the length Telegram counts for an HTML text: tags removed, entities decoded."""
    return len(unescape(re.sub(r"<[^>]+>", "", html)))


def shorten(text: str, limit: int) -> str:
    """Return plain `text` cut to at most `limit` characters, ending in an ellipsis if cut."""
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


# --- static texts ----------------------------------------------------------------------------

HELP = (
    "<b>refinebot</b> turns a product description into a marketing image and improves it "
    "round by round.\n\n"
    "• Describe the product: <code>/new black-purple Banarasi saree, gold jewellery, plain "
    "backdrop</code> (in a private chat, just send the description).\n"
    "• I draw it, critique it against your brief and suggest a better prompt.\n"
    "• <b>✅ Accept</b> runs the next round from the suggestion, <b>✏️ Edit</b> lets you write "
    "your own, <b>⏹ Stop</b> keeps that image and sends it at full resolution.\n"
    "• Send a <b>photo of your product</b> with a caption saying the scene (<i>on a marble "
    "table, soft morning light</i>): I keep your product and change what is around it.\n"
    "• <b>🔁 Auto</b> (or <code>/auto 3</code>) runs up to 3 rounds without asking, drawing "
    "several drafts each round and keeping the best; I say first how many images that can "
    "cost at most.\n"
    "• Buttons on older rounds still work: they continue from that round.\n\n"
    "/history lists this chat's sessions, /cancel stops a running round or autopilot, /usage "
    "shows today's rounds and their estimated cost, /help shows this."
)

START = "👋 Hi! " + HELP

ACCESS_DENIED = (
    "Sorry, this bot is private. Your Telegram user id is <code>{user_id}</code>: ask the "
    "bot's admin to add it to ALLOWED_USER_IDS."
)
ACCESS_DENIED_TOAST = "Sorry, you are not allowed to use this bot."

NEW_USAGE = "Tell me what to draw: <code>/new red silk saree on a plain backdrop</code>"
PHOTO_NEEDS_CAPTION = (
    "📷 Nice photo! Send it again with a caption saying the scene you want, for example: "
    "<i>on a marble table, soft morning light</i>. I keep your product and change the rest."
)
_PHOTO_REFUSALS = {
    "file_too_big": "That file is too big: send a photo of at most {max_mb:g} MB.",
    "too_many_pixels": (
        "That image has too many pixels for me to open safely. Send a photo of at most "
        "50 megapixels."
    ),
    "animated": "That is an animation. Send a single still photo of the product.",
    "too_small": "That photo is too small to work from: send one at least 64 pixels a side.",
    "bad_shape": "That photo is too narrow or too wide: crop it to at most 2.5:1.",
    "unsupported": "I can't read that file. Send the product photo as JPEG, PNG, WebP or HEIC.",
    "corrupt": "That image file is damaged and can't be opened. Please send it again.",
}
PHOTO_DOWNLOAD_FAILED = "I couldn't download that photo from Telegram. Please send it again."
UNKNOWN_MESSAGE = "Describe the product in words to start, or see /help."
BUSY = "⏳ Already working on a round of this session. Wait for it, or /cancel it."
CANCELLED = "⏹ Cancelled."
NOTHING_TO_CANCEL = "Nothing is running right now."
EDIT_PROMPT = (
    "✏️ Send your own prompt for round {next_number}. The suggestion, to copy and change:\n"
    "<pre>{suggestion}</pre>"
)
EDIT_PROMPT_GROUP = EDIT_PROMPT + "\n(Reply to this message with your prompt.)"
NO_HISTORY = "No sessions here yet. Start one with /new and a description."

REFUSALS: dict[type[refine_errors.RefineError], str] = {
    refine_errors.EmptyBrief: "That prompt is empty. Describe the product in a few words.",
    refine_errors.BriefTooLong: "That is too long: please keep it under 2,000 characters.",
    refine_errors.RoundNotFound: "That round isn't available here any more.",
    refine_errors.SessionBusy: BUSY,
    refine_errors.SessionStopped: "This session has ended. Start a new one with /new.",
    refine_errors.RoundNotReady: "That round has no finished image to continue from.",
    refine_errors.ImageExpired: (
        "That image was deleted by the retention policy. Accept or Edit to draw it again."
    ),
    refine_errors.NoPendingEdit: "I wasn't waiting for a prompt. Start a new one with /new.",
    refine_errors.ReferenceExpired: (
        "The product photo of this session was deleted. Send the photo again to start anew."
    ),
    refine_errors.NothingToContinue: (
        "There is no finished round to continue here. Start with <code>/auto 3 red silk "
        "saree on a plain backdrop</code>, or send a product photo with a caption."
    ),
}


def photo_refusal_text(reason: str, max_upload_mb: float) -> str:
    """Return the sentence for a product photo that can't be used (`InvalidImage.reason`)."""
    template = _PHOTO_REFUSALS.get(reason, _PHOTO_REFUSALS["corrupt"])
    return template.format(max_mb=max_upload_mb)


_SERVICE_NAMES = {"image": "The image service", "critic": "The critic"}
_BACKEND_MESSAGES = {
    "blocked": "{service} blocked this as unsafe content. Reword the prompt and try again.",
    "auth": "{service} rejected the bot's API key. The bot's operator needs to fix it.",
    "credits": "{service} has no credits left on the bot's account. Top up and try again.",
    "rate_limited": "{service} is busy (rate limited). Try again in a minute.",
    "unavailable": "{service} did not answer in time. Try again in a moment.",
    "rejected": "{service} refused this request. Try a simpler prompt.",
    "bad_output": "{service} sent back something unusable. Try again.",
}


def refusal_text(error: refine_errors.RefineError) -> str:
    """Return the user-facing sentence for a domain refusal."""
    if isinstance(error, refine_errors.QuotaExceeded):
        return quota_text(error)
    if isinstance(error, refine_errors.AutopilotPlanInvalid):
        return (
            f"Autopilot runs {error.low} to {error.high} {error.what} at a time, "
            f"for example <code>/auto {min(3, error.high)}</code>."
        )
    return REFUSALS.get(type(error), "That didn't work. Try again.")


def quota_text(error: refine_errors.QuotaExceeded, now: datetime | None = None) -> str:
    """Return the quota message, saying when the quota resets (00:00 UTC) and how soon."""
    now = now or datetime.now(UTC)
    minutes = max(int((error.resets_at - now).total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    left = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    whose = "You have" if error.scope == "user" else "This chat has"
    return f"{whose} used today's {error.limit} rounds. The quota resets at 00:00 UTC, in {left}."


def backend_error_text(error: BackendError) -> str:
    """Return the user-facing sentence for a backend failure (no technical details)."""
    service = _SERVICE_NAMES.get(error.service, "A service")
    return _BACKEND_MESSAGES.get(error.kind, "{service} failed. Try again.").format(service=service)


# --- round captions ------------------------------------------------------------------------


def _credit(round: RoundRecord, group: bool) -> str:
    if not group or not round.acted_by_name:
        return ""
    verb = {
        "accept": "accepted",
        "edit": "edited",
        "brief": "started",
        "auto": "autopilot started",
    }.get(round.action, "")
    return f" · {verb} by {escape(round.acted_by_name)}" if verb else ""


def status_text(round: RoundRecord, stage: str) -> str:
    """Return the one-line progress text for a round ('generating' or 'critiquing')."""
    icon = {"generating": "🎨", "critiquing": "🔍"}.get(stage, "⏳")
    return f"{icon} Round {round.number}: {stage}…"


def critiquing_caption(round: RoundRecord) -> str:
    return f"<b>Round {round.number}</b> · 🔍 critiquing…"


def round_caption(
    round: RoundRecord,
    critique: Critique | None,
    error: BackendError | None = None,
    group: bool = False,
) -> str:
    """Return the round's caption: score, what works, problems and the suggested revision.

    Always fits Telegram's 1024-character caption limit: the suggestion is shortened last
    (the full text is offered for copying when the user presses Edit).
    """
    header = f"<b>Round {round.number}</b>"
    if critique is not None:
        header += f" · {critique.score}/10"
        if critique.fidelity is not None:
            header += f" · product {critique.fidelity}/10"
    header += _credit(round, group)
    if critique is None:
        note = backend_error_text(error) if error else "No critique for this round."
        return header + "\n" + escape(note) + "\nAccept runs the same prompt again."

    lines = [header]
    lines += [f"✓ {escape(shorten(s, 120))}" for s in critique.strengths[:2]]
    lines += [f"✗ {escape(shorten(p, 160))}" for p in critique.problems[:3]]
    body = "\n".join(lines)
    budget = CAPTION_LIMIT - visible_length(body) - len("\n\nSuggested next prompt:\n") - 2
    suggestion = escape(shorten(critique.revised_prompt, max(budget, 40)))
    caption = f"{body}\n\nSuggested next prompt:\n<i>{suggestion}</i>"
    while visible_length(caption) > CAPTION_LIMIT and len(lines) > 1:
        lines.pop()  # only when strengths/problems alone are huge
        caption = "\n".join(lines) + f"\n\nSuggested next prompt:\n<i>{suggestion}</i>"
    return caption


def failed_text(round: RoundRecord, error: BackendError | None) -> str:
    """Return the message shown when a round produced no image (it carries a Retry button)."""
    if error is None or error.kind == "interrupted":
        return f"⚠️ Round {round.number} was interrupted by a restart. Press Retry to run it again."
    return f"⚠️ Round {round.number}: {escape(backend_error_text(error))}"


def cancelled_caption(round: RoundRecord) -> str:
    return f"<b>Round {round.number}</b> · ⏹ cancelled"


def cancelled_text(round: RoundRecord) -> str:
    return f"⏹ Round {round.number} cancelled."


def stop_caption(round: RoundRecord, round_count: int) -> str:
    """Return the one-line summary sent with the final full-resolution image."""
    rounds = "1 round" if round_count == 1 else f"{round_count} rounds"
    prefix = f"⏹ Done after {rounds}. Kept round {round.number}. Final prompt: "
    budget = CAPTION_LIMIT - len(prefix)
    return escape(prefix) + f"<i>{escape(shorten(round.prompt, budget))}</i>"


def edit_prompt_text(next_number: int, suggestion: str, group: bool) -> str:
    """Return the message asking for the user's own prompt, with the suggestion to copy."""
    template = EDIT_PROMPT_GROUP if group else EDIT_PROMPT
    fixed = visible_length(template.format(next_number=next_number, suggestion=""))
    return template.format(
        next_number=next_number, suggestion=escape(shorten(suggestion, TEXT_LIMIT - fixed - 1))
    )


# --- history ----------------------------------------------------------------------------------

_STATUS_ICONS = {
    RoundStatus.DONE: "✓",
    RoundStatus.FAILED: "⚠️",
    RoundStatus.CANCELLED: "⏹",
}


def history_text(entries: list[tuple[SessionSummary, list[RoundRecord]]]) -> str:
    """Return the chat's sessions and their rounds (prompt, score, time, status), within 4096."""
    if not entries:
        return NO_HISTORY
    blocks = []
    for summary, rounds in entries:
        session = summary.session
        best = f"best {summary.best_score}/10" if summary.best_score is not None else "no score"
        head = (
            f"<b>Session {session.id}</b> · {session.status} · {summary.rounds} rounds · {best}\n"
            f"<i>{escape(shorten(session.brief, 120))}</i>"
        )
        lines = [head]
        for r in rounds[-8:]:
            score = f"{r.score}/10" if r.score is not None else "–"
            icon = _STATUS_ICONS.get(r.status, "⏳")
            chosen = " ⭐" if session.chosen_round_id == r.id else ""
            when = r.created_at[5:16].replace("T", " ")
            lines.append(
                f"{icon} R{r.number} {score} · {when} · {r.status}{chosen} — "
                f"{escape(shorten(r.prompt, 80))}"
            )
        blocks.append("\n".join(lines))
    text = "\n\n".join(blocks)
    while visible_length(text) > TEXT_LIMIT and len(blocks) > 1:
        blocks.pop()
        text = "\n\n".join(blocks)
    return text


# --- usage ------------------------------------------------------------------------------------


def _cost(summaries: list[UsageSummary]) -> str:
    total = sum(s.cost_usd or 0.0 for s in summaries)
    unpriced = sum(s.unpriced for s in summaries)
    text = f"≈ ${total:.2f}"
    return text + (" (some calls unpriced)" if unpriced else "")


def usage_text(own: list[UsageSummary], everyone: list[UsageSummary] | None) -> str:
    """Return today's usage: one's own, then (for admins) each chat's, within 4096."""
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
    return text


# --- autopilot ----------------------------------------------------------------------------------

_STOP_REASONS = {
    "threshold": "reached the target score",
    "no_improvement": "two rounds in a row did not improve on the best",
    "rounds": "all planned rounds done",
    "quota": "today's round quota is used up",
    "cancelled": "cancelled",
    "gone": "the chat is gone",
    "error": "a round failed",
}


def _images(count: int) -> str:
    return "1 image" if count == 1 else f"{count} images"


def autopilot_plan_text(plan: AutopilotPlan) -> str:
    """Return the line said before an autopilot run starts: the most it can pay for."""
    rounds = "1 round" if plan.rounds == 1 else f"{plan.rounds} rounds"
    drafts = "1 draft" if plan.drafts == 1 else f"{plan.drafts} drafts"
    return (
        f"🔁 <b>Autopilot</b>: up to {rounds} × {drafts}, so at most "
        f"<b>{_images(plan.max_images)}</b> to pay for. I stop early at "
        f"{plan.threshold}/10, or when two rounds in a row don't improve. /cancel stops it."
    )


def _best(progress_best: RoundRecord | None, quality: int | None) -> str:
    if progress_best is None or quality is None:
        return ""
    return f" · best {quality}/10"


def autopilot_progress_text(progress: AutopilotProgress) -> str:
    """Return the run's one progress message, e.g. 'Round 2/3 · best 7/10'."""
    plan = progress.plan
    head = autopilot_plan_text(plan)
    if progress.stage == "start" or progress.round_index == 0:
        return f"{head}\n⏳ Starting…"
    line = f"Round {progress.round_index}/{plan.rounds}"
    line += _best(progress.best, progress.best_quality)
    if progress.stage == "done":
        line += " · ✓"
    else:
        drafts = "1 draft" if plan.drafts == 1 else f"{plan.drafts} drafts"
        line += f" · 🎨 drawing and judging {drafts}…"
    return f"{head}\n{line}"


def autopilot_final_text(outcome: AutopilotOutcome) -> str:
    """Return the progress message's last state: how the run ended and which round won."""
    plan, best = outcome.plan, outcome.best
    rounds = len(outcome.rounds)
    done = "1 round" if rounds == 1 else f"{rounds} rounds"
    icon = "⏹" if outcome.cancelled else "⚠️" if outcome.stop_reason == "error" else "🏁"
    lines = [
        f"{icon} <b>Autopilot</b>: {done}, {_images(outcome.images)} "
        f"(at most {_images(plan.max_images)} planned) · "
        f"{_STOP_REASONS.get(outcome.stop_reason, outcome.stop_reason)}."
    ]
    if outcome.stop_reason == "error" and outcome.error is not None:
        lines.append(escape(backend_error_text(outcome.error)))
    if best is not None and outcome.best_critique is not None:
        lines.append(
            f"Best: round {best.number} ({outcome.best_critique.quality}/10), shown below."
        )
    elif best is not None:
        lines.append(f"Best: round {best.number}, shown below.")
    elif outcome.failed_round is None:
        lines.append("No image was finished.")
    return "\n".join(lines)


def autopilot_best_caption(
    round: RoundRecord, critique: Critique | None, error: BackendError | None, group: bool
) -> str:
    """Return the caption of the run's best image: the round's caption, marked as the best."""
    caption = round_caption(round, critique, error, group)
    marked = "🏆 " + caption
    return marked if visible_length(marked) <= CAPTION_LIMIT else caption

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
from bot.backends.formats import FORMATS
from bot.refine import errors as refine_errors
from bot.refine.chat_settings import CHOICES
from bot.refine.models import (
    Actor,
    AutopilotOutcome,
    AutopilotPlan,
    AutopilotProgress,
    ContactSheet,
)
from storage.records import (
    ChatSettings,
    RoundRecord,
    RoundStatus,
    SessionRecord,
    SessionSummary,
    UsageSummary,
)

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64

# --- callback data ------------------------------------------------------------------------

ACCEPT, EDIT, STOP, RETRY, AUTO = "accept", "edit", "stop", "retry", "auto"  # on a round id
ROUND_ACTIONS = frozenset({ACCEPT, EDIT, STOP, RETRY, AUTO})
HISTORY, SESSION, GALLERY = "history", "session", "gallery"  # on a page number, a session id
SETTING = "setting"  # on "name=value"
_ACTION_CODES = {
    ACCEPT: "a",
    EDIT: "e",
    STOP: "s",
    RETRY: "r",
    AUTO: "u",
    HISTORY: "h",
    SESSION: "v",
    GALLERY: "g",
    SETTING: "c",
}
_CODE_ACTIONS = {code: action for action, code in _ACTION_CODES.items()}
_NUMBER_RE = re.compile(r"[1-9][0-9]{0,17}")
_SETTING_RE = re.compile(r"[a-z_]{1,20}=[a-z0-9_-]{1,20}")


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A decoded button: the action and what it acts on (a number, or `name=value`)."""

    action: str
    value: str

    @property
    def number(self) -> int:
        """The round id, session id or page number the press is about."""
        return int(self.value)


def encode_callback(action: str, value: int | str) -> str:
    """Return the callback data for an action, e.g. `a:42` (always <= 64 bytes)."""
    return f"{_ACTION_CODES[action]}:{value}"


def decode_callback(data: str | None) -> ButtonPress | None:
    """Return the press the data encodes, or None for anything forged or malformed."""
    if not data or len(data.encode()) > CALLBACK_DATA_LIMIT:
        return None
    code, _colon, value = data.partition(":")
    action = _CODE_ACTIONS.get(code)
    if action is None:
        return None
    pattern = _SETTING_RE if action == SETTING else _NUMBER_RE
    if not pattern.fullmatch(value):
        return None
    return ButtonPress(action, value)


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
    "• Buttons on older rounds still work: they continue from that round. Replying to a round's "
    "photo with text is an Edit of it.\n"
    "• In a group: <code>/new@bot …</code> or <code>@bot …</code> starts a session; everyone "
    "can steer it unless /settings says otherwise.\n\n"
    "/history lists this chat's sessions, /gallery sends a contact sheet, /settings picks the "
    "format, quality and critique language, /cancel stops a running round or autopilot, "
    "/usage shows today's rounds and their estimated cost, /help shows this."
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
EDIT_PROMPT_GROUP = EDIT_PROMPT + "\n({who}reply to this message with your prompt.)"
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
    refine_errors.NotYourSession: "In this chat only the person who started a session steers it.",
    refine_errors.NotChatAdmin: "Only the group's admins can change its settings.",
    refine_errors.NothingToShow: "Nothing to show yet: start a session with /new.",
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
    "internal": "Something went wrong on the bot's side. Your images are safe; try again.",
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


STOP_NOT_SENT = "The full-resolution image didn't go through. Press ⏹ Stop again to get it."


def stop_caption(round: RoundRecord, round_count: int) -> str:
    """Return the one-line summary sent with the final full-resolution image."""
    rounds = "1 round" if round_count == 1 else f"{round_count} rounds"
    prefix = f"⏹ Done after {rounds}. Kept round {round.number}. Final prompt: "
    budget = CAPTION_LIMIT - len(prefix)
    return escape(prefix) + f"<i>{escape(shorten(round.prompt, budget))}</i>"


def edit_prompt_text(
    next_number: int, suggestion: str, group: bool, asked_by: Actor | None = None
) -> str:
    """Return the message asking for the user's own prompt, with the suggestion to copy.

    In groups it names who pressed Edit (`asked_by`, a mention): Telegram opens the reply
    field only for users a selective force-reply mentions.
    """
    template = EDIT_PROMPT_GROUP if group else EDIT_PROMPT
    who = ""
    if asked_by is not None and asked_by.user_id > 0:  # not an anonymous admin's group
        who = f'<a href="tg://user?id={asked_by.user_id}">{escape(asked_by.name)}</a>, '
    fixed = visible_length(template.format(next_number=next_number, suggestion="", who=who))
    return template.format(
        next_number=next_number,
        suggestion=escape(shorten(suggestion, TEXT_LIMIT - fixed - 1)),
        who=who,
    )


# --- history ----------------------------------------------------------------------------------

_STATUS_ICONS = {
    RoundStatus.DONE: "✓",
    RoundStatus.FAILED: "⚠️",
    RoundStatus.CANCELLED: "⏹",
}


HISTORY_PAGE_SIZE = 5


def _date(iso: str) -> str:
    return iso[:16].replace("T", " ")


def history_page_text(summaries: list[SessionSummary], page: int, total: int) -> str:
    """Return one page of the chat's sessions: brief, rounds, best score, status, date."""
    if not summaries:
        return NO_HISTORY
    pages = -(-total // HISTORY_PAGE_SIZE)
    lines = [f"<b>Sessions</b> · page {page + 1} of {pages} · choose one to see its rounds"]
    for summary in summaries:
        session = summary.session
        best = f"best {summary.best_score}/10" if summary.best_score is not None else "no score"
        lines.append(
            f"\n<b>#{session.id}</b> <i>{escape(shorten(session.brief, 100))}</i>\n"
            f"{summary.rounds} rounds · {best} · {session.status} · {_date(session.created_at)}"
        )
    return "\n".join(lines)


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
    """Return a session's rounds (prompt, score, time, status); branches show their parent."""
    numbers = {r.id: r.number for r in rounds}
    lines = [
        f"<b>Session #{session.id}</b> · {session.status} · {_date(session.created_at)}",
        f"<i>{escape(shorten(session.brief, 200))}</i>",
        "",
    ]
    for r in rounds:
        score = f"{r.score}/10" if r.score is not None else "-"
        icon = _STATUS_ICONS.get(r.status, "⏳")
        parent = numbers.get(r.parent_round_id) if r.parent_round_id else None
        branch = f" ← R{parent}" if parent is not None and parent != r.number - 1 else ""
        kept = " ⭐ kept" if session.chosen_round_id == r.id else ""
        lines.append(
            f"{icon} <b>R{r.number}</b>{branch} · {score} · {_date(r.created_at)[5:]} · "
            f"{r.status}{kept}\n    {escape(shorten(r.prompt, 160))}"
        )
    text = "\n".join(lines)
    while visible_length(text) > TEXT_LIMIT and len(lines) > 4:
        del lines[3]  # oldest rounds first
        text = "\n".join(lines)
    return text


def session_keyboard(session: SessionRecord) -> InlineKeyboardMarkup:
    """Return the contact-sheet and back-to-history buttons of a session view."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "🖼 Contact sheet", callback_data=encode_callback(GALLERY, session.id)
                ),
                InlineKeyboardButton("◀ Sessions", callback_data=encode_callback(HISTORY, 1)),
            ]
        ]
    )


def gallery_caption(sheet: ContactSheet) -> str:
    return (
        f"🖼 Session #{sheet.session.id}: {sheet.tiles} images · "
        f"<i>{escape(shorten(sheet.session.brief, 200))}</i>"
    )


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


# --- settings ---------------------------------------------------------------------------------

_LANGUAGES = {
    "default": "Auto",
    "en": "English",
    "es": "Español",
    "pt": "Português",
    "fr": "Français",
    "de": "Deutsch",
    "it": "Italiano",
    "hi": "हिन्दी",
    "ru": "Русский",
    "ar": "العربية",
    "id": "Indonesia",
    "tr": "Türkçe",
}
_QUALITIES = {"default": "Default", "low": "Low", "medium": "Medium", "high": "High"}
_POLICIES = {"anyone": "Anyone in the chat", "starter": "Only who started it"}


def settings_text(settings: ChatSettings, default_format: str, group: bool) -> str:
    """Return the /settings message: the chat's current choices."""
    language = _LANGUAGES.get(settings.language or "default", settings.language or "")
    lines = [
        "⚙️ <b>Settings for this chat</b> (they apply from the next round)",
        f"Format: {FORMATS[settings.image_format or default_format]}",
        f"Quality: {_QUALITIES[settings.quality or 'default']} (OpenAI image models)",
        "Critique language: "
        + ("the language of whoever asks" if settings.language is None else language),
    ]
    if group:
        lines.append(f"Who may press the buttons: {_POLICIES[settings.press_policy]}")
    return "\n".join(lines)


def settings_keyboard(
    settings: ChatSettings, default_format: str, group: bool
) -> InlineKeyboardMarkup:
    """Return the settings menu: one row (or two) per setting, the current choice ticked."""

    def buttons(name: str, labels: dict[str, str], current: str) -> list[InlineKeyboardButton]:
        return [
            InlineKeyboardButton(
                ("✓ " if value == current else "") + label,
                callback_data=encode_callback(SETTING, f"{name}={value}"),
            )
            for value, label in labels.items()
            if value in CHOICES[name]
        ]

    formats = {name: label.split()[0] for name, label in FORMATS.items()}
    languages = buttons("language", _LANGUAGES, settings.language or "default")
    rows = [
        buttons("image_format", formats, settings.image_format or default_format),
        buttons("quality", _QUALITIES, settings.quality or "default"),
        languages[:6],
        languages[6:],
    ]
    if group:
        rows.append(buttons("press_policy", _POLICIES, settings.press_policy))
    return InlineKeyboardMarkup(rows)


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

"""What the chat says when something can't be done: domain refusals, spent quotas, failed
backends, unusable product photos, strangers at the gate, stale buttons and the bot's own
failures. Each is one clear sentence without technical detail."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.backends.errors import BackendError
from bot.refine import errors as refine_errors
from bot.refine.sizes import SizeCheck
from bot.refine.steps import UnusableSize
from bot.ui.text import plain_text

ACCESS_DENIED = (
    "Sorry, this bot is private. Your Telegram user id is <code>{user_id}</code>: ask the "
    "bot's admin to add it to ALLOWED_USER_IDS."
)
ACCESS_DENIED_TOAST = "Sorry, you are not allowed to use this bot."
INVALID_BUTTON = "This button is no longer valid."
SORRY = "Something went wrong on my side. Your images are safe; please try again."
"""The last resort: an update whose handler failed."""
STORE_BUSY = "My database is busy for a moment (a backup, most likely). Please try again shortly."
"""An update whose write waited too long for a lock another process held."""
BUSY = "⏳ Already working on a round of this session. Wait for it, or /cancel it."
PHOTO_DOWNLOAD_FAILED = "I couldn't download that photo from Telegram. Please send it again."

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

_SERVICE_NAMES = {"image": "The image service", "critic": "The critic"}
_BACKEND_MESSAGES = {
    "blocked": "{service} blocked this as unsafe content. Reword the prompt and try again.",
    "auth": "{service} rejected the bot's API key. The bot's operator needs to fix it.",
    "credits": "{service} has no credits left on the bot's account. Top up and try again.",
    "rate_limited": "{service} is busy (rate limited). Try again in a minute.",
    "unavailable": "{service} did not answer in time. Try again in a moment.",
    "rejected": "{service} refused this request. Try a simpler prompt.",
    "refused_setting": (
        "{service} refused this request because of one of the bot's settings for this model "
        "(such as the picture size), which the bot's operator needs to change: the server's "
        "reason is in the bot's log."
    ),
    "bad_output": "{service} sent back something unusable. Try again.",
    "no_edits": (
        "{service} can't edit pictures, so product photos can't be used with it. Ask the "
        "bot's owner to switch to an image server that supports edits."
    ),
    "internal": "Something went wrong on the bot's side. Your images are safe; try again.",
    "cut_off": (
        "{service}'s critique was cut off before it was complete. Try again; if it keeps "
        "happening, the bot's owner should raise the critic's token limit or context size."
    ),
    "not_stored": (
        "The image was drawn, but the bot could not save it (its disk is full or read-only), "
        "so it has no buttons. Try again once the bot's owner has made room."
    ),
}


def refusal_text(error: refine_errors.RefineError) -> str:
    """Return the user-facing sentence (HTML) for a domain refusal."""
    if isinstance(error, refine_errors.QuotaExceeded):
        return quota_text(error)
    if isinstance(error, refine_errors.AutopilotPlanInvalid):
        return (
            f"Autopilot runs {error.low} to {error.high} {error.what} at a time, "
            f"for example <code>/auto {min(3, error.high)}</code>."
        )
    return REFUSALS.get(type(error), "That didn't work. Try again.")


def refusal_toast(error: refine_errors.RefineError) -> str:
    """Return the refusal as a button's toast: plain text (toasts have no parse mode)."""
    return plain_text(refusal_text(error))


def quota_text(error: refine_errors.QuotaExceeded, now: datetime | None = None) -> str:
    """Return the quota message, saying when the quota resets (00:00 UTC) and how soon."""
    now = now or datetime.now(UTC)
    minutes = max(int((error.resets_at - now).total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    left = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    whose = "You have" if error.scope == "user" else "This chat has"
    return f"{whose} used today's {error.limit} rounds. The quota resets at 00:00 UTC, in {left}."


_SIZE_PROBLEMS = {"too_small": "too small", "too_thin": "too thin"}


def pixels(width: int, height: int) -> str:
    """Return a pixel size as the chat writes it: `640×480`."""
    return f"{width}×{height}"


def asked_text(asked: str) -> str:
    """Return a size or aspect ratio asked for ("1024x1024", "16:9") as the chat writes it."""
    return asked.replace("x", "×")


def size_refusal_text(check: SizeCheck) -> str:
    """Return the sentence (plain text) for a picture too small or too thin to use, naming
    its size and the size asked for."""
    problem = _SIZE_PROBLEMS.get(check.problem or "", "the wrong size")
    received = f"The image service sent back a {pixels(check.width, check.height)} picture"
    if check.asked is not None:
        received += f" instead of the {asked_text(check.asked.label)} asked for"
    return f"{received}: {problem} to use. Try again."


def backend_error_text(error: BackendError) -> str:
    """Return the user-facing sentence (plain text) for a backend failure."""
    if isinstance(error, UnusableSize):
        return size_refusal_text(error.check)
    service = _SERVICE_NAMES.get(error.service, "A service")
    return _BACKEND_MESSAGES.get(error.kind, "{service} failed. Try again.").format(service=service)


def photo_refusal_text(reason: str, max_upload_mb: float) -> str:
    """Return the sentence for a product photo that can't be used (`InvalidImage.reason`);
    an unknown reason reads as a damaged file."""
    template = _PHOTO_REFUSALS.get(reason, _PHOTO_REFUSALS["corrupt"])
    return template.format(max_mb=max_upload_mb)

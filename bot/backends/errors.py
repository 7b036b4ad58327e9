"""Typed errors every backend raises, so the domain and the chat never see a provider's own.

Each error names the service that failed ("image" or "critic") and keeps a short technical
detail for the logs; what the user reads is chosen by `kind` in bot/views.py.
"""

from __future__ import annotations

from typing import ClassVar

TRANSIENT_STATUSES = frozenset({408, 409})
"""HTTP statuses besides 429 and 5xx that mean "try again": request timeout and conflict (the
openai SDK retries both too). Once retries run out they read as Unavailable, not Rejected."""


class BackendError(Exception):
    """A failed call to an image or critic backend."""

    kind: ClassVar[str] = "error"

    def __init__(self, service: str, detail: str = "") -> None:
        super().__init__(
            f"{service}: {self.kind}: {detail}" if detail else f"{service}: {self.kind}"
        )
        self.service = service
        self.detail = detail


class ContentBlocked(BackendError):
    """The provider's safety system refused the prompt or the result. Never retried."""

    kind = "blocked"


class BadCredentials(BackendError):
    """The API key is missing, wrong, or not allowed to use this model."""

    kind = "auth"


class OutOfCredits(BackendError):
    """The account has no credits or quota left (402, insufficient_quota)."""

    kind = "credits"


class RateLimited(BackendError):
    """Still rate limited after the retries."""

    kind = "rate_limited"


class Unavailable(BackendError):
    """Timeouts, connection failures and 5xx, after the retries."""

    kind = "unavailable"


class Rejected(BackendError):
    """The provider refused the request's parameters (a 400/413/422 that is not moderation)."""

    kind = "rejected"


class SettingRefused(Rejected):
    """The image server refused a parameter the bot cannot drop (the size or model), or one it
    already dropped once: a setting for the operator to change, not the user's prompt."""

    kind = "refused_setting"


class BadOutput(BackendError):
    """The provider answered, but not with something usable (no image, invalid critique)."""

    kind = "bad_output"


class CutOff(BadOutput):
    """The critic's answer ended at its token limit before the critique was complete."""

    kind = "cut_off"


class Internal(BackendError):
    """Not the provider's doing: the bot itself failed (a bug, a full disk) during the step;
    the traceback is in the log."""

    kind = "internal"


class Interrupted(BackendError):
    """The call never finished: the bot stopped or restarted while it ran."""

    kind = "interrupted"


class EditsUnsupported(BackendError):
    """The image server has no edits endpoint (it answered 404 or 405 there, as a server that
    knows only /images/generations does), so neither an edit of an earlier round nor a photo
    brief can be drawn on it. Remembered for the process: later edits fail at once."""

    kind = "no_edits"


class NotStored(BackendError):
    """Not the provider's doing: the bot drew (and paid for) the image but could not store it
    (its disk is full or read-only); the image is shown all the same, with only a Retry."""

    kind = "not_stored"

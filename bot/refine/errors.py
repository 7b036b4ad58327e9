"""Why the domain refused a request. Each has a user-facing message in bot/views.py."""

from __future__ import annotations

from datetime import datetime


class RefineError(Exception):
    """A request the domain will not carry out, for a reason the user should be told."""


class EmptyBrief(RefineError):
    """The brief or revision has no text."""


class BriefTooLong(RefineError):
    """The brief or revision is longer than MAX_BRIEF_CHARS."""


class RoundNotFound(RefineError):
    """No such round in this chat (forged, or another chat's button)."""


class SessionBusy(RefineError):
    """A round of this session is already running."""


class SessionStopped(RefineError):
    """The session was stopped; its buttons no longer act."""


class RoundNotReady(RefineError):
    """The round has no finished image to continue from or to keep."""


class NotYourSession(RefineError):
    """The chat lets only the person who started a session steer it."""


class NotChatAdmin(RefineError):
    """Only the group's administrators may change its settings."""


class NothingToShow(RefineError):
    """No session (or no image in it) to show."""


class ImageExpired(RefineError):
    """The round's image file is gone (pruned by IMAGE_RETENTION_DAYS, or deleted)."""


class NoPendingEdit(RefineError):
    """A reply arrived that is not answering an edit prompt."""


class QuotaExceeded(RefineError):
    """The user or chat has used its rounds for today."""

    def __init__(self, scope: str, limit: int, resets_at: datetime) -> None:
        super().__init__(f"{scope} quota of {limit} rounds a day reached")
        self.scope = scope  # "user" or "chat"
        self.limit = limit
        self.resets_at = resets_at


class AudienceGone(RefineError):
    """The chat can no longer be written to (bot blocked or removed): stop paying for it."""


class ReferenceExpired(RefineError):
    """The session's product photo is gone (deleted), so no round can keep the product."""


class AutopilotPlanInvalid(RefineError):
    """The autopilot was asked for more (or fewer) rounds or drafts than it allows."""

    def __init__(self, what: str, low: int, high: int) -> None:
        super().__init__(f"{what} must be {low} to {high}")
        self.what = what  # "rounds" or "drafts"
        self.low = low
        self.high = high


class NothingToContinue(RefineError):
    """The scope has no finished round an autopilot could continue from."""

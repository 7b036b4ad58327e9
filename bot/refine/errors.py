"""Why the domain refused a request. Each has a user-facing message in bot/views.py."""

from __future__ import annotations


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


class NoPendingEdit(RefineError):
    """A reply arrived that is not answering an edit prompt."""

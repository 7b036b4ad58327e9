"""Who may use the bot: ALLOWED_USER_IDS, ALLOWED_CHAT_IDS and ADMIN_USER_IDS."""

from __future__ import annotations

from bot.config import Settings


def _contains(ids: frozenset[int] | None, value: int | None) -> bool:
    return value is not None and (ids is None or value in ids)


def is_admin(settings: Settings, user_id: int | None) -> bool:
    """Return whether the user is an admin (`*` makes everyone one)."""
    return _contains(settings.admin_user_ids, user_id)


def is_allowed(
    settings: Settings, user_id: int | None, chat_id: int | None, upgraded_from: int | None = None
) -> bool:
    """Return whether a request is allowed: its user is an admin or allowed, or its chat is
    (or, for a supergroup, the group it was `upgraded_from`)."""
    return (
        is_admin(settings, user_id)
        or _contains(settings.allowed_user_ids, user_id)
        or _contains(settings.allowed_chat_ids, chat_id)
        or _contains(settings.allowed_chat_ids, upgraded_from)
    )

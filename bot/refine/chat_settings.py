"""What a chat may choose in /settings, and how a choice is checked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.backends.formats import FORMATS
from storage.records import ChatSettings

DEFAULT = "default"
"""The stored None: use the bot's configured default (or, for language, the user's own)."""

CHOICES: dict[str, tuple[str, ...]] = {
    "image_format": tuple(FORMATS),
    "quality": (DEFAULT, "low", "medium", "high"),
    "language": (DEFAULT, "en", "es", "pt", "fr", "de", "it", "hi", "ru", "ar", "id", "tr"),
    "press_policy": ("anyone", "starter"),
    "marketplace": ("off", "on"),  # the campaign pack's Marketplace main image
}


class InvalidSetting(ValueError):
    """The setting or its value is not one of CHOICES (a forged button)."""


def with_choice(settings: ChatSettings, name: str, value: str) -> ChatSettings:
    """Return the settings with `name` set to `value`; raise InvalidSetting if not allowed."""
    if value not in CHOICES.get(name, ()):
        raise InvalidSetting(f"{name}={value}")
    change: dict[str, Any] = {name: None if value == DEFAULT else value}
    return replace(settings, **change)

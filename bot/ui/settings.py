"""The /settings menu: the chat's format, quality, critique language and (in groups) who may
press the buttons, one inline button per choice."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.backends.formats import FORMATS
from bot.refine.chat_settings import CHOICES
from bot.ui.callbacks import SETTING, encode_callback
from storage.records import ChatSettings

SAVED = "Saved: it applies from the next round."
"""A setting button's toast."""

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
_MARKETPLACE = {"off": "Marketplace off", "on": "Marketplace on"}


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
    marketplace = "with" if settings.marketplace == "on" else "without"
    lines.append(f"📐 All formats: {marketplace} a Marketplace image (white, square)")
    return "\n".join(lines)


def _choice_buttons(name: str, labels: dict[str, str], current: str) -> list[InlineKeyboardButton]:
    """Return one button per allowed value of the setting, the current one ticked."""
    return [
        InlineKeyboardButton(
            ("✓ " if value == current else "") + label,
            callback_data=encode_callback(SETTING, f"{name}={value}"),
        )
        for value, label in labels.items()
        if value in CHOICES[name]
    ]


def settings_keyboard(
    settings: ChatSettings, default_format: str, group: bool
) -> InlineKeyboardMarkup:
    """Return the settings menu: one row (or two) per setting, the current choice ticked."""
    formats = {name: label.split()[0] for name, label in FORMATS.items()}
    languages = _choice_buttons("language", _LANGUAGES, settings.language or "default")
    rows = [
        _choice_buttons("image_format", formats, settings.image_format or default_format),
        _choice_buttons("quality", _QUALITIES, settings.quality or "default"),
        languages[:6],
        languages[6:],
    ]
    if group:
        rows.append(_choice_buttons("press_policy", _POLICIES, settings.press_policy))
    rows.append(_choice_buttons("marketplace", _MARKETPLACE, settings.marketplace))
    return InlineKeyboardMarkup(rows)

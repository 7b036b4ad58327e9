"""Format presets (what a marketer picks) and what each backend needs for them."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS: dict[str, str] = {
    "square": "Square 1:1",
    "portrait": "Portrait 4:5",
    "story": "Story 9:16",
    "banner": "Banner 16:9",
}
"""Preset name -> label; the labels are what /settings shows."""

_STABILITY_ASPECT_RATIOS = {"square": "1:1", "portrait": "4:5", "story": "9:16", "banner": "16:9"}

# GPT image models from gpt-image-2 on take any WxH with both sides divisible by 16 and a
# ratio between 1:3 and 3:1, so every preset gets its exact shape.
_FLEXIBLE_SIZES = {
    "square": "1024x1024",
    "portrait": "1024x1280",
    "story": "864x1536",
    "banner": "1536x864",
}
# Other OpenAI-compatible models know only the three standard sizes: take the nearest.
_STANDARD_SIZES = {
    "square": "1024x1024",
    "portrait": "1024x1536",
    "story": "1024x1536",
    "banner": "1536x1024",
}
_FLEXIBLE_MODEL_PREFIXES = ("gpt-image-2",)


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """Per-round choices from the chat's settings."""

    image_format: str = "square"
    quality: str | None = None  # None: the backend's configured default


def openai_size(image_format: str, model: str) -> str:
    """Return the Images API `size` for the preset and model."""
    sizes = _FLEXIBLE_SIZES if model.startswith(_FLEXIBLE_MODEL_PREFIXES) else _STANDARD_SIZES
    return sizes.get(image_format, sizes["square"])


def stability_aspect_ratio(image_format: str) -> str:
    """Return Stability's `aspect_ratio` for the preset."""
    return _STABILITY_ASPECT_RATIOS.get(image_format, "1:1")

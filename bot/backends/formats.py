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

FREE_SIZE_MODELS = frozenset(
    {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
    }
)
"""The models that take any `WIDTHxHEIGHT`, exactly as the installed SDK names them (openai
3.60, types/image_generate_params.py and image_edit_params.py, `size`): "For `gpt-image-2`,
`gpt-image-2-2026-04-21`, `gpt-image-2.5-sunburst`, `gpt-image-2.5-sunburst-2026-09-08`,
`gpt-image-2.5-flare`, and `gpt-image-2.5-flare-2026-09-08`, arbitrary resolutions are
supported as `WIDTHxHEIGHT` strings, for example `1536x864`. Width and height must both be
divisible by 16 and the requested aspect ratio must be between 1:3 and 3:1." Every other model
(gpt-image-2.6-*, gpt-image-1.5, chatgpt-image-latest, self-hosted ones) gets a standard size:
"The standard sizes `1024x1024`, `1536x1024`, and `1024x1536` are supported by the GPT image
models". tests/test_image_answers.py reads the list back from the SDK's text."""

# Both sides divisible by 16, ratios within 1:3..3:1 and at most 3840x2160: each preset's
# exact shape.
_FREE_SIZES = {
    "square": "1024x1024",
    "portrait": "1024x1280",
    "story": "864x1536",
    "banner": "1536x864",
}
# The three standard sizes: the nearest to each preset.
_STANDARD_SIZES = {
    "square": "1024x1024",
    "portrait": "1024x1536",
    "story": "1024x1536",
    "banner": "1536x1024",
}


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """Per-round choices from the chat's settings."""

    image_format: str = "square"
    quality: str | None = None  # None: the backend's configured default


@dataclass(frozen=True, slots=True)
class SizeAsked:
    """The picture size a backend asked its server for: exactly `width` x `height` pixels
    (`exact`), or only that shape, at whatever pixel count the server draws it (Stability's
    aspect ratios, each drawn at its own native size). `label` is how the chat names it
    ("1024x1024", "16:9"); `tolerance` how far (relative) the answer's aspect ratio may be
    from the asked one and still be the shape asked for."""

    width: int
    height: int
    label: str
    exact: bool = True
    tolerance: float = 0.05


def openai_size_asked(size: str) -> SizeAsked | None:
    """Return the Images API `size` sent ("1024x1536") as what the answer should be; None for
    "auto" or anything else without an exact expectation."""
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        return None
    return SizeAsked(int(width), int(height), size)


def stability_size_asked(aspect_ratio: str) -> SizeAsked | None:
    """Return Stability's `aspect_ratio` sent ("16:9") as what the answer should be: that
    shape (its native sizes, such as 1344x768 for 16:9, are within 2 % of it), any pixel
    count; None for anything that is not `W:H`."""
    width, _, height = aspect_ratio.partition(":")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        return None
    return SizeAsked(int(width), int(height), aspect_ratio, exact=False)


def openai_size(image_format: str, model: str) -> str:
    """Return the Images API `size` for the preset and model: its exact shape for the models
    the SDK says take arbitrary sizes (`FREE_SIZE_MODELS`), else the nearest standard size."""
    sizes = _FREE_SIZES if model in FREE_SIZE_MODELS else _STANDARD_SIZES
    return sizes.get(image_format, sizes["square"])


def stability_aspect_ratio(image_format: str) -> str:
    """Return Stability's `aspect_ratio` for the preset."""
    return _STABILITY_ASPECT_RATIOS.get(image_format, "1:1")

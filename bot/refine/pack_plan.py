"""The campaign pack's plan, pure rules: which formats a kept image needs, and their cost.

A pack is the kept image in every platform preset it is not already in (Square 1:1,
Portrait 4:5, Story 9:16, Banner 16:9), plus a Marketplace main image (a white square) when
the chat turned it on in /settings. Each is delivered at its exact platform size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd

from bot.refine.pricing import estimate_image


@dataclass(frozen=True, slots=True)
class PackFormat:
    """One format of the pack: its name (stored), label (shown) and exact size."""

    name: str
    label: str
    width: int
    height: int

    @property
    def ratio(self) -> tuple[int, int]:
        """The format's aspect ratio, reduced (1080x1350 -> (4, 5))."""
        divisor = gcd(self.width, self.height)
        return self.width // divisor, self.height // divisor

    @property
    def size_text(self) -> str:
        return f"{self.width}×{self.height}"


PRESETS: tuple[PackFormat, ...] = (
    PackFormat("square", "Square 1:1", 1080, 1080),
    PackFormat("portrait", "Portrait 4:5", 1080, 1350),
    PackFormat("story", "Story 9:16", 1080, 1920),
    PackFormat("banner", "Banner 16:9", 1920, 1080),
)
MARKETPLACE = PackFormat("marketplace", "Marketplace", 2000, 2000)
FORMATS = {f.name: f for f in (*PRESETS, MARKETPLACE)}

RATIO_TOLERANCE = 0.02
"""How far (relative) an image's ratio may be from a preset's and still be in it."""

STORY_SAFE_TOP, STORY_SAFE_BOTTOM = 0.14, 0.20
"""The Story's overlay bands (Telegram's and Instagram's header and reply bar): key content
stays out of the top 14 % and the bottom 20 %."""

METHOD_OUTPAINT, METHOD_CROP, METHOD_EDIT = "outpaint", "crop", "edit"
"""How a format was made: extended, cropped (the labelled fallback), edited (Marketplace)."""


def format_named(name: str) -> PackFormat:
    """Return the format stored under `name`. Raises KeyError for an unknown one."""
    return FORMATS[name]


def preset_of(width: int, height: int) -> PackFormat | None:
    """Return the preset an image of this size already is (ratio within RATIO_TOLERANCE),
    or None."""
    for preset in PRESETS:
        rw, rh = preset.ratio
        if abs((width / height) / (rw / rh) - 1) <= RATIO_TOLERANCE:
            return preset
    return None


def pack_formats(width: int, height: int, *, marketplace: bool) -> list[PackFormat]:
    """Return the formats a kept image of this size needs: every preset but the one it is
    in, then Marketplace if the chat wants it."""
    own = preset_of(width, height)
    formats = [preset for preset in PRESETS if preset != own]
    return [*formats, MARKETPLACE] if marketplace else formats


@dataclass(frozen=True, slots=True)
class PackEstimate:
    """What making the formats costs: images paid for, estimated USD (None: some cannot be
    priced), and crops (free: the backend cannot extend pictures)."""

    images: int
    cost_usd: float | None
    crops: int


def estimate(
    formats: Sequence[PackFormat],
    *,
    outpaint_model: str,
    edit_model: str,
    can_outpaint: bool,
    can_edit: bool,
    quality: str | None,
) -> PackEstimate:
    """Return the estimated cost of making `formats` (one image per format; a format the
    backend cannot make is a free crop)."""
    images, crops, total, priced = 0, 0, 0.0, True
    for fmt in formats:
        paid = can_edit if fmt == MARKETPLACE else can_outpaint
        if not paid:
            crops += 1
            continue
        images += 1
        model = edit_model if fmt == MARKETPLACE else outpaint_model
        cost = estimate_image(model, width=fmt.width, height=fmt.height, quality=quality)
        if cost is None:
            priced = False
        else:
            total += cost
    return PackEstimate(images, total if priced else None, crops)

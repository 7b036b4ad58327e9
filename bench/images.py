"""The pictures the benchmark's image backend serves.

The fakes' own test picture is a clean drawing that PNG squeezes to ~50 KB at 1024x1024; a
real image model's 1024x1024 PNG weighs 1.2-2 MB. Every per-byte cost of the bot (hashing,
base64, uploads, decoding for the critic) and the critic-payload ratio depend on that, so the
benchmark serves a "photo": the same drawing with a fabric-like texture, fine grain and a small
printed label (the kind of detail the critic must still read), ~1.5 MB as PNG. It is rendered
once per size and format, deterministically, before any timing starts.
"""

from __future__ import annotations

import io
import random
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from tests.fakes.pngs import render_image

__all__ = ["IMAGE_KINDS", "photo_image", "renderer"]

IMAGE_KINDS = ("photo", "flat")
"""`photo`: the photo-like picture below; `flat`: the fakes' own clean test picture."""

_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@lru_cache(maxsize=8)
def _photo(width: int, height: int, seed: int = 7) -> Image.Image:
    # The fakes' drawing, softened like a lens would, as the base.
    with Image.open(io.BytesIO(render_image(width, height, "png"))) as drawn:
        base = drawn.convert("RGB").filter(ImageFilter.GaussianBlur(1.0))
    rng = random.Random(seed)
    # Low-frequency texture (fabric, paper) and fine grain, the same on every channel.
    small = (width // 4, height // 4)
    texture = Image.frombytes("L", small, rng.randbytes(small[0] * small[1]))
    texture = texture.resize((width, height), Image.Resampling.BICUBIC)
    texture = texture.point(lambda v: 128 + (v - 128) * 12 // 40)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    grain = grain.filter(ImageFilter.GaussianBlur(1.5))
    grain = grain.point(lambda v: round(128 + (v - 128) * 1.5))
    channels = [
        ImageChops.add(ImageChops.add(channel, texture, 1, -128), grain, 1, -128)
        for channel in base.split()
    ]
    photo = Image.merge("RGB", channels)
    # Small label text: what a critic must still be able to read.
    draw = ImageDraw.Draw(photo)
    size = max(10, min(width, height) // 64)
    draw.text(
        (width * 0.36, height * 0.485),
        "ORGANIC  250 ml  LOT 42",
        fill=(20, 20, 20),
        font=ImageFont.load_default(size=size),
    )
    return photo


@lru_cache(maxsize=16)
def photo_image(width: int, height: int, fmt: str = "png") -> bytes:
    """Return the photo-like picture of this size encoded as `fmt` (cached)."""
    pil_format = _FORMATS.get(fmt.lower())
    if pil_format is None:
        raise ValueError(f"unsupported image format {fmt!r}")
    out = io.BytesIO()
    image = _photo(width, height)
    if pil_format == "PNG":
        image.save(out, "PNG", compress_level=6)
    else:
        image.save(out, pil_format, quality=90)
    return out.getvalue()


def renderer(kind: str):  # type: ignore[no-untyped-def]
    """Return the `FakeOpenAI(render=...)` function for an image kind."""
    if kind == "photo":
        return photo_image
    if kind == "flat":
        return render_image
    raise ValueError(f"unknown image kind {kind!r}; use one of {IMAGE_KINDS}")

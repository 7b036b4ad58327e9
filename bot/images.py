"""Pillow work: check what a backend drew, and make the small JPEG the critic sees.

Everything here is blocking CPU work: call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 40_000_000
"""Larger images are refused rather than decoded (decompression-bomb guard)."""

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class InvalidImage(ValueError):
    """The bytes are not an image this bot can use."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime: str
    width: int
    height: int


def probe(data: bytes) -> ImageInfo:
    """Return the image's type and size after checking it decodes; raise InvalidImage if not."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in _MIME:
                raise InvalidImage(f"unsupported image format {image.format}")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImage(f"image too large ({width}x{height})")
            image.verify()
    except InvalidImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise InvalidImage(str(error) or "not an image") from error
    return ImageInfo(_MIME[image.format], width, height)


def critic_jpeg(data: bytes, max_side: int = 768, quality: int = 85) -> bytes:
    """Return a JPEG of the image whose long side is at most `max_side` pixels.

    Transparency is flattened onto white, so product cut-outs look as they would on a page.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (max_side, max_side))  # JPEG inputs decode at reduced scale
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            image = flat
        elif image.mode != "RGB":
            image = image.convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=False)
        return out.getvalue()


PREVIEW_MAX_SIDE = 2560
"""Telegram shows photos at most this large; anything bigger is sent as a preview."""


def telegram_preview(data: bytes, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """Return a JPEG Telegram accepts as a photo (long side <= max_side, well under 10 MB)."""
    return critic_jpeg(data, max_side=max_side, quality=90)

"""Pillow work: check what a backend drew, and make the small JPEG the critic sees.

Everything here is blocking CPU work: call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

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


CRITIC_JPEG_QUALITY = 80
"""Enough for labels and small text at 768 px; about a tenth of the PNG's bytes."""


def prepare(data: bytes, max_side: int = 768) -> tuple[ImageInfo, bytes]:
    """Check a drawn image and make the critic's JPEG from it, decoding it only once.

    Returns the image's type and size, and a JPEG whose long side is at most `max_side`.
    Raises InvalidImage for anything but one still PNG, JPEG or WebP of at most MAX_PIXELS
    that decodes completely.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in _MIME:
                raise InvalidImage(f"unsupported image format {image.format}")
            if getattr(image, "n_frames", 1) > 1:
                raise InvalidImage("animated image")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidImage(f"image too large ({width}x{height})")
            info = ImageInfo(_MIME[image.format], width, height)
            return info, _jpeg(image, max_side, CRITIC_JPEG_QUALITY)
    except InvalidImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise InvalidImage(str(error) or "not an image") from error


def critic_jpeg(data: bytes, max_side: int = 768, quality: int = CRITIC_JPEG_QUALITY) -> bytes:
    """Return a JPEG of the image whose long side is at most `max_side` pixels."""
    with Image.open(io.BytesIO(data)) as image:
        return _jpeg(image, max_side, quality)


def _jpeg(image: Image.Image, max_side: int, quality: int) -> bytes:
    """Encode an open image as a JPEG of at most max_side; transparency goes onto white, so
    product cut-outs look as they would on a page."""
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


# --- contact sheets --------------------------------------------------------------------------

SHEET_TILE = 360
SHEET_LABEL = 56
SHEET_GAP = 12
SHEET_COLUMNS = 3
SHEET_MAX_TILES = 30
SHEET_BACKGROUND = (245, 245, 245)
_CHOSEN = (212, 160, 23)


@dataclass(frozen=True, slots=True)
class SheetTile:
    """One round on a contact sheet; `image` is None when its file was pruned."""

    image: bytes | None
    label: str
    chosen: bool = False


def sheet_size(tiles: int) -> tuple[int, int]:
    """Return the (width, height) of a contact sheet with this many tiles."""
    columns = max(1, min(SHEET_COLUMNS, tiles))
    rows = max(1, -(-tiles // columns))
    return (
        columns * (SHEET_TILE + SHEET_GAP) + SHEET_GAP,
        rows * (SHEET_TILE + SHEET_LABEL + SHEET_GAP) + SHEET_GAP,
    )


def sheet_tile_origin(index: int, tiles: int) -> tuple[int, int]:
    """Return the top-left pixel of tile `index` (its image area) on a sheet of `tiles`."""
    columns = max(1, min(SHEET_COLUMNS, tiles))
    row, column = divmod(index, columns)
    return (
        SHEET_GAP + column * (SHEET_TILE + SHEET_GAP),
        SHEET_GAP + row * (SHEET_TILE + SHEET_LABEL + SHEET_GAP),
    )


def contact_sheet(tiles: list[SheetTile]) -> bytes:
    """Return a PNG grid of the tiles, three to a row, each labelled; the kept one framed.

    Labels are large enough to read on a phone. At most SHEET_MAX_TILES (the last ones).
    """
    tiles = tiles[-SHEET_MAX_TILES:]
    sheet = Image.new("RGB", sheet_size(len(tiles)), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=30)
    for index, tile in enumerate(tiles):
        x, y = sheet_tile_origin(index, len(tiles))
        sheet.paste(_tile_image(tile.image), (x, y))
        if tile.chosen:
            draw.rectangle(
                (x - 6, y - 6, x + SHEET_TILE + 5, y + SHEET_TILE + 5), outline=_CHOSEN, width=6
            )
        label = tile.label + ("  (kept)" if tile.chosen else "")  # the bundled font has no ★
        draw.text((x + 4, y + SHEET_TILE + 10), label, fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=False)
    return out.getvalue()


def _tile_image(data: bytes | None) -> Image.Image:
    tile = Image.new("RGB", (SHEET_TILE, SHEET_TILE), (225, 225, 225))
    if data is None:
        ImageDraw.Draw(tile).text(
            (24, SHEET_TILE // 2 - 16),
            "image deleted",
            fill=(110, 110, 110),
            font=ImageFont.load_default(size=28),
        )
        return tile
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (SHEET_TILE, SHEET_TILE))
        image = image.convert("RGB")
        image.thumbnail((SHEET_TILE, SHEET_TILE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        tile.paste(image, ((SHEET_TILE - image.width) // 2, (SHEET_TILE - image.height) // 2))
    return tile

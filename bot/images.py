"""Pillow work: check what a backend drew, check and normalise the product photos users send,
and make the small JPEG the critic sees.

Everything here is blocking CPU work: call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import simplejpeg
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()  # HEIC/HEIF photos from iPhones

MAX_PIXELS = 40_000_000
"""Larger images are refused rather than decoded (decompression-bomb guard)."""

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class InvalidImage(ValueError):
    """The bytes are not an image this bot can use.

    `reason` says why, for the user's message: "corrupt", "unsupported", "file_too_big",
    "too_many_pixels" (a decompression bomb, or simply too large), "animated", "too_small"
    or "bad_shape".
    """

    def __init__(self, message: str = "not an image", reason: str = "corrupt") -> None:
        super().__init__(message)
        self.reason = reason


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
    scaled = _scaled_jpeg(data, max_side, CRITIC_JPEG_QUALITY)
    if scaled is not None:
        return scaled
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in _MIME:
                raise InvalidImage(f"unsupported image format {image.format}", "unsupported")
            if getattr(image, "n_frames", 1) > 1:
                raise InvalidImage("animated image", "animated")
            width, height = image.size
            _check_pixels(width, height)
            info = ImageInfo(_MIME[image.format], width, height)
            return info, _jpeg(image, max_side, CRITIC_JPEG_QUALITY)
    except InvalidImage:
        raise
    # ValueError: e.g. a PNG text chunk that inflates past Pillow's limit.
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as error:
        raise InvalidImage(str(error) or "not an image") from error


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise InvalidImage(f"image too large ({width}x{height})", "too_many_pixels")


def _scaled_jpeg(data: bytes, max_side: int, quality: int) -> tuple[ImageInfo, bytes] | None:
    """The fast path of `prepare` for JPEGs (the default output): libjpeg-turbo decodes
    straight to n/8 of the size inside its IDCT, so 1024 px arrives as 768 px with no
    resampling pass (a third of Pillow's decode + resize + encode). Returns None for
    anything it does not handle (not a JPEG, CMYK, no n/8 step near `max_side`, damaged
    data); Pillow then decides."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        raw_height, raw_width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    height, width = int(raw_height), int(raw_width)  # the stub says SupportsInt
    if colorspace not in ("YCbCr", "Gray"):
        return None
    _check_pixels(width, height)
    long_side = max(width, height)
    eighths = next((n for n in range(8, 0, -1) if math.ceil(long_side * n / 8) <= max_side), 0)
    if long_side * eighths / 8 < max_side * 3 / 4:
        return None  # the nearest step is too coarse (e.g. 4096 px to 512): resample instead
    try:
        pixels = simplejpeg.decode_jpeg(
            data,
            min_width=math.ceil(width * eighths / 8),
            min_height=math.ceil(height * eighths / 8),
        )
    except ValueError:  # damaged, or only a libjpeg warning: Pillow has the final word
        return None
    jpeg = simplejpeg.encode_jpeg(pixels, quality=quality, colorsubsampling="420")
    return ImageInfo("image/jpeg", width, height), jpeg


def critic_jpeg(data: bytes, max_side: int = 768, quality: int = CRITIC_JPEG_QUALITY) -> bytes:
    """Return a JPEG of the image whose long side is at most `max_side` pixels."""
    scaled = _scaled_jpeg(data, max_side, quality)
    if scaled is not None:
        return scaled[1]
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
    # BICUBIC, not LANCZOS: indistinguishable at this scale (labels and small text stay
    # sharp; ~43 dB PSNR) and a third cheaper, on the bot's most expensive step per round.
    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


PREVIEW_MAX_SIDE = 2560
"""Telegram shows photos at most this large; anything bigger is sent as a preview."""


def telegram_preview(data: bytes, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """Return a JPEG Telegram accepts as a photo (long side <= max_side, well under 10 MB)."""
    return critic_jpeg(data, max_side=max_side, quality=90)


# --- product photos users send -------------------------------------------------------------

REFERENCE_MAX_PIXELS = 50_000_000
"""Larger photos are refused before decoding (48-megapixel phone photos still pass)."""
REFERENCE_MAX_SIDE = 2048
"""Reference photos are stored and sent to the backends at most this large: image models work
below it, and it keeps uploads far under every provider's limit (Stability's is 10 MiB)."""
REFERENCE_MIN_SIDE = 64
REFERENCE_MAX_ASPECT = 2.5
"""Stability refuses input images narrower than 1:2.5; so does this bot, for every backend."""
_REFERENCE_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF"}


@dataclass(frozen=True, slots=True)
class ReferencePhoto:
    """A user's product photo, checked and normalised: an upright RGB JPEG."""

    data: bytes
    width: int
    height: int
    source_format: str


def prepare_reference(data: bytes, max_bytes: int) -> ReferencePhoto:
    """Check a photo a user sent and return it as an upright JPEG at most REFERENCE_MAX_SIDE.

    Accepts JPEG, PNG, WebP and HEIC/HEIF. Raises InvalidImage (with a `reason`) for files
    larger than `max_bytes`, anything that does not decode, animations, decompression bombs
    and photos too small or too narrow to work from. The pixel count is checked from the
    header before anything is decoded. EXIF orientation is applied; transparency is
    flattened onto white.
    """
    if len(data) > max_bytes:
        raise InvalidImage(f"file of {len(data)} bytes is over {max_bytes}", "file_too_big")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return _normalise_reference(image)
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImage(str(error), "too_many_pixels") from error
    except UnidentifiedImageError as error:
        raise InvalidImage(str(error) or "not an image", "unsupported") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImage(str(error) or "corrupt image", "corrupt") from error


def _normalise_reference(image: Image.Image) -> ReferencePhoto:
    source_format = image.format or ""
    # HEIF files may hold several images (bursts, live photos): the primary one is used.
    if source_format != "HEIF" and getattr(image, "is_animated", False):
        raise InvalidImage("animated image", "animated")
    if source_format not in _REFERENCE_FORMATS:
        raise InvalidImage(f"unsupported image format {source_format}", "unsupported")
    width, height = image.size
    if width * height > REFERENCE_MAX_PIXELS:
        raise InvalidImage(f"photo too large ({width}x{height})", "too_many_pixels")
    if min(width, height) < REFERENCE_MIN_SIDE:
        raise InvalidImage(f"photo too small ({width}x{height})", "too_small")
    if max(width, height) > REFERENCE_MAX_ASPECT * min(width, height):
        raise InvalidImage(f"photo too narrow ({width}x{height})", "bad_shape")
    image.draft("RGB", (REFERENCE_MAX_SIDE, REFERENCE_MAX_SIDE))  # JPEGs decode at reduced scale
    image.load()
    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    ):
        rgba = upright.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = upright.convert("RGB")
    rgb.thumbnail((REFERENCE_MAX_SIDE, REFERENCE_MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=92)
    return ReferencePhoto(out.getvalue(), rgb.width, rgb.height, source_format)


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
        rgb = image.convert("RGB")
        rgb.thumbnail((SHEET_TILE, SHEET_TILE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        tile.paste(rgb, ((SHEET_TILE - rgb.width) // 2, (SHEET_TILE - rgb.height) // 2))
    return tile

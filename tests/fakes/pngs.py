"""Deterministic test images for the fake backends, plus prompt tagging by byte surgery.

Rendering is cached per size (and format), so a fake answering many requests renders each
size once. A prompt is attached to an already-encoded image without re-encoding it:

* PNG: an ``iTXt`` chunk (UTF-8, uncompressed) with keyword ``prompt``, inserted before
  ``IEND``. Pillow exposes it as ``Image.open(...).text["prompt"]``.
* JPEG: a ``COM`` segment ``prompt=<utf-8 text>`` right after ``SOI`` (Pillow exposes it as
  ``Image.open(...).info["comment"]``).

`prompt_of` reads either back.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "blurred_image",
    "image_size",
    "prompt_of",
    "render_image",
    "render_png",
    "solid_png",
    "with_prompt",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
PROMPT_KEYWORD = b"prompt"
_JPEG_COMMENT_PREFIX = b"prompt="

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")


@lru_cache(maxsize=64)
def solid_png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    """Return a PNG of one flat colour (cached per size and colour)."""
    _check_size(width, height)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


@lru_cache(maxsize=8)
def _render(width: int, height: int) -> Image.Image:
    """Draw a deterministic 'product shot': gradient backdrop, shadow, box, disc and lines."""
    _check_size(width, height)
    ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
    red = ramp.rotate(90).resize((width, height))
    green = ramp.resize((width, height))
    blue = ramp.rotate(45, fillcolor=128).resize((width, height))
    image = Image.merge("RGB", (red, green, blue))

    draw = ImageDraw.Draw(image)
    short = min(width, height)
    cx, cy = width // 2, height // 2
    # A soft floor shadow under the "product".
    draw.ellipse(
        (cx - short * 0.35, cy + short * 0.22, cx + short * 0.35, cy + short * 0.34),
        fill=(60, 60, 70),
    )
    # The "product": a box with a lighter face and a label stripe.
    box = (cx - short * 0.22, cy - short * 0.25, cx + short * 0.22, cy + short * 0.28)
    draw.rectangle(box, fill=(30, 90, 160), outline=(240, 240, 240), width=max(2, short // 200))
    draw.rectangle(
        (box[0] + short * 0.04, cy - short * 0.05, box[2] - short * 0.04, cy + short * 0.05),
        fill=(245, 210, 60),
    )
    # A disc and a few diagonal lines so there is edge detail in every region.
    radius = short * 0.12
    ox, oy = width * 0.18, height * 0.2
    draw.ellipse((ox - radius, oy - radius, ox + radius, oy + radius), fill=(220, 70, 50))
    step = max(8, short // 24)
    for offset in range(0, width + height, step * 6):
        draw.line((offset, 0, offset - height, height), fill=(255, 255, 255), width=1)
    return image


def _encode(image: Image.Image, fmt: str) -> bytes:
    pil_format = _PIL_FORMATS.get(fmt.lower())
    if pil_format is None:
        raise ValueError(f"unsupported image format {fmt!r}")
    buffer = io.BytesIO()
    if pil_format == "JPEG":
        image.save(buffer, format="JPEG", quality=90)
    elif pil_format == "WEBP":
        image.save(buffer, format="WEBP", quality=80, method=0)
    else:
        image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


@lru_cache(maxsize=128)
def render_image(width: int, height: int, fmt: str = "png") -> bytes:
    """Return the deterministic test picture encoded as ``fmt`` (png, jpeg or webp), cached."""
    return _encode(_render(width, height), fmt)


def render_png(width: int, height: int) -> bytes:
    """Return the deterministic, non-trivial test picture as PNG (cached per size)."""
    return render_image(width, height, "png")


@lru_cache(maxsize=32)
def blurred_image(width: int, height: int, fmt: str = "png") -> bytes:
    """Return a heavily blurred version of the test picture (a content-filtered result)."""
    radius = max(8, min(width, height) // 20)
    return _encode(_render(width, height).filter(ImageFilter.GaussianBlur(radius)), fmt)


def image_size(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` of an encoded image."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# --- PNG chunk surgery ------------------------------------------------------------------


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into ``(type, data)`` chunks, checking the signature and every CRC."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos < len(png):
        if pos + 8 > len(png):
            raise ValueError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        crc_end = pos + 12 + length
        if crc_end > len(png):
            raise ValueError(f"truncated PNG chunk {kind!r}")
        (crc,) = struct.unpack(">I", png[pos + 8 + length : crc_end])
        if zlib.crc32(kind + data) != crc:
            raise ValueError(f"bad CRC in PNG chunk {kind!r}")
        chunks.append((kind, data))
        pos = crc_end
        if kind == b"IEND":
            break
    if not chunks or chunks[-1][0] != b"IEND":
        raise ValueError("PNG has no IEND chunk")
    return chunks


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _is_prompt_text_chunk(kind: bytes, data: bytes) -> bool:
    return kind in (b"iTXt", b"tEXt", b"zTXt") and data.split(b"\x00", 1)[0] == PROMPT_KEYWORD


def _itxt_text(data: bytes) -> str:
    """Decode an iTXt payload: keyword, flag, method, language, translated keyword, text."""
    _keyword, rest = data.split(b"\x00", 1)
    compressed, rest = rest[0], rest[2:]
    _language, rest = rest.split(b"\x00", 1)
    _translated, text = rest.split(b"\x00", 1)
    return (zlib.decompress(text) if compressed else text).decode("utf-8")


def _png_with_prompt(png: bytes, prompt: str) -> bytes:
    itxt = PROMPT_KEYWORD + b"\x00" + b"\x00\x00" + b"\x00" + b"\x00" + prompt.encode("utf-8")
    out = [PNG_SIGNATURE]
    for kind, data in _png_chunks(png):
        if _is_prompt_text_chunk(kind, data):
            continue  # replace an earlier prompt instead of stacking a second one
        if kind == b"IEND":
            out.append(_png_chunk(b"iTXt", itxt))
        out.append(_png_chunk(kind, data))
    return b"".join(out)


def _png_prompt(png: bytes) -> str | None:
    for kind, data in _png_chunks(png):
        if not _is_prompt_text_chunk(kind, data):
            continue
        if kind == b"iTXt":
            return _itxt_text(data)
        payload = data.split(b"\x00", 1)[1]
        if kind == b"zTXt":
            payload = zlib.decompress(payload[1:])
        return payload.decode("latin-1")
    return None


# --- JPEG segment surgery ---------------------------------------------------------------


def _jpeg_segments_before_scan(jpeg: bytes) -> list[tuple[int, int, int]]:
    """Return ``(marker, start, end)`` of every segment between SOI and SOS."""
    segments: list[tuple[int, int, int]] = []
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        segments.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:  # SOS: entropy-coded data follows
            break
        pos += 2 + length
    return segments


def _jpeg_with_prompt(jpeg: bytes, prompt: str) -> bytes:
    payload = _JPEG_COMMENT_PREFIX + prompt.encode("utf-8")
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("prompt too long for a JPEG comment segment")
    body = bytearray(jpeg[:2])
    body += b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    pos = 2
    for marker, start, end in _jpeg_segments_before_scan(jpeg):
        if marker == 0xFE and jpeg[start + 4 : end].startswith(_JPEG_COMMENT_PREFIX):
            body += jpeg[pos:start]
            pos = end
    body += jpeg[pos:]
    return bytes(body)


def _jpeg_prompt(jpeg: bytes) -> str | None:
    for marker, start, end in _jpeg_segments_before_scan(jpeg):
        data = jpeg[start + 4 : end]
        if marker == 0xFE and data.startswith(_JPEG_COMMENT_PREFIX):
            return data[len(_JPEG_COMMENT_PREFIX) :].decode("utf-8")
    return None


# --- public tagging API -----------------------------------------------------------------


def with_prompt(image: bytes, prompt: str) -> bytes:
    """Return ``image`` (PNG or JPEG) carrying ``prompt``; the pixels are not re-encoded.

    For PNG an ``iTXt`` chunk with keyword ``prompt`` goes right before ``IEND`` (an earlier
    prompt chunk is replaced). For JPEG a ``COM`` segment goes right after ``SOI``.
    """
    if image.startswith(PNG_SIGNATURE):
        return _png_with_prompt(image, prompt)
    if image.startswith(JPEG_SOI):
        return _jpeg_with_prompt(image, prompt)
    raise ValueError("with_prompt supports PNG and JPEG only")


def prompt_of(image: bytes) -> str | None:
    """Return the prompt stored by `with_prompt`, or None if there is none (or not PNG/JPEG)."""
    if image.startswith(PNG_SIGNATURE):
        return _png_prompt(image)
    if image.startswith(JPEG_SOI):
        return _jpeg_prompt(image)
    return None

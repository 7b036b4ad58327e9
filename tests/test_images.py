"""Product photos users send: checked and normalised before anything is paid for."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.images import InvalidImage, prepare_reference


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    photo = encoded(Image.new("RGB", (400, 300), "red"), "JPEG", exif=exif)
    reference = prepare_reference(photo, 10**7)
    assert (reference.width, reference.height) == (300, 400)
    assert Image.open(io.BytesIO(reference.data)).format == "JPEG"


def test_transparency_is_flattened_onto_white_and_big_photos_shrink() -> None:
    cut_out = Image.new("RGBA", (3000, 2000), (0, 0, 0, 0))
    cut_out.paste((200, 30, 90, 255), (1000, 600, 2000, 1400))
    reference = prepare_reference(encoded(cut_out, "PNG"), 10**8)
    assert (reference.width, reference.height) == (2048, 1365)
    image = Image.open(io.BytesIO(reference.data))
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (255, 255, 255)


def test_heic_from_an_iphone() -> None:
    reference = prepare_reference(encoded(Image.new("RGB", (640, 480), "blue"), "HEIF"), 10**7)
    assert reference.source_format == "HEIF" and (reference.width, reference.height) == (640, 480)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xd8" + bytes(5000), "file_too_big"),
        (b"not an image at all", "unsupported"),
        (encoded(Image.new("RGB", (64, 64)), "GIF"), "unsupported"),
        (encoded(Image.new("RGB", (200, 200)), "JPEG")[:400], "corrupt"),
    ],
)
def test_unusable_files(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidImage) as raised:
        prepare_reference(data, 4000)
    assert raised.value.reason == reason

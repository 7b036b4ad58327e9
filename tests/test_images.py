"""Product photos users send: checked and normalised before anything is paid for."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image, ImageChops

from bench.images import photo_image
from bot.images import InvalidImage, prepare, prepare_reference


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


# --- the critic's copy of a drawn image ----------------------------------------------------


def _psnr(a: Image.Image, b: Image.Image) -> float:
    histogram = ImageChops.difference(a, b).histogram()
    squared = sum(
        value * value * count for value, count in zip(list(range(256)) * 3, histogram, strict=True)
    )
    mse = squared / (a.width * a.height * 3)
    return 10 * math.log10(255**2 / mse) if mse else math.inf


@pytest.mark.parametrize(
    ("size", "fmt", "critic_size"),
    [
        ((1024, 1024), "JPEG", (768, 768)),  # libjpeg-turbo scales in the decoder (6/8)
        ((1536, 1024), "JPEG", (768, 512)),
        ((1024, 1792), "JPEG", (384, 672)),
        ((4096, 4096), "JPEG", (768, 768)),  # no n/8 step near 768: resampled instead
        ((1024, 1024), "PNG", (768, 768)),
        ((512, 512), "JPEG", (512, 512)),
    ],
)
def test_critic_copy_keeps_the_picture(
    size: tuple[int, int], fmt: str, critic_size: tuple[int, int]
) -> None:
    drawn = Image.open(io.BytesIO(photo_image(*size, "png"))).convert("RGB")
    info, jpeg = prepare(encoded(drawn, fmt, quality=95), max_side=768)
    assert (info.width, info.height) == size and info.mime == Image.MIME[fmt]
    copy = Image.open(io.BytesIO(jpeg))
    assert copy.format == "JPEG" and copy.size == critic_size
    expected = drawn.resize(critic_size, Image.Resampling.LANCZOS)
    # q80 JPEG of a grainy photo: 34 dB at 1024 px either way, a little less for big scalings.
    assert _psnr(copy.convert("RGB"), expected) > 28


def test_damaged_and_cmyk_jpegs() -> None:
    whole = encoded(Image.new("RGB", (1024, 1024), "teal"), "JPEG")
    with pytest.raises(InvalidImage) as raised:
        prepare(whole[: len(whole) // 2])
    assert raised.value.reason == "corrupt"
    _, jpeg = prepare(encoded(Image.new("CMYK", (1024, 1024), (0, 0, 0, 0)), "JPEG"))
    assert Image.open(io.BytesIO(jpeg)).size == (768, 768)

"""Pillow work of the campaign pack: the geometry of one format made from the kept image.

Every function here is blocking (decodes and encodes megapixel images): the domain calls them
through `asyncio.to_thread`.

- `margins`: how many pixels each side of the kept image must grow to reach a ratio.
- `canvas_and_mask`: the kept image placed on a canvas of an Images API size, and the mask
  that marks what to fill (OpenAI `images.edit`: "An additional image whose fully
  transparent areas (e.g. where alpha is zero) indicate where `image` should be edited ...
  Must be a valid PNG file, less than 4MB, and have the same dimensions as `image`", openai
  types/image_edit_params.py, `mask`), and `cut_frame`, the frame cut back out of the answer.
- `lock_product`: the original pixels blended back over their area with a feathered edge,
  so the product is identical to the kept image whatever the model repainted.
- `exact_size`: the final resize (and the few pixels of rounding cropped) to a platform size.
- `centre_crop`: the labelled fallback of a backend that cannot extend pictures.
- `on_white` and `marketplace_problem`: the Marketplace main image (a white square) and its
  mechanical check.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageOps

JPEG_QUALITY = 95
"""The delivered formats' JPEG quality: visually lossless, a fraction of a PNG's size."""
WHITE = 250
"""Marketplace: the least value of each RGB channel a border pixel may have."""
BORDER = 0.03
"""Marketplace: the border band checked for white, as a fraction of the side."""
WHITE_SHARE = 0.995
"""Marketplace: the share of the border band's pixels that must be white (JPEG noise)."""
FILL = 0.75
"""Marketplace: the product's longer side must span at least this share of the frame."""


@dataclass(frozen=True, slots=True)
class Margins:
    """Pixels to add on each side of an image (Stability's outpaint `left/right/up/down`)."""

    left: int
    right: int
    up: int
    down: int

    def framed(self, width: int, height: int) -> tuple[int, int]:
        """Return the size of a `width` x `height` image with the margins added."""
        return width + self.left + self.right, height + self.up + self.down

    @property
    def any(self) -> bool:
        return any((self.left, self.right, self.up, self.down))


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGB")


def size_of(data: bytes) -> tuple[int, int]:
    """Return the image's (width, height)."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def jpeg(image: Image.Image) -> bytes:
    """Return the image as a JPEG of JPEG_QUALITY."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def margins(width: int, height: int, ratio: tuple[int, int]) -> Margins:
    """Return the margins that take a `width` x `height` image to the ratio `(w, h)` by
    growing one axis only, split evenly between its two sides."""
    rw, rh = ratio
    if width * rh < height * rw:  # too narrow: grow sideways
        extra = round(height * rw / rh) - width
        return Margins(extra // 2, extra - extra // 2, 0, 0)
    extra = round(width * rh / rw) - height
    return Margins(0, 0, extra // 2, extra - extra // 2)


def _fit(outer: tuple[int, int], ratio: tuple[int, int]) -> tuple[int, int, int, int]:
    """Return the largest box of `ratio` centred in a box of size `outer` (left, top, right,
    bottom)."""
    ow, oh = outer
    rw, rh = ratio
    if ow * rh > oh * rw:
        w, h = round(oh * rw / rh), oh
    else:
        w, h = ow, round(ow * rh / rw)
    left, top = (ow - w) // 2, (oh - h) // 2
    return left, top, left + w, top + h


@dataclass(frozen=True, slots=True)
class Canvas:
    """The kept image on an API canvas: the PNGs sent and where the frame and image sit."""

    image_png: bytes
    mask_png: bytes
    frame: tuple[int, int, int, int]  # the target-ratio frame inside the canvas
    size: tuple[int, int]


def canvas_and_mask(data: bytes, extra: Margins, canvas: tuple[int, int]) -> Canvas:
    """Return the image placed (scaled) where `extra` puts it inside the largest frame of
    the framed ratio that fits a canvas of size `canvas`, the rest transparent, and the mask
    (alpha 0: to fill; opaque: the image), both PNGs of the canvas's size."""
    source = _open(data)
    framed = extra.framed(*source.size)
    frame = _fit(canvas, framed)
    scale = (frame[2] - frame[0]) / framed[0]
    box_left = frame[0] + round(extra.left * scale)
    box_top = frame[1] + round(extra.up * scale)
    placed = source.resize(
        (round(source.width * scale), round(source.height * scale)), Image.Resampling.LANCZOS
    )
    picture = Image.new("RGBA", canvas, (0, 0, 0, 0))
    picture.paste(placed, (box_left, box_top))
    mask = Image.new("RGBA", canvas, (0, 0, 0, 0))
    mask.paste(
        (255, 255, 255, 255), (box_left, box_top, box_left + placed.width, box_top + placed.height)
    )
    return Canvas(_png(picture), _png(mask), frame, canvas)


def cut_frame(answer: bytes, canvas: Canvas) -> bytes:
    """Return the frame cut out of the model's answer (scaled to the canvas first if the
    server answered another size), as a PNG."""
    image = _open(answer)
    if image.size != canvas.size:
        image = image.resize(canvas.size, Image.Resampling.LANCZOS)
    return _png(image.crop(canvas.frame))


def lock_product(result: bytes, original: bytes, extra: Margins) -> Image.Image:
    """Return `result` (the kept image extended by `extra`, at any scale) with the original
    pixels blended back over their area: opaque inside, fading over a feathered edge on each
    side that was extended (a side with no margin is the frame's edge: no seam there)."""
    image = _open(result)
    source = _open(original)
    framed = extra.framed(*source.size)
    scale_x, scale_y = image.width / framed[0], image.height / framed[1]
    box = (
        round(extra.left * scale_x),
        round(extra.up * scale_y),
        round((extra.left + source.width) * scale_x),
        round((extra.up + source.height) * scale_y),
    )
    placed = source.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.LANCZOS)
    feather = max(2, round(min(placed.size) * 0.02))
    alpha = Image.new("L", placed.size, 0)
    inset = (
        feather if extra.left else -feather * 3,
        feather if extra.up else -feather * 3,
        placed.width - 1 - (feather if extra.right else -feather * 3),
        placed.height - 1 - (feather if extra.down else -feather * 3),
    )
    ImageDraw.Draw(alpha).rectangle(inset, fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(feather / 2))
    image.paste(placed, box[:2], alpha)
    return image


def exact_size(image: Image.Image | bytes, width: int, height: int) -> bytes:
    """Return the image resized to exactly `width` x `height` (the few pixels a rounded
    ratio leaves cropped from the centre), as a JPEG."""
    picture = _open(image) if isinstance(image, bytes) else image
    return jpeg(ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS))


def centre_crop(data: bytes, width: int, height: int) -> bytes:
    """Return the largest centre crop of the image with the ratio of `width` x `height`,
    resized to exactly that size, as a JPEG (the fallback when nothing can extend it)."""
    return exact_size(_open(data), width, height)


def on_white(data: bytes, side: int) -> bytes:
    """Return the image scaled into a `side` x `side` square, any space left padded white,
    as a JPEG (the Marketplace main image's frame)."""
    picture = ImageOps.pad(_open(data), (side, side), Image.Resampling.LANCZOS, color="white")
    return jpeg(picture)


def marketplace_problem(data: bytes) -> str | None:
    """Return what keeps the image from being a marketplace main image, or None if it is
    one: the border band (BORDER of each side) must be white (every channel >= WHITE, for
    WHITE_SHARE of its pixels) and the product (what is not white) must span FILL of the
    frame along its longer side."""
    image = _open(data)
    width, height = image.size
    band = max(1, round(min(width, height) * BORDER))
    dark = image.point(lambda value: 255 if value < WHITE else 0).convert("L")
    # `convert("L")` mixes channels; any non-zero value means one channel was below WHITE.
    dark = dark.point(lambda value: 255 if value else 0)
    inner = Image.new("L", image.size, 0)
    ImageDraw.Draw(inner).rectangle((band, band, width - 1 - band, height - 1 - band), fill=255)
    border_dark = sum(
        count
        for value, count in enumerate(
            Image.composite(Image.new("L", image.size, 0), dark, inner).histogram()
        )
        if value
    )
    border_pixels = width * height - (width - 2 * band) * (height - 2 * band)
    if border_dark > border_pixels * (1 - WHITE_SHARE):
        return f"the border is not pure white ({border_dark * 100 // border_pixels}% of it is not)"
    box = dark.getbbox()
    if box is None:
        return "the frame is empty: no product on the white background"
    spans = max((box[2] - box[0]) / width, (box[3] - box[1]) / height)
    if spans < FILL:
        share, least = round(spans * 100), round(FILL * 100)
        return f"the product fills only {share}% of the frame (at least {least}%)"
    return None

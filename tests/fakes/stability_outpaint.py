"""The fake Stability server's ``POST /v2beta/stable-image/edit/outpaint`` (route ``outpaint``).

Its request follows Stability's REST v2beta API reference, "Edit -> Outpaint"
(https://platform.stability.ai/docs/api-reference#tag/Edit/paths/~1v2beta~1stable-image~1edit~1outpaint/post,
and the same schema mirrored in Stability's published OpenAPI document): multipart/form-data
with a required ``image`` (jpeg, png or webp; "Every side must be at least 64 pixels",
"Total pixel count must be between 4,096 and 9,437,184 pixels", aspect ratio "between 1:2.5
and 2.5:1"); ``left``, ``right``, ``up``, ``down`` integers ``[0 .. 2000]`` (default 0; at
least one above 0); ``creativity`` number ``[0 .. 1]``; ``prompt`` up to 10000 characters;
``output_format`` jpeg, png or webp; ``seed``. The answer is the image with the margins added
and, as the real service does ("the original image is preserved"), the original pixels
untouched where they were; the new area is a flat fill (`FILL`). Errors are Stability's
``{id, name, errors}`` bodies; faults are queued on the key ``outpaint``
(`FakeStability.fail_next_outpaint`). Accepted requests are kept as `OutpaintCall`s.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.faults import RECORD

if TYPE_CHECKING:
    from tests.fakes.stability_server import FakeStability

OUTPAINT_FAULT_KEY = "outpaint"
MAX_MARGIN = 2000
MIN_SIDE, MIN_PIXELS, MAX_PIXELS = 64, 4_096, 9_437_184
MAX_RATIO = 2.5
FORMATS = ("jpeg", "png", "webp")
FILL = (120, 160, 200)
"""The colour the fake paints the new area with."""


@dataclass(frozen=True)
class OutpaintCall:
    """One accepted outpaint request: the input image's bytes and size, and the margins."""

    image: bytes
    width: int
    height: int
    left: int
    right: int
    up: int
    down: int
    prompt: str
    creativity: float
    output_format: str


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _int(value: str | None, name: str) -> int:
    if value is None or value == "":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise _Refused(f"{name}: must be an integer") from None
    if not 0 <= number <= MAX_MARGIN:
        raise _Refused(f"{name}: must be between 0 and {MAX_MARGIN}")
    return number


def _decoded(blob: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise _Refused("image: could not be decoded as an image") from None


def _check_image(image: Image.Image) -> None:
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise _Refused(f"image: every side must be at least {MIN_SIDE} pixels")
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        raise _Refused(f"image: total pixel count must be between {MIN_PIXELS} and {MAX_PIXELS}")
    if max(width / height, height / width) > MAX_RATIO:
        raise _Refused("image: aspect ratio must be between 1:2.5 and 2.5:1")


def _extended(image: Image.Image, call: OutpaintCall) -> bytes:
    canvas = Image.new(
        "RGB", (image.width + call.left + call.right, image.height + call.up + call.down), FILL
    )
    canvas.paste(image, (call.left, call.up))
    buffer = io.BytesIO()
    canvas.save(buffer, format={"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[call.output_format])
    return buffer.getvalue()


async def outpaint(fake: FakeStability, request: web.Request) -> web.StreamResponse:
    """Answer one outpaint request as the real endpoint does (see the module docstring)."""
    record = request[RECORD]
    is_multipart = await fake.read_multipart(request, record)
    fault = await fake.apply_fault(request, OUTPAINT_FAULT_KEY)
    if fault is not None:
        return fault
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or key.strip() != fake.api_key:
        return fake._error(401, "unauthorized", "authorization: invalid or missing header value")
    if not is_multipart:
        return fake._error(400, "bad_request", "content-type: must be multipart/form-data")
    value = fake.form_value
    try:
        blobs = record.files.get("image")
        if not blobs:
            raise _Refused("image: required")
        image = await asyncio.to_thread(_decoded, blobs[0])
        _check_image(image)
        sides = [_int(value(record, side), side) for side in ("left", "right", "up", "down")]
        if not any(sides):
            raise _Refused("left, right, up, down: at least one must be greater than 0")
        creativity_text = value(record, "creativity")
        creativity = 0.5 if creativity_text in (None, "") else float(creativity_text)
        if not 0 <= creativity <= 1:
            raise _Refused("creativity: must be between 0 and 1")
        prompt = value(record, "prompt") or ""
        if len(prompt) > 10_000:
            raise _Refused("prompt: must be at most 10000 characters")
        output_format = value(record, "output_format") or "png"
        if output_format not in FORMATS:
            raise _Refused(f"output_format: must be one of {', '.join(FORMATS)}")
    except (_Refused, ValueError) as error:
        message = error.message if isinstance(error, _Refused) else "creativity: must be a number"
        return fake._error(400, "bad_request", message)
    call = OutpaintCall(
        blobs[0], image.width, image.height, *sides, prompt, creativity, output_format
    )
    fake.outpaint_calls.append(call)
    await fake.finish_latency(record, fake.latency)
    if fake._filter_next > 0:
        fake._filter_next -= 1
        return web.Response(
            body=b"",
            content_type=f"image/{output_format}",
            headers={"finish-reason": "CONTENT_FILTERED"},
        )
    picture = await asyncio.to_thread(_extended, image, call)
    return web.Response(
        body=picture,
        content_type=f"image/{output_format}",
        headers={"finish-reason": "SUCCESS", "seed": "1"},
    )

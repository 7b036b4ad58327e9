"""Outpainting through Stability AI's v2beta `stable-image/edit/outpaint`.

The endpoint takes the picture and how many pixels to add on each side and keeps the
original pixels as they are. Its limits (Stability's REST v2beta API reference, "Edit ->
Outpaint", https://platform.stability.ai/docs/api-reference#tag/Edit/paths/~1v2beta~1stable-image~1edit~1outpaint/post):
`left`, `right`, `up`, `down` integers 0..2000 (at least one above 0); `creativity` 0..1
(default 0.5); `prompt` up to 10000 characters; `output_format` jpeg, png or webp; the image
at least 64 pixels a side, 4,096 to 9,437,184 pixels, aspect ratio within 1:2.5 .. 2.5:1.
Margins beyond 2000 are scaled down with the image first (the frame keeps its ratio).
It costs 4 credits a call (pricing.STABILITY_OUTPAINT_CREDITS).

Requests go over the generator's httpx client settings (one client per process), with the
generate endpoints' retries and error mapping (`stability.post_image`).
"""

from __future__ import annotations

import asyncio
import io
import logging

import httpx
from PIL import Image

from bot.backends.base import GeneratedImage, deadline, image_mime
from bot.backends.errors import BadOutput, ContentBlocked
from bot.backends.outpaint import OutpaintRequest
from bot.backends.stability import post_image
from bot.pack_images import Margins

log = logging.getLogger(__name__)

MAX_MARGIN = 2000
"""The most pixels the endpoint adds on one side."""
CREATIVITY = 0.35
"""Low: the new area continues the picture rather than inventing a new scene."""
MODEL = "stable-image-outpaint"
"""The usage table's model name of an outpaint call (priced per call)."""


def fitted(image: bytes, extra: Margins) -> tuple[bytes, Margins]:
    """Return the image and margins to send: as they are when every margin is within
    MAX_MARGIN, else both scaled down (the frame's ratio kept). Blocking (Pillow)."""
    largest = max(extra.left, extra.right, extra.up, extra.down)
    if largest <= MAX_MARGIN:
        return image, extra
    scale = MAX_MARGIN / largest
    with Image.open(io.BytesIO(image)) as picture:
        small = picture.convert("RGB").resize(
            (max(64, round(picture.width * scale)), max(64, round(picture.height * scale)))
        )
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    shrunk = Margins(
        *(
            min(MAX_MARGIN, round(side * scale))
            for side in (extra.left, extra.right, extra.up, extra.down)
        )
    )
    return buffer.getvalue(), shrunk


class StabilityOutpainter:
    """Extends pictures with Stability's outpaint endpoint."""

    def __init__(
        self, client: httpx.AsyncClient, api_key: str, *, output_format: str, timeout: float
    ) -> None:
        self._client = client
        self._api_key = api_key
        self._output_format = output_format
        self._timeout = timeout
        self.model = MODEL

    @property
    def can_outpaint(self) -> bool:
        """Always True: the endpoint takes every model's pictures."""
        return True

    async def outpaint(self, request: OutpaintRequest) -> GeneratedImage:
        """Return the picture with the margins added; raise a BackendError on any failure.
        The whole call, retries included, ends within the configured timeout."""
        image, extra = await asyncio.to_thread(fitted, request.image, request.extra)
        fields = {
            "left": str(extra.left),
            "right": str(extra.right),
            "up": str(extra.up),
            "down": str(extra.down),
            "creativity": f"{CREATIVITY:g}",
            "prompt": request.prompt[:10_000],
            "output_format": self._output_format,
        }
        mime = image_mime(image)
        files = {"image": (f"image.{mime.rpartition('/')[2]}", image, mime)}
        async with deadline(self._timeout, "image"):
            response = await self._post(fields, files)
        finish_reason = response.headers.get("finish-reason", "SUCCESS")
        if finish_reason == "CONTENT_FILTERED":
            raise ContentBlocked("image", "finish-reason CONTENT_FILTERED")
        if finish_reason != "SUCCESS" or not response.headers.get("content-type", "").startswith(
            "image/"
        ):
            raise BadOutput("image", f"finish-reason {finish_reason}")
        usage = {"endpoint": "outpaint", "seed": response.headers.get("seed")}
        return GeneratedImage(data=response.content, model=self.model, usage=usage)

    async def _post(
        self, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
    ) -> httpx.Response:
        url = "/v2beta/stable-image/edit/outpaint"
        return await post_image(
            self._client, url, api_key=self._api_key, fields=fields, files=files
        )

    async def aclose(self) -> None:
        await self._client.aclose()

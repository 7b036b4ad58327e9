"""Outpainting through an OpenAI-compatible Images API: `images.edit` with a mask.

The kept image is placed on a canvas of an Images API size (`canvas_and_mask`): inside the
largest frame of the target ratio that the canvas holds, where the margins put it; the mask
is transparent where the model is to paint ("An additional image whose fully transparent
areas (e.g. where alpha is zero) indicate where `image` should be edited ... Must be a valid
PNG file, less than 4MB, and have the same dimensions as `image`": openai
types/image_edit_params.py, `mask`). The frame is cut back out of the answer. Models that take
any size (`formats.FREE_SIZE_MODELS`) get a canvas of the frame's own ratio; others the
nearest standard size, the frame inside it.

The client and error mapping are the image backend's (openai_common.py, image_params.py); a
server without an edits endpoint, or refusing the mask, is remembered (`can_outpaint` turns
False: the pack crops); optional parameters a server refuses are dropped and asked once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import openai

from bot.backends.base import GeneratedImage, deadline
from bot.backends.errors import EditsUnsupported
from bot.backends.formats import FREE_SIZE_MODELS
from bot.backends.image_answers import ImageAnswers
from bot.backends.image_params import (
    no_edits_route,
    refused_parameters,
    takes_response_format,
    translated,
)
from bot.backends.outpaint import OutpaintRequest
from bot.pack_images import Canvas, Margins, canvas_and_mask, cut_frame, size_of

log = logging.getLogger(__name__)

STANDARD_CANVASES = ((1024, 1024), (1536, 1024), (1024, 1536))
"""The GPT image models' standard sizes (openai types/image_edit_params.py, `size`)."""
FREE_LONG_SIDE = 1536
"""The canvas's long side for models that take any size (both sides divisible by 16)."""

OUTPAINT_SENTENCE = (
    "Extend this picture into the transparent area so it fills the whole frame: continue "
    "the scene, background, surface and light seamlessly. Do not change, move or repeat the "
    "product; add no text."
)


def canvas_size(model: str, ratio: tuple[int, int]) -> tuple[int, int]:
    """Return the Images API size the canvas of a frame of `ratio` takes for the model."""
    width, height = ratio
    if model in FREE_SIZE_MODELS:
        scale = FREE_LONG_SIDE / max(width, height)
        return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)
    target = width / height
    return min(STANDARD_CANVASES, key=lambda size: abs(size[0] / size[1] - target))


class OpenAIOutpainter:
    """Extends pictures with `images.edit` and a mask on an OpenAI-compatible server."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        quality: str,
        timeout: float,
        *,
        download_hosts: Iterable[str] | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self._quality = quality
        self._timeout = timeout
        self._answers = ImageAnswers(client, hosts=download_hosts)
        self._no_edits: str | None = None
        self._refused: set[str] = set()  # optional parameters the server refused

    @property
    def can_outpaint(self) -> bool:
        """False once the server answered that it has no edits endpoint."""
        return self._no_edits is None

    async def outpaint(self, request: OutpaintRequest) -> GeneratedImage:
        """Return the picture extended by the request's margins (the frame cut from the
        answer, as a PNG); raise EditsUnsupported when the server has no edits endpoint,
        another BackendError on any other failure."""
        if self._no_edits is not None:
            raise EditsUnsupported("image", self._no_edits)
        width, height = await asyncio.to_thread(size_of, request.image)
        frame = request.extra.framed(width, height)
        size = canvas_size(self.model, frame)
        canvas = await asyncio.to_thread(canvas_and_mask, request.image, request.extra, size)
        try:
            async with deadline(self._timeout, "image"):
                response = await self._negotiated(canvas, request, f"{size[0]}x{size[1]}")
                data, usage = await self._answers.read(response.content)
        except openai.APIStatusError as error:
            reason = no_edits_route(error)
            if reason is not None:
                self._no_edits = reason
                log.info("%s: no edits endpoint (%s): the pack crops instead", self.model, reason)
                raise EditsUnsupported("image", reason) from error
            raise translated(error) from error
        except openai.OpenAIError as error:
            raise translated(error) from error
        framed = await asyncio.to_thread(cut_frame, data, canvas)
        return GeneratedImage(data=framed, model=self.model, usage=usage)

    async def _negotiated(self, canvas: Canvas, request: OutpaintRequest, size: str) -> Any:
        """Return the edit's raw response; on a 400/422 naming optional parameters, drop them
        for good and ask once more (a refused request draws nothing, so is not billed, as in
        openai_images.py). A refusal naming `mask` means the server cannot outpaint."""
        optional = {k: v for k, v in self._optional(request).items() if k not in self._refused}
        for attempt in range(2):
            try:
                return await self._client.images.with_raw_response.edit(
                    model=self.model,
                    image=("canvas.png", canvas.image_png, "image/png"),
                    mask=("mask.png", canvas.mask_png, "image/png"),
                    prompt=f"{OUTPAINT_SENTENCE}\n\n{request.prompt}",
                    n=1,
                    size=size,
                    **optional,
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                named = refused_parameters(error)
                if "mask" in named:
                    self._no_edits = "the server refuses a mask"
                    raise EditsUnsupported("image", self._no_edits) from error
                dropped = named & set(optional)
                if not dropped or attempt:
                    raise
                log.warning("%s: outpaint without %s (refused)", self.model, sorted(dropped))
                self._refused |= dropped
                optional = {k: v for k, v in optional.items() if k not in dropped}
        raise AssertionError("unreachable")

    def _optional(self, request: OutpaintRequest) -> dict[str, Any]:
        optional: dict[str, Any] = {"quality": request.quality or self._quality}
        if takes_response_format(self.model):
            optional["response_format"] = "b64_json"
        if request.safety_identifier:
            optional["safety_identifier"] = request.safety_identifier
        return optional

    async def aclose(self) -> None:
        await self._client.close()


__all__ = ["Canvas", "Margins", "OpenAIOutpainter", "canvas_size"]

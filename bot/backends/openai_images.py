"""Image generation through any OpenAI-compatible Images API (base64 output).

Without a reference photo: `images.generate`. With one: `images.edit` with the photo as the
input image, so the real product is kept and the scene around it changes; `input_fidelity`
is "high" where the model supports it (it preserves the product's shape, colours, label
text and logo more closely), and is dropped for models or servers that refuse it.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any, Literal, TypedDict

import openai
import pybase64
from pydantic import ValidationError

from bot.backends.base import GeneratedImage, deadline, image_mime
from bot.backends.errors import BadOutput
from bot.backends.formats import ImageOptions, openai_size
from bot.backends.openai_answers import ImagesAnswer, usage_of, what_is_wrong
from bot.backends.openai_common import translate_openai_error

log = logging.getLogger(__name__)

NO_INPUT_FIDELITY_PREFIXES = ("dall-e", "gpt-image-1-mini")
"""Models known to refuse `input_fidelity`; others get "high" (dropped if refused)."""

_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}


def supports_input_fidelity(model: str) -> bool:
    """Return whether to ask the model for high input fidelity on edits."""
    return not model.startswith(NO_INPUT_FIDELITY_PREFIXES)


OUTPUT_COMPRESSION = 95
"""JPEG/WebP quality asked of the API: visually lossless for product photos."""


class _OutputFormat(TypedDict, total=False):
    """The output arguments sent with every request (none for PNG, the API's default)."""

    output_format: Literal["jpeg", "webp"]
    output_compression: int


class OpenAIImageGenerator:
    """Draws with `images.generate` (or `images.edit` from a reference photo) on the client."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        quality: str,
        timeout: float,
        output_format: Literal["png", "jpeg", "webp"] = "png",
    ) -> None:
        self._client = client
        self._timeout = timeout
        self.model = model
        self._quality = quality
        # A JPEG decodes several times faster than a PNG of the same picture and is a fifth
        # of its size: the bot's own cost per round is mostly that decode. PNG is the API's
        # default, so it is not sent (servers that know no output_format keep working).
        self._format: _OutputFormat = (
            {}
            if output_format == "png"
            else {"output_format": output_format, "output_compression": OUTPUT_COMPRESSION}
        )
        self._input_fidelity = supports_input_fidelity(model)

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        options: ImageOptions | None = None,
        reference: bytes | None = None,
    ) -> GeneratedImage:
        """Return the drawn image's bytes; raise a BackendError on any failure.

        The Images API has no seed parameter, so `seed` is ignored. With `reference`, the
        photo is edited into the scene the prompt describes.
        """
        options = options or ImageOptions()
        try:
            async with deadline(self._timeout, "image"):
                size = openai_size(options.image_format, self.model)
                quality = options.quality or self._quality
                if reference is None:
                    response = await self._client.images.with_raw_response.generate(
                        model=self.model,
                        prompt=prompt,
                        n=1,
                        size=size,
                        quality=_sdk_quality(quality),
                        **self._format,
                    )
                else:
                    response = await self._edit(prompt, reference, size, quality)
        except openai.OpenAIError as error:
            raise translate_openai_error(error, "image") from error
        data, usage = _image_and_usage(response.content)
        return GeneratedImage(data=data, model=self.model, usage=usage)

    async def _edit(self, prompt: str, reference: bytes, size: str, quality: str) -> Any:
        mime = image_mime(reference)
        upload = (f"product.{_EXTENSIONS[mime]}", reference, mime)

        async def edit(**options: Any) -> Any:
            return await self._client.images.with_raw_response.edit(
                model=self.model,
                image=upload,
                prompt=prompt,
                n=1,
                size=size,
                quality=_sdk_quality(quality),
                **options,
                **self._format,
            )

        if not self._input_fidelity:
            return await edit()
        try:
            return await edit(input_fidelity="high")
        except openai.BadRequestError as error:
            if not _about_input_fidelity(error):
                raise
        # A 400 is not billed: remember the model has no input_fidelity and ask again.
        log.info("%s refused input_fidelity; editing without it", self.model)
        self._input_fidelity = False
        return await edit()

    async def aclose(self) -> None:
        await self._client.close()


def _sdk_quality(quality: str) -> Any:
    """Return `quality` as the SDK's parameter type takes it: the SDK lists the values of
    OpenAI's own models, other OpenAI-compatible servers take others, so the configured
    string is sent as it is."""
    return quality


def _about_input_fidelity(error: openai.BadRequestError) -> bool:
    body = error.body if isinstance(error.body, dict) else {}
    return body.get("param") == "input_fidelity" or "input_fidelity" in str(error.message)


def _image_and_usage(body: bytes) -> tuple[bytes, dict[str, Any]]:
    """Return the first image and the usage data of an Images API answer's JSON `body`; raise
    BadOutput unless it holds an image as strict base64 (the alphabet and padding only).

    A 200 that is not such an answer is not retried: the image may have been billed.
    pybase64's SIMD decoder does a 1024 px JPEG's 0.44 MB in ~0.04 ms, so it runs on the loop:
    the standard library's a2b_base64 took ~2.5 ms and holds the GIL, so even on a worker
    thread it stopped every other chat's work for that long.
    """
    try:
        answer = ImagesAnswer.model_validate_json(body)
    except ValidationError as error:
        raise BadOutput("image", what_is_wrong(error)) from error
    try:
        data = pybase64.b64decode(answer.data[0].b64_json, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadOutput("image", "b64_json is not valid base64") from error
    return data, usage_of(answer)

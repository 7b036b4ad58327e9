"""Image generation through any OpenAI-compatible Images API (`images.generate`, base64 output)."""

from __future__ import annotations

import asyncio
import base64
import binascii

import openai

from bot.backends.base import GeneratedImage, deadline
from bot.backends.errors import BadOutput
from bot.backends.formats import ImageOptions, openai_size
from bot.backends.openai_common import translate_openai_error


class OpenAIImageGenerator:
    """Draws with `images.generate` on the given client; model, size and quality are fixed."""

    def __init__(
        self, client: openai.AsyncOpenAI, model: str, quality: str, timeout: float
    ) -> None:
        self._client = client
        self._timeout = timeout
        self.model = model
        self._quality = quality

    async def generate(
        self, prompt: str, *, seed: int | None = None, options: ImageOptions | None = None
    ) -> GeneratedImage:
        """Return the drawn image's bytes; raise a BackendError on any failure.

        The Images API has no seed parameter, so `seed` is ignored.
        """
        options = options or ImageOptions()
        try:
            async with deadline(self._timeout, "image"):
                response = await self._client.images.generate(
                    model=self.model,
                    prompt=prompt,
                    n=1,
                    size=openai_size(options.image_format, self.model),
                    quality=options.quality or self._quality,  # type: ignore[arg-type]
                )
        except openai.OpenAIError as error:
            raise translate_openai_error(error, "image") from error
        except ValueError as error:
            # A 200 whose body is not JSON. Not retried: the image may have been billed.
            raise BadOutput("image", "response is not valid JSON") from error
        if not response.data or not response.data[0].b64_json:
            raise BadOutput("image", "response has no b64_json image")
        try:  # a few MB: decode off the event loop
            data = await asyncio.to_thread(
                base64.b64decode, response.data[0].b64_json, validate=True
            )
        except (binascii.Error, ValueError) as error:
            raise BadOutput("image", "b64_json is not valid base64") from error
        usage = response.usage.model_dump() if response.usage else {}
        return GeneratedImage(data=data, model=self.model, usage=usage)

    async def aclose(self) -> None:
        await self._client.close()

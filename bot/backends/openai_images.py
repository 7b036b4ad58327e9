"""Image generation through any OpenAI-compatible Images API (base64 output).

Without a reference photo: `images.generate`. With one: `images.edit` with the photo as the
input image, so the real product is kept and the scene around it changes. An edit of an
earlier round (`edit`) is `images.edit` too, with the parent round's image first and the
product photo, if any, second. `input_fidelity="high"` is sent only to the models the SDK's
documentation says take it (`supports_input_fidelity`), and dropped when a server refuses it.

A server without an edits endpoint (404 or 405 there) is remembered for the process:
`can_edit` turns False and later edits raise `EditsUnsupported` without a request.
"""

from __future__ import annotations

import binascii
import json
import logging
from typing import Any, Literal, TypedDict

import openai
import pybase64
from pydantic import ValidationError

from bot.backends.base import GeneratedImage, deadline, image_mime
from bot.backends.errors import BadOutput, EditsUnsupported
from bot.backends.formats import ImageOptions, openai_size
from bot.backends.openai_answers import ImagesAnswer, usage_of, what_is_wrong
from bot.backends.openai_common import translate_openai_error

log = logging.getLogger(__name__)

INPUT_FIDELITY_PREFIXES = ("gpt-image-1.5",)
"""The models (and their dated snapshots) that take `input_fidelity="high"`. The rule is the
installed SDK's own (openai 3.60, types/image_edit_params.py, `input_fidelity`): "Supports
`high` and `low` on `gpt-image-1.5`; `gpt-image-1-mini` supports only `low`. For
`gpt-image-2`, omit this parameter. Defaults to `low` on supported models." Every other model
(gpt-image-2 and later, gpt-image-1-mini, self-hosted ones) is sent none."""

_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}

REFERENCE_SENTENCE = (
    "The second image is a photo of the real product: keep that product exactly as it is "
    "there (the same shape, colours, label text and logo)."
)
"""Appended to an edit's instruction when the product photo goes with it as the second image."""

_NO_ROUTE_STATUSES = (404, 405)
"""What a server without an edits endpoint answers there; neither is billed."""


def supports_input_fidelity(model: str) -> bool:
    """Return whether to ask the model for high input fidelity on edits."""
    return model.startswith(INPUT_FIDELITY_PREFIXES)


OUTPUT_COMPRESSION = 95
"""JPEG/WebP quality asked of the API: visually lossless for product photos."""


class _OutputFormat(TypedDict, total=False):
    """The output arguments sent with every request (none for PNG, the API's default)."""

    output_format: Literal["jpeg", "webp"]
    output_compression: int


class OpenAIImageGenerator:
    """Draws with `images.generate` (or `images.edit` from a reference photo) on the client,
    and edits earlier rounds with `images.edit`."""

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
        # Why the server has no edits endpoint, once it has said so; None until then.
        self._no_edits: str | None = None

    @property
    def can_edit(self) -> bool:
        """False once the server answered that it has no edits endpoint."""
        return self._no_edits is None

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
        photo is edited into the scene the prompt describes (on the edits endpoint, so a
        server without one raises EditsUnsupported).
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
                    upload = _upload("product", reference)
                    response = await self._edit(upload, prompt, size, quality)
        except openai.OpenAIError as error:
            raise translate_openai_error(error, "image") from error
        data, usage = _image_and_usage(response.content)
        return GeneratedImage(data=data, model=self.model, usage=usage)

    async def edit(
        self,
        prompt: str,
        *,
        instruction: str,
        image: bytes,
        reference: bytes | None = None,
        seed: int | None = None,
        options: ImageOptions | None = None,
    ) -> GeneratedImage:
        """Return `image` changed as `instruction` says; raise a BackendError on any failure.

        `images.edit` with `image` as the first input image and `reference` (the product
        photo), if any, as the second, with a sentence saying the second is the real product
        to keep. The model reads the instruction, so `prompt` (the full description) is sent
        only when the instruction is empty; `seed` is ignored as in `generate`. Size, quality
        and output format are `generate`'s.
        """
        options = options or ImageOptions()
        text = instruction.strip() or prompt
        parent = _upload("image", image)
        if reference is None:
            # One input goes as the plain `image` field, which every server with an edits
            # endpoint reads; a list goes as repeated `image[]` parts (the SDK's default array
            # format, the real API's multi-image form), which servers reading only `image` miss.
            uploads: Any = parent
        else:
            uploads = [parent, _upload("product", reference)]
            text = f"{text}\n\n{REFERENCE_SENTENCE}"
        try:
            async with deadline(self._timeout, "image"):
                size = openai_size(options.image_format, self.model)
                quality = options.quality or self._quality
                response = await self._edit(uploads, text, size, quality)
        except openai.OpenAIError as error:
            raise translate_openai_error(error, "image") from error
        data, usage = _image_and_usage(response.content)
        return GeneratedImage(data=data, model=self.model, usage=usage)

    async def _edit(self, image: Any, prompt: str, size: str, quality: str) -> Any:
        """Call the edits endpoint with `image` (one upload or a list of them); raise
        EditsUnsupported, then and on every later call, if the server has none."""
        if self._no_edits is not None:
            raise EditsUnsupported("image", self._no_edits)
        try:
            response = await self._edit_once(image, prompt, size, quality)
        except openai.APIStatusError as error:
            reason = _no_route(error)
            if reason is None:
                raise
            self._remember_no_edits(reason)
            raise EditsUnsupported("image", reason) from error
        reason = _no_route_in_success(response.content)
        if reason is not None:
            self._remember_no_edits(reason)
            raise EditsUnsupported("image", reason)
        return response

    def _remember_no_edits(self, reason: str) -> None:
        if self._no_edits is None:
            log.info(
                "%s: the image server has no edits endpoint (%s); edits and photo briefs "
                "are off until the bot restarts",
                self.model,
                reason,
            )
        self._no_edits = reason

    async def _edit_once(self, image: Any, prompt: str, size: str, quality: str) -> Any:
        async def edit(**options: Any) -> Any:
            return await self._client.images.with_raw_response.edit(
                model=self.model,
                image=image,
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


def _upload(name: str, data: bytes) -> tuple[str, bytes, str]:
    """Return an upload as the SDK takes it: (file name, bytes, declared MIME type)."""
    mime = image_mime(data)
    return (f"{name}.{_EXTENSIONS[mime]}", data, mime)


def _about_input_fidelity(error: openai.BadRequestError) -> bool:
    body = error.body if isinstance(error.body, dict) else {}
    return body.get("param") == "input_fidelity" or "input_fidelity" in str(error.message)


def _no_route(error: openai.APIStatusError) -> str | None:
    """Return why the server has no edits endpoint if `error` says so, else None.

    A 405, or a 404 that is not about the model: OpenAI answers an unknown route with 404
    "Invalid URL (POST /v1/...)", Ollama with a plain "404 page not found", FastAPI servers
    (vLLM) with {"detail": "Not Found"}. A 404 naming the model (OpenAI's "The model `x` does
    not exist", code model_not_found; Ollama's 'model "x" not found') is a missing model on an
    endpoint that exists, and stays Rejected.
    """
    if error.status_code not in _NO_ROUTE_STATUSES:
        return None
    reason = _reason(error.body) or str(error.message)
    body = error.body if isinstance(error.body, dict) else {}
    about_model = body.get("code") == "model_not_found" or "model" in reason.lower()
    if error.status_code == 404 and about_model:
        return None
    return f"HTTP {error.status_code}: {reason[:200]}"


def _no_route_in_success(body: bytes) -> str | None:
    """Return the reason when a 200 is LM Studio's answer to an unknown route.

    LM Studio answers a route it does not serve with 200 OK and {"error": "Unexpected endpoint
    or method. (POST /v1/...)"} (lmstudio-ai/lmstudio-bug-tracker#618, "Returning 200
    anyway"). An image answer is far longer than 1 KB, so only short bodies are parsed.
    """
    if len(body) > 1024:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, str) and "unexpected endpoint" in error.lower():
        return f"HTTP 200: {error[:200]}"
    return None


def _reason(body: object) -> str:
    """Return the message of an error body: OpenAI's `message`, FastAPI's `detail`, a string
    `error`, or a plain-text body itself."""
    if isinstance(body, str):
        return body.strip()
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return str(body[key]).strip()
    return ""


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

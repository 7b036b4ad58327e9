"""Image generation through Stability AI's REST API (v2beta stable-image/generate).

With a reference photo the same generate endpoint runs image-to-image: `sd3` with
`mode=image-to-image`, `ultra` with its `image` field, both with `strength` (how far the
result may move away from the photo). `core` has no image input, so photo briefs with
STABILITY_MODEL=core are drawn by sd3.5-large. The output takes the photo's aspect ratio.

An edit of an earlier round is the same image-to-image call from the parent round's image,
with its own, lower strength (STABILITY_EDIT_STRENGTH) and the full description of the wanted
picture as the prompt: SD3 reads a description, not an instruction.

The retry policy matches the openai SDK's: up to two retries of 429, 5xx, timeouts and
connection errors, with exponential backoff from 0.5 s (capped at 8 s, with jitter), or the
server's Retry-After when it gives one of at most a minute. Moderation is never retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace
from typing import Any

import httpx

from bot.backends.base import GeneratedImage, Preview, deadline, image_mime
from bot.backends.errors import (
    TRANSIENT_STATUSES,
    BackendError,
    BadCredentials,
    BadOutput,
    ContentBlocked,
    OutOfCredits,
    RateLimited,
    Rejected,
    Unavailable,
)
from bot.backends.formats import ImageOptions, stability_aspect_ratio, stability_size_asked

log = logging.getLogger(__name__)

MAX_RETRIES = 2
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0


REFERENCE_FALLBACK_MODEL = "sd3.5-large"
"""The model that draws photo briefs and edits when the configured one has no image input
(core)."""

DEFAULT_STRENGTH = 0.6
"""A photo brief's strength: high enough to change the scene around the product."""
DEFAULT_EDIT_STRENGTH = 0.45
"""An edit's strength (STABILITY_EDIT_STRENGTH; README, "Edits of a round"). Stability's API
reference (v2beta generate/sd3): strength "controls how much influence the image parameter has
on the generated image. A value of 0 would yield an image that is identical to the input. A
value of 1 would be as if you passed in no image at all." Below half, the parent's
composition, pose and light survive; a backdrop colour or a missing detail can still change."""


def endpoint_for(model: str) -> tuple[str, str | None]:
    """Return (endpoint name, model field) for STABILITY_MODEL: sd3.5-* go to sd3."""
    if model in ("core", "ultra"):
        return model, None
    if model.startswith("sd3"):
        return "sd3", model
    raise ValueError(f"unknown Stability model {model!r} (use sd3.5-large, core or ultra)")


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Return seconds to wait before retry number `attempt` (0-based)."""
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            seconds = -1
        if 0 <= seconds <= MAX_RETRY_AFTER:
            return seconds
    delay = min(INITIAL_DELAY * 2**attempt, MAX_DELAY)
    return delay * (1 - 0.25 * random.random())


def _error_for(response: httpx.Response) -> BackendError:
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    name = body.get("name", "") if isinstance(body, dict) else ""
    detail = f"HTTP {response.status_code} {name}".strip()
    status = response.status_code
    if name == "content_moderation":
        return ContentBlocked("image", detail)
    if status == 401:
        return BadCredentials("image", detail)
    if status == 402:
        return OutOfCredits("image", detail)
    if status == 403:
        return BadCredentials("image", detail)
    if status == 429:
        return RateLimited("image", detail)
    if status in TRANSIENT_STATUSES or status >= 500:
        return Unavailable("image", detail)
    return Rejected("image", detail)


def _retryable(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status == 429 or status >= 500


class StabilityImageGenerator:
    """Draws with Stability's stable-image generate endpoints over one reused httpx client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: str,
        model: str,
        output_format: str = "png",
        timeout: float = 180.0,
        strength: float = DEFAULT_STRENGTH,
        *,
        edit_strength: float = DEFAULT_EDIT_STRENGTH,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._api_key = api_key
        self.model = model
        self._endpoint, self._model_field = endpoint_for(model)
        self._output_format = output_format
        self._strength = strength
        self._edit_strength = edit_strength

    @property
    def can_edit(self) -> bool:
        """Always True: every model edits, through image-to-image on the generate endpoints
        (core's edits go to sd3.5-large)."""
        return True

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        options: ImageOptions | None = None,
        reference: bytes | None = None,
        safety_identifier: str | None = None,
        preview: Preview | None = None,  # Stability does not stream: the chat action stays
    ) -> GeneratedImage:
        """Return the drawn image's bytes; raise a BackendError on any failure.

        With `reference`, image-to-image from that photo (the output keeps the photo's shape,
        so the format preset applies only without one). Stability has no quality setting, so
        `options.quality` is ignored, nor a user id field, so `safety_identifier` is too. The
        whole call, retries included, ends within the configured timeout.
        """
        options = options or ImageOptions()
        async with deadline(self._timeout, "image"):
            return await self._generate(prompt, seed, reference, options)

    async def edit(
        self,
        prompt: str,
        *,
        instruction: str,
        image: bytes,
        reference: bytes | None = None,
        seed: int | None = None,
        options: ImageOptions | None = None,
        safety_identifier: str | None = None,  # ignored, as in `generate`
        preview: Preview | None = None,  # ignored, as in `generate`
    ) -> GeneratedImage:
        """Return `image` redrawn towards `prompt`; raise a BackendError on any failure.

        Image-to-image from `image` (the parent round's picture) at the edit strength, on the
        endpoint `generate` uses for a photo (sd3 `mode=image-to-image`, ultra's `image`; core
        goes to sd3.5-large), with the session's `seed`. The prompt is the full `prompt`: SD3
        image-to-image is steered by a description of the wanted picture, so `instruction` is
        not sent. The generate endpoints take one input image, so `reference` is not sent
        either: the parent, drawn from the product photo, already carries the product. The
        output keeps the parent's shape, so the format preset does not apply.
        """
        options = options or ImageOptions()
        async with deadline(self._timeout, "image"):
            return await self._generate(
                prompt, seed, image, options, strength=self._edit_strength, upload_name="image"
            )

    def _request(
        self,
        prompt: str,
        seed: int | None,
        reference: bytes | None,
        options: ImageOptions,
        *,
        strength: float | None = None,
        upload_name: str = "product",
    ) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        """Return (endpoint, model, form fields, files) for one call: text-to-image without
        `reference`, else image-to-image from it at `strength` (default: the photo briefs')."""
        fields: dict[str, str] = {"prompt": prompt, "output_format": self._output_format}
        if seed is not None:
            fields["seed"] = str(seed)
        endpoint, model_field, model = self._endpoint, self._model_field, self.model
        if reference is None:
            fields["aspect_ratio"] = stability_aspect_ratio(options.image_format)
            files: dict[str, Any] = {"none": (None, "")}
        else:
            if endpoint == "core":
                model = REFERENCE_FALLBACK_MODEL
                endpoint, model_field = endpoint_for(model)
                if self._output_format == "webp":  # sd3 writes only png and jpeg
                    fields["output_format"] = "png"
            if endpoint == "sd3":
                fields["mode"] = "image-to-image"
            fields["strength"] = f"{self._strength if strength is None else strength:g}"
            mime = image_mime(reference)
            files = {"image": (f"{upload_name}.{mime.rpartition('/')[2]}", reference, mime)}
        if model_field:
            fields["model"] = model_field
        return endpoint, model, fields, files

    async def _generate(
        self,
        prompt: str,
        seed: int | None,
        reference: bytes | None,
        options: ImageOptions,
        *,
        strength: float | None = None,
        upload_name: str = "product",
    ) -> GeneratedImage:
        endpoint, model, fields, files = self._request(
            prompt, seed, reference, options, strength=strength, upload_name=upload_name
        )
        url = f"/v2beta/stable-image/generate/{endpoint}"
        response = await post_image(
            self._client, url, api_key=self._api_key, fields=fields, files=files
        )
        image = self._image_from(response, endpoint, model)
        # Image-to-image keeps its input's shape (at the nearest native ratio): no exact
        # expectation, only bot.refine.sizes' rule for unusable sizes.
        ratio = fields.get("aspect_ratio")
        return replace(image, asked=stability_size_asked(ratio) if ratio else None)

    def _image_from(self, response: httpx.Response, endpoint: str, model: str) -> GeneratedImage:
        finish_reason = response.headers.get("finish-reason", "SUCCESS")
        if finish_reason == "CONTENT_FILTERED":
            raise ContentBlocked("image", "finish-reason CONTENT_FILTERED")
        if finish_reason != "SUCCESS":
            raise BadOutput("image", f"finish-reason {finish_reason}")
        if not response.headers.get("content-type", "").startswith("image/"):
            raise BadOutput("image", "response is not an image")
        usage = {"seed": response.headers.get("seed"), "endpoint": endpoint}
        return GeneratedImage(data=response.content, model=model, usage=usage)

    async def aclose(self) -> None:
        await self._client.aclose()


async def post_image(
    client: httpx.AsyncClient,
    url: str,
    *,
    api_key: str,
    fields: dict[str, Any],
    files: dict[str, Any],
) -> httpx.Response:
    """POST a multipart request to a v2beta image endpoint (every one answers errors with the
    same `{"id", "name", "errors"}` body) and return its 200 response; 429, 408 and 5xx and
    transport failures are retried (MAX_RETRIES, `retry_delay`). Raises BackendError."""
    headers = {"authorization": f"Bearer {api_key}", "accept": "image/*"}
    for attempt in range(MAX_RETRIES + 1):
        last_attempt = attempt == MAX_RETRIES
        try:
            # multipart/form-data is required even without files: `files` forces it.
            response = await client.post(url, data=fields, files=files, headers=headers)
        except httpx.TransportError as error:
            if last_attempt:
                timed_out = isinstance(error, httpx.TimeoutException)
                raise Unavailable(
                    "image", "timed out" if timed_out else "connection failed"
                ) from error
            await asyncio.sleep(retry_delay(attempt, None))
            continue
        if response.status_code == 200:
            return response
        if _retryable(response.status_code) and not last_attempt:
            delay = retry_delay(attempt, response.headers.get("retry-after"))
            log.info("stability HTTP %s, retrying in %.1fs", response.status_code, delay)
            await asyncio.sleep(delay)
            continue
        raise _error_for(response)
    raise Unavailable("image", "no attempts made")  # unreachable; keeps type checkers calm

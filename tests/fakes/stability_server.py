"""A fake Stability AI REST v2beta image API (``stable-image/generate/{sd3,core,ultra}``).

`FakeStability` (``base_url = http://127.0.0.1:PORT``, the host root) takes multipart/form-data
like the real API and answers:

* ``accept: image/*`` (or ``*/*``/absent): the raw image bytes, ``content-type: image/<fmt>``,
  headers ``finish-reason`` (``SUCCESS`` or ``CONTENT_FILTERED``) and ``seed``;
* ``accept: application/json``: ``{"image": "<b64>", "finish_reason": ..., "seed": n}``.

The picture is the cached test image at the size of the aspect ratio (`ASPECT_SIZES`,
about one megapixel), with the prompt embedded for PNG and JPEG. Errors use Stability's
``{"id": "<32 hex>", "name": "...", "errors": ["..."]}`` body; `StabilityFault` builds them.

Image-to-image follows Stability's request schema for sd3 (the REST v2beta reference,
https://platform.stability.ai/docs/api-reference#tag/Generate, "Stable Diffusion 3.5"):
"image-to-image requires the prompt, image, and strength parameters"; `strength` is "number
[ 0 .. 1 ]" and "only valid for image-to-image requests"; `aspect_ratio` is "only valid for
text-to-image requests". Ultra: "The strength parameter is required when image is provided."
Every image-to-image request that passes is recorded in ``fake.image_inputs``
(`ImageToImage`: the input image's bytes, the strength, the prompt, the seed...).

``POST /v2beta/stable-image/edit/outpaint`` (route ``outpaint``) is the campaign pack's
outpainting, as tests/fakes/stability_outpaint.py describes (``fake.outpaint_calls``).

``GET /v1/user/balance`` (route ``balance``) answers ``{"credits": fake.credits}`` to the right
bearer key, else 401 with the v1 error body ``{"id", "name", "message"}``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.faults import RECORD, DecodedImage, FakeServer, Fault, RecordedRequest
from tests.fakes.pngs import blurred_image, render_image, with_prompt
from tests.fakes.stability_outpaint import OUTPAINT_FAULT_KEY, OutpaintCall, outpaint

__all__ = [
    "ASPECT_SIZES",
    "DEFAULT_API_KEY",
    "SD3_MODELS",
    "STYLE_PRESETS",
    "FakeStability",
    "ImageToImage",
    "StabilityFault",
    "nearest_aspect_ratio",
    "stability_error",
]

DEFAULT_API_KEY = "sk-stab-test-456"

ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "21:9": (1536, 640),
    "16:9": (1344, 768),
    "3:2": (1248, 832),
    "5:4": (1120, 896),
    "1:1": (1024, 1024),
    "4:5": (896, 1120),
    "2:3": (832, 1248),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
"""Output size per ``aspect_ratio`` (about one megapixel, edges divisible by 16)."""

SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
STYLE_PRESETS = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)
OUTPUT_FORMATS: dict[str, tuple[str, ...]] = {
    "sd3": ("png", "jpeg"),
    "core": ("png", "jpeg", "webp"),
    "ultra": ("png", "jpeg", "webp"),
}
"""Formats per endpoint: SD3 documents only jpeg and png."""
MAX_PROMPT_CHARS = 10_000
MAX_SEED = 4_294_967_294
MAX_BODY_BYTES = 10 * 1024 * 1024
_FAULT_KEY = "generate"


@dataclass(frozen=True)
class ImageToImage:
    """One accepted image-to-image request: what the generation started from."""

    endpoint: str
    model: str | None  # the sd3 `model` field (None on ultra)
    image: bytes
    mime: str
    strength: float
    prompt: str
    seed: int  # as answered: a random seed (0 or none sent) is the fake's stand-in


def stability_error(name: str, *errors: str) -> dict[str, Any]:
    """Build Stability's error body with a fresh 32-hex ``id``."""
    return {"id": uuid.uuid4().hex, "name": name, "errors": list(errors)}


class StabilityFault(Fault):
    """`Fault` constructors for Stability's real error responses."""

    @classmethod
    def error(
        cls,
        status: int,
        name: str,
        *errors: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Self:
        """Any status with Stability's ``{id, name, errors}`` body."""
        body = stability_error(name, *errors)
        return cls(status=status, body=body, headers=dict(headers or {}), delay=delay)

    @classmethod
    def bad_request(cls, *errors: str) -> Self:
        """400 ``bad_request`` (default error: ``prompt: required``)."""
        return cls.error(400, "bad_request", *(errors or ("prompt: required",)))

    @classmethod
    def unauthorized(cls) -> Self:
        """401 ``unauthorized``."""
        return cls.error(401, "unauthorized", "authorization: invalid or missing header value")

    @classmethod
    def payment_required(cls) -> Self:
        """402 ``payment_required`` (out of credits)."""
        return cls.error(
            402,
            "payment_required",
            "You lack sufficient credits to make this request. Please purchase more credits "
            "at https://platform.stability.ai/account/credits and try again.",
        )

    @classmethod
    def content_moderation(cls) -> Self:
        """403 ``content_moderation`` (prompt or input image flagged)."""
        return cls.error(
            403,
            "content_moderation",
            "Your request was flagged by our content moderation system, as a result your "
            "request was denied and you were not charged.",
        )

    @classmethod
    def payload_too_large(cls) -> Self:
        """413 ``payload_too_large``."""
        return cls.error(
            413, "payload_too_large", "body: payloads cannot be larger than 10MiB in size"
        )

    @classmethod
    def invalid_language(cls) -> Self:
        """422 ``invalid_language`` (non-English prompt)."""
        return cls.error(
            422,
            "invalid_language",
            "English is the only supported language for this service.",
        )

    @classmethod
    def unprocessable(cls, name: str = "invalid_prompt", *errors: str) -> Self:
        """Another 422 (e.g. a prompt or image the service cannot work with)."""
        return cls.error(
            422, name, *(errors or ("prompt: the request could not be processed as given",))
        )

    @classmethod
    def rate_limit(cls, retry_after: int | None = None) -> Self:
        """429 ``rate_limit``, with a ``retry-after`` header (seconds) if given."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls.error(
            429,
            "rate_limit",
            "You have exceeded the rate limit of 150 requests within a 10 second period, and "
            "have been timed out for 60 seconds.",
            headers=headers,
        )

    @classmethod
    def internal_error(cls) -> Self:
        """500 ``internal_error``."""
        return cls.error(
            500,
            "internal_error",
            "An unexpected server error has occurred, please try again later.",
        )


class _BadRequest(Exception):
    """A 400 ``bad_request`` raised during validation."""

    def __init__(self, *errors: str) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _enum_error(name: str, value: str, choices: tuple[str, ...]) -> _BadRequest:
    expected = " | ".join(f"'{choice}'" for choice in choices)
    return _BadRequest(f"{name}: invalid enum value. Expected {expected}, received '{value}'")


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The supported aspect ratio nearest to ``width/height`` (by log distance)."""
    target = math.log(width / height)
    return min(
        ASPECT_SIZES,
        key=lambda ratio: abs(math.log(ASPECT_SIZES[ratio][0] / ASPECT_SIZES[ratio][1]) - target),
    )


class FakeStability(FakeServer):
    """Fake Stability v2beta generate API. Use ``async with FakeStability() as fake``.

    Attributes:
        api_key: The only accepted bearer key.
        latency: Seconds every successful reply waits (after validation).
        sizes: Output size per aspect ratio (a copy of `ASPECT_SIZES`, editable per test).
        requests: Every `RecordedRequest` (endpoint ``sd3``/``core``/``ultra``).
    """

    endpoints: ClassVar[tuple[str, ...]] = ("sd3", "core", "ultra")

    def __init__(self, api_key: str = DEFAULT_API_KEY, *, latency: float = 0.0) -> None:
        super().__init__()
        self.api_key = api_key
        self.latency = latency
        self.sizes: dict[str, tuple[int, int]] = dict(ASPECT_SIZES)
        self.credits = 25.0
        self.image_inputs: list[ImageToImage] = []
        self.outpaint_calls: list[OutpaintCall] = []  # POST .../edit/outpaint, accepted
        self._filter_next = 0

    def reset(self) -> None:
        """Forget recorded requests (image inputs included) and queued faults."""
        super().reset()
        self.image_inputs.clear()
        self.outpaint_calls.clear()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the API host root)."""
        return self.root_url

    def fail_next(self, fault: Fault, count: int = 1) -> None:
        """Answer the next ``count`` generate requests (any endpoint) with ``fault``."""
        self.faults.push(_FAULT_KEY, fault, count)

    def fail_next_outpaint(self, fault: Fault, count: int = 1) -> None:
        """Answer the next ``count`` outpaint requests with ``fault``."""
        self.faults.push(OUTPAINT_FAULT_KEY, fault, count)

    def filter_next(self, count: int = 1) -> None:
        """Make the next ``count`` successful generations come back ``CONTENT_FILTERED``."""
        self._filter_next += count

    def _setup_routes(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_post(
                f"/v2beta/stable-image/generate/{endpoint}", self._generate, name=endpoint
            )
        app.router.add_get("/v1/user/balance", self._balance, name="balance")
        app.router.add_post("/v2beta/stable-image/edit/outpaint", self._outpaint, name="outpaint")
        app.router.add_route("*", "/{tail:.*}", self._not_found, name="unknown")

    async def _outpaint(self, request: web.Request) -> web.StreamResponse:
        return await outpaint(self, request)

    async def _balance(self, request: web.Request) -> web.Response:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            body = {
                "id": uuid.uuid4().hex,
                "name": "unauthorized",
                "message": "Incorrect API key provided",
            }
            return web.json_response(body, status=401)
        return web.json_response({"credits": self.credits})

    @staticmethod
    def _error(status: int, name: str, *errors: str) -> web.Response:
        return web.json_response(stability_error(name, *errors), status=status)

    async def _not_found(self, request: web.Request) -> web.Response:
        return self._error(404, "not_found", f"{request.method} {request.path}: not found")

    # --- the generate endpoints ---------------------------------------------------------

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        record = request[RECORD]
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return StabilityFault.payload_too_large().to_response()
        is_multipart = await self.read_multipart(request, record)
        fault_response = await self.apply_fault(request, _FAULT_KEY)
        if fault_response is not None:
            return fault_response
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            return StabilityFault.unauthorized().to_response()
        if not request.content_type or request.content_type == "application/octet-stream":
            return self._error(400, "bad_request", "content-type: required")
        if not is_multipart:
            return self._error(400, "bad_request", "content-type: must be multipart/form-data")
        accept = request.headers.get("accept", "image/*")
        wants_json = "application/json" in accept
        if not wants_json and not any(kind in accept for kind in ("image/", "*/*")):
            return self._error(
                400, "bad_request", "accept: must be either image/* or application/json"
            )
        try:
            prompt, fmt, size, seed = self._validate(record)
        except _BadRequest as exc:
            return self._error(400, "bad_request", *exc.errors)

        await self.finish_latency(record, self.latency)
        filtered = self._filter_next > 0
        if filtered:
            self._filter_next -= 1
        finish_reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        render = blurred_image if filtered else render_image
        picture = await asyncio.to_thread(render, *size, fmt)  # first render per size is slow
        if fmt in ("png", "jpeg"):
            picture = with_prompt(picture, prompt)
        if wants_json:
            payload = {
                "image": base64.b64encode(picture).decode("ascii"),
                "finish_reason": finish_reason,
                "seed": seed,
            }
            return web.json_response(payload)
        return web.Response(
            body=picture,
            content_type=f"image/{fmt}",
            headers={"finish-reason": finish_reason, "seed": str(seed)},
        )

    def _validate(self, record: RecordedRequest) -> tuple[str, str, tuple[int, int], int]:
        """Check the form like the real API; return (prompt, format, size, seed)."""
        endpoint = record.endpoint
        value = self.form_value
        prompt = value(record, "prompt")
        if not prompt:
            raise _BadRequest("prompt: required")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise _BadRequest(f"prompt: must be at most {MAX_PROMPT_CHARS} characters")
        negative = value(record, "negative_prompt")
        if negative is not None and len(negative) > MAX_PROMPT_CHARS:
            raise _BadRequest(f"negative_prompt: must be at most {MAX_PROMPT_CHARS} characters")

        fmt = value(record, "output_format") or "png"
        if fmt not in OUTPUT_FORMATS[endpoint]:
            raise _enum_error("output_format", fmt, OUTPUT_FORMATS[endpoint])
        style = value(record, "style_preset")
        if style is not None and style not in STYLE_PRESETS:
            raise _enum_error("style_preset", style, STYLE_PRESETS)
        if endpoint == "sd3":
            model = value(record, "model") or SD3_MODELS[0]
            if model not in SD3_MODELS:
                raise _enum_error("model", model, SD3_MODELS)
            cfg = value(record, "cfg_scale")
            if cfg is not None:
                self._number(cfg, "cfg_scale", 1, 10)
        seed = self._seed(value(record, "seed"), prompt)

        image = self._input_image(record)
        if image is not None:
            record.images.append(image)
        mode = value(record, "mode") or "text-to-image"
        strength_text = value(record, "strength")
        if endpoint == "sd3":
            if mode not in ("text-to-image", "image-to-image"):
                raise _enum_error("mode", mode, ("text-to-image", "image-to-image"))
            if mode == "image-to-image" and image is None:
                raise _BadRequest("image: required when mode is image-to-image")
            if mode == "image-to-image" and value(record, "aspect_ratio") is not None:
                # "Important: This parameter is only valid for text-to-image requests."
                raise _BadRequest("aspect_ratio: only valid for text-to-image requests")
            if mode == "text-to-image" and strength_text is not None:
                # "Important: This parameter is only valid for image-to-image requests."
                raise _BadRequest("strength: only valid for image-to-image requests")
            if mode == "text-to-image":
                image = None  # an image is ignored in text-to-image mode
        elif endpoint == "core":
            image = None  # core has no image input
        if image is not None:
            if strength_text is None:
                raise _BadRequest("strength: required when an image is provided")
            strength = self._number(strength_text, "strength", 0, 1)
            size = self.sizes[nearest_aspect_ratio(image.width, image.height)]
            self.image_inputs.append(
                ImageToImage(
                    endpoint=endpoint,
                    model=(value(record, "model") or SD3_MODELS[0]) if endpoint == "sd3" else None,
                    image=record.files["image"][0],
                    mime=image.mime,
                    strength=strength,
                    prompt=prompt,
                    seed=seed,
                )
            )
        else:
            ratio = value(record, "aspect_ratio") or "1:1"
            if ratio not in self.sizes:
                raise _enum_error("aspect_ratio", ratio, tuple(self.sizes))
            size = self.sizes[ratio]
        return prompt, fmt, size, seed

    @staticmethod
    def _number(text: str, name: str, low: float, high: float) -> float:
        try:
            number = float(text)
        except ValueError:
            raise _BadRequest(f"{name}: must be a number") from None
        if not low <= number <= high:
            raise _BadRequest(f"{name}: must be between {low} and {high}")
        return number

    @staticmethod
    def _seed(text: str | None, prompt: str) -> int:
        if text is None or text == "":
            seed = 0
        else:
            try:
                seed = int(text)
            except ValueError:
                raise _BadRequest(f"seed: must be an integer between 0 and {MAX_SEED}") from None
            if not 0 <= seed <= MAX_SEED:
                raise _BadRequest(f"seed: must be an integer between 0 and {MAX_SEED}")
        # 0 means "random": derive a stable stand-in so tests stay deterministic.
        return seed or zlib.crc32(prompt.encode("utf-8")) % MAX_SEED + 1

    @staticmethod
    def _input_image(record: RecordedRequest) -> DecodedImage | None:
        blobs = record.files.get("image")
        if not blobs:
            return None
        blob = blobs[0]
        try:
            with Image.open(io.BytesIO(blob)) as image:
                image.load()
                mime = record.file_types["image"][0]
                return DecodedImage(mime, image.format or "", len(blob), *image.size)
        except (UnidentifiedImageError, OSError, ValueError):
            raise _BadRequest("image: could not be decoded as an image") from None

"""A fake OpenAI-compatible API (images + vision chat) that the real `openai` SDK can talk to.

`FakeOpenAI` serves, under ``base_url = http://127.0.0.1:PORT/v1``:

* ``POST /v1/images/generations`` (endpoint ``"images"``): JSON in, GPT-image-style
  `ImagesResponse` out; every image is the cached test picture of the requested size with
  the prompt embedded (`tests.fakes.pngs.prompt_of` reads it back).
* ``POST /v1/images/edits`` (endpoint ``"edits"``): multipart in (``image``, or up to 16
  ``image[]`` parts as the SDK sends a list, each with an image content type; ``prompt``; an
  optional PNG ``mask``; ``input_fidelity`` where the model takes it), same reply. Every edit
  request is recorded as an `EditRequest` (``fake.edit_requests``: the input images' bytes in
  order, the prompt, the fields). ``fake.missing_edits`` makes the route answer as a server
  without it does (`MISSING_EDITS_ANSWERS`).
* Both image routes answer as ``fake.image_server`` says (`IMAGE_SERVERS`): OpenAI (base64),
  LocalAI (a URL to its ``GET /generated-images/<file>``, endpoint ``"generated"``, and no
  edits route) or openedai-images (``data:`` URLs); ``fake.image_refusals`` refuses named
  parameters with a 400 the way the real API or LiteLLM's proxy does (`IMAGE_REFUSALS`).
  With ``stream`` true both routes answer as the API streams (tests/fakes/image_events.py):
  ``partial_images`` partial image events, then the completed one with its usage;
  ``fake.ignores_stream`` answers JSON instead, as a server that ignores the parameter.
* ``POST /v1/chat/completions`` (endpoint ``"chat"``): a vision request with data-URL images
  (each decoded and recorded as a `DecodedImage`) and optional ``response_format``; the
  answer comes from queued replies (`queue_critique`, `queue_refusal`, `queue_reply`) or
  ``fake.critic``, which may be one of the real servers' critic personalities
  (`CRITIC_PERSONALITIES`: LocalAI, llama.cpp failing open, LM Studio small models, reasoning
  models, content parts, a strict critic filling every field). ``fake.unsupported_params``
  are refused as OpenAI or Mistral refuse parameters they do not take.
* ``GET /v1/models`` (endpoint ``"models"``) and ``GET /v1/models/{id}`` (endpoint ``"model"``):
  the ids in ``fake.models`` as real Model objects; an unknown id is 404 ``model_not_found``.

Errors use the real ``{"error": {"message", "type", "param", "code"}}`` envelope, so the SDK
raises its real exception classes; `OpenAIFault` builds the common ones for `fail_next`.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import html
import inspect
import io
import json
import math
import mimetypes
import re
import secrets
import string
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pybase64
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.faults import RECORD, DecodedImage, FakeServer, Fault, RecordedRequest
from tests.fakes.image_events import FIRST_PARTIAL_AT, stream_answer
from tests.fakes.pngs import render_image, with_prompt

__all__ = [
    "CRITIC_PERSONALITIES",
    "DEFAULT_API_KEY",
    "IMAGE_REFUSALS",
    "IMAGE_SERVERS",
    "MAX_EDIT_IMAGES",
    "MISSING_EDITS_ANSWERS",
    "STANDARD_SIZES",
    "CriticReply",
    "EditRequest",
    "FakeOpenAI",
    "Latencies",
    "OpenAIFault",
    "content_parts_critic",
    "current_prompt",
    "default_critic",
    "llamacpp_fail_open_critic",
    "lmstudio_small_model_critic",
    "localai_critic",
    "openai_error",
    "reasoning_critic",
    "strict_filler_critic",
    "user_text",
]

DEFAULT_API_KEY = "sk-test-fake-key-123"
DEFAULT_MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-2.5-flare", "gpt-5.4-mini")
"""Model ids the fake lists and retrieves by default (the bot's default models among them)."""
API_KEYS_URL = "https://platform.openai.com/account/api-keys"

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
"""Sizes every GPT image model accepts (plus ``auto``)."""
FREE_SIZE_MODELS = frozenset(
    {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
    }
)
"""OpenAI's models that take any valid ``WxH``, as openai 3.60 lists them
(types/image_generate_params.py, `size`: "For `gpt-image-2`, `gpt-image-2-2026-04-21`,
`gpt-image-2.5-sunburst`, `gpt-image-2.5-sunburst-2026-09-08`, `gpt-image-2.5-flare`, and
`gpt-image-2.5-flare-2026-09-08`, arbitrary resolutions are supported"). OpenAI's other models
(`OPENAI_MODEL_PREFIXES`) take only `STANDARD_SIZES`; self-hosted names take any ``WxH``."""
OPENAI_MODEL_PREFIXES = ("gpt-image", "chatgpt-image", "dall-e")
GPT_IMAGE_MODEL_PREFIXES = ("gpt-image", "chatgpt-image")
"""The GPT image models: they refuse ``response_format`` ("Legacy response format parameter
for retired image models. Unsupported for GPT image models, which always return
base64-encoded images.", image_generate_params.py) with 400 "Unknown parameter:
'response_format'." (lofcz/LLMTornado#155 on gpt-image-1-mini; vercel/ai#6102 on gpt-image-1)."""
MIN_PIXELS, MAX_PIXELS, MAX_EDGE = 655_360, 3840 * 2160, 3840
QUALITIES = ("low", "medium", "high", "xhigh", "max", "auto", "standard", "hd")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
EDIT_MIMETYPES = ("image/jpeg", "image/png", "image/webp")
CHAT_IMAGE_MIMETYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
CONTENT_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
MAX_IMAGE_PROMPT_CHARS = 32_000
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_EDIT_IMAGES = 16
"""Input images one edit takes. openai 3.60, types/image_edit_params.py, `image`: "For the GPT
image models (...) each image should be a `png`, `webp`, or `jpg` file less than 50MB. You can
provide up to 16 images." """
MAX_MASK_BYTES = 4 * 1024 * 1024
"""image_edit_params.py, `mask`: "Must be a valid PNG file, less than 4MB, and have the same
dimensions as `image`." """
INPUT_FIDELITY_NOT_TAKEN = ("gpt-image-2",)
"""Models that refuse `input_fidelity`. image_edit_params.py, `input_fidelity`: "Supports `high`
and `low` on `gpt-image-1.5`; `gpt-image-1-mini` supports only `low`. For `gpt-image-2`, omit
this parameter." The prefix takes in gpt-image-2.5 and 2.6 too: "Later models (gpt-image-2+)
always process inputs at high fidelity and are not sent the param" (ayunis-core/ayunis-core
PR #1279). Models the SDK does not name (gpt-image-1, self-hosted ones) are let through."""

_IMAGE_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 6240, "max": 8320}
_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*),(?P<data>.*)$", re.S
)
_SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ID_ALPHABET = string.ascii_letters + string.digits

Critic = Callable[
    [dict[str, Any]],
    "dict[str, Any] | str | CriticReply | Awaitable[dict[str, Any] | str | CriticReply]",
]
"""Turns a chat request body into the assistant content: a dict (JSON-dumped), a raw str, or
a whole `CriticReply` (content parts, reasoning fields, finish_reason)."""


def openai_error(
    message: str,
    type: str = "invalid_request_error",
    *,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Build the real OpenAI error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


MISSING_EDITS_ANSWERS: dict[str, Fault] = {
    # The real API's answer to a route it does not serve (the fake's own catch-all route).
    "openai": Fault(status=404, body=openai_error("Invalid URL (POST /v1/images/edits)")),
    # Ollama (Go's gin router): 404 text/plain "404 page not found" ("openai.NotFoundError: 404
    # page not found", 567-labs/instructor#491; Kiln-AI/Kiln#275).
    "ollama": Fault.raw(404, "404 page not found"),
    # vLLM and other FastAPI servers: FastAPI's default {"detail": "Not Found"}, and 405
    # {"detail": "Method Not Allowed"} for a path served only for other methods.
    "fastapi": Fault(status=404, body={"detail": "Not Found"}),
    "method_not_allowed": Fault(status=405, body={"detail": "Method Not Allowed"}),
    # LM Studio: 200 OK with {"error": "Unexpected endpoint or method. (POST /...)"}
    # (lmstudio-ai/lmstudio-bug-tracker#618, logged as "Returning 200 anyway", #2085).
    "lmstudio": Fault(
        status=200, body={"error": "Unexpected endpoint or method. (POST /v1/images/edits)"}
    ),
    # LocalAI routes /v1/images/generations, /inpainting and /upscale but no /v1/images/edits
    # (core/http/routes/openai.go); an unknown route gets notFoundHandler's JSON 404
    # (core/http/render.go: schema.ErrorResponse{Error: &schema.APIError{Message: "Resource
    # not found", Code: 404}}, whose `type` has no omitempty: core/schema/openai.go).
    "localai": Fault(
        status=404, body={"error": {"code": 404, "message": "Resource not found", "type": ""}}
    ),
}
"""What `/v1/images/edits` answers with ``fake.missing_edits`` set to a key: servers that have
no such route ("openai" stands in for any plain 404)."""

IMAGE_SERVERS = ("openai", "localai", "openedai-images")
"""How the image routes answer (``fake.image_server``); each from the server's source:

* ``"openai"``: base64 in ``b64_json`` (openai types/image.py: "Returned by default for GPT
  image models"); a GPT image model refuses ``response_format`` as the real API does.
* ``"localai"`` (mudler/LocalAI at 82c191a, core/http/endpoints/openai/image.go): a PNG
  (`output := outputFile.Name() + ".png"`) saved under /generated-images and answered as
  ``{"url": <BaseURL>/generated-images/b64NNN.png}`` unless the request says
  ``response_format: "b64_json"`` (`b64JSON := config.ResponseFormat == "b64_json"`), with an
  `id` and an all-zero `usage` (core/schema/openai.go `OpenAIResponse`, `Item` with `index`).
  The file route takes the API key (core/http/auth/middleware_test.go lists
  /generated-images/ among the protected routes); unknown parameters are ignored (Go's JSON
  decoding); there is no edits route (`MISSING_EDITS_ANSWERS["localai"]`).
* ``"openedai-images"`` (matatonic/openedai-images at cf1756c, images.py): ``response_format``
  defaults to "url", answered as ``{'url': f'data:image/png;base64,{b64_json}'}`` ("yeah it's
  lazy"), ``b64_json`` only when asked; the A1111 backend's PNG whatever ``output_format``
  says; no usage. Its /v1/images/edits declares the upload inside a pydantic model read from
  a JSON body (`async def edits(request: EditsRequest)`, `image: UploadFile`), so the SDK's
  multipart request fails FastAPI's validation with 422 (`EDITS_ANSWER_OPENEDAI`).
"""

EDITS_ANSWER_OPENEDAI = Fault(
    status=422,
    body={
        "detail": [
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
            }
        ]
    },
)
"""openedai-images' /v1/images/edits to a multipart request: FastAPI reads a pydantic-model
parameter from the body as JSON and, for any other content type, validates the raw bytes
(fastapi/routing.py, get_request_handler), which are no object (pydantic's
model_attributes_type)."""

IMAGE_REFUSALS = ("openai", "litellm")
"""How a parameter in ``fake.image_refusals`` is refused, each a 400:

* ``"openai"``: the real API's {"message": "Unknown parameter: '<name>'.", "type":
  "invalid_request_error", "param": "<name>", "code": "unknown_parameter"} (on
  response_format: lofcz/LLMTornado#155, vercel/ai#6102; on input_fidelity for DALL-E:
  lobehub/lobehub PR #9920).
* ``"litellm"``: LiteLLM's proxy in front of a model whose provider config lacks the
  parameter: get_optional_params_image_gen raises UnsupportedParamsError("Setting `<name>` is
  not supported by <provider>, <model>. To drop it from the call, set `litellm.drop_params =
  True`.") (litellm/utils.py), whose message gets the "litellm.UnsupportedParamsError: " prefix
  and status 400 (litellm/exceptions.py); the proxy's image endpoint wraps it in a
  ProxyException with type and param "None" (getattr defaults) and code "400"
  (litellm/proxy/image_endpoints/endpoints.py, litellm/proxy/_types.py).
"""


@dataclass
class EditRequest:
    """One request to ``/v1/images/edits`` as the fake received it (recorded before any check).

    ``images`` are the input images' bytes in the order sent (``image``, then ``image[]``
    parts), ``mimes`` their declared content types, ``field`` the form field they came in
    (``"image"``, ``"image[]"`` or ``""`` without any); ``fields`` the text fields (the last
    value of a repeated one); ``record`` the `RecordedRequest` (its ``status`` is the answer).
    """

    images: list[bytes]
    mimes: list[str]
    field: str
    prompt: str | None
    fields: dict[str, str]
    mask: bytes | None
    record: RecordedRequest

    @property
    def model(self) -> str:
        return self.fields.get("model") or "gpt-image-1"


def mask_key(key: str) -> str:
    """Mask an API key the way OpenAI's 401 message does (``sk-wro***-key``)."""
    if len(key) <= 10:
        return key[:3] + "***"
    return f"{key[:6]}{'*' * max(3, len(key) - 10)}{key[-4:]}"


class OpenAIFault(Fault):
    """`Fault` constructors for the real OpenAI error shapes."""

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Self:
        """Any status with the real error envelope."""
        body = openai_error(message, type, param=param, code=code)
        return cls(status=status, body=body, headers=dict(headers or {}), delay=delay)

    @classmethod
    def moderation(cls) -> Self:
        """400 ``moderation_blocked`` (image safety system) -> `openai.BadRequestError`."""
        return cls.error(
            400,
            "Your request was rejected as a result of our safety system. Your request may "
            "contain content that is not allowed by our safety system.",
            type="image_generation_user_error",
            code="moderation_blocked",
        )

    @classmethod
    def bad_request(
        cls, message: str, *, param: str | None = None, code: str | None = None
    ) -> Self:
        """400 ``invalid_request_error`` -> `openai.BadRequestError`."""
        return cls.error(400, message, param=param, code=code)

    @classmethod
    def invalid_api_key(cls, key: str = "sk-wrong-key") -> Self:
        """401 ``invalid_api_key`` -> `openai.AuthenticationError`."""
        return cls.error(
            401,
            f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
            f"{API_KEYS_URL}.",
            code="invalid_api_key",
        )

    @classmethod
    def payment_required(cls) -> Self:
        """402 as self-hosted gateways send it -> plain `openai.APIStatusError` (not retried)."""
        return cls.error(
            402,
            "Payment required: insufficient credits",
            type="insufficient_quota",
            code="insufficient_quota",
        )

    @classmethod
    def unsupported_region(cls) -> Self:
        """403 ``unsupported_country_region_territory`` -> `openai.PermissionDeniedError`."""
        return cls.error(
            403,
            "Country, region, or territory not supported",
            type="request_forbidden",
            code="unsupported_country_region_territory",
        )

    @classmethod
    def permission_denied(cls, model: str = "gpt-image-1") -> Self:
        """403 organization-not-verified -> `openai.PermissionDeniedError`."""
        return cls.error(
            403,
            f"Your organization must be verified to use the model `{model}`. Please go to: "
            "https://platform.openai.com/settings/organization/general and click on Verify "
            "Organization. If you just verified, it can take up to 15 minutes for access to "
            "propagate.",
        )

    @classmethod
    def rate_limit(cls, retry_after_ms: int | None = 5, *, retry_after: int | None = None) -> Self:
        """429 ``rate_limit_exceeded`` -> `openai.RateLimitError` (the SDK retries it).

        Sends ``retry-after-ms`` (if not None) and ``retry-after`` (seconds; defaults to
        ``ceil(retry_after_ms / 1000)``). The SDK prefers ``retry-after-ms``.
        """
        headers: dict[str, str] = {}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
            if retry_after is None:
                retry_after = max(1, math.ceil(retry_after_ms / 1000))
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        wait = f"{retry_after_ms}ms" if retry_after_ms is not None else f"{retry_after}s"
        return cls.error(
            429,
            "Rate limit reached for gpt-image-1 in organization org-fake on images per minute "
            f"(IPM): Limit 5, Used 5, Requested 1. Please try again in {wait}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )

    @classmethod
    def insufficient_quota(cls) -> Self:
        """429 ``insufficient_quota`` -> `openai.RateLimitError` (the SDK retries it too)."""
        return cls.error(
            429,
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            type="insufficient_quota",
            code="insufficient_quota",
        )

    @classmethod
    def server_error(cls) -> Self:
        """500 ``server_error`` -> `openai.InternalServerError` (retried)."""
        return cls.error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )

    @classmethod
    def service_unavailable(cls, retry_after: int | None = None) -> Self:
        """503 overloaded -> `openai.InternalServerError` (retried)."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls.error(
            503,
            "The server is overloaded or not ready yet.",
            type="server_error",
            headers=headers,
        )


@dataclass
class CriticReply:
    """One chat answer as a server sends it: ``content`` (a dict is JSON-dumped; a list is sent
    as content parts), and the reasoning fields self-hosted servers add (`reasoning_content`,
    `reasoning`: sent only when not None), ``finish_reason`` and ``refusal``."""

    content: dict[str, Any] | str | list[Any] | None
    finish_reason: str = "stop"
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


_QueuedReply = CriticReply


def user_text(request: Mapping[str, Any]) -> str:
    """All text of the user messages in a chat request, joined by newlines."""
    texts: list[str] = []
    for message in request.get("messages") or []:
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, Mapping)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            )
    return "\n".join(texts)


def current_prompt(request: Mapping[str, Any]) -> str | None:
    """The text between ``<current_prompt>`` and ``</current_prompt>`` in a chat request's
    user text (as sent, HTML-escaped), or None when there is none."""
    match = re.search(r"<current_prompt>(.*?)</current_prompt>", user_text(request), re.S)
    return match.group(1).strip() if match and match.group(1).strip() else None


@dataclass(frozen=True, slots=True)
class Latencies:
    """How long replies wait: ``image`` and ``chat`` seconds, each scaled by a factor in
    [1 − spread, 1 + spread] that the prompt fixes. Real models vary from call to call; keyed
    by the prompt, a benchmark can still tell what each of its rounds waited."""

    image: float = 0.0
    chat: float = 0.0
    spread: float = 0.0

    def for_image(self, prompt: str) -> float:
        """Seconds an image reply for this prompt waits."""
        return self._spread(self.image, "image:" + prompt)

    def for_chat(self, prompt: str) -> float:
        """Seconds a critique of an image drawn from this prompt waits."""
        return self._spread(self.chat, "chat:" + prompt)

    def _spread(self, seconds: float, key: str) -> float:
        if not self.spread:
            return seconds
        fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8]) / 2**64
        return seconds * (1 + self.spread * (2 * fraction - 1))


def default_critic(request: dict[str, Any]) -> dict[str, Any]:
    """Score rises with the number of earlier ``<critique `` blocks (5, 6, ... capped at 9).

    The revised prompt is the text between ``<current_prompt>`` and ``</current_prompt>``
    (fallback ``"a product photo"``) plus ``", softer studio lighting"``; the next step is a
    redraw. Like a critic under strict structured outputs (every property required, nullable
    ones given as null: https://platform.openai.com/docs/guides/structured-outputs), it
    answers every field of the schema.
    """
    text = user_text(request)
    current = current_prompt(request) or "a product photo"
    earlier = text.count("<critique ")
    return {
        "score": min(5 + earlier, 9),
        "fidelity": None,
        "strengths": ["clear product shot"],
        "problems": ["lighting is flat", "background is busy"],
        "revised_prompt": current + ", softer studio lighting",
        "next_step": "redraw",
        "edit_instruction": None,
    }


# --- critic personalities: what real servers answer to the strict json_schema request --------
#
# Each takes the critique a model means to give (`base`, the default critic unless a test
# scripts its own) and answers it the way that server does.

AnswerOf = Callable[[dict[str, Any]], dict[str, Any]]


def localai_critic(base: AnswerOf = default_critic, *, score: int | None = 11) -> Critic:
    """LocalAI with a llama.cpp model: the grammar it builds from the schema keeps every
    property, in alphabetical order (pkg/functions/grammars/json_schema.go sorts them), but
    its `Item` keeps only a schema's `type` and `properties` (pkg/functions/function_structure.go:
    `required` and `additionalProperties` are dropped) and its integer rule has no bounds
    (pkg/functions/grammars/bnf_rules.go), so a score outside 0..10 gets through (``score``,
    None: the base critic's). Every field is still there: the grammar lists them all.
    (mudler/LocalAI at 82c191a; core/http/endpoints/openai/chat.go builds the grammar for
    response_format json_schema and, when that fails, only logs "Failed generating grammar".)
    """

    def critic(request: dict[str, Any]) -> str:
        answer = base(request)
        if score is not None:
            answer["score"] = score
        return json.dumps(dict(sorted(answer.items())))

    return critic


def llamacpp_fail_open_critic(base: AnswerOf = default_critic) -> Critic:
    """llama.cpp's server when the grammar from the schema does not take: it logs
    "failed to parse grammar" and generates unconstrained, 200 OK (ggml-org/llama.cpp#19051;
    json_schema silently not enforced, #24097; a chat template handler that drops json_schema,
    PR #21537): the model writes prose around its JSON, with keys of its own."""

    def critic(request: dict[str, Any]) -> str:
        answer = {**base(request), "overall_impression": "a solid start {but flat}"}
        return (
            "Here is my critique of the draft:\n\n"
            + json.dumps(answer, indent=2)
            + "\n\nLet me know if you want another pass."
        )

    return critic


def lmstudio_small_model_critic(base: AnswerOf = default_critic) -> Critic:
    """LM Studio with a small model: "Not all models are capable of structured output,
    particularly LLMs below 7B parameters" (lmstudio.ai/docs/advanced/structured-output); they
    answer in a Markdown code block (clients strip ```json themselves,
    lmstudio-ai/lmstudio-bug-tracker#448; ```json from /v1/responses, #2403)."""

    def critic(request: dict[str, Any]) -> str:
        return "```json\n" + json.dumps(base(request), indent=2) + "\n```"

    return critic


REASONING = "The user wants a critique. The lighting looks flat; maybe {score: 6}? Let me answer."
"""What a reasoning model thinks before it answers (with braces that are not JSON)."""


def reasoning_critic(base: AnswerOf = default_critic, *, where: str = "think") -> Critic:
    """A reasoning model. ``where`` says where the server puts its thinking and its answer:

    * ``"think"``: both in `content`, the thinking in ``<think>…</think>`` first (vLLM
      without --reasoning-parser, triton-inference-server/perf_analyzer PR #433; Qwen3 whose
      parser failed, vllm-project/vllm#21130);
    * ``"separate"``: thinking in `reasoning_content`, the JSON in `content` (DeepSeek's API,
      llama.cpp --reasoning-format deepseek, vllm/entrypoints/openai/protocol.py before the
      rename);
    * ``"reasoning_content"``: everything in `reasoning_content`, `content` null (a guided
      answer filed as reasoning, vllm-project/vllm#15618);
    * ``"reasoning"``: everything in `reasoning`, `content` null (vLLM's current field name,
      vllm/entrypoints/openai/chat_completion/protocol.py; a JSON answer without a think block
      filed as reasoning, vllm-project/vllm#48863 and #50948; Ollama's field too,
      openai/openai.go `Message.Reasoning`).
    """
    if where not in ("think", "separate", "reasoning_content", "reasoning"):
        raise ValueError(f"unknown reasoning critic {where!r}")

    def critic(request: dict[str, Any]) -> CriticReply:
        answer = json.dumps(base(request))
        if where == "think":
            return CriticReply(f"<think>\n{REASONING}\n</think>\n\n{answer}")
        if where == "separate":
            return CriticReply(answer, reasoning_content=REASONING)
        return CriticReply(None, **{where: f"{REASONING}\n{answer}"})

    return critic


def content_parts_critic(base: AnswerOf = default_critic) -> Critic:
    """Mistral's reasoning models: `content` is a list of chunks, the thinking first
    (`{"type": "thinking", "thinking": [{"type": "text", ...}]}`), then the answer as text
    chunks (simonw/llm-mistral PR #39; vercel/ai PR #8072; BerriAI/litellm#16272)."""

    def critic(request: dict[str, Any]) -> CriticReply:
        answer = json.dumps(base(request))
        half = len(answer) // 2
        return CriticReply(
            [
                {"type": "thinking", "thinking": [{"type": "text", "text": REASONING}]},
                {"type": "text", "text": answer[:half]},
                {"type": "text", "text": answer[half:]},
            ]
        )

    return critic


def strict_filler_critic(base: AnswerOf = default_critic, *, fidelity: int = 0) -> Critic:
    """A critic under strict structured outputs, where every property is required and a
    nullable one is only nullable by its type (https://platform.openai.com/docs/guides/
    structured-outputs), that fills every field anyway: a number for `fidelity` on a text
    brief, an empty `edit_instruction` rather than null."""

    def critic(request: dict[str, Any]) -> dict[str, Any]:
        return {**base(request), "fidelity": fidelity, "edit_instruction": ""}

    return critic


CRITIC_PERSONALITIES: dict[str, Callable[[AnswerOf], Critic]] = {
    "localai": localai_critic,
    "llamacpp-fail-open": llamacpp_fail_open_critic,
    "lmstudio-small-model": lmstudio_small_model_critic,
    "think-in-content": lambda base: reasoning_critic(base, where="think"),
    "deepseek-reasoning": lambda base: reasoning_critic(base, where="separate"),
    "reasoning_content-only": lambda base: reasoning_critic(base, where="reasoning_content"),
    "reasoning-only": lambda base: reasoning_critic(base, where="reasoning"),
    "mistral-content-parts": content_parts_critic,
    "strict-filler": strict_filler_critic,
}
"""Every personality by name, each built on a base critic (for parametrized tests)."""


UNKNOWN_PARAMETER_ANSWERS = ("openai", "mistral")
"""How ``fake.unsupported_params`` are refused (see `FakeOpenAI._unsupported_param`)."""


class _BadRequest(Exception):
    """Raised by validators; becomes a 400 with the real error envelope."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.body = openai_error(message, type, param=param, code=code)


def _strict_schema_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """Check the strict-mode rules OpenAI enforces on every object in a JSON schema."""
    if not isinstance(schema, Mapping):
        return None
    where = f"In context={context!r}, "
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return where + "'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [name for name in properties if name not in required]
        if missing:
            return (
                where + "'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            if problem := _strict_schema_problem(sub, (*context, "properties", name)):
                return problem
    for key in ("items",):
        if problem := _strict_schema_problem(schema.get(key), (*context, key)):
            return problem
    for key in ("anyOf", "allOf"):
        for index, sub in enumerate(schema.get(key) or []):
            if problem := _strict_schema_problem(sub, (*context, key, str(index))):
                return problem
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            if problem := _strict_schema_problem(sub, (*context, key, name)):
                return problem
    return None


def _parse_size(size: str, model: str) -> tuple[int, int]:
    """Validate an image ``size`` for ``model`` and return (width, height)."""
    if size in STANDARD_SIZES:
        width, height = (int(part) for part in size.split("x"))
        return width, height
    fixed = model.startswith(OPENAI_MODEL_PREFIXES) and model not in FREE_SIZE_MODELS
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", size)
    if not fixed and match:
        width, height = int(match.group(1)), int(match.group(2))
        if (
            width % 16 == 0
            and height % 16 == 0
            and 1 / 3 <= width / height <= 3
            and max(width, height) <= MAX_EDGE
            and MIN_PIXELS <= width * height <= MAX_PIXELS
        ):
            return width, height
    if fixed:
        supported = "'1024x1024', '1024x1536', '1536x1024', and 'auto'"
        raise _BadRequest(
            f"Invalid value: '{size}'. Supported values are: {supported}.",
            param="size",
            code="invalid_value",
        )
    raise _BadRequest(
        f"Invalid size '{size}'. Requested resolution must have both edges divisible by 16, "
        f"an aspect ratio between 1:3 and 3:1, at most {MAX_EDGE} pixels per edge and between "
        f"{MIN_PIXELS} and {MAX_PIXELS} total pixels.",
        param="size",
        code="invalid_value",
    )


def _decoded(blob: bytes) -> tuple[str, int, int, int]:
    """Return (Pillow's format, byte count, width, height) of an image that decodes completely;
    raise what Pillow raises otherwise. A JPEG decodes at 1/8 scale: every byte is still read
    and checked (a truncated file still fails), for a third of the fake's CPU."""
    with Image.open(io.BytesIO(blob)) as image:
        width, height = image.size
        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
        image.load()
        return image.format or "", len(blob), width, height


def _json_or_text(raw: bytes, content_type: str) -> Any:
    """Return the body parsed if it is declared as JSON and is JSON; otherwise its text (None
    when empty): a body not declared as JSON is not read as JSON."""
    if not raw:
        return None
    if content_type == "application/json":
        with contextlib.suppress(ValueError):
            return json.loads(raw)
    return raw.decode("utf-8", "replace")


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        listed = ", ".join(f"'{choice}'" for choice in choices)
        raise _BadRequest(
            f"Invalid value: '{value}'. Supported values are: {listed}.",
            param=name,
            code="invalid_value",
        )


def _check_input_fidelity(value: Any, model: str) -> None:
    """Refuse `input_fidelity` as the real API does for models that take no such parameter."""
    if value is None:
        return
    _check_choice(value, "input_fidelity", ("high", "low"))
    if model.startswith("dall-e"):
        # "DALL-E 2: `400 Unknown parameter: 'input_fidelity'`" (lobehub/lobehub PR #9920).
        raise _BadRequest(
            "Unknown parameter: 'input_fidelity'.",
            param="input_fidelity",
            code="unknown_parameter",
        )
    if model.startswith(INPUT_FIDELITY_NOT_TAKEN):
        # The answer for gpt-image-2: {"message": "The model 'gpt-image-2' does not support the
        # 'input_fidelity' parameter.", "type": "image_generation_user_error", "code":
        # "invalid_input_fidelity_model"} (pydantic/pydantic-ai#5413, there through the
        # Responses API's image tool, so its param read "tools").
        raise _BadRequest(
            f"The model '{model}' does not support the 'input_fidelity' parameter.",
            param="input_fidelity",
            code="invalid_input_fidelity_model",
            type="image_generation_user_error",
        )
    if model.startswith("gpt-image-1-mini") and value == "high":
        # "gpt-image-1-mini supports only `low`" (the SDK); a 400 naming input_fidelity
        # ("input_fidelity 'high' is only supported for model ...", lobehub PR #9920).
        raise _BadRequest(
            f"input_fidelity 'high' is not supported for model {model}: it supports only 'low'.",
            param="input_fidelity",
            code="invalid_value",
        )


def _int_param(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _BadRequest(
            f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} "
            "instead.",
            param=name,
            code="invalid_type",
        ) from None
    if number < low:
        raise _BadRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but "
            f"got {number} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if number > high:
        raise _BadRequest(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but "
            f"got {number} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return number


class FakeOpenAI(FakeServer):
    """Fake OpenAI images + chat API. Use ``async with FakeOpenAI() as fake`` or start/stop.

    Attributes:
        api_key: The only accepted bearer key.
        image_latency: Seconds every images/edits reply waits (after validation).
        chat_latency: Seconds every chat reply waits.
        latency_spread: Each reply's wait is its latency × a factor in [1 − spread,
            1 + spread] fixed by the prompt (`Latencies`); 0 (the default) waits exactly.
        critic: Produces chat content when nothing is queued; see `Critic`.
        require_vision: Reject chat requests without any image part (400), as a guard that
            the bot really sends its draft.
        missing_edits: None, or a key of `MISSING_EDITS_ANSWERS`: ``/v1/images/edits`` then
            answers as a server without that route does (the request is still recorded).
        image_server: A key of `IMAGE_SERVERS`: how both image routes answer ("openai").
        image_refusals: Image request parameters refused with a 400, each with the style of
            `IMAGE_REFUSALS` (``{"output_format": "litellm"}``).
        generated_images: The files ``GET /generated-images/<name>`` serves (LocalAI's URLs
            point there; tests may add their own).
        generated_images_need_key: Whether that route wants the API key (LocalAI with API
            keys on); False serves it to anyone (LocalAI without keys, or a CDN).
        unsupported_params: Chat request parameters this server refuses (e.g.
            ``{"safety_identifier"}``), the way ``unsupported_param_answer`` says: "openai"
            (400, also Azure's wording) or "mistral" (422 extra_forbidden).
        requests: Every `RecordedRequest`, oldest first.
        edit_requests: Every `EditRequest`, oldest first.
    """

    endpoints: ClassVar[tuple[str, ...]] = (
        "images",
        "edits",
        "chat",
        "models",
        "model",
        "generated",
    )

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        image_latency: float = 0.0,
        chat_latency: float = 0.0,
        latency_spread: float = 0.0,
        critic: Critic | None = None,
        require_vision: bool = True,
        render: Callable[[int, int, str], bytes] | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.image_latency = image_latency
        self.chat_latency = chat_latency
        self.latency_spread = latency_spread
        self.critic: Critic = critic or default_critic
        self.require_vision = require_vision
        # Draws the picture for (width, height, format) before the prompt is embedded; the
        # default is the cached test picture. Benchmarks pass a heavier, photo-like one.
        self.render: Callable[[int, int, str], bytes] = render or render_image
        self._replies: deque[_QueuedReply] = deque()
        self.models: list[str] = list(DEFAULT_MODELS)
        self.missing_edits: str | None = None
        self.edit_requests: list[EditRequest] = []
        self.image_server = "openai"
        self.image_refusals: dict[str, str] = {}
        self.generated_images: dict[str, bytes] = {}
        self.generated_images_need_key = True
        self.unsupported_params: set[str] = set()
        self.unsupported_param_answer = "openai"
        # A server that takes `stream` but answers JSON all the same (one that ignores
        # parameters it does not know); to refuse it with a 400 instead, use image_refusals.
        self.ignores_stream = False
        # When the first partial image goes out, as a fraction of the image's latency.
        self.first_partial_at = FIRST_PARTIAL_AT
        # Awaited before a stream's completed event (tests: "after the preview is shown").
        self.before_completed: Callable[[], Awaitable[None]] | None = None
        # An off-spec server whose stream ends without the completed event.
        self.stream_ends_early = False

    def reset(self) -> None:
        """Forget recorded requests (edit requests included) and queued faults."""
        super().reset()
        self.edit_requests.clear()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, ready for ``AsyncOpenAI(base_url=...)``."""
        return self.root_url + "/v1"

    @property
    def latencies(self) -> Latencies:
        """The reply waits as now set."""
        return Latencies(self.image_latency, self.chat_latency, self.latency_spread)

    # --- scripting ----------------------------------------------------------------------

    def fail_next(self, endpoint: str, fault: Fault, count: int = 1) -> None:
        """Answer the next ``count`` requests to ``endpoint`` (images/edits/chat) with ``fault``."""
        if endpoint not in self.endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {self.endpoints}")
        self.faults.push(endpoint, fault, count)

    def queue_critique(
        self, content: dict[str, Any] | str, count: int = 1, *, finish_reason: str = "stop"
    ) -> None:
        """Make the next ``count`` chat replies carry ``content`` (a dict is JSON-dumped)."""
        self._replies.extend([_QueuedReply(content, finish_reason)] * count)

    def queue_refusal(
        self, message: str = "I'm sorry, I can't help with that.", count: int = 1
    ) -> None:
        """Make the next ``count`` chat replies a structured-outputs refusal (content null)."""
        self._replies.extend([_QueuedReply(None, "stop", refusal=message)] * count)

    def queue_reply(self, reply: CriticReply, count: int = 1) -> None:
        """Make the next ``count`` chat replies this whole reply (content parts, reasoning
        fields, finish_reason)."""
        self._replies.extend([reply] * count)

    @property
    def chat_images(self) -> list[DecodedImage]:
        """Every image decoded from chat requests, oldest first."""
        return [image for record in self.requests_to("chat") for image in record.images]

    # --- plumbing -----------------------------------------------------------------------

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/images/generations", self._images, name="images")
        app.router.add_post("/v1/images/edits", self._edits, name="edits")
        app.router.add_post("/v1/chat/completions", self._chat, name="chat")
        app.router.add_get("/v1/models", self._list_models, name="models")
        app.router.add_get("/v1/models/{model:.+}", self._retrieve_model, name="model")
        app.router.add_get("/generated-images/{name}", self._generated, name="generated")
        app.router.add_route("*", "/{tail:.*}", self._not_found, name="unknown")

    def _headers(self, started: float | None = None) -> dict[str, str]:
        elapsed = 0 if started is None else int((time.monotonic() - started) * 1000)
        return {
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "openai-processing-ms": str(elapsed),
            "openai-version": "2020-10-01",
        }

    def _json(self, payload: Any, record: RecordedRequest, status: int = 200) -> web.Response:
        return web.json_response(payload, status=status, headers=self._headers(record.started_at))

    def _auth_error(self, request: web.Request, record: RecordedRequest) -> web.Response | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            body = openai_error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                f"obtain an API key from {API_KEYS_URL}."
            )
            return self._json(body, record, 401)
        if key != self.api_key:
            fault = OpenAIFault.invalid_api_key(key)
            return fault.to_response(self._headers(record.started_at))
        return None

    async def _prelude(
        self, request: web.Request, *, multipart: bool
    ) -> tuple[RecordedRequest, web.StreamResponse | None]:
        """Record the body, then apply a queued fault and the auth check (in that order)."""
        record = request[RECORD]
        if multipart:
            await self.read_multipart(request, record)
        else:
            record.json = _json_or_text(await request.read(), request.content_type)
        fault_response = await self.apply_fault(request, record.endpoint, self._headers())
        if fault_response is not None:
            return record, fault_response
        return record, self._auth_error(request, record)

    def _json_object(self, record: RecordedRequest) -> dict[str, Any]:
        if not isinstance(record.json, dict):
            raise _BadRequest(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON. If you have trouble figuring "
                "out how to fix this, please contact us through our help center at "
                "help.openai.com.)"
            )
        return record.json

    async def _not_found(self, request: web.Request) -> web.Response:
        record = request[RECORD]
        body = openai_error(f"Invalid URL ({request.method} {request.path})")
        return self._json(body, record, 404)

    # --- images -------------------------------------------------------------------------

    async def _image_reply(
        self,
        record: RecordedRequest,
        params: Mapping[str, Any],
        size: tuple[int, int],
        input_images: int = 0,
        *,
        request: web.Request | None = None,
    ) -> web.StreamResponse:
        """The image answer: JSON, or with `request` given and `stream` asked for, an event
        stream (`_streams`)."""
        prompt = str(params["prompt"])
        # LocalAI and openedai-images answer the PNG their backend wrote (`IMAGE_SERVERS`).
        fmt = "png" if self.image_server != "openai" else params.get("output_format") or "png"
        n = _int_param(params.get("n"), "n", 1, 10) or 1
        quality = params.get("quality") or "auto"
        quality = {"auto": "medium", "standard": "medium", "hd": "high"}.get(quality, quality)
        width, height = size
        # The first render of a size takes ~0.1 s: keep it off the shared event loop.
        base = picture = await asyncio.to_thread(self.render, width, height, fmt)
        if fmt in ("png", "jpeg"):
            picture = with_prompt(picture, prompt)
        if self.image_server != "openai":
            return self._self_hosted_reply(record, params, picture, n)
        b64 = pybase64.b64encode_as_string(picture)
        text_tokens = max(1, len(prompt) // 4)
        image_in = 323 * input_images
        image_out = round(_IMAGE_TOKENS_1024[quality] * width * height / 1024**2)
        payload = {
            "created": int(time.time()),
            "data": [{"b64_json": b64} for _ in range(n)],
            "background": "transparent" if params.get("background") == "transparent" else "opaque",
            "output_format": fmt,
            "quality": quality,
            "size": f"{width}x{height}",
            "usage": {
                "input_tokens": text_tokens + image_in,
                "input_tokens_details": {"image_tokens": image_in, "text_tokens": text_tokens},
                "output_tokens": image_out * n,
                "total_tokens": text_tokens + image_in + image_out * n,
                "output_tokens_details": {"image_tokens": image_out * n, "text_tokens": 0},
            },
        }
        if request is not None and self._streams(params):
            return await self._streamed(request, record, params, base, picture, payload)
        return self._json(payload, record)

    def _streams(self, params: Mapping[str, Any]) -> bool:
        """Whether to answer as an event stream: `stream` true (JSON true, or the multipart
        field "true" the SDK sends) on a server that streams (`ignores_stream` off). Checks
        `partial_images` (0..3) as the API does."""
        if str(params.get("stream")).lower() not in ("true", "1"):
            return False
        _int_param(params.get("partial_images"), "partial_images", 0, 3)
        return not self.ignores_stream

    async def _streamed(
        self,
        request: web.Request,
        record: RecordedRequest,
        params: Mapping[str, Any],
        base: bytes,
        picture: bytes,
        payload: Mapping[str, Any],
    ) -> web.StreamResponse:
        """The answer as Server-Sent Events (tests/fakes/image_events.py): the partial
        images (the picture carrying "partial <i>: <prompt>"), then the completed one."""
        prompt = str(params["prompt"])
        count = _int_param(params.get("partial_images"), "partial_images", 0, 3) or 0
        fmt = str(payload["output_format"])
        partials = [
            with_prompt(base, f"partial {index}: {prompt}") if fmt in ("png", "jpeg") else base
            for index in range(count)
        ]
        keys = ("background", "output_format", "quality", "size")
        edit = record.endpoint == "edits"
        return await stream_answer(
            request,
            self._headers(record.started_at),
            prefix="image_edit" if edit else "image_generation",
            partials=partials,
            final=picture,
            common={key: payload[key] for key in keys},
            usage=payload["usage"],
            safety_identifier=params.get("safety_identifier") or None,
            wait_until=lambda seconds: self.finish_latency(record, seconds),
            latency=self.latencies.for_image(prompt),
            first_partial_at=self.first_partial_at,
            before_completed=self.before_completed,
            completed=not self.stream_ends_early,
        )

    def _self_hosted_reply(
        self, record: RecordedRequest, params: Mapping[str, Any], picture: bytes, n: int
    ) -> web.Response:
        """LocalAI's or openedai-images' answer (`IMAGE_SERVERS`)."""
        b64 = pybase64.b64encode_as_string(picture)
        wants_b64 = params.get("response_format") == "b64_json"
        if self.image_server == "openedai-images":
            item = {"b64_json": b64} if wants_b64 else {"url": f"data:image/png;base64,{b64}"}
            return self._json({"created": int(time.time()), "data": [item] * n}, record)
        items: list[dict[str, Any]] = []
        for index in range(n):
            if wants_b64:
                items.append({"index": index, "b64_json": b64})
                continue
            # os.CreateTemp(tempDir, "b64") + ".png", joined onto BaseURL(c): the request's
            # own scheme and Host (core/http/middleware/baseurl.go).
            name = f"b64{secrets.randbelow(10**9):09d}.png"
            self.generated_images[name] = picture
            items.append({"index": index, "url": f"{self.root_url}/generated-images/{name}"})
        usage = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "input_tokens_details": {"text_tokens": 0, "image_tokens": 0},
        }
        payload = {
            "created": int(time.time()),
            "id": str(uuid.uuid4()),
            "data": items,
            "usage": usage,
        }
        return self._json(payload, record)

    async def _generated(self, request: web.Request) -> web.StreamResponse:
        """LocalAI's static /generated-images/ route (e.Static, core/http/app.go): the file,
        behind the API key; a missing one is its JSON 404."""
        record, early = await self._prelude(request, multipart=False)
        if early is not None and (self.generated_images_need_key or record.fault is not None):
            return early
        name = request.match_info["name"]
        picture = self.generated_images.get(name)
        if picture is None:
            return MISSING_EDITS_ANSWERS["localai"].to_response(self._headers(record.started_at))
        # Go's static file server types a file by its extension (net/http ServeContent).
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=picture, content_type=kind, headers=self._headers())

    def _refused_param(self, params: Mapping[str, Any], model: str) -> _BadRequest | None:
        """The 400 for the first parameter this server refuses (`IMAGE_REFUSALS`), if any."""
        refusals = dict(self.image_refusals)
        if self.image_server == "openai" and model.startswith(GPT_IMAGE_MODEL_PREFIXES):
            refusals.setdefault("response_format", "openai")
        name = next((name for name in params if name in refusals), None)
        if name is None:
            return None
        if refusals[name] == "litellm":
            return _BadRequest(
                f"litellm.UnsupportedParamsError: Setting `{name}` is not supported by "
                f"openai, {model}. To drop it from the call, set `litellm.drop_params = True`.",
                param="None",
                code="400",
                type="None",
            )
        return _BadRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")

    @staticmethod
    def _check_image_params(params: Mapping[str, Any]) -> None:
        prompt = params.get("prompt")
        if prompt is None or prompt == "":
            raise _BadRequest(
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if len(str(prompt)) > MAX_IMAGE_PROMPT_CHARS:
            raise _BadRequest(
                f"Invalid 'prompt': string too long. Expected a string with maximum length "
                f"{MAX_IMAGE_PROMPT_CHARS}, but got a string with length {len(str(prompt))} "
                "instead.",
                param="prompt",
                code="string_above_max_length",
            )
        _int_param(params.get("n"), "n", 1, 10)
        _check_choice(params.get("quality"), "quality", QUALITIES)
        _check_choice(params.get("output_format"), "output_format", OUTPUT_FORMATS)
        _check_choice(params.get("background"), "background", ("transparent", "opaque", "auto"))

    async def _images(self, request: web.Request) -> web.StreamResponse:
        record, early = await self._prelude(request, multipart=False)
        if early is not None:
            return early
        try:
            params = self._json_object(record)
            refusal = self._refused_param(params, str(params.get("model") or "gpt-image-1"))
            if refusal is not None:
                raise refusal
            self._check_image_params(params)
            _check_choice(params.get("moderation"), "moderation", ("low", "auto"))
            size_param = params.get("size") or "auto"
            model = str(params.get("model") or "gpt-image-1")
            size = (1024, 1024) if size_param == "auto" else _parse_size(size_param, model)
        except _BadRequest as exc:
            return self._json(exc.body, record, 400)
        try:
            reply = await self._image_reply(record, params, size, request=request)
        except _BadRequest as exc:
            return self._json(exc.body, record, 400)
        await self.finish_latency(record, self.latencies.for_image(str(params["prompt"])))
        return reply

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        missing = self.missing_edits or ("localai" if self.image_server == "localai" else None)
        if missing is not None or self.image_server == "openedai-images":
            answer = (
                MISSING_EDITS_ANSWERS[missing] if missing is not None else EDITS_ANSWER_OPENEDAI
            )
            record = request[RECORD]
            await self.read_multipart(request, record)
            self.edit_requests.append(self._edit_request(record))
            return answer.to_response(self._headers(record.started_at))
        record, early = await self._prelude(request, multipart=True)
        self.edit_requests.append(self._edit_request(record))
        if early is not None:
            return early
        try:
            if not record.files and not record.form:
                raise _BadRequest(
                    "Invalid Content-Type header (application/json), expected "
                    "multipart/form-data. (HINT: If you're using curl, you can pass -F "
                    "'key=value' to send multipart/form-data.)"
                )
            params: dict[str, Any] = {name: self.form_value(record, name) for name in record.form}
            model = str(params.get("model") or "gpt-image-1")
            refusal = self._refused_param(params, model)
            if refusal is not None:
                raise refusal
            self._check_image_params(params)
            _check_input_fidelity(params.get("input_fidelity"), model)
            uploads = self._edit_uploads(record)
            self._check_mask(record, uploads[0])
            record.images.extend(uploads)
            size_param = params.get("size") or "auto"
            if size_param == "auto":
                first = uploads[0]
                size = (
                    (1536, 1024)
                    if first.width > first.height * 1.2
                    else (1024, 1536)
                    if first.height > first.width * 1.2
                    else (1024, 1024)
                )
            else:
                size = _parse_size(size_param, model)
        except _BadRequest as exc:
            return self._json(exc.body, record, 400)
        try:
            reply = await self._image_reply(
                record, params, size, input_images=len(uploads), request=request
            )
        except _BadRequest as exc:
            return self._json(exc.body, record, 400)
        await self.finish_latency(record, self.latencies.for_image(str(params["prompt"])))
        return reply

    def _edit_request(self, record: RecordedRequest) -> EditRequest:
        names = [name for name in ("image", "image[]") if name in record.files]
        images = [blob for name in names for blob in record.files[name]]
        mimes = [mime for name in names for mime in record.file_types[name]]
        fields = {name: self.form_value(record, name) or "" for name in record.form}
        mask = record.files.get("mask")
        return EditRequest(
            images=images,
            mimes=mimes,
            field=names[-1] if names else "",
            prompt=self.form_value(record, "prompt"),
            fields=fields,
            mask=mask[0] if mask else None,
            record=record,
        )

    @staticmethod
    def _edit_uploads(record: RecordedRequest) -> list[DecodedImage]:
        """Check the uploaded ``image``/``image[]`` files like the real API and decode them."""
        names = [name for name in ("image", "image[]") if name in record.files]
        if not names:
            raise _BadRequest(
                "Missing required parameter: 'image'.",
                param="image",
                code="missing_required_parameter",
            )
        count = sum(len(record.files[name]) for name in names)
        if count > MAX_EDIT_IMAGES:
            # The API's error for any over-long array (e.g. "Invalid 'tools': array too long.
            # Expected an array with maximum length 128, but got an array with length 325
            # instead.", param "tools", code "array_above_max_length": vishalmysore/Tools4AI#16).
            raise _BadRequest(
                f"Invalid 'image': array too long. Expected an array with maximum length "
                f"{MAX_EDIT_IMAGES}, but got an array with length {count} instead.",
                param="image",
                code="array_above_max_length",
            )
        decoded: list[DecodedImage] = []
        for name in names:
            for blob, mime in zip(record.files[name], record.file_types[name], strict=True):
                field = name.removesuffix("[]")
                if not mime:
                    raise _BadRequest(
                        f"Invalid file '{field}': failed to determine mimetype. Ensure you are "
                        "providing the file's mimetype as part of the 'Content-Type' header.",
                        param=field,
                        code="missing_file_mimetype",
                    )
                if mime not in EDIT_MIMETYPES:
                    raise _BadRequest(
                        f"Invalid file '{field}': unsupported mimetype ('{mime}'). Supported "
                        "file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                        param=field,
                        code="unsupported_file_mimetype",
                    )
                if len(blob) > MAX_UPLOAD_BYTES:
                    raise _BadRequest(
                        f"Invalid file '{field}': file too large. Maximum size is 50MB.",
                        param=field,
                        code="file_too_large",
                    )
                try:
                    decoded.append(DecodedImage(mime, *_decoded(blob)))
                except (UnidentifiedImageError, OSError, ValueError):
                    raise _BadRequest(
                        f"Invalid image file or mode for image {len(decoded) + 1}, please "
                        "check your image file.",
                        param=field,
                        code="invalid_image_file",
                    ) from None
        return decoded

    @staticmethod
    def _check_mask(record: RecordedRequest, first: DecodedImage) -> None:
        """An optional ``mask`` must be a PNG under 4 MB the size of the first image (the SDK's
        `mask` docs, `MAX_MASK_BYTES`; the messages are the fake's own wording)."""
        masks = record.files.get("mask")
        if not masks:
            return
        blob, mime = masks[0], record.file_types["mask"][0]
        try:
            image_format, size, width, height = _decoded(blob)
        except (UnidentifiedImageError, OSError, ValueError):
            image_format, size, width, height = "", len(blob), 0, 0
        if mime != "image/png" or image_format != "PNG" or size >= MAX_MASK_BYTES:
            raise _BadRequest(
                "Invalid file 'mask': the mask must be a valid PNG file, less than 4MB.",
                param="mask",
                code="invalid_image_file",
            )
        if (width, height) != (first.width, first.height):
            raise _BadRequest(
                "Invalid file 'mask': the mask must have the same dimensions as the first image.",
                param="mask",
                code="invalid_image_dimensions",
            )

    # --- models -------------------------------------------------------------------------

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        owner = "openai" if model.startswith(("gpt-image", "dall-e")) else "system"
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": owner}

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        record, early = await self._prelude(request, multipart=False)
        if early is not None:
            return early
        data = [self._model_object(model) for model in self.models]
        return self._json({"object": "list", "data": data}, record)

    async def _retrieve_model(self, request: web.Request) -> web.StreamResponse:
        record, early = await self._prelude(request, multipart=False)
        if early is not None:
            return early
        model = request.match_info["model"]
        if model not in self.models:
            body = openai_error(
                f"The model `{model}` does not exist or you do not have access to it.",
                param=None,
                code="model_not_found",
            )
            return self._json(body, record, 404)
        return self._json(self._model_object(model), record)

    # --- chat ---------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record, early = await self._prelude(request, multipart=False)
        if early is not None:
            return early
        try:
            body = self._json_object(record)
            if refused := self._unsupported_param(body):
                return self._json(refused[1], record, refused[0])
            self._check_chat(body, record)
        except _BadRequest as exc:
            return self._json(exc.body, record, 400)
        prompt = html.unescape(current_prompt(body) or "")
        await self.finish_latency(record, self.latencies.for_chat(prompt))
        reply = await self._next_reply(body)
        return self._json(self._completion(body, record, reply), record)

    def _check_chat(self, body: Mapping[str, Any], record: RecordedRequest) -> None:
        for name in ("model", "messages"):
            if not body.get(name):
                raise _BadRequest(
                    f"Missing required parameter: '{name}'.",
                    param=name,
                    code="missing_required_parameter",
                )
        messages = body["messages"]
        if not isinstance(messages, list):
            raise _BadRequest(
                "Invalid type for 'messages': expected an array, but got an object instead.",
                param="messages",
                code="invalid_type",
            )
        for m_index, message in enumerate(messages):
            content = message.get("content") if isinstance(message, Mapping) else None
            if not isinstance(content, list):
                continue
            for p_index, part in enumerate(content):
                where = f"messages[{m_index}].content[{p_index}]"
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind is None:
                    raise _BadRequest(
                        f"Missing required parameter: '{where}.type'.",
                        param=f"{where}.type",
                        code="missing_required_parameter",
                    )
                _check_choice(kind, f"{where}.type", CONTENT_PART_TYPES)
                if kind == "image_url":
                    record.images.append(self._decode_image_part(part, where))
        identifier = body.get("safety_identifier")
        if isinstance(identifier, str) and len(identifier) > 128:
            # completion_create_params.py: "with a maximum length of 128 characters"; the
            # API's wording for an over-long string (as for `prompt` above).
            raise _BadRequest(
                "Invalid 'safety_identifier': string too long. Expected a string with maximum "
                f"length 128, but got a string with length {len(identifier)} instead.",
                param="safety_identifier",
                code="string_above_max_length",
            )
        if self.require_vision and not record.images:
            raise _BadRequest(
                "FakeOpenAI: expected a vision request with at least one image_url part.",
                param="messages",
                code="fake_expected_vision_request",
            )
        self._check_response_format(body.get("response_format"))

    @staticmethod
    def _decode_image_part(part: Mapping[str, Any], where: str) -> DecodedImage:
        image_url = part.get("image_url")
        url = image_url.get("url") if isinstance(image_url, Mapping) else None
        if not isinstance(url, str):
            raise _BadRequest(
                f"Missing required parameter: '{where}.image_url.url'.",
                param=f"{where}.image_url.url",
                code="missing_required_parameter",
            )
        detail = image_url.get("detail") if isinstance(image_url, Mapping) else None
        _check_choice(detail, f"{where}.image_url.detail", ("low", "high", "auto"))
        match = _DATA_URL.match(url)
        if match is None:
            raise _BadRequest(
                f"Error while downloading {url[:200]}.",
                param="url",
                code="invalid_image_url",
            )
        mime = match.group("mime") or ""
        unsupported = _BadRequest(
            "You uploaded an unsupported image. Please make sure your image has of one the "
            "following formats: ['png', 'jpeg', 'gif', 'webp'].",
            code="invalid_image_format",
        )
        if mime not in CHAT_IMAGE_MIMETYPES or ";base64" not in match.group("params"):
            raise unsupported
        try:
            blob = pybase64.b64decode(match.group("data"), validate=True)
            return DecodedImage(mime, *_decoded(blob), detail)
        except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
            raise _BadRequest(
                "Invalid image data. Please make sure the image is valid base64-encoded "
                "image data.",
                code="invalid_image_format",
            ) from None

    @staticmethod
    def _check_response_format(response_format: Any) -> None:
        if response_format is None:
            return
        if not isinstance(response_format, Mapping):
            raise _BadRequest(
                "Invalid type for 'response_format': expected an object.",
                param="response_format",
                code="invalid_type",
            )
        kind = response_format.get("type")
        _check_choice(kind, "response_format.type", ("text", "json_object", "json_schema"))
        if kind != "json_schema":
            return
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping):
            raise _BadRequest(
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
                code="missing_required_parameter",
            )
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise _BadRequest(
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name",
                code="missing_required_parameter",
            )
        if not _SCHEMA_NAME.match(name):
            raise _BadRequest(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param="response_format.json_schema.name",
                code="invalid_value",
            )
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, Mapping):
            raise _BadRequest(
                "Invalid type for 'response_format.json_schema.schema': expected an object.",
                param="response_format.json_schema.schema",
                code="invalid_type",
            )
        if spec.get("strict") and (problem := _strict_schema_problem(schema)):
            raise _BadRequest(
                f"Invalid schema for response_format '{name}': {problem}",
                param="response_format",
                code="invalid_json_schema",
            )

    def _unsupported_param(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The (status, body) a server that does not take one of the request's parameters
        answers: OpenAI and Azure 400 "Unrecognized request argument supplied: <name>" with
        param null (Azure on max_completion_tokens, OpenHands/OpenHands#6777); Mistral 422
        with pydantic's extra_forbidden (on max_completion_tokens,
        editor-code-assistant/eca#231)."""
        name = next((name for name in body if name in self.unsupported_params), None)
        if name is None:
            return None
        if self.unsupported_param_answer == "mistral":
            detail = {
                "type": "extra_forbidden",
                "loc": ["body", name],
                "msg": "Extra inputs are not permitted",
                "input": body[name],
            }
            return 422, {
                "object": "error",
                "message": {"detail": [detail]},
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        return 400, openai_error(f"Unrecognized request argument supplied: {name}")

    async def _next_reply(self, body: dict[str, Any]) -> _QueuedReply:
        if self._replies:
            return self._replies.popleft()
        content = self.critic(body)
        if inspect.isawaitable(content):
            content = await content
        return content if isinstance(content, CriticReply) else _QueuedReply(content)

    def _completion(
        self, body: Mapping[str, Any], record: RecordedRequest, reply: _QueuedReply
    ) -> dict[str, Any]:
        content = reply.content
        text = json.dumps(content) if isinstance(content, dict) else content
        finish_reason = reply.finish_reason
        written = text if isinstance(text, str) else json.dumps(text) if text else ""
        reasoning = (reply.reasoning_content or "") + (reply.reasoning or "")
        completion_tokens = max(1, len(written or reply.refusal or "") // 4)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and isinstance(text, str) and completion_tokens > limit:
            text, completion_tokens, finish_reason = text[: limit * 4], limit, "length"
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": reply.refusal,
            "annotations": [],
        }
        for name in ("reasoning_content", "reasoning"):
            if (value := getattr(reply, name)) is not None:
                message[name] = value  # the servers' own field, next to content
        completion_tokens += len(reasoning) // 4
        prompt_text_tokens = max(1, len(user_text(body)) // 4)
        image_tokens = 255 * len(record.images)
        prompt_tokens = prompt_text_tokens + image_tokens
        return {
            "id": "chatcmpl-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(29)),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": len(reasoning) // 4,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake0openai",
        }

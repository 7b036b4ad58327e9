"""What an OpenAI-compatible image server takes and refuses: the optional parameters the bot
sends only where the installed SDK's documentation says the model takes them, which of them a
refusal names (so they can be dropped and the request asked again, unbilled), and the answers
of a server without an edits endpoint."""

from __future__ import annotations

import json
import re

import openai

from bot.backends.errors import BackendError, Rejected, SettingRefused
from bot.backends.openai_common import (
    BLOCKED_CODES,
    error_code,
    server_reason,
    translate_openai_error,
)

INPUT_FIDELITY_PREFIXES = ("gpt-image-1.5",)
"""The models (and their dated snapshots) that take `input_fidelity="high"`. The rule is the
installed SDK's own (openai 3.60, types/image_edit_params.py, `input_fidelity`): "Supports
`high` and `low` on `gpt-image-1.5`; `gpt-image-1-mini` supports only `low`. For
`gpt-image-2`, omit this parameter. Defaults to `low` on supported models." Every other model
(gpt-image-2 and later, gpt-image-1-mini, self-hosted ones) is sent none."""

GPT_IMAGE_PREFIXES = ("gpt-image-", "chatgpt-image-")
"""What the SDK calls "the GPT image models" (types/image_model.py lists gpt-image-1,
gpt-image-1-mini, gpt-image-1.5, the gpt-image-2 family and chatgpt-image-latest; dated
snapshots add `-YYYY-MM-DD`). types/image_generate_params.py, `response_format`: "Legacy
response format parameter for retired image models. Unsupported for GPT image models, which
always return base64-encoded images." The real API answers it with 400 "Unknown parameter:
'response_format'." (lofcz/LLMTornado#155, vercel/ai#6102)."""

OPTIONAL_PARAMS = (
    "input_fidelity",
    "output_format",
    "output_compression",
    "quality",
    "response_format",
    "background",
    "moderation",
    "safety_identifier",
    "stream",
    "partial_images",
)
"""The parameters a refusal may drop: everything the generator can send besides model,
prompt, size, image and n (background and moderation are not sent today). Without them the
server uses its defaults (quality auto, PNG, its own answer form, no user id, one answer
that is not streamed)."""

GOES_WITH = {
    "output_format": ("output_compression",),
    "stream": ("partial_images",),
    "partial_images": ("stream",),
}
"""Dropping a parameter drops these with it: a compression without its JPEG/WebP format is an
error of its own on OpenAI ("only supported ... with the `webp` or `jpeg` output formats");
`partial_images` is "used for streaming responses" only (types/image_generate_params.py), and
a stream without partial images shows nothing the plain answer does not."""

_SETTINGS = ("size", "model", "n")
"""Parameters the bot cannot do without: a 400 naming one is the operator's setting to change
(IMAGE_MODEL, IMAGE_FORMAT), never dropped."""

_NO_PARAM = ("", "none", "null")
"""`param` values that name nothing: LiteLLM's proxy sends the string "None"."""

_NO_ROUTE_STATUSES = (404, 405)
"""What a server without an edits endpoint answers there; neither is billed."""


def supports_input_fidelity(model: str) -> bool:
    """Return whether to ask the model for high input fidelity on edits."""
    return model.startswith(INPUT_FIDELITY_PREFIXES)


def is_gpt_image_model(model: str) -> bool:
    """Return whether the model is one of OpenAI's GPT image models (`GPT_IMAGE_PREFIXES`)."""
    return model.startswith(GPT_IMAGE_PREFIXES)


def takes_response_format(model: str) -> bool:
    """Return whether to send `response_format="b64_json"`: to every model but the GPT image
    models, which refuse it and answer base64 anyway. dall-e took it, and other servers default
    to URLs without it (LocalAI: core/http/endpoints/openai/image.go, `b64JSON :=
    config.ResponseFormat == "b64_json"`; openedai-images: images.py, `response_format:
    Optional[str] = "url"`; vLLM-Omni takes only b64_json)."""
    return not is_gpt_image_model(model)


def refused_parameters(error: openai.APIStatusError) -> set[str]:
    """Return the parameters a 400/422 names as the problem (empty when it names none, and
    for a safety refusal, which no parameter causes).

    Where the server says: OpenAI's `param` ("Unknown parameter: 'input_fidelity'.", param
    input_fidelity, code unknown_parameter), FastAPI's validation `loc` (["body", "quality"]:
    vLLM-Omni, openedai-images). Otherwise the names in its message: LiteLLM's proxy sends
    param "None" with "litellm.UnsupportedParamsError: Setting `response_format` is not
    supported by openai, gpt-image-1. To drop it from the call, set `litellm.drop_params =
    True`." (litellm/utils.py, get_optional_params_image_gen; exceptions.py; the proxy's
    ProxyException envelope). Only the optional parameters and `size` are looked for there:
    other words ("model", "image") come up in messages about other things.
    """
    body = error.body if isinstance(error.body, dict) else {}
    if error_code(error) in BLOCKED_CODES:
        return set()
    named: set[str] = set()
    param = body.get("param")
    if isinstance(param, str) and param.strip().lower() not in _NO_PARAM:
        named.add(re.split(r"[\[.]", param.strip(), maxsplit=1)[0])
    detail = body.get("detail")
    if isinstance(detail, list):
        for item in detail:
            loc = item.get("loc") if isinstance(item, dict) else None
            if isinstance(loc, list):
                named.update(part for part in loc if isinstance(part, str) and part != "body")
    if named:
        return named
    reason = server_reason(error.body) or str(error.message)
    return {
        name
        for name in (*OPTIONAL_PARAMS, "size")
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", reason)
    }


def translated(error: openai.OpenAIError) -> BackendError:
    """Return the domain error for an SDK error: a 400/422 naming the size, the model or an
    optional parameter still refused after the retry is the operator's setting."""
    translated = translate_openai_error(error, "image")
    if type(translated) is Rejected and isinstance(
        error, (openai.BadRequestError, openai.UnprocessableEntityError)
    ):
        named = refused_parameters(error)
        if named & {*_SETTINGS, *OPTIONAL_PARAMS}:
            return SettingRefused("image", translated.detail)
    return translated


def no_edits_route(error: openai.APIStatusError) -> str | None:
    """Return why the server has no edits endpoint if `error` says so, else None.

    A 405, or a 404 that is not about the model: OpenAI answers an unknown route with 404
    "Invalid URL (POST /v1/...)", Ollama with a plain "404 page not found", FastAPI servers
    (vLLM) with {"detail": "Not Found"}, LocalAI with {"error": {"code": 404, "message":
    "Resource not found"}}. A 404 naming the model (OpenAI's "The model `x` does not exist",
    code model_not_found; Ollama's 'model "x" not found') is a missing model on an endpoint
    that exists, and stays Rejected.
    """
    if error.status_code not in _NO_ROUTE_STATUSES:
        return None
    reason = server_reason(error.body) or str(error.message)
    body = error.body if isinstance(error.body, dict) else {}
    about_model = body.get("code") == "model_not_found" or "model" in reason.lower()
    if error.status_code == 404 and about_model:
        return None
    return f"HTTP {error.status_code}: {reason[:200]}"


def no_edits_route_in_success(body: bytes) -> str | None:
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

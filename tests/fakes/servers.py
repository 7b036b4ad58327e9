"""Real OpenAI-compatible servers as profiles of the fake: one per row of the README's
compatibility table ("Self-hosted servers").

A `ServerProfile` makes a `FakeOpenAI` answer the way that server's source code does: the
routes it lacks answer as it answers an unknown route, its image answers have its shape (a
URL, or base64 with its own fields), it refuses the request fields it refuses, and its critic
answers where it puts the critique (`content`, `reasoning_content`, ...). Every behaviour cites
the server's file it comes from, at the commit read (2026-08 snapshots unless said otherwise).
LM Studio is closed source: its profile follows its documentation and its public bug tracker.

`Deployment` starts what one row needs: the row's server on `OPENAI_BASE_URL` or
`CRITIC_BASE_URL`, a plain fake standing for "any" server on the other. Its ``settings`` are
the `Settings` overrides the row says to set, with the fakes' URLs and keys.

Built on the fake's public options: ``critic`` (a `CriticReply` carries the reasoning fields),
``image_server`` and ``missing_edits`` where the fake knows the server already (LocalAI,
Ollama, FastAPI servers, LM Studio), and, for what it does not know, `FakeServer.chaos`,
called for every request with no queued fault: a `Fault` it returns replaces the normal
reply. Those answers (missing routes, refusals, image answers) skip the fake's own validation
and latency; the request is still recorded (``fake.requests``, ``fake.edit_requests``).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from PIL import Image

from tests.fakes.faults import Fault, RecordedRequest
from tests.fakes.openai_server import (
    DEFAULT_API_KEY,
    MISSING_EDITS_ANSWERS,
    REASONING,
    Critic,
    CriticReply,
    FakeOpenAI,
    default_critic,
    localai_critic,
)
from tests.fakes.pngs import render_image, with_prompt

__all__ = [
    "PROFILES",
    "Deployment",
    "Drawn",
    "ServerProfile",
]

Role = Literal["image", "critic"]
Params = dict[str, Any]
"""A request's JSON body, or the text fields of a multipart one."""


@dataclass(frozen=True)
class Drawn:
    """One picture a profile's image server answers with."""

    endpoint: str  # "images" (generations) or "edits"
    params: Params
    picture: bytes
    fmt: str  # what the server encoded: png, jpeg or webp
    width: int
    height: int

    @property
    def b64(self) -> str:
        return base64.b64encode(self.picture).decode("ascii")


ImageAnswer = Callable[[Drawn], dict[str, Any]]
"""The JSON body a server answers a drawn picture with."""
Refusal = Callable[[str, Params], Fault | None]
"""The answer to a request the server refuses (endpoint, params), or None."""
Encoding = Callable[[str, Params], str]
"""The format the server encodes its picture in, for a request (endpoint, params)."""


@dataclass(frozen=True)
class ServerProfile:
    """How one server answers, and what the README row says to set for it.

    ``settings`` are `Settings` field names (the README's env keys, lower-cased) beyond the
    base URL and key. ``image_server`` and ``missing_edits`` are the fake's own options (keys
    of `IMAGE_SERVERS` and `MISSING_EDITS_ANSWERS`); ``missing`` maps a fake endpoint
    ("images", "edits", "chat") the server does not serve to its answer there when the fake
    has no such key; ``critic`` is installed as the fake's critic; ``image_answer`` (with
    ``encoding``) draws and shapes every images/edits answer; ``refuse`` answers a request the
    server refuses.
    """

    key: str
    name: str
    roles: frozenset[Role]
    settings: Mapping[str, str]
    source: str
    image_server: str = "openai"
    missing_edits: str | None = None
    missing: Mapping[str, Fault] = field(default_factory=dict)
    critic: Critic | None = None
    image_answer: ImageAnswer | None = None
    encoding: Encoding | None = None
    refuse: Refusal | None = None

    @property
    def draws(self) -> bool:
        return "image" in self.roles

    @property
    def judges(self) -> bool:
        return "critic" in self.roles

    @property
    def can_edit(self) -> bool:
        """Whether the server has /v1/images/edits (photo briefs and edits of a round)."""
        return (
            self.missing_edits is None
            and "edits" not in self.missing
            and self.image_server not in ("localai", "openedai-images")
        )

    def install(self, fake: FakeOpenAI) -> None:
        """Make ``fake`` answer as this server."""
        fake.image_server = self.image_server
        fake.missing_edits = self.missing_edits
        # /v1/models lists what the row serves (the model names it says to set).
        fake.models = [value for name, value in self.settings.items() if name.endswith("_model")]
        if self.critic is not None:
            fake.critic = self.critic
        if self.missing or self.image_answer is not None or self.refuse is not None:
            fake.chaos = _Answers(fake, self)


class _Answers:
    """A fake's `chaos` hook: the answers a profile gives itself.

    `chaos` gets only the endpoint; the request it is about is the one recorded with its body
    read and not seen here yet. The fake reads a body and calls `chaos` without awaiting in
    between, so no other request can have reached that point in the meantime.
    """

    def __init__(self, fake: FakeOpenAI, profile: ServerProfile) -> None:
        self._fake = fake
        self._profile = profile
        self._seen: dict[int, RecordedRequest] = {}

    def __call__(self, endpoint: str) -> Fault | None:
        record = self._current(endpoint)
        missing = self._profile.missing.get(endpoint)
        if missing is not None:
            return missing
        if record is None:
            return None
        params = self._params(record)
        if self._profile.refuse is not None:
            refusal = self._profile.refuse(endpoint, params)
            if refusal is not None:
                return refusal
        if endpoint in ("images", "edits") and self._profile.image_answer is not None:
            return Fault(
                status=200, body=self._profile.image_answer(self._draw(endpoint, params, record))
            )
        return None

    def _current(self, endpoint: str) -> RecordedRequest | None:
        for record in reversed(self._fake.requests):
            if record.endpoint != endpoint or self._seen.get(id(record)) is record:
                continue
            if record.json is None and not record.form and not record.files:
                continue  # its body is not read yet
            self._seen[id(record)] = record
            return record
        return None

    def _params(self, record: RecordedRequest) -> Params:
        if isinstance(record.json, dict):
            return dict(record.json)
        return {name: self._fake.form_value(record, name) for name in record.form}

    def _draw(self, endpoint: str, params: Params, record: RecordedRequest) -> Drawn:
        encoding = self._profile.encoding
        fmt = encoding(endpoint, params) if encoding else str(params.get("output_format") or "png")
        width, height = _size(params.get("size"), record)
        picture = render_image(width, height, fmt)
        if fmt in ("png", "jpeg", "jpg"):
            picture = with_prompt(picture, str(params.get("prompt") or ""))
        return Drawn(endpoint, params, picture, fmt, width, height)


def _size(size: Any, record: RecordedRequest) -> tuple[int, int]:
    """The requested ``WxH``; without one, an edit's first input image's size (sd-server's
    set_width_and_height_if_unset, vLLM-Omni's size "auto"), else 512x512 (sd-server's
    default in routes_openai.cpp)."""
    match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", str(size or ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    for name in ("image", "image[]"):
        for blob in record.files.get(name, []):
            with Image.open(io.BytesIO(blob)) as image:
                return image.size
    return 512, 512


def _now() -> int:
    return int(time.time())


# --- LocalAI ----------------------------------------------------------------------------
# mudler/LocalAI at 82c191a (2026-08-22).

LOCALAI = ServerProfile(
    key="localai",
    name="LocalAI",
    roles=frozenset({"image", "critic"}),
    settings={
        "image_model": "stablediffusion",
        "image_output_format": "png",
        "critic_model": "gemma-3-4b-it",
    },
    source="mudler/LocalAI core/http/endpoints/openai/image.go, chat.go; core/http/render.go",
    # The fake's LocalAI (`IMAGE_SERVERS["localai"]`), from core/http/endpoints/openai/image.go:
    # a PNG whatever output_format, output_compression or quality say (`output :=
    # outputFile.Name() + ".png"`), as a URL under /generated-images (behind the API key)
    # unless the request says response_format "b64_json"; core/http/routes/openai.go has no
    # /v1/images/edits, so notFoundHandler's JSON 404 (core/http/render.go).
    image_server="localai",
    # chat.go turns response_format json_schema into a grammar (and only logs "Failed
    # generating grammar" when it cannot): the fake's LocalAI personality, whose grammar keeps
    # every property in alphabetical order but bounds no integer (a score of 11 gets through).
    critic=localai_critic(),
)


# --- stable-diffusion.cpp's sd-server ---------------------------------------------------
# leejet/stable-diffusion.cpp at 97d2990 (2026-08-19), examples/server/.


def _sd_encoding(endpoint: str, params: Params) -> str:
    # runtime.cpp normalize_output_format: lower-cased; png when not sent.
    return str(params.get("output_format") or "png").lower()


def _sd_refuse(endpoint: str, params: Params) -> Fault | None:
    """routes_openai.cpp build_openai_*_request: "prompt required"; runtime.cpp
    assign_output_options: png or jpeg, webp only on generations (allow_webp) of a WebP build
    (CMakeLists.txt: SD_WEBP is on when the libwebp submodule is there). A 400 whose
    ``error`` is the message string itself, not OpenAI's envelope."""
    if not params.get("prompt"):
        return Fault(status=400, body={"error": "prompt required"})
    formats = ("png", "jpeg", "webp") if endpoint == "images" else ("png", "jpeg")
    if _sd_encoding(endpoint, params) not in formats:
        message = f"invalid output_format, must be one of [{', '.join(formats)}]"
        return Fault(status=400, body={"error": message})
    return None


def _sd_images(drawn: Drawn) -> dict[str, Any]:
    """routes_openai.cpp, /v1/images/generations and /v1/images/edits (both read ``image[]``
    and the single ``image``): base64 only, with ``output_format``; no usage."""
    return {"created": _now(), "data": [{"b64_json": drawn.b64}], "output_format": drawn.fmt}


SD_SERVER = ServerProfile(
    key="sd-server",
    name="stable-diffusion.cpp server (sd-server)",
    roles=frozenset({"image"}),
    settings={"image_model": "sd-cpp-local", "image_output_format": "jpeg"},
    source="leejet/stable-diffusion.cpp examples/server/routes_openai.cpp, runtime.cpp",
    # No chat route; main.cpp sets a CORS pre-routing handler and no error handler, so
    # cpp-httplib answers an unknown route with a bare 404.
    missing={"chat": Fault(status=404, body=None)},
    encoding=_sd_encoding,
    image_answer=_sd_images,
    refuse=_sd_refuse,
)


# --- vLLM-Omni --------------------------------------------------------------------------
# vllm-project/vllm-omni vllm_omni/entrypoints/openai/api_server.py at 005fd8e and
# protocol/images.py at 00a3619 (the index's copies, newer than the 2025-12 snapshot, which
# had no /v1/images/edits yet).

OMNI_MODEL = "zai-org/GLM-Image"
"""The served model: vLLM-Omni serves one, and GLM-Image (AR + diffusion) both draws from text
and edits (api_server.py routes both through its multi-stage chat handler)."""


def _vllm_error(status: int, message: str, phrase: str) -> Fault:
    """vllm/entrypoints/serve/utils/server_utils.py http_exception_handler: ErrorResponse with
    ``type`` the status phrase and ``code`` the status as a number."""
    body = {"error": {"message": message, "type": phrase, "param": None, "code": status}}
    return Fault(status=status, body=body)


def _omni_encoding(endpoint: str, params: Params) -> str:
    if endpoint == "images":
        # Multi-stage generations: encode_image_base64 (image_api_utils.py: PNG), whatever
        # output_format says.
        return "png"
    # _choose_output_format: jpg/png/webp/jpeg as sent (the form's default is png).
    fmt = str(params.get("output_format") or "png").lower()
    return fmt if fmt in ("jpg", "png", "webp", "jpeg") else "jpeg"


def _omni_refuse(endpoint: str, params: Params) -> Fault | None:
    """generate_images and edit_images refuse any ``model`` but the served one (400 "Model
    mismatch"), edits any response_format but b64_json; quality and output_compression on
    generations are not fields of ImageGenerationRequest (ignored)."""
    model = params.get("model")
    if model is not None and model != OMNI_MODEL:
        message = (
            f"Model mismatch: request specifies '{model}' but server is running '{OMNI_MODEL}'."
        )
        return _vllm_error(400, message, "Bad Request")
    if endpoint == "edits" and (params.get("response_format") or "b64_json") != "b64_json":
        return _vllm_error(400, "Only response_format 'b64_json' is supported now.", "Bad Request")
    return None


def _omni_images(drawn: Drawn) -> dict[str, Any]:
    """protocol/images.py ImageGenerationResponse: every ImageData field (url and
    revised_prompt null); edits fill output_format and size, multi-stage generations leave
    them null."""
    edit = drawn.endpoint == "edits"
    return {
        "created": _now(),
        "data": [{"b64_json": drawn.b64, "url": None, "revised_prompt": None}],
        "output_format": drawn.fmt if edit else None,
        "size": f"{drawn.width}x{drawn.height}" if edit else None,
        "cot_output": None,
        "metrics": None,
    }


VLLM_OMNI = ServerProfile(
    key="vllm-omni",
    name="vLLM-Omni",
    roles=frozenset({"image"}),
    settings={"image_model": OMNI_MODEL, "image_output_format": "jpeg"},
    source="vllm-project/vllm-omni vllm_omni/entrypoints/openai/api_server.py, protocol/images.py",
    encoding=_omni_encoding,
    image_answer=_omni_images,
    refuse=_omni_refuse,
)


# --- vLLM -------------------------------------------------------------------------------
# vllm-project/vllm (the index's copies, 2026).


def _vllm_critic(request: dict[str, Any]) -> CriticReply:
    """vllm/entrypoints/openai/chat_completion/protocol.py: response_format json_schema becomes
    structured outputs (structured_outputs_from_response_format, enforced while decoding);
    with --reasoning-parser the thinking goes to ChatMessage.reasoning (the field was
    reasoning_content before it was renamed), the JSON to content."""
    return CriticReply(default_critic(request), reasoning=REASONING)


VLLM = ServerProfile(
    key="vllm",
    name="vLLM",
    roles=frozenset({"critic"}),
    settings={"critic_model": "Qwen/Qwen2.5-VL-7B-Instruct"},
    source="vllm-project/vllm vllm/entrypoints/openai/chat_completion/protocol.py, api_server.py",
    # No image routes: FastAPI's own 404 (vLLM's handler in server_utils.py is registered for
    # fastapi.HTTPException, not the router's starlette one).
    missing={"images": MISSING_EDITS_ANSWERS["fastapi"]},
    missing_edits="fastapi",
    critic=_vllm_critic,
)


# --- Ollama -----------------------------------------------------------------------------
# ollama/ollama at fb30760 (2026-08-21).


def _ollama_critic(request: dict[str, Any]) -> CriticReply:
    """openai/openai.go FromChatRequest: response_format json_schema becomes the request's
    ``format`` (the schema, enforced by the runner); ToChatCompletion puts a thinking model's
    thinking in Message.Reasoning (``reasoning``, omitempty) and has no refusal field."""
    return CriticReply(default_critic(request), reasoning=REASONING)


OLLAMA = ServerProfile(
    key="ollama",
    name="Ollama",
    roles=frozenset({"critic"}),
    settings={"critic_model": "qwen2.5vl:7b", "critic_api_key": "ollama"},
    source="ollama/ollama server/routes.go, openai/openai.go",
    # server/routes.go registers no /v1/images route: gin's plain-text 404.
    missing={"images": MISSING_EDITS_ANSWERS["ollama"]},
    missing_edits="ollama",
    critic=_ollama_critic,
)


# --- llama.cpp's server ------------------------------------------------------------------
# ggml-org/llama.cpp tools/server (the index's copies, 2026).

LLAMACPP_NOT_FOUND = Fault(
    status=404,
    body={"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}},
)
"""tools/server/server.cpp registers no /v1/images route; server-http.cpp's error handler
answers every 404 with this body."""


def _llamacpp_critic(request: dict[str, Any]) -> CriticReply:
    """tools/server/server-common.cpp, oaicompat_chat_params_parse: json_schema's ``schema``
    becomes the grammar (``strict`` is not read); common/chat.cpp puts the thinking in
    ``reasoning_content`` (--reasoning-format deepseek, what auto picks)."""
    return CriticReply(default_critic(request), reasoning_content=REASONING)


LLAMACPP = ServerProfile(
    key="llama.cpp",
    name="llama.cpp server (llama-server)",
    roles=frozenset({"critic"}),
    settings={"critic_model": "gemma-3-4b-it"},
    source="ggml-org/llama.cpp tools/server/server.cpp, server-http.cpp, server-common.cpp",
    missing={"images": LLAMACPP_NOT_FOUND, "edits": LLAMACPP_NOT_FOUND},
    critic=_llamacpp_critic,
)


# --- LM Studio (closed source) -----------------------------------------------------------


def _lmstudio_critic(request: dict[str, Any]) -> CriticReply:
    """A reasoning vision model under structured output: LM Studio applies the schema to the
    whole output, thinking included, so the JSON lands in ``reasoning_content`` and
    ``content`` is empty (lmstudio-ai/lmstudio-bug-tracker#1698, LM Studio 0.4.7, and #1773,
    0.4.10; "structured output applies to the entire model output, which includes the <think>
    tags", a maintainer on #575)."""
    return CriticReply("", reasoning_content=json.dumps(default_critic(request), indent=2))


LMSTUDIO = ServerProfile(
    key="lm-studio",
    name="LM Studio",
    roles=frozenset({"critic"}),
    settings={"critic_model": "qwen/qwen3-vl-8b", "critic_api_key": "lm-studio"},
    source="lmstudio.ai/docs/api/openai-api (routes), /docs/api/structured-output; bug tracker",
    # lmstudio.ai/docs/api/openai-api lists /v1/models, /v1/responses, /v1/chat/completions,
    # /v1/embeddings and /v1/completions; any other route is a 200 with an error string
    # (lmstudio-ai/lmstudio-bug-tracker#618, "Returning 200 anyway").
    missing={
        "images": Fault(
            status=200,
            body={"error": "Unexpected endpoint or method. (POST /v1/images/generations)"},
        ),
    },
    missing_edits="lmstudio",
    critic=_lmstudio_critic,
)


# --- LiteLLM proxy ----------------------------------------------------------------------
# BerriAI/litellm (the index's copies, 2026), in front of an OpenAI-style image model and a
# vision chat model.


def _litellm_encoding(endpoint: str, params: Params) -> str:
    if endpoint == "edits":
        # litellm/types/images/main.py: ImageEditOptionalRequestParams, the only fields an
        # edit passes on, has no output_format or output_compression: the upstream's default
        # (PNG) comes back.
        return "png"
    return str(params.get("output_format") or "png")


def _litellm_images(drawn: Drawn) -> dict[str, Any]:
    """litellm/proxy/image_endpoints/endpoints.py serves both routes (edits take ``image`` or
    ``image[]``); litellm/types/utils.py ImageObject sends b64_json, url and revised_prompt
    (null when unset)."""
    return {
        "created": _now(),
        "data": [{"b64_json": drawn.b64, "revised_prompt": None, "url": None}],
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
            "output_tokens": 1056,
            "total_tokens": 1106,
        },
    }


def _litellm_critic(request: dict[str, Any]) -> CriticReply:
    """litellm/types/utils.py Message: the upstream's thinking as ``reasoning_content``, the
    answer (response_format passed on to the upstream) in content."""
    return CriticReply(default_critic(request), reasoning_content=REASONING)


LITELLM = ServerProfile(
    key="litellm",
    name="LiteLLM proxy",
    roles=frozenset({"image", "critic"}),
    settings={"image_model": "gpt-image-1", "critic_model": "gpt-4.1-mini"},
    source="BerriAI/litellm litellm/proxy/image_endpoints/endpoints.py, types/images/main.py",
    encoding=_litellm_encoding,
    image_answer=_litellm_images,
    critic=_litellm_critic,
)


PROFILES: tuple[ServerProfile, ...] = (
    LOCALAI,
    SD_SERVER,
    VLLM_OMNI,
    VLLM,
    OLLAMA,
    LLAMACPP,
    LMSTUDIO,
    LITELLM,
)
"""Every row of the README's compatibility table, in its order."""


class Deployment:
    """The servers one row runs against: ``images`` at OPENAI_BASE_URL, ``critic`` at
    CRITIC_BASE_URL (the same fake for a server that is both). The row's server gets the
    profile; the other role is a plain fake, standing for any server that does it.

    ``async with Deployment(profile, openai_fake) as deployment:`` then
    ``make_settings(**deployment.settings)``.
    """

    def __init__(self, profile: ServerProfile, openai_fake: FakeOpenAI) -> None:
        self.profile = profile
        self.images = openai_fake
        self.critic = openai_fake
        self._started: list[FakeOpenAI] = []

    async def __aenter__(self) -> Self:
        profile = self.profile
        if profile.draws != profile.judges:
            # A server of one role: the critic is a fake of its own (the row's server, or a
            # plain one behind an image server), with the key the row says to set.
            key = profile.settings.get("critic_api_key", DEFAULT_API_KEY)
            self.critic = await FakeOpenAI(api_key=key).start()
            self._started.append(self.critic)
        profile.install(self.served)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for fake in self._started:
            await fake.stop()

    @property
    def served(self) -> FakeOpenAI:
        """The fake answering as the row's server."""
        return self.images if self.profile.draws else self.critic

    @property
    def can_edit(self) -> bool:
        """Whether the image server has an edits endpoint."""
        return self.profile.can_edit if self.profile.draws else True

    @property
    def settings(self) -> dict[str, Any]:
        """`Settings` overrides: the row's settings, the fakes' base URLs and keys."""
        values: dict[str, Any] = {
            "openai_base_url": self.images.base_url,
            "openai_api_key": self.images.api_key,
        }
        if self.critic is not self.images:
            values |= {
                "critic_base_url": self.critic.base_url,
                "critic_api_key": self.critic.api_key,
            }
        return values | dict(self.profile.settings)

"""The Image backend and Critic checks of `python -m bot check`: `models.retrieve` on an
OpenAI-compatible server, or Stability's balance; for the critic also one critique of an 8x8
image (`probe_critic`).

The SDKs (openai alone takes over a second to import) are imported by the checks that use
them, so that a broken configuration is reported at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.cli.check_images import check_image_server
from bot.cli.check_result import CHECK_TIMEOUT, CheckResult
from bot.config import Settings

if TYPE_CHECKING:
    from bot.backends.openai_critic import Reading


async def check_image_backend(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """Stability: the account balance. openai: `models.retrieve(IMAGE_MODEL)`, then whether
    the server has an edits endpoint and how its answers are read (bot/cli/check_images.py),
    on the same line."""
    if settings.image_backend == "stability":
        return await check_stability(settings, seconds)
    assert settings.openai_api_key is not None  # checked by Settings
    found = await check_openai_model(
        "Image backend",
        settings.openai_base_url,
        settings.openai_api_key.get_secret_value(),
        settings.image_model,
        key_setting="OPENAI_API_KEY",
        url_setting="OPENAI_BASE_URL",
        model_hint="set IMAGE_MODEL to an image model your server has",
        seconds=seconds,
    )
    if not found.ok:
        return found
    return await check_image_server(settings, found, seconds)


async def check_critic(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """`models.retrieve(CRITIC_MODEL)` on the critic's base URL with the critic's key, then
    one critique of a tiny test image (`probe_critic`): does the server take images, and is
    its answer the critique's JSON?"""
    api_key = settings.effective_critic_api_key
    assert api_key is not None  # checked by Settings
    own = settings.critic_base_url is not None or settings.critic_api_key is not None
    key_setting = "CRITIC_API_KEY" if settings.critic_api_key else "OPENAI_API_KEY"
    url_setting = "CRITIC_BASE_URL" if own else "OPENAI_BASE_URL"
    found = await check_openai_model(
        "Critic",
        settings.effective_critic_base_url,
        api_key.get_secret_value(),
        settings.critic_model,
        key_setting=key_setting,
        url_setting=url_setting,
        model_hint="set CRITIC_MODEL to a vision model your server has",
        seconds=seconds,
    )
    if not found.ok:
        return found
    return await probe_critic(
        settings.effective_critic_base_url,
        api_key.get_secret_value(),
        settings.critic_model,
        key_setting=key_setting,
        url_setting=url_setting,
        seconds=seconds,
    )


PROBE_BRIEF = "a plain grey square (a connection test by python -m bot check)"
VISION_HINT = (
    "set CRITIC_MODEL to a vision model (on llama.cpp, start the server with the model's "
    "--mmproj; on LM Studio, load a model with vision)"
)
JSON_HINT = (
    "use a model that follows JSON schemas (LM Studio: 7B or larger) or a server that "
    "enforces response_format json_schema"
)
_IMAGE_REFUSALS = ("image", "vision", "multimodal", "mmproj")
"""Words in the errors of servers whose model cannot take images: OpenAI's 400 "Invalid
content type. image_url is only supported by certain models." (browser-use/web-ui#274),
llama.cpp's 500 "image input is not supported - hint: if this is unexpected, you may need to
provide the mmproj" (ggml-org/llama.cpp#15377) and "Unsupported content part type:
"image_url"" (#12947)."""


def probe_image() -> bytes:
    """Return the probe's picture: an 8x8 grey JPEG (a few hundred bytes)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(out, "JPEG")
    return out.getvalue()


async def probe_critic(
    base_url: str | None,
    api_key: str,
    model: str,
    *,
    key_setting: str,
    url_setting: str,
    seconds: float = CHECK_TIMEOUT,
) -> CheckResult:
    """Ask the critic for one critique of an 8x8 image, with the bot's own system prompt and
    strict schema (no retries, one timeout of `seconds`), and read the answer as the bot
    does: whether the server takes images (an error about the image means it does not), and
    whether the answer is the critique's JSON, naming the repairs reading it needed."""
    import openai
    import pydantic_core

    from bot.backends.base import CritiqueRequest
    from bot.backends.openai_common import make_client
    from bot.backends.openai_critic import read_answer, request_payload

    name = "Critic"
    client = make_client(base_url, api_key, seconds, max_retries=0)
    where = str(client.base_url).rstrip("/")
    request = CritiqueRequest(
        brief=PROBE_BRIEF, prompt="a plain grey square", image_jpeg=probe_image()
    )
    body = pydantic_core.to_json(request_payload(model, request))
    try:
        raw = await client.post("/chat/completions", content=body, cast_to=bytes)
    except openai.AuthenticationError:
        return CheckResult(name, False, f"{where} rejected the API key", f"check {key_setting}")
    except openai.APITimeoutError:
        return CheckResult(
            name,
            False,
            f"{model} at {where} wrote no critique of a test image within {seconds:.0f} s",
            "a self-hosted server may still be loading the model: run check again",
        )
    except openai.APIConnectionError:
        return CheckResult(
            name, False, f"cannot reach {where}", f"check the network and {url_setting}"
        )
    except openai.APIStatusError as error:
        said = _server_said(error)
        if any(word in said.lower() for word in _IMAGE_REFUSALS):
            return CheckResult(
                name, False, f"{model} at {where} takes no images ({said})", VISION_HINT
            )
        return CheckResult(
            name,
            False,
            f"{where} refused a critique request: HTTP {error.status_code} ({said})",
            f"check that CRITIC_MODEL is a vision model and that {url_setting} is an "
            "OpenAI-compatible server with response_format json_schema",
        )
    finally:
        await client.close()
    return _critique_read(read_answer(raw), f"{model} at {where} takes images")


def _critique_read(reading: Reading, takes: str) -> CheckResult:
    """Return the Critic line for the probe's answer, read as the bot reads critiques."""
    name = "Critic"
    if reading.cut_off:
        return CheckResult(
            name,
            False,
            f"{takes}, but its critique was cut off at the token limit",
            "raise the server's max tokens or context size (the critic sends images and a "
            "long prompt)",
        )
    if reading.critique is None:
        return CheckResult(
            name,
            False,
            f"{takes}, but its answer is not the critique's JSON ({reading.problem})",
            JSON_HINT,
        )
    repairs = f" after repairs: {', '.join(reading.repairs)}" if reading.repairs else ""
    return CheckResult(name, True, f"{takes} and answers the critique's JSON{repairs}")


def _server_said(error: object) -> str:
    """Return the server's own error message, shortened (never the request)."""
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) else str(getattr(error, "message", error))
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:159] + "…"


async def check_openai_model(
    name: str,
    base_url: str | None,
    api_key: str,
    model: str,
    *,
    key_setting: str,
    url_setting: str,
    model_hint: str,
    seconds: float = CHECK_TIMEOUT,
) -> CheckResult:
    """Retrieve `model` from an OpenAI-compatible server (no retries, one timeout of `seconds`).

    A server without `GET /models/{id}` (some self-hosted ones) is asked for its model list.
    """
    import openai

    from bot.backends.openai_common import make_client

    client = make_client(base_url, api_key, seconds, max_retries=0)
    where = str(client.base_url).rstrip("/")
    try:
        try:
            await client.models.retrieve(model)
        except openai.NotFoundError:
            available = [m.id async for m in client.models.list()]
            if model not in available:
                shown = ", ".join(available[:8]) + (", …" if len(available) > 8 else "")
                return CheckResult(
                    name,
                    False,
                    f"model {model} not found at {where}"
                    + (f" (it has: {shown})" if shown else ""),
                    model_hint,
                )
    except openai.NotFoundError:
        return CheckResult(name, False, f"model {model} not found at {where}", model_hint)
    except openai.AuthenticationError:
        return CheckResult(name, False, f"{where} rejected the API key", f"check {key_setting}")
    except openai.PermissionDeniedError:
        return CheckResult(
            name,
            False,
            f"the API key may not use model {model}",
            f"check {key_setting}'s project and the model's access",
        )
    except openai.APITimeoutError:
        return CheckResult(
            name, False, f"no answer from {where} within {seconds:.0f} s", f"check {url_setting}"
        )
    except openai.APIConnectionError:
        return CheckResult(
            name, False, f"cannot reach {where}", f"check the network and {url_setting}"
        )
    except openai.APIStatusError as error:
        return CheckResult(
            name, False, f"{where} answered HTTP {error.status_code}", f"check {url_setting}"
        )
    finally:
        await client.close()
    return CheckResult(name, True, f"{model} at {where}")


async def check_stability(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """GET /v1/user/balance on the Stability API: the key works and there are credits left."""
    import httpx

    from bot.backends.stability import endpoint_for

    name = "Image backend"
    try:
        endpoint_for(settings.stability_model)
    except ValueError as error:
        return CheckResult(name, False, str(error), "set STABILITY_MODEL")
    assert settings.stability_api_key is not None  # checked by Settings
    base = settings.stability_api_base_url.rstrip("/")
    headers = {
        "Authorization": f"Bearer {settings.stability_api_key.get_secret_value()}",
        "Accept": "application/json",
    }
    try:
        async with httpx.AsyncClient(base_url=base, timeout=seconds) as client:
            response = await client.get("/v1/user/balance", headers=headers)
    except httpx.TimeoutException:
        return CheckResult(
            name, False, f"no answer from {base} within {seconds:.0f} s", "check the network"
        )
    except httpx.HTTPError:
        return CheckResult(
            name, False, f"cannot reach {base}", "check the network and STABILITY_API_BASE_URL"
        )
    if response.status_code in (401, 403):
        return CheckResult(name, False, "Stability rejected the API key", "check STABILITY_API_KEY")
    if response.status_code != 200:
        return CheckResult(
            name, False, f"{base} answered HTTP {response.status_code}", "try again later"
        )
    try:
        credits = float(response.json()["credits"])
    except (ValueError, KeyError, TypeError):
        return CheckResult(
            name, False, f"{base} did not answer like Stability", "check STABILITY_API_BASE_URL"
        )
    if credits <= 0:
        return CheckResult(
            name,
            False,
            "the Stability account has no credits left",
            "buy credits at https://platform.stability.ai/account/credits",
        )
    return CheckResult(name, True, f"Stability {settings.stability_model}, {credits:g} credits")

"""The Image backend and Critic checks of `python -m bot check`: `models.retrieve` on an
OpenAI-compatible server, or Stability's balance.

The SDKs (openai alone takes over a second to import) are imported by the checks that use
them, so that a broken configuration is reported at once.
"""

from __future__ import annotations

from bot.cli.check_result import CHECK_TIMEOUT, CheckResult
from bot.config import Settings


async def check_image_backend(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """Stability: the account balance. openai: `models.retrieve(IMAGE_MODEL)`."""
    if settings.image_backend == "stability":
        return await check_stability(settings, seconds)
    assert settings.openai_api_key is not None  # checked by Settings
    return await check_openai_model(
        "Image backend",
        settings.openai_base_url,
        settings.openai_api_key.get_secret_value(),
        settings.image_model,
        key_setting="OPENAI_API_KEY",
        url_setting="OPENAI_BASE_URL",
        model_hint="set IMAGE_MODEL to an image model your server has",
        seconds=seconds,
    )


async def check_critic(settings: Settings, seconds: float = CHECK_TIMEOUT) -> CheckResult:
    """`models.retrieve(CRITIC_MODEL)` on the critic's base URL with the critic's key."""
    api_key = settings.effective_critic_api_key
    assert api_key is not None  # checked by Settings
    own = settings.critic_base_url is not None or settings.critic_api_key is not None
    return await check_openai_model(
        "Critic",
        settings.effective_critic_base_url,
        api_key.get_secret_value(),
        settings.critic_model,
        key_setting="CRITIC_API_KEY" if settings.critic_api_key else "OPENAI_API_KEY",
        url_setting="CRITIC_BASE_URL" if own else "OPENAI_BASE_URL",
        model_hint="set CRITIC_MODEL to a vision model your server has",
        seconds=seconds,
    )


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

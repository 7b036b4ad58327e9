"""The image server's capabilities, for `python -m bot check`, without paying for an image.

Edits: a POST to /images/edits with the model alone, no image and no prompt, which no server
can turn into a picture. A 400 or 422 ("image" or "prompt" required) means the route exists;
404 or 405 (or LM Studio's 200 "Unexpected endpoint") that it does not, the same reading the
image backend makes of a real edit (bot/backends/image_params.py, `no_edits_route`).

Answer form: nothing cheap tells whether a server answers in `b64_json` or with a URL (only a
drawn image does), so the line says the bot reads either form, and from which hosts a URL may
be downloaded.
"""

from __future__ import annotations

from typing import Any

from bot.cli.check_result import CHECK_TIMEOUT, CheckResult
from bot.config import Settings


async def check_image_server(
    settings: Settings, model_found: CheckResult, seconds: float = CHECK_TIMEOUT
) -> CheckResult:
    """Return the Image backend line: `model_found` (the model check that passed) plus
    whether the server has an edits endpoint and how its answers are read."""
    import openai

    from bot.backends.image_answers import ImageAnswers, parse_hosts
    from bot.backends.openai_common import make_client

    assert settings.openai_api_key is not None  # checked by Settings
    client = make_client(
        settings.openai_base_url, settings.openai_api_key.get_secret_value(), seconds, 0
    )
    where = str(client.base_url).rstrip("/")
    # IMAGE_DOWNLOAD_HOSTS (comma-separated); the base URL's host else.
    configured = parse_hosts(settings.image_download_hosts)
    hosts = ", ".join(ImageAnswers(client, hosts=configured or None).hosts)
    answers = (
        f"answers are read in either form (b64_json, a data: URL, or a URL on {hosts}): "
        "no request short of drawing an image tells which this server sends"
    )
    name, found = model_found.name, model_found.detail
    try:
        edits, reason = await _probe_edits(client, settings.image_model)
    except openai.APIConnectionError:
        return CheckResult(
            name,
            False,
            f"{found}, but {where}/images/edits did not answer within {seconds:.0f} s",
            "try again later, or check OPENAI_BASE_URL",
        )
    finally:
        await client.close()
    if edits:
        return CheckResult(name, True, f"{found}; edits: yes ({reason}); {answers}")
    if edits is None:
        return CheckResult(
            name,
            False,
            f"{found}, but /images/edits answered {reason}, so whether it edits is unknown",
            "try again later, or check OPENAI_BASE_URL",
        )
    return CheckResult(
        name,
        False,
        f"{found}, but {reason}: product photos and edits of earlier rounds will not work",
        "point OPENAI_BASE_URL at an image server with /images/edits, or use "
        "IMAGE_BACKEND=stability; text briefs still work",
    )


async def _probe_edits(client: Any, model: str) -> tuple[bool | None, str]:
    """Ask /images/edits with no image and no prompt (nothing can be drawn, nothing paid);
    return (True: the route exists, False: it does not or the model does not edit, None: the
    answer does not tell) and what the server said. Raises openai.APIConnectionError."""
    import httpx2
    import openai

    from bot.backends.image_params import no_edits_route, no_edits_route_in_success
    from bot.backends.openai_common import server_reason

    try:
        response = await client.post(
            "/images/edits",
            cast_to=httpx2.Response,
            body={"model": model},
            options={"headers": {"Content-Type": "multipart/form-data"}},
        )
    except openai.APIStatusError as error:
        said = server_reason(error.body)[:120]
        if error.status_code in (400, 422):
            answered = f"/images/edits answered HTTP {error.status_code}"
            return True, f"{answered} to a request without an image: {said}" if said else answered
        reason = no_edits_route(error)
        if reason is not None:
            return False, f"it has no /images/edits ({reason})"
        if error.status_code == 404:  # a 404 naming the model: it does not edit
            return False, f"{model} does not edit there (HTTP 404: {said})"
        return None, f"HTTP {error.status_code}: {said}"
    reason = no_edits_route_in_success(await response.aread())
    if reason is not None:
        return False, f"it has no /images/edits ({reason})"
    return True, "/images/edits answered HTTP 200"

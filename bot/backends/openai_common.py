"""What the OpenAI-compatible image and critic backends share: the client and the error mapping."""

from __future__ import annotations

import openai

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

# The SDK retries 408/409/429/5xx and connection errors itself with exponential backoff,
# honouring Retry-After; two retries keep a failing round under about ten seconds.
MAX_RETRIES = 2

BLOCKED_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})
"""Error codes of a provider's safety system: never a parameter to drop or a retry."""
_CREDIT_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
REASON_CHARS = 300
"""How much of a server's own error message a BackendError's detail keeps."""


def make_client(
    base_url: str | None, api_key: str, timeout: float, max_retries: int = MAX_RETRIES
) -> openai.AsyncOpenAI:
    """Return an AsyncOpenAI client with an explicit timeout and the shared retry policy.

    Its HTTP goes through aiohttp (the SDK's `openai[aiohttp]` option): a few ms less Python
    per request than the default, and no pool bookkeeping that grows with the connections
    (the bot holds dozens when many rounds run at once; bench/).
    """
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        http_client=openai.DefaultAioHttpClient(timeout=timeout),
    )


def error_code(error: openai.APIStatusError) -> str:
    """Return the error's code (or its type when it has none), "" when it has neither."""
    body = error.body if isinstance(error.body, dict) else {}
    return str(error.code or body.get("code") or body.get("type") or "")


def server_reason(body: object) -> str:
    """Return the server's own message in an error body, on one line ("" when there is none).

    The SDK passes the body's `error` object when there is one. OpenAI, LiteLLM and LocalAI
    put the message in `message`; FastAPI servers (vLLM, openedai-images) in `detail`, a string
    or, for a request that fails validation (422), a list of {"loc", "msg"} items; some put a
    string in `error`; a body that is not JSON is its text.
    """
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())
            if key == "detail" and isinstance(value, list):
                return "; ".join(_validation_item(item) for item in value)
        return ""
    return " ".join(body.split()) if isinstance(body, str) else ""


def _validation_item(item: object) -> str:
    """Return one FastAPI validation error as `where: message` (`body.quality: ...`)."""
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc") or ())
    message = " ".join(str(item.get("msg") or "").split())
    return f"{where}: {message}" if where else message


def translate_openai_error(error: openai.OpenAIError, service: str) -> BackendError:
    """Map an openai SDK exception to the domain's typed backend error."""
    if isinstance(error, openai.APITimeoutError):
        return Unavailable(service, "timed out")
    if isinstance(error, openai.APIConnectionError):
        return Unavailable(service, "connection failed")
    if isinstance(error, openai.ContentFilterFinishReasonError):
        return ContentBlocked(service, "content filter")
    if isinstance(error, openai.APIStatusError):
        code = error_code(error)
        shown = "" if code == str(error.status_code) else code
        detail = f"HTTP {error.status_code} {shown}".strip()
        if code in BLOCKED_CODES:
            return ContentBlocked(service, detail)
        if error.status_code == 402 or code in _CREDIT_CODES:
            return OutOfCredits(service, detail)
        if error.status_code in (401, 403):
            return BadCredentials(service, detail)
        if error.status_code == 429:
            return RateLimited(service, detail)
        if error.status_code in TRANSIENT_STATUSES or error.status_code >= 500:
            return Unavailable(service, detail)
        # What the server said is kept for the operator (the log, the round's stored error):
        # "HTTP 400" alone does not say which parameter or value it refused.
        reason = server_reason(error.body)[:REASON_CHARS]
        return Rejected(service, f"{detail}: {reason}" if reason else detail)
    return BadOutput(service, type(error).__name__)

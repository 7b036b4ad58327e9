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

_BLOCKED_CODES = {"moderation_blocked", "content_policy_violation", "content_filter"}
_CREDIT_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}


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


def _code(error: openai.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    return str(error.code or body.get("code") or body.get("type") or "")


def translate_openai_error(error: openai.OpenAIError, service: str) -> BackendError:
    """Map an openai SDK exception to the domain's typed backend error."""
    if isinstance(error, openai.APITimeoutError):
        return Unavailable(service, "timed out")
    if isinstance(error, openai.APIConnectionError):
        return Unavailable(service, "connection failed")
    if isinstance(error, openai.ContentFilterFinishReasonError):
        return ContentBlocked(service, "content filter")
    if isinstance(error, openai.APIStatusError):
        code = _code(error)
        detail = f"HTTP {error.status_code} {code}".strip()
        if code in _BLOCKED_CODES:
            return ContentBlocked(service, detail)
        if error.status_code == 402 or code in _CREDIT_CODES:
            return OutOfCredits(service, detail)
        if error.status_code in (401, 403):
            return BadCredentials(service, detail)
        if error.status_code == 429:
            return RateLimited(service, detail)
        if error.status_code in TRANSIENT_STATUSES or error.status_code >= 500:
            return Unavailable(service, detail)
        return Rejected(service, detail)
    return BadOutput(service, type(error).__name__)

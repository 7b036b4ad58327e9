"""The HTTP clients of the image backends, built from the settings (one per backend object)."""

from __future__ import annotations

import httpx
import openai

from bot.backends.openai_common import make_client
from bot.config import Settings


def stability_http(settings: Settings) -> httpx.AsyncClient:
    """Return an httpx client for Stability's REST API: IMAGE_TIMEOUT per request."""
    return httpx.AsyncClient(
        base_url=settings.stability_api_base_url,
        timeout=httpx.Timeout(settings.image_timeout, connect=10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


def openai_images_client(settings: Settings) -> openai.AsyncOpenAI:
    """Return the openai client of the image backend (OPENAI_BASE_URL, IMAGE_TIMEOUT)."""
    assert settings.openai_api_key is not None  # checked by Settings
    return make_client(
        settings.openai_base_url, settings.openai_api_key.get_secret_value(), settings.image_timeout
    )

"""Estimated cost of each paid call, from the backend's usage data and a small price table.

Prices are list prices in USD as published by the providers, kept here as estimates: the
bill is the provider's. Models not in the table (self-hosted servers, new models) are
recorded with no cost rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STABILITY_USD_PER_CREDIT = 0.01


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """USD per million tokens."""

    text_in: float
    out: float
    image_in: float | None = None


# Longest prefix wins.
TOKEN_PRICES: dict[str, TokenPrice] = {
    "gpt-image": TokenPrice(text_in=5.0, image_in=10.0, out=40.0),
    "gpt-image-1-mini": TokenPrice(text_in=2.0, image_in=2.5, out=8.0),
    "gpt-5.4-mini": TokenPrice(text_in=0.25, out=2.0),
    "gpt-5.4-nano": TokenPrice(text_in=0.05, out=0.4),
    "gpt-5-mini": TokenPrice(text_in=0.25, out=2.0),
    "gpt-4.1-mini": TokenPrice(text_in=0.4, out=1.6),
    "gpt-4o-mini": TokenPrice(text_in=0.15, out=0.6),
    "gpt-4o": TokenPrice(text_in=2.5, out=10.0),
}

STABILITY_CREDITS: dict[str, float] = {
    "sd3.5-large": 6.5,
    "sd3.5-large-turbo": 4.0,
    "sd3.5-medium": 3.5,
    "sd3.5-flash": 2.5,
    "core": 3.0,
    "ultra": 8.0,
    # v2beta stable-image/edit/outpaint (the campaign pack), per call.
    "stable-image-outpaint": 4.0,
}

IMAGE_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160}
"""Output tokens of one 1024x1024 GPT image by quality (OpenAI's image generation guide);
other sizes scale with their area. An estimate before the call: the bill is the usage."""


def _token_price(model: str) -> TokenPrice | None:
    matches = [prefix for prefix in TOKEN_PRICES if model.startswith(prefix)]
    return TOKEN_PRICES[max(matches, key=len)] if matches else None


def estimate_cost(model: str, usage: dict[str, Any]) -> float | None:
    """Return the estimated USD cost of one call, or None when it cannot be estimated."""
    if model in STABILITY_CREDITS:
        return STABILITY_CREDITS[model] * STABILITY_USD_PER_CREDIT
    price = _token_price(model)
    if price is None:
        return None
    if "output_tokens" in usage:  # Images API usage
        details = usage.get("input_tokens_details") or {}
        text_in = details.get("text_tokens", usage.get("input_tokens", 0))
        image_in = details.get("image_tokens", 0)
        tokens_out = usage.get("output_tokens", 0)
    elif "prompt_tokens" in usage:  # Chat Completions usage
        text_in, image_in = usage.get("prompt_tokens", 0), 0
        tokens_out = usage.get("completion_tokens", 0)
    else:
        return None
    image_price = price.image_in if price.image_in is not None else price.text_in
    return float(text_in * price.text_in + image_in * image_price + tokens_out * price.out) / 1e6


def estimate_image(model: str, *, width: int, height: int, quality: str | None) -> float | None:
    """Return the estimated USD cost of one image of `width` x `height` before it is drawn
    (the pack's cost message), or None when the model is not in the price tables."""
    if model in STABILITY_CREDITS:
        return STABILITY_CREDITS[model] * STABILITY_USD_PER_CREDIT
    price = _token_price(model)
    if price is None:
        return None
    per_1024 = IMAGE_TOKENS_1024.get(quality or "medium", IMAGE_TOKENS_1024["medium"])
    tokens_out = per_1024 * width * height / 1024**2
    image_in = 1000  # about what the canvas and its mask cost as input
    image_price = price.image_in if price.image_in is not None else price.text_in
    return float(tokens_out * price.out + image_in * image_price) / 1e6

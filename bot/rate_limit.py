"""Telegram's flood limits, as python-telegram-bot's AIORateLimiter applies them, minus one.

AIORateLimiter paces every call that names a chat: 30 a second overall and 20 a minute per
group. Telegram's limits are about messages. Chat actions ("sending a photo…") and the
reaction on a brief are not messages, come at most once per round (chat actions every few
seconds while an image is drawn), and losing one is harmless, so they skip the queue: pacing
them would delay the photos and captions people are waiting for.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

UNPACED_ENDPOINTS = frozenset({"sendChatAction", "setMessageReaction"})


class MessageRateLimiter(AIORateLimiter):
    """AIORateLimiter that lets chat actions and reactions through unpaced (and unretried)."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint in UNPACED_ENDPOINTS:
            return await callback(*args, **kwargs)
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )

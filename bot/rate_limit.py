"""Telegram's flood limits, as python-telegram-bot's AIORateLimiter applies them, minus one.

AIORateLimiter paces every call that names a chat: 30 a second overall and 20 a minute per
group. Telegram's limits are about messages. Chat actions ("sending a photo…") and the
reaction on a brief are not messages, come at most once per round (chat actions every few
seconds while an image is drawn), and losing one is harmless, so they skip the queue: pacing
them would delay the photos and captions people are waiting for.

It also counts what it paces (the last second overall, the last minute per group), so what is
optional (a round's preview) can be skipped when sending it would make something else wait
(`has_room`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

UNPACED_ENDPOINTS = frozenset({"sendChatAction", "setMessageReaction"})

OVERALL_PER_SECOND = 30
"""AIORateLimiter's default overall_max_rate: Telegram's 30 messages a second per bot."""
GROUP_PER_MINUTE = 20
"""AIORateLimiter's default group_max_rate (per group_time_period of 60 s): Telegram's 20
messages a minute in one group."""
_TRACKED_GROUPS = 512  # as AIORateLimiter, forget idle groups beyond this many


class MessageRateLimiter(AIORateLimiter):
    """AIORateLimiter that lets chat actions and reactions through unpaced (and unretried),
    and says whether a chat has room for more messages now."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent: deque[float] = deque()
        self._group_sent: dict[int | str, deque[float]] = {}

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
        self._count(data.get("chat_id"))
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )

    def has_room(self, chat_id: int | str, messages: int) -> bool:
        """Return whether `messages` more can go to the chat now without any of them, or
        anything else, waiting: within the last second's overall budget and, for a group,
        the last minute's."""
        now = time.monotonic()
        _forget(self._sent, now - 1.0)
        if len(self._sent) + messages > OVERALL_PER_SECOND:
            return False
        group = _group_key(chat_id)
        if group is None:
            return True
        sent = self._group_sent.get(group)
        if sent is None:
            return messages <= GROUP_PER_MINUTE
        _forget(sent, now - 60.0)
        return len(sent) + messages <= GROUP_PER_MINUTE

    def _count(self, chat_id: Any) -> None:
        now = time.monotonic()
        self._sent.append(now)
        _forget(self._sent, now - 1.0)
        group = _group_key(chat_id)
        if group is None:
            return
        if group not in self._group_sent and len(self._group_sent) >= _TRACKED_GROUPS:
            for key, sent in list(self._group_sent.items()):
                _forget(sent, now - 60.0)
                if not sent:
                    del self._group_sent[key]
        sent = self._group_sent.setdefault(group, deque())
        sent.append(now)
        _forget(sent, now - 60.0)


def _group_key(chat_id: Any) -> int | str | None:
    """Return the chat id when AIORateLimiter paces it as a group (a negative id, or a
    @username, which only channels and supergroups have), else None."""
    if isinstance(chat_id, str):
        try:
            chat_id = int(chat_id)
        except ValueError:
            return chat_id
    if isinstance(chat_id, int) and chat_id < 0:
        return chat_id
    return None


def _forget(sent: deque[float], before: float) -> None:
    while sent and sent[0] < before:
        sent.popleft()

"""Small helpers for the tasks a run starts and the listener calls it awaits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from bot.refine.errors import AudienceGone

log = logging.getLogger(__name__)

T = TypeVar("T")


def background(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start `work` as a task whose failure is never reported as "never retrieved" (whoever
    awaits it sees the error; a task cancelled unawaited has nobody to tell)."""
    task = asyncio.create_task(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


async def notify(call: Awaitable[T]) -> T | None:
    """Await a listener callback; a failing chat must never lose a paid, stored round.

    AudienceGone passes through: the chat is gone, so the run should stop paying.
    """
    try:
        return await call
    except (asyncio.CancelledError, AudienceGone):
        raise
    except Exception:
        log.exception("run listener failed")
        return None

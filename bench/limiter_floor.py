"""What Telegram's message limit alone costs a scenario.

The bot paces its messages like python-telegram-bot's AIORateLimiter: a leaky bucket that lets
30 through at once and then 30 a second. `replay` runs a scenario's rounds again with the
models' waits they really had but an infinitely fast bot, whose only delay is that bucket. No
bot sending the same messages can finish sooner, so its figures are floors under the measured
ones: where a floor is above a target, the target is out of reach at that load, whatever the
bot's CPU.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

TELEGRAM_CEILING = 30.0
"""Telegram's documented ceiling for one bot: about 30 messages per second overall."""

LIMITER_BURST = 30
"""Messages the limiter lets through at once before pacing them at the ceiling."""

PHOTO, CAPTION, PREVIEW = 0, 1, 2


@dataclass(slots=True)
class Floor:
    total_s: float
    """First brief → last round's caption."""
    overhead_s: list[float]
    """Per round: its wall time − the models' waits, all of it waiting for the limiter."""
    first_photo_s: list[float]
    """Per round: its photo's wait for the limiter after the image was drawn."""
    preview_s: list[float] = field(default_factory=list)
    """Per round with a preview: brief or press → the preview photo sent."""
    preview_share: list[float] = field(default_factory=list)
    """Per round with a preview: that wait ÷ the round's image wait."""
    final_s: list[float] = field(default_factory=list)
    """Per round: brief or press → the final image sent (its photo, or its media edit)."""
    buttons_s: list[float] = field(default_factory=list)
    """Per round: brief or press → the caption with the buttons sent."""


class _LeakyBucket:
    """aiolimiter's AsyncLimiter as AIORateLimiter uses it, serving callers first come, first
    served."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst, self.rate = burst, rate
        self.level, self.at, self.last_grant = 0.0, 0.0, 0.0

    def grant(self, requested: float) -> float:
        """Return when a message asked for at `requested` goes out (asks in time order)."""
        at = max(requested, self.last_grant)
        level = max(0.0, self.level - (at - self.at) * self.rate)
        if level + 1 > self.burst:
            at += (level + 1 - self.burst) / self.rate
            level = self.burst - 1
        self.level, self.at, self.last_grant = level + 1, at, at
        return at


def replay(
    chats: list[list[tuple[float, float]]],
    *,
    think_s: float = 0.0,
    burst: int = LIMITER_BURST,
    rate: float = TELEGRAM_CEILING,
    preview_at: float | None = None,
) -> Floor:
    """Replay every chat's rounds, given as (image wait, critic wait) in order, all chats
    briefing at 0, as the bot runs them: the image, then its photo (a message) while the critic
    looks, then the caption with the buttons (a message, after the photo it edits); the next
    round starts `think_s` after the caption. With `preview_at`, each round also sends its
    preview photo (a message) once `preview_at` × its image wait has passed, and the final
    image is an edit of it (a message all the same)."""
    bucket = _LeakyBucket(burst, rate)
    floor = Floor(0.0, [], [])
    # (asked at, chat, round, message, round started)
    asks: list[tuple[float, int, int, int, float]] = []
    for chat, rounds in enumerate(chats):
        if rounds:
            asks.append((rounds[0][0], chat, 0, PHOTO, 0.0))
            if preview_at is not None:
                asks.append((rounds[0][0] * preview_at, chat, 0, PREVIEW, 0.0))
    heapq.heapify(asks)
    while asks:
        asked, chat, number, message, started = heapq.heappop(asks)
        sent = bucket.grant(asked)
        image_wait, critic_wait = chats[chat][number]
        if message == PREVIEW:
            floor.preview_s.append(sent - started)
            floor.preview_share.append((sent - started) / image_wait if image_wait else 0.0)
            continue
        if message == PHOTO:
            floor.first_photo_s.append(sent - started - image_wait)
            floor.final_s.append(sent - started)
            critique = started + image_wait + critic_wait
            heapq.heappush(asks, (max(sent, critique), chat, number, CAPTION, started))
            continue
        floor.overhead_s.append(sent - started - image_wait - critic_wait)
        floor.buttons_s.append(sent - started)
        floor.total_s = max(floor.total_s, sent)
        if number + 1 < len(chats[chat]):
            start = sent + think_s
            image_next = chats[chat][number + 1][0]
            heapq.heappush(asks, (start + image_next, chat, number + 1, PHOTO, start))
            if preview_at is not None:
                heapq.heappush(
                    asks, (start + image_next * preview_at, chat, number + 1, PREVIEW, start)
                )
    return floor

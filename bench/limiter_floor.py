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
from dataclasses import dataclass

TELEGRAM_CEILING = 30.0
"""Telegram's documented ceiling for one bot: about 30 messages per second overall."""

LIMITER_BURST = 30
"""Messages the limiter lets through at once before pacing them at the ceiling."""

PHOTO, CAPTION = 0, 1


@dataclass(frozen=True, slots=True)
class Floor:
    total_s: float
    """First brief → last round's caption."""
    overhead_s: list[float]
    """Per round: its wall time − the models' waits, all of it waiting for the limiter."""
    first_photo_s: list[float]
    """Per round: its photo's wait for the limiter after the image was drawn."""


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
) -> Floor:
    """Replay every chat's rounds, given as (image wait, critic wait) in order, all chats
    briefing at 0, as the bot runs them: the image, then its photo (a message) while the critic
    looks, then the caption with the buttons (a message, after the photo it edits); the next
    round starts `think_s` after the caption."""
    bucket = _LeakyBucket(burst, rate)
    overhead: list[float] = []
    first_photo: list[float] = []
    total = 0.0
    # (asked at, chat, round, message, round started)
    asks: list[tuple[float, int, int, int, float]] = [
        (rounds[0][0], chat, 0, PHOTO, 0.0) for chat, rounds in enumerate(chats) if rounds
    ]
    heapq.heapify(asks)
    while asks:
        asked, chat, number, message, started = heapq.heappop(asks)
        sent = bucket.grant(asked)
        image_wait, critic_wait = chats[chat][number]
        if message == PHOTO:
            first_photo.append(sent - started - image_wait)
            critique = started + image_wait + critic_wait
            heapq.heappush(asks, (max(sent, critique), chat, number, CAPTION, started))
            continue
        overhead.append(sent - started - image_wait - critic_wait)
        total = max(total, sent)
        if number + 1 < len(chats[chat]):
            start = sent + think_s
            heapq.heappush(
                asks, (start + chats[chat][number + 1][0], chat, number + 1, PHOTO, start)
            )
    return Floor(total, overhead, first_photo)

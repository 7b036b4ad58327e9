"""`python -m bench.botproc`: exactly `python -m bot`, plus what the benchmark reads from inside.

The bot's code is not changed: this module only adds, before calling `bot.__main__.main()`,

* BENCH_LAG_FILE: the event-loop lag sampler of `bench.loopmon` (samples go to that file);
* BENCH_RATE_LIMITER=off: python-telegram-bot's AIORateLimiter with both limits set to 0 (its
  documented "no limiting"), whatever the bot passes; retries on 429 stay as configured.
  Only for the "without the rate limiter" comparison runs; the bot as configured is the
  default.
"""

from __future__ import annotations

import os
import sys


def _rate_limiter_off() -> None:
    from telegram.ext import AIORateLimiter

    original_init = AIORateLimiter.__init__

    def init(self: AIORateLimiter, *args: object, **kwargs: object) -> None:
        max_retries = kwargs.get("max_retries", args[4] if len(args) > 4 else 0)
        original_init(self, overall_max_rate=0, group_max_rate=0, max_retries=max_retries)  # type: ignore[arg-type]

    AIORateLimiter.__init__ = init  # type: ignore[method-assign]


def main() -> int:
    lag_file = os.environ.get("BENCH_LAG_FILE")
    if lag_file:
        from bench import loopmon

        loopmon.install(lag_file, float(os.environ.get("BENCH_LAG_INTERVAL", "0.02")))
    if os.environ.get("BENCH_RATE_LIMITER") == "off":
        _rate_limiter_off()
    from bot.__main__ import main as bot_main

    return bot_main()


if __name__ == "__main__":
    sys.exit(main())

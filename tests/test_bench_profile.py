"""bench/profile.py folds py-spy's raw stacks into where the bot's CPU goes; threads waiting in
C code (uvloop's epoll wait, thread-pool workers between jobs) are counted apart, not as work."""

from __future__ import annotations

from bench.profile import fold

LOOP = (
    "thread (1): MainThread;run_bot (bot/__main__.py:138);"
    "Application.__run (telegram/ext/_application.py:1062)"
)
WORKER = (
    "thread (2): uvloop_0;Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:83)"
)


def test_threads_waiting_in_c_are_counted_apart_from_work() -> None:
    raw = "\n".join(
        [
            f"{LOOP} 40",
            f"{WORKER} 30",
            f"{LOOP};OpenAICritic._ask (bot/backends/openai_critic.py:126);"
            "AsyncAPIClient.post (openai/_base_client.py:2085) 6",
            f"{WORKER};_WorkItem.run (concurrent/futures/thread.py:58);"
            "prepare (bot/images.py:62);_scaled_jpeg (bot/images.py:106) 4",
        ]
    )

    folded = fold(raw)

    assert (folded["waiting"], folded["total"]) == (70, 10)
    assert folded["threads"] == {"event loop (main thread)": 6, "asyncio.to_thread workers": 4}
    assert folded["own"] == {
        "bot/backends/openai_critic.py:OpenAICritic._ask": 6,
        "bot/images.py:_scaled_jpeg": 4,
    }
    assert folded["leaf"]["openai/_base_client.py:AsyncAPIClient.post"] == 6

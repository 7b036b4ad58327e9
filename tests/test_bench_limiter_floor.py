"""bench/limiter_floor.py: a scenario replayed by an infinitely fast bot whose only delay is
the 30-messages-a-second limiter, the floor under the benchmark's measured figures."""

from __future__ import annotations

import pytest

from bench.harness import percentile
from bench.limiter_floor import LIMITER_BURST, TELEGRAM_CEILING, replay

ROUND = (2.0, 1.0)  # the bench's default waits: image 2 s, critic 1 s


def test_one_chat_never_waits_for_the_limiter() -> None:
    floor = replay([[ROUND] * 3])
    assert floor.total_s == pytest.approx(9.0)
    assert floor.overhead_s == pytest.approx([0.0, 0.0, 0.0])
    assert floor.first_photo_s == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_the_burst_goes_at_once_and_the_rest_at_the_ceiling() -> None:
    chats = [[(2.0, 0.0)] for _ in range(LIMITER_BURST + 1)]  # all photos asked at 2 s
    floor = replay(chats)
    # 31 photos then 31 captions: 30 at once, the other 32 one by one at 30 a second.
    assert floor.total_s == pytest.approx(2.0 + 32 / TELEGRAM_CEILING)
    critiqued_later = replay([[(2.0, 1.0)] for _ in range(LIMITER_BURST + 1)])
    expected = [0.0] * LIMITER_BURST + [1 / TELEGRAM_CEILING]
    assert sorted(critiqued_later.first_photo_s) == pytest.approx(expected, abs=1e-9)


def test_a_caption_waits_for_its_photo_and_the_next_round_for_the_think_time() -> None:
    floor = replay([[(1.0, 0.0), (1.0, 0.0)]], think_s=0.5)
    assert floor.total_s == pytest.approx(2.5)
    assert floor.overhead_s == pytest.approx([0.0, 0.0])


def test_fifty_chats_at_once_cannot_finish_within_1_2_times_one_chat() -> None:
    # Nothing can be sent before the first image exists (2 s); then 300 messages, 270 of
    # them beyond the burst, need 9 s more: the target's 1.2 × 9 s is out of reach.
    floor = replay([[ROUND] * 3 for _ in range(50)])
    assert floor.total_s == pytest.approx(2.0 + 270 / TELEGRAM_CEILING)
    assert floor.total_s > 1.2 * 9.0
    assert percentile(floor.overhead_s, 95) > 0.2  # and so is the p95 overhead ≤ 200 ms


def test_a_preview_is_one_more_message_sent_at_its_share_of_the_image_wait() -> None:
    floor = replay([[(20.0, 4.0)] * 2], preview_at=0.4)
    assert floor.preview_s == pytest.approx([8.0, 8.0])
    assert floor.final_s == pytest.approx([20.0, 20.0])
    assert floor.buttons_s == pytest.approx([24.0, 24.0])
    # 31 chats: 31 previews and 31 final images fill the burst; the buttons then wait.
    busy = replay([[(1.0, 0.0)] for _ in range(LIMITER_BURST + 1)], preview_at=0.5)
    assert max(busy.preview_s) == pytest.approx(0.5 + 1 / TELEGRAM_CEILING)
    assert max(busy.buttons_s) > max(replay([[(1.0, 0.0)]] * 31).buttons_s)

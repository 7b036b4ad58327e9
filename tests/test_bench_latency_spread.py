"""`python -m bench.run --latency-spread`: each model call waits its latency × a factor the
prompt fixes, and the report subtracts what each round really waited."""

from __future__ import annotations

from bench.harness import Config, RoundTiming, RunResult
from bench.run import summarize_run, vs_one_chat
from bench.waits import realistic_config, wait_figures, waits_report
from tests.fakes.openai_server import Latencies

PROMPTS = [f"amber serum bottle, marble (#{i})" for i in range(200)]


def test_no_spread_waits_exactly_the_latency() -> None:
    waits = Latencies(image=2.0, chat=1.0)
    assert {waits.for_image(p) for p in PROMPTS} == {2.0}
    assert {waits.for_chat(p) for p in PROMPTS} == {1.0}


def test_a_spread_varies_by_prompt_within_its_bounds() -> None:
    waits = Latencies(image=2.0, chat=1.0, spread=0.5)
    images = [waits.for_image(p) for p in PROMPTS]
    chats = [waits.for_chat(p) for p in PROMPTS]
    assert all(1.0 <= s <= 3.0 for s in images) and all(0.5 <= s <= 1.5 for s in chats)
    assert min(images) < 1.3 and max(images) > 2.7  # the whole range is used
    assert images == [waits.for_image(p) for p in PROMPTS]  # fixed by the prompt
    assert [i / 2 for i in images] != chats  # the critic's draw is not the image's


def _result(cfg: Config, rounds: list[RoundTiming], total: float) -> RunResult:
    return RunResult(
        config=cfg,
        rounds=rounds,
        started=0.0,
        finished=total,
        bot_cpu_s=1.0,
        bot_cpu_raw_s=1.0,
        idle_cpu_per_s=0.0,
        fakes_cpu_s=1.0,
        rss_peak_mb=100.0,
        lag_s=[0.001],
        api_calls=[],
        db_bytes=0,
        db_bytes_empty=0,
        image_store_bytes=0,
        rounds_total_in_db=len(rounds),
        usage=[],
        critic_images=[],
        raw_image_bytes=[],
        generated=[],
        stderr_tail=[],
    )


def test_overhead_subtracts_what_each_round_waited() -> None:
    cfg = Config(chats=2, rounds=1, latency_spread=0.5)
    waits = Latencies(cfg.image_latency, cfg.critic_latency, cfg.latency_spread)
    rounds = []
    for chat_id, prompt in enumerate(PROMPTS[:2]):
        image, critic = waits.for_image(prompt), waits.for_chat(prompt)
        rounds.append(
            RoundTiming(
                chat_id=chat_id,
                number=1,
                enqueued=10.0,
                first_photo=10.0 + image + 0.030,
                prompt=prompt,
                done=10.0 + image + critic + 0.050,
            )
        )
    summary = summarize_run(_result(cfg, rounds, total=20.0))
    assert round(summary["overhead_p50_ms"], 6) == 50 and round(summary["ttfp_p50_ms"], 6) == 30
    slowest = max(waits.for_image(p) + waits.for_chat(p) for p in PROMPTS[:2])
    assert summary["models_s"] == slowest


def test_the_ratio_to_one_chat_discounts_the_latency_draws() -> None:
    one = {"total_s": 9.3, "models_s": 9.0}
    assert round(vs_one_chat({"total_s": 12.4, "models_s": 12.0}, one), 3) == 1.0
    assert round(vs_one_chat({"total_s": 11.16, "models_s": 9.0}, one), 3) == 1.2
    assert vs_one_chat({"total_s": 11.0, "models_s": 9.0}, None) is None


def test_the_realistic_profile_reports_what_the_user_waits_for() -> None:
    base = realistic_config(Config(chats=1), 1, previews=1, time_scale=0.1)
    assert (base.image_latency, base.critic_latency, base.latency_spread) == (2.0, 0.4, 0.5)
    waits = Latencies(base.image_latency, base.critic_latency, base.latency_spread)
    prompt = PROMPTS[0]
    image, critic = waits.for_image(prompt), waits.for_chat(prompt)
    timing = RoundTiming(
        chat_id=1,
        number=1,
        enqueued=10.0,
        first_preview=10.0 + 0.4 * image + 0.020,
        first_photo=10.0 + image + 0.030,
        prompt=prompt,
        done=10.0 + image + critic + 0.050,
        messages=3,
    )
    figures = wait_figures(_result(base, [timing], total=20.0))
    assert round(figures["preview_p50"], 6) == round(0.4 * image + 0.020, 6)
    assert round(figures["preview_share_p50"], 6) == round(0.4 + 0.020 / image, 6)
    assert round(figures["buttons_over_models_p50"], 6) == 0.05
    assert round(figures["floor_buttons_over_models_p50"], 6) == 0.0
    assert round(figures["floor_preview_share_p50"], 6) == 0.4
    assert figures["messages_per_round"] == 3
    report = "\n".join(waits_report({"realistic": {"1:1": {**figures, "runs": 1}}}))
    share = f"{0.4 + 0.020 / image:.2f}"
    assert f"| First preview / image latency p50, 1 chat(s) | {share} | ≤ 0.45 | ✓ |" in report
    assert "| Buttons − models p50, 1 chat(s) | 50 ms | ≤ floor + 100 ms (100 ms) | ✓ |" in report

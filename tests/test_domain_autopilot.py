"""The autopilot on its own: drafts in parallel, the best kept, best-of-rounds, the stop rules
and quotas between rounds, through the refine facade with in-process fakes and a real store."""

from __future__ import annotations

from bot.refine.models import Actor, AutopilotDefaults, QuotaPolicy, Scope
from bot.refine.service import RefineService
from storage.records import AutopilotStatus, RoundStatus
from storage.store import Store
from tests.domain_fakes import FakeCritic, FakeGenerator, RecordingListener

SCOPE = Scope(chat_id=42)
ANA = Actor(user_id=7, name="Ana")
BRIEF = "gold jewellery on black velvet"


def service(
    store: Store, generator: FakeGenerator, critic: FakeCritic, quota: QuotaPolicy | None = None
) -> RefineService:
    return RefineService(
        store=store,
        generator=generator,
        critic=critic,
        max_rounds_in_flight=4,
        quota=quota,
        autopilot=AutopilotDefaults(rounds=3, drafts=2, threshold=9),
    )


async def test_each_round_keeps_its_best_draft_and_the_run_its_best_round(store: Store) -> None:
    # Round 1's drafts score 5 and 8, round 2's 6 and 7, round 3's 4 and 6: no round beats 8
    # twice in a row, so the run stops after round 3 (patience 2) on round 1.
    critic = FakeCritic(scores=[5, 8, 6, 7, 4, 6])
    generator = FakeGenerator()
    refine = service(store, generator, critic)
    pending = await refine.begin_autopilot(SCOPE, ANA, brief=BRIEF)
    listener = RecordingListener()
    outcome = await refine.run(pending, listener)

    assert outcome.stop_reason == "no_improvement"
    assert [r.round.score for r in outcome.rounds] == [8, 7, 6]
    assert outcome.best is not None and outcome.best.number == 1 and outcome.best.score == 8
    assert outcome.images == 6 and len(generator.calls) == 6
    assert listener.shown == []  # an autopilot run shows only its best image, at the end
    assert generator.previews_asked == [False] * 6  # so it asks for no partial images
    assert listener.stages[0] == "start" and listener.stages.count("round") == 3
    for result in outcome.rounds:
        drafts = await store.rounds.drafts(result.round.id)
        assert len(drafts) == 2 and sum(d.kept for d in drafts) == 1
        [kept] = [d for d in drafts if d.kept]
        assert kept.image_sha == result.round.image_sha and kept.score == result.round.score
    # Each round after the first is drawn from the best round so far's suggestion.
    assert generator.calls[2]["prompt"] == f"{BRIEF}, softer light"
    assert {c["seed"] for c in generator.calls[:2]} != {generator.calls[0]["seed"]}
    assert outcome.run is not None and outcome.run.status is AutopilotStatus.DONE
    assert outcome.run.best_round_id == outcome.best.id


async def test_a_run_stops_at_the_threshold(store: Store) -> None:
    refine = service(store, FakeGenerator(), FakeCritic(scores=[6, 9]))
    outcome = await refine.run(
        await refine.begin_autopilot(SCOPE, ANA, brief=BRIEF), RecordingListener()
    )
    assert outcome.stop_reason == "threshold" and len(outcome.rounds) == 1
    assert outcome.best is not None and outcome.best.score == 9


async def test_the_quota_is_checked_before_every_round_after_the_first(store: Store) -> None:
    quota = QuotaPolicy(rounds_per_user_per_day=2)
    refine = service(store, FakeGenerator(), FakeCritic(scores=[5]), quota)
    outcome = await refine.run(
        await refine.begin_autopilot(SCOPE, ANA, brief=BRIEF), RecordingListener()
    )
    assert outcome.stop_reason == "quota" and len(outcome.rounds) == 2


async def test_a_run_whose_drafts_all_fail_ends_with_a_round_to_retry(store: Store) -> None:
    from bot.backends.errors import RateLimited

    generator = FakeGenerator(errors=[RateLimited("image", "slow down")] * 2)
    refine = service(store, generator, FakeCritic())
    outcome = await refine.run(
        await refine.begin_autopilot(SCOPE, ANA, brief=BRIEF), RecordingListener()
    )
    assert outcome.stop_reason == "error" and outcome.best is None
    failed = outcome.failed_round
    assert failed is not None and failed.status is RoundStatus.FAILED
    assert failed.error_kind == "rate_limited"
    assert {d.status for d in await store.rounds.drafts(failed.id)} == {RoundStatus.FAILED}

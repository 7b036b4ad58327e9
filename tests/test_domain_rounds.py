"""The refine domain on its own: manual rounds through the facade, with in-process fakes for
the image generator and the critic and a real temporary SQLite store (no Telegram, no HTTP)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.backends.errors import ContentBlocked, Unavailable
from bot.refine.errors import SessionBusy
from bot.refine.models import Actor, Scope
from bot.refine.service import RefineService
from bot.refine.steps import PaidSteps
from storage.records import RoundRecord, RoundStatus
from storage.store import Store
from tests.domain_fakes import FakeCritic, FakeGenerator, RecordingListener
from tests.fakes.pngs import solid_png

SCOPE = Scope(chat_id=42)
ANA = Actor(user_id=7, name="Ana")
BRIEF = "black-purple Banarasi saree on a plain backdrop"


def service(
    store: Store, generator: FakeGenerator, critic: FakeCritic, **options: object
) -> RefineService:
    return RefineService(
        store=store, generator=generator, critic=critic, max_rounds_in_flight=4, **options
    )


async def test_a_round_is_pending_before_the_paid_call_and_stored_before_it_is_shown(
    store: Store,
) -> None:
    seen_at_draw: list[list[RoundRecord]] = []

    async def look_before_drawing() -> None:
        seen_at_draw.append(await store.rounds.running())

    async def look_when_shown(round: RoundRecord) -> None:
        assert round.image_sha is not None
        record, data = await store.images.read(round.image_sha)  # stored before it is shown
        assert data and record.mime == "image/png"
        stored = await store.rounds.get(round.id)
        assert stored is not None and stored.image_sha == round.image_sha
        assert stored.status is RoundStatus.CRITIQUING

    generator, critic = FakeGenerator(before=look_before_drawing), FakeCritic(scores=[6])
    refine = service(store, generator, critic)
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    assert pending.round is not None and pending.round.status is RoundStatus.PENDING
    assert generator.calls == []

    listener = RecordingListener(on_image=look_when_shown)
    outcome = await refine.run(pending, listener)

    assert [[r.id for r in running] for running in seen_at_draw] == [[pending.round.id]]
    assert seen_at_draw[0][0].status is RoundStatus.GENERATING
    assert outcome.last is not None and outcome.last.critique is not None
    done = outcome.last.round
    assert done.status is RoundStatus.DONE and done.score == 6 and done.message_id == 100
    assert [r.id for r in listener.shown] == [done.id]
    [draft] = await store.rounds.drafts(done.id)
    assert draft.kept == 1 and draft.image_sha == done.image_sha and draft.score == 6
    assert not refine.is_busy(pending.session.id)


async def test_a_second_request_while_a_round_is_pending_starts_nothing(store: Store) -> None:
    generator, critic = FakeGenerator(), FakeCritic()
    refine = service(store, generator, critic)
    first = await refine.run(await refine.begin_start(SCOPE, ANA, BRIEF), RecordingListener())
    assert first.last is not None
    round_id = first.last.round.id

    pending = await refine.begin_accept(round_id, SCOPE, ANA)
    with pytest.raises(SessionBusy):
        await refine.begin_edit(round_id, SCOPE, ANA, "a red saree instead")
    await refine.run(pending, RecordingListener())
    assert len(generator.calls) == 2
    rounds = await store.rounds.of_session(pending.session.id)
    assert [r.action for r in rounds] == ["brief", "accept"]


async def test_cancel_while_drawing_stores_the_round_and_its_draft_as_cancelled(
    store: Store,
) -> None:
    drawing = asyncio.Event()

    async def hang() -> None:
        drawing.set()
        await asyncio.Event().wait()

    refine = service(store, FakeGenerator(before=hang), FakeCritic())
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    running = asyncio.create_task(refine.run(pending, RecordingListener()))
    await drawing.wait()
    assert await refine.cancel(SCOPE, ANA) == 1
    outcome = await running

    assert outcome.cancelled and outcome.last is not None and outcome.last.cancelled
    assert pending.round is not None
    round = await store.rounds.get(pending.round.id)
    assert round is not None and round.status is RoundStatus.CANCELLED
    assert [d.status for d in await store.rounds.drafts(round.id)] == [RoundStatus.CANCELLED]
    assert not refine.is_busy(pending.session.id)


async def test_cancel_before_the_round_starts_pays_for_nothing(store: Store) -> None:
    generator = FakeGenerator()
    refine = service(store, generator, FakeCritic())
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    assert await refine.cancel(SCOPE, ANA) == 1
    outcome = await refine.run(pending, RecordingListener())
    assert outcome.cancelled and generator.calls == []


async def test_an_image_failure_fails_the_round_and_retry_draws_it_again(store: Store) -> None:
    generator = FakeGenerator(errors=[ContentBlocked("image", "moderation_blocked")])
    refine = service(store, generator, FakeCritic())
    failed = await refine.run(await refine.begin_start(SCOPE, ANA, BRIEF), RecordingListener())
    assert failed.last is not None and failed.last.round.status is RoundStatus.FAILED
    assert isinstance(failed.last.error, ContentBlocked)
    assert failed.last.round.error_kind == "blocked"

    retried = await refine.run(
        await refine.begin_retry(failed.last.round.id, SCOPE, ANA), RecordingListener()
    )
    assert retried.last is not None and retried.last.round.status is RoundStatus.DONE
    assert retried.last.round.action == "retry" and len(generator.calls) == 2


async def test_a_critic_failure_keeps_the_paid_image_with_its_buttons(store: Store) -> None:
    critic = FakeCritic(errors=[Unavailable("critic", "no answer within 1s")])
    refine = service(store, FakeGenerator(), critic)
    listener = RecordingListener()
    outcome = await refine.run(await refine.begin_start(SCOPE, ANA, BRIEF), listener)
    assert outcome.last is not None
    round = outcome.last.round
    assert round.status is RoundStatus.DONE and round.image_sha is not None
    assert round.error_kind == "unavailable" and round.critique is None
    assert isinstance(outcome.last.error, Unavailable)
    assert [r.id for r in listener.shown] == [round.id]


async def test_a_bug_while_storing_the_image_ends_the_round_ready_for_retry(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save_draft_image", disk_full)
    refine = service(store, FakeGenerator(), FakeCritic())
    outcome = await refine.run(await refine.begin_start(SCOPE, ANA, BRIEF), RecordingListener())
    assert outcome.last is not None
    assert outcome.last.round.status is RoundStatus.FAILED
    assert outcome.last.round.error_kind == "not_stored"
    assert outcome.last.unsaved is not None  # the paid image, to show all the same


async def test_a_restart_critiques_the_stored_image_without_drawing_it_again(
    store: Store,
) -> None:
    # What a crash while the critic looked leaves: the round critiquing, its image stored
    # (with its usage) and shown, no critique.
    before = service(store, FakeGenerator(), FakeCritic())
    pending = await before.begin_start(SCOPE, ANA, BRIEF)
    assert pending.round is not None
    round = await store.rounds.start(pending.round.id)
    [draft] = await store.rounds.drafts(round.id)
    image = solid_png(64, 64)
    await store.save_draft_image(
        draft.id,
        data=image,
        mime="image/png",
        width=64,
        height=64,
        usage=None,
        generate_ms=1200,
        round_takes_it=True,
    )
    await store.rounds.shown(round.id, 100)

    generator, critic = FakeGenerator(), FakeCritic(scores=[9])
    after = service(store, generator, critic)
    [resumed] = await after.interrupted_runs()
    listener = RecordingListener()
    outcome = await after.resume(resumed, listener)

    assert generator.calls == [] and len(critic.requests) == 1
    assert outcome.last is not None
    done = outcome.last.round
    assert done.status is RoundStatus.DONE and done.score == 9 and done.message_id == 100
    assert (await store.images.read(done.image_sha or ""))[1] == image
    assert listener.shown == []  # its photo was already out
    assert not after.is_busy(pending.session.id)


async def test_a_restart_before_any_image_fails_the_round_for_retry(store: Store) -> None:
    generator = FakeGenerator()
    before = service(store, generator, FakeCritic())
    pending = await before.begin_start(SCOPE, ANA, BRIEF)
    assert pending.round is not None

    after = service(store, generator, FakeCritic())
    [resumed] = await after.interrupted_runs()
    outcome = await after.resume(resumed, RecordingListener())
    assert generator.calls == []
    assert outcome.last is not None and outcome.last.round.status is RoundStatus.FAILED
    assert outcome.last.round.error_kind == "interrupted"


async def test_image_and_critic_calls_carry_the_users_hashed_safety_identifier(
    store: Store,
) -> None:
    generator, critic = FakeGenerator(), FakeCritic()
    refine = RefineService(
        store=store,
        generator=generator,
        critic=critic,
        max_rounds_in_flight=4,
        safety_key=b"a secret of the bot's own",
    )
    await refine.run(await refine.begin_start(SCOPE, ANA, BRIEF), RecordingListener())
    bob = Actor(user_id=8, name="Bob")
    await refine.run(await refine.begin_start(Scope(chat_id=43), bob, BRIEF), RecordingListener())
    ana_id, bob_id = (call["safety_identifier"] for call in generator.calls)
    assert ana_id.startswith("rb-") and len(ana_id) == 35 and ana_id != bob_id
    assert [r.safety_identifier for r in critic.requests] == [ana_id, bob_id]

    # Stable across restarts of the same bot; another bot's key gives another identifier.
    def identifier(key: bytes) -> str | None:
        steps = PaidSteps(
            store=store,
            generator=generator,
            critic=critic,
            critic_max_side=768,
            default_format="square",
            safety_key=key,
        )
        return steps.safety_identifier(ANA)

    assert identifier(b"a secret of the bot's own") == ana_id
    assert identifier(b"another bot") != ana_id


async def test_partial_images_reach_the_listener_and_are_never_stored(
    store: Store, tmp_path: Path
) -> None:
    generator, critic = FakeGenerator(partials=2), FakeCritic(scores=[6])
    refine = service(store, generator, critic)
    listener = RecordingListener()
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    outcome = await refine.run(pending, listener)

    assert generator.previews_asked == [True]  # a manual round shows each image: it asks
    await asyncio.sleep(0)  # the previews run in tasks of their own; let them land
    assert [r.id for r in listener.previews] == [pending.round.id] * 2
    assert outcome.last is not None and outcome.last.round.image_sha is not None
    files = [path for path in (tmp_path / "images").rglob("*") if path.is_file()]
    assert len(files) == 1  # the final image only

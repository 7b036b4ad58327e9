"""The outbox on its own: what becomes owed in which transaction, what `Outbox.owed` leaves to
the views, and what marks a delivery made (real temporary store, in-process fakes)."""

from __future__ import annotations

import pytest

from bot.refine.errors import SessionBusy
from bot.refine.models import Actor, Scope
from bot.refine.outbox import Outbox
from bot.refine.reservations import Reservations
from bot.refine.service import RefineService
from storage.database import StoreBusy
from storage.records import DeliveryKind, RoundStatus
from storage.store import Store
from tests.domain_fakes import FakeCritic, FakeGenerator, RecordingListener

SCOPE = Scope(chat_id=42)
ANA = Actor(user_id=7, name="Ana")
BRIEF = "canvas tote on a plain backdrop"


def service(store: Store) -> RefineService:
    return RefineService(
        store=store,
        generator=FakeGenerator(),
        critic=FakeCritic(scores=[6, 6, 6]),
        max_rounds_in_flight=4,
    )


async def keys(store: Store) -> list[str]:
    return [d.key for d in await store.deliveries.owed()]


async def test_a_round_is_owed_from_the_transaction_that_stores_its_image(store: Store) -> None:
    refine = service(store)
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    assert pending.round is not None
    assert await keys(store) == []  # nothing paid, nothing owed

    async def owed_when_shown(round: object) -> None:
        assert await keys(store) == [f"round:{pending.round.id}"]

    await refine.run(pending, RecordingListener(on_image=owed_when_shown))
    outbox = refine.outbox
    [owed] = await outbox.owed()
    assert (owed.kind, owed.round.status, owed.scope) == (
        DeliveryKind.ROUND,
        RoundStatus.DONE,
        SCOPE,
    )
    await outbox.round_delivered(pending.round.id, message_id=99)
    assert await keys(store) == []


async def test_owed_leaves_a_session_a_view_is_showing_or_a_run_holds(store: Store) -> None:
    refine = service(store)
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    await refine.run(pending, RecordingListener())
    outbox = refine.outbox
    with outbox.showing(pending.session.id):
        assert await outbox.owed() == []
    assert len(await outbox.owed()) == 1
    assert pending.round is not None
    [owed] = await outbox.owed()
    with outbox.delivering(owed) as ours:
        assert ours and await outbox.owed() == []  # held: a press meets "already working"
        with outbox.delivering(owed) as again:
            assert not again
    assert len(await outbox.owed()) == 1


async def test_stop_owes_its_document_until_it_is_delivered(store: Store) -> None:
    refine = service(store)
    pending = await refine.begin_start(SCOPE, ANA, BRIEF)
    await refine.run(pending, RecordingListener())
    assert pending.round is not None
    await store.deliveries.delivered(f"round:{pending.round.id}", message_id=5)
    async with refine.stop(pending.round.id, SCOPE, ANA) as result:
        assert await keys(store) == [f"document:{pending.round.id}"]
    outbox = refine.outbox
    [owed] = await outbox.owed()
    with outbox.delivering(owed), pytest.raises(SessionBusy):
        async with refine.stop(pending.round.id, SCOPE, ANA):
            pass  # Stop again while the pass sends the document: not a second one
    kept = await outbox.kept_image(owed)
    assert kept.image == result.image and kept.round.id == pending.round.id
    await refine.delivered(result, 77)
    assert await keys(store) == []


async def test_a_restart_owes_each_interrupted_autopilot_run_its_ending(store: Store) -> None:
    refine = service(store)
    pending = await refine.begin_autopilot(SCOPE, ANA, brief=BRIEF)
    assert pending.run is not None
    await store.sessions.progress_shown(pending.run.id, 31)
    assert await store.rounds.interrupt_unfinished() == 1
    [owed] = await Outbox(store, Reservations()).owed()  # a new process: nothing held
    assert owed.kind is DeliveryKind.AUTOPILOT and owed.round is None  # no round finished
    assert owed.run is not None and owed.run.progress_message_id == 31


async def test_the_terminals_rounds_are_nobodys_to_deliver(store: Store) -> None:
    refine = service(store)
    pending = await refine.begin_start(Scope(chat_id=0, chat_type="terminal"), ANA, BRIEF)
    await refine.run(pending, RecordingListener())
    assert await refine.outbox.owed() == []
    assert await keys(store) == []


async def test_a_mark_the_store_cannot_write_is_logged_not_raised(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def busy(*args: object, **kwargs: object) -> None:
        raise StoreBusy()

    monkeypatch.setattr(store.deliveries, "delivered", busy)
    monkeypatch.setattr(store.rounds, "shown", busy)
    outbox = Outbox(store, Reservations())
    await outbox.round_delivered(1, message_id=2)  # a view's finish never raises for it
    await outbox.shown(1, 2)
    assert "could not be marked" in caplog.text and "could not be stored" in caplog.text

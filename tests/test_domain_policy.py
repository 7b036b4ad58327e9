"""Who may start what: daily quotas and the chat's press policy, through the refine facade
with in-process fakes and a real temporary store."""

from __future__ import annotations

import pytest

from bot.refine.errors import NotYourSession, QuotaExceeded, RoundNotFound
from bot.refine.models import Actor, QuotaPolicy, Scope
from bot.refine.service import RefineService
from storage.records import ChatSettings
from storage.store import Store
from tests.domain_fakes import FakeCritic, FakeGenerator, RecordingListener

GROUP = Scope(chat_id=-100, chat_type="supergroup")
ANA = Actor(user_id=7, name="Ana")
BOB = Actor(user_id=8, name="Bob")
ADMIN = Actor(user_id=1, name="Admin")
BRIEF = "a leather handbag on a marble table"


def service(store: Store, quota: QuotaPolicy | None = None) -> RefineService:
    return RefineService(
        store=store,
        generator=FakeGenerator(),
        critic=FakeCritic(),
        max_rounds_in_flight=4,
        quota=quota,
    )


async def test_a_user_past_the_daily_quota_is_refused_and_admins_are_exempt(store: Store) -> None:
    refine = service(store, QuotaPolicy(rounds_per_user_per_day=1, exempt_user_ids=frozenset({1})))
    done = await refine.run(await refine.begin_start(GROUP, ANA, BRIEF), RecordingListener())
    assert done.last is not None
    with pytest.raises(QuotaExceeded) as refused:
        await refine.begin_accept(done.last.round.id, GROUP, ANA)
    assert refused.value.scope == "user" and refused.value.limit == 1
    await refine.begin_start(GROUP, ADMIN, BRIEF)  # no quota for admins


async def test_the_chat_quota_counts_everyone(store: Store) -> None:
    refine = service(store, QuotaPolicy(rounds_per_chat_per_day=1))
    await refine.run(await refine.begin_start(GROUP, ANA, BRIEF), RecordingListener())
    with pytest.raises(QuotaExceeded) as refused:
        await refine.begin_start(GROUP, BOB, BRIEF)
    assert refused.value.scope == "chat"


async def test_only_the_starter_may_steer_when_the_chat_says_so(store: Store) -> None:
    refine = service(store)
    await store.chats.save_settings(ChatSettings(GROUP.chat_id, press_policy="starter"))
    done = await refine.run(await refine.begin_start(GROUP, ANA, BRIEF), RecordingListener())
    assert done.last is not None
    round_id = done.last.round.id
    with pytest.raises(NotYourSession):
        await refine.begin_accept(round_id, GROUP, BOB)
    with pytest.raises(NotYourSession):
        async with refine.stop(round_id, GROUP, BOB):
            pass
    pending = await refine.begin_accept(round_id, GROUP, ANA)
    with pytest.raises(NotYourSession):
        await refine.cancel(GROUP, BOB)
    assert await refine.cancel(GROUP, ANA) == 1
    assert (await refine.run(pending, RecordingListener())).cancelled


async def test_a_round_of_another_chat_is_not_found(store: Store) -> None:
    refine = service(store)
    done = await refine.run(await refine.begin_start(GROUP, ANA, BRIEF), RecordingListener())
    assert done.last is not None
    with pytest.raises(RoundNotFound):
        await refine.begin_accept(done.last.round.id, Scope(chat_id=-200), ANA)
    with pytest.raises(RoundNotFound):
        await refine.begin_accept(done.last.round.id, Scope(chat_id=-100, thread_id=5), ANA)

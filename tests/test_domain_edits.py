"""Edit rounds in the domain: which rounds edit the picture in front of the user and which
draw a new one, what an edit starts from, and what happens when an edit cannot be made;
through the refine facade with in-process fakes and a real temporary store."""

from __future__ import annotations

from pathlib import Path

from bot.refine.models import Actor, AutopilotDefaults, PendingRun, Scope
from bot.refine.service import RefineService
from storage.records import RoundRecord
from storage.store import Store
from tests.domain_fakes import FakeCritic, FakeGenerator, RecordingListener

SCOPE = Scope(chat_id=42)
ANA = Actor(user_id=7, name="Ana")
BRIEF = "black-purple Banarasi saree on a plain backdrop"


def service(store: Store, generator: FakeGenerator, critic: FakeCritic) -> RefineService:
    return RefineService(
        store=store,
        generator=generator,
        critic=critic,
        max_rounds_in_flight=4,
        autopilot=AutopilotDefaults(rounds=2, drafts=2, threshold=10),
    )


async def first_round(refine: RefineService) -> RoundRecord:
    outcome = await refine.run(await refine.begin_start(SCOPE, ANA, BRIEF), RecordingListener())
    assert outcome.last is not None and outcome.last.round.image_sha is not None
    return outcome.last.round


async def run(refine: RefineService, pending: PendingRun) -> RoundRecord:
    outcome = await refine.run(pending, RecordingListener())
    assert outcome.last is not None
    return outcome.last.round


async def stored_image(store: Store, round: RoundRecord) -> bytes:
    assert round.image_sha is not None
    return (await store.images.read(round.image_sha))[1]


async def test_accept_edits_the_picture_when_the_critic_says_edit(store: Store) -> None:
    generator, critic = FakeGenerator(), FakeCritic(next_step="edit")
    refine = service(store, generator, critic)
    round1 = await first_round(refine)
    round2 = await run(refine, await refine.begin_accept(round1.id, SCOPE, ANA))

    edit = generator.calls[-1]
    assert edit["kind"] == "edit"
    assert edit["image"] == await stored_image(store, round1)  # the stored original
    assert edit["instruction"] == "Soften the light; keep everything else"
    assert round2.kind == "edit" and round2.edit_of == round1.id
    assert round2.instruction == edit["instruction"]
    # The critic is told it judges an edit, and how many edits in a row led to it.
    assert critic.requests[-1].instruction == edit["instruction"]
    assert critic.requests[-1].edits_in_a_row == 1
    round3 = await run(refine, await refine.begin_accept(round2.id, SCOPE, ANA))
    assert round3.edit_of == round2.id and critic.requests[-1].edits_in_a_row == 2


async def test_accept_redraws_when_the_critic_says_redraw(store: Store) -> None:
    generator = FakeGenerator()
    refine = service(store, generator, FakeCritic(next_step="redraw"))
    round1 = await first_round(refine)
    round2 = await run(refine, await refine.begin_accept(round1.id, SCOPE, ANA))
    assert generator.calls[-1]["kind"] == "redraw"
    assert generator.calls[-1]["prompt"] == f"{BRIEF}, softer light"
    assert round2.kind == "redraw" and round2.edit_of is None


async def test_the_users_own_words_edit_the_round_and_redraw_draws_afresh(store: Store) -> None:
    generator = FakeGenerator()
    refine = service(store, generator, FakeCritic(next_step="edit"))
    round1 = await first_round(refine)
    words = "make the backdrop plain white"
    round2 = await run(refine, await refine.begin_edit(round1.id, SCOPE, ANA, words))
    assert generator.calls[-1]["kind"] == "edit" and generator.calls[-1]["instruction"] == words
    assert round2.edit_of == round1.id and round2.action == "edit"
    assert round2.prompt.endswith(words)  # the picture after the change, for redraws later

    round3 = await run(refine, await refine.begin_redraw(round2.id, SCOPE, ANA))
    assert generator.calls[-1]["kind"] == "redraw" and round3.edit_of is None
    assert round3.action == "redraw"


async def test_an_edit_whose_picture_is_gone_is_redrawn_and_says_why(
    store: Store, tmp_path: Path
) -> None:
    generator = FakeGenerator()
    refine = service(store, generator, FakeCritic(next_step="edit"))
    round1 = await first_round(refine)
    for image in (tmp_path / "images").rglob("*.png"):
        image.unlink()  # retention pruned it
    round2 = await run(refine, await refine.begin_accept(round1.id, SCOPE, ANA))
    assert generator.calls[-1]["kind"] == "redraw"
    assert round2.kind == "redraw" and round2.kind_note == "picture_gone"


async def test_a_server_without_edits_falls_back_once_then_redraws(store: Store) -> None:
    generator = FakeGenerator(edits=False)
    refine = service(store, generator, FakeCritic(next_step="edit"))
    round1 = await first_round(refine)
    round2 = await run(refine, await refine.begin_accept(round1.id, SCOPE, ANA))
    assert round2.kind == "redraw" and round2.kind_note == "no_edits"
    assert not generator.can_edit
    round3 = await run(refine, await refine.begin_accept(round2.id, SCOPE, ANA))
    assert round3.kind_note == "no_edits"
    assert [c["kind"] for c in generator.calls] == ["redraw", "redraw", "redraw"]


async def test_autopilot_rounds_mix_an_edit_of_the_best_picture_with_a_redraw(
    store: Store,
) -> None:
    generator = FakeGenerator()
    critic = FakeCritic(scores=[5, 6, 8, 7], next_step="redraw")
    refine = service(store, generator, critic)
    round1 = await first_round(refine)
    outcome = await refine.run(
        await refine.begin_autopilot(SCOPE, ANA, round_id=round1.id), RecordingListener()
    )
    assert [r.round.number for r in outcome.rounds] == [2, 3]
    for result in outcome.rounds:
        kinds = sorted(d.draft.kind for d in result.drafts)
        assert kinds == ["edit", "redraw"]
    edits = [c for c in generator.calls if c["kind"] == "edit"]
    assert edits[0]["image"] == await stored_image(store, round1)  # the best picture so far
    assert outcome.best is not None and outcome.best.score == max(
        r.round.score or 0 for r in outcome.rounds
    )
    assert sum(outcome.wins.values()) == 2

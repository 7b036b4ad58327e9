"""A small history made through the real Store, for the backup and retention tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.records import DraftPlan
from storage.store import Store
from tests.fakes.pngs import solid_png


@dataclass
class History:
    """Two sessions: the first stopped with round 1 chosen, the second still active."""

    images: dict[int, bytes] = field(default_factory=dict)  # round id -> image bytes
    shas: dict[int, str] = field(default_factory=dict)  # round id -> sha256
    drafts: dict[int, int] = field(default_factory=dict)  # round id -> its (one) draft's id
    chosen_round: int = 0
    session_ids: list[int] = field(default_factory=list)


async def make_history(store: Store) -> History:
    """Create sessions, rounds and images the way the domain does; return what was made."""
    history = History()
    colors = iter([(200, 30, 90), (30, 200, 90), (30, 90, 200), (120, 120, 20)])
    for brief, rounds in (("ceramic vase", 2), ("silk saree", 2)):
        session = await store.sessions.create(
            42, chat_type="private", thread_id=0, user_id=1001, brief=brief
        )
        history.session_ids.append(session.id)
        parent = None
        for number in range(rounds):
            round = await store.rounds.create(
                session.id,
                parent_id=parent,
                prompt=f"{brief} #{number + 1}",
                action="brief",
                actor_id=1001,
                actor_name="Ana",
                drafts=[DraftPlan(None)],
            )
            await store.rounds.start(round.id)
            [draft] = await store.rounds.drafts(round.id)
            data = solid_png(64, 64, next(colors))
            image = await store.save_draft_image(
                draft.id,
                data=data,
                mime="image/png",
                width=64,
                height=64,
                usage=None,
                generate_ms=10,
                round_takes_it=True,
            )
            await store.rounds.critique_draft(
                draft.id, critique="{}", score=7, fidelity=None, critique_ms=5
            )
            await store.rounds.keep_draft(round.id, draft.id, done=True)
            history.images[round.id] = data
            history.shas[round.id] = image.sha256
            history.drafts[round.id] = draft.id
            parent = round.id
    first_session_rounds = await store.rounds.of_session(history.session_ids[0])
    history.chosen_round = first_session_rounds[0].id
    await store.sessions.stop(history.session_ids[0], chosen_round_id=history.chosen_round)
    return history

"""A small history made through the real Store, for the backup and retention tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.store import Store
from tests.fakes.pngs import solid_png


@dataclass
class History:
    """Two sessions: the first stopped with round 1 chosen, the second still active."""

    images: dict[int, bytes] = field(default_factory=dict)  # round id -> image bytes
    shas: dict[int, str] = field(default_factory=dict)  # round id -> sha256
    chosen_round: int = 0
    session_ids: list[int] = field(default_factory=list)


async def make_history(store: Store) -> History:
    """Create sessions, rounds and images the way the domain does; return what was made."""
    history = History()
    colors = iter([(200, 30, 90), (30, 200, 90), (30, 90, 200), (120, 120, 20)])
    for brief, rounds in (("ceramic vase", 2), ("silk saree", 2)):
        session = await store.create_session(42, "private", 0, 1001, brief)
        history.session_ids.append(session.id)
        parent = None
        for number in range(rounds):
            round = await store.create_round(
                session.id, parent, f"{brief} #{number + 1}", "brief", 1001, "Ana"
            )
            data = solid_png(64, 64, next(colors))
            image = await store.save_image(data, "image/png", 64, 64)
            await store.update_round(round.id, image_sha=image.sha256, status="done")
            history.images[round.id] = data
            history.shas[round.id] = image.sha256
            parent = round.id
    first_session_rounds = await store.session_rounds(history.session_ids[0])
    history.chosen_round = first_session_rounds[0].id
    await store.stop_session(history.session_ids[0], history.chosen_round)
    return history

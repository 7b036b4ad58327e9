"""In-process stand-ins for the domain tests: an image generator and a critic that answer at
once (or when a test lets them), and a listener that records what a run told it. No HTTP, no
Telegram: these test bot/refine/ through its facade on a real temporary SQLite store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.backends.base import CritiqueRequest, CritiqueResult, GeneratedImage, Preview
from bot.backends.critique import Critique
from bot.backends.errors import BackendError, EditsUnsupported
from bot.backends.formats import ImageOptions
from bot.refine.models import RunProgress
from storage.records import RoundRecord
from tests.fakes.pngs import solid_png

Hook = Callable[[], Awaitable[None]]


@dataclass
class FakeGenerator:
    """Draws (or edits) a small PNG of a new colour per call; `before` runs first on every
    call (a test can look at the store there, or wait); `errors` are raised by the next calls,
    in order. With `edits=False` it is a server without an edits endpoint: the first edit
    raises EditsUnsupported and `can_edit` turns False, as the real backends do."""

    model: str = "gpt-image-1"
    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BackendError] = field(default_factory=list)
    before: Hook | None = None
    edits: bool = True
    can_edit: bool = True
    partials: int = 0  # partial images handed to a `preview` callback before the image
    previews_asked: list[bool] = field(default_factory=list)  # per call: was there a callback

    async def edit(
        self,
        prompt: str,
        *,
        instruction: str,
        image: bytes,
        reference: bytes | None = None,
        seed: int | None = None,
        options: ImageOptions | None = None,
        safety_identifier: str | None = None,
        preview: Preview | None = None,
    ) -> GeneratedImage:
        if not self.edits:
            self.can_edit = False
            raise EditsUnsupported("image", "HTTP 404 on /images/edits")
        self.calls.append(
            {
                "kind": "edit",
                "prompt": prompt,
                "instruction": instruction,
                "image": image,
                "seed": seed,
                "reference": reference,
                "safety_identifier": safety_identifier,
            }
        )
        return await self._drawn(preview)

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        options: ImageOptions | None = None,
        reference: bytes | None = None,
        safety_identifier: str | None = None,
        preview: Preview | None = None,
    ) -> GeneratedImage:
        self.calls.append(
            {
                "kind": "redraw",
                "prompt": prompt,
                "seed": seed,
                "reference": reference,
                "safety_identifier": safety_identifier,
            }
        )
        return await self._drawn(preview)

    async def _drawn(self, preview: Preview | None = None) -> GeneratedImage:
        self.previews_asked.append(preview is not None)
        for index in range(self.partials if preview is not None else 0):
            preview(solid_png(8, 8, (index, 0, 0)))
        if self.before is not None:
            await self.before()
        if self.errors:
            raise self.errors.pop(0)
        shade = len(self.calls) % 250
        return GeneratedImage(solid_png(64, 64, (shade, 40, 90)), self.model, {})

    async def aclose(self) -> None:
        return None


@dataclass
class FakeCritic:
    """Scores in the order given (the last one again when they run out), choosing `next_step`
    (an edit comes with an instruction); `before` runs first on every call; `errors` are raised
    by the next calls, in order."""

    scores: list[int] = field(default_factory=lambda: [7])
    next_step: str = "redraw"
    model: str = "gpt-4.1-mini"
    requests: list[CritiqueRequest] = field(default_factory=list)
    errors: list[BackendError] = field(default_factory=list)
    before: Hook | None = None

    async def critique(self, request: CritiqueRequest) -> CritiqueResult:
        self.requests.append(request)
        if self.before is not None:
            await self.before()
        if self.errors:
            raise self.errors.pop(0)
        score = self.scores[min(len(self.requests), len(self.scores)) - 1]
        critique = Critique(
            score=score,
            strengths=["the product is centred"],
            problems=["the light is flat"],
            revised_prompt=f"{request.prompt}, softer light",
            next_step="edit" if self.next_step == "edit" else "redraw",
            edit_instruction="Soften the light; keep everything else"
            if self.next_step == "edit"
            else None,
        )
        return CritiqueResult(critique, self.model, {})

    async def aclose(self) -> None:
        return None


@dataclass
class RecordingListener:
    """Records every progress stage and every image shown; `on_image` runs when one is shown
    (a test checks the store there). Shown images get message ids 100, 101, ..."""

    stages: list[str] = field(default_factory=list)
    shown: list[RoundRecord] = field(default_factory=list)
    previews: list[RoundRecord] = field(default_factory=list)
    on_image: Callable[[RoundRecord], Awaitable[None]] | None = None
    on_progress: Callable[[RunProgress], Awaitable[None]] | None = None

    async def progress(self, progress: RunProgress) -> None:
        self.stages.append(progress.stage)
        if self.on_progress is not None:
            await self.on_progress(progress)

    async def preview(self, round: RoundRecord, image: bytes) -> None:
        self.previews.append(round)

    async def image_ready(self, round: RoundRecord, image: bytes) -> int | None:
        self.shown.append(round)
        if self.on_image is not None:
            await self.on_image(round)
        return 100 + len(self.shown) - 1

"""Making one format of a campaign pack from the kept image, and checking it.

A preset (Square, Portrait, Story, Banner) is recomposed, not cropped: the outpainter extends
the kept image into the new frame, the original pixels are blended back over their area
(`lock_product`), and the result is resized to the exact platform size. A backend that cannot
extend pictures gives a centre crop instead, labelled as one (method `crop`). The Marketplace
image is an edit of the kept image onto pure white, framed as a white square and checked
mechanically (border white, product filling the frame). Every format gets one short critique
of its own (product fully visible, no seam; for a Story the overlay bands kept clear); a
critic that fails leaves the format unchecked, never lost. Pillow work runs in threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.backends.base import Critic, CritiqueRequest, GeneratedImage, ImageGenerator
from bot.backends.critique import FIDELITY_OK
from bot.backends.errors import BackendError, EditsUnsupported
from bot.backends.outpaint import Outpainter, OutpaintRequest
from bot.images import critic_jpeg
from bot.pack_images import (
    centre_crop,
    exact_size,
    lock_product,
    margins,
    marketplace_problem,
    on_white,
    size_of,
)
from bot.refine.models import Actor
from bot.refine.pack_plan import (
    MARKETPLACE,
    METHOD_CROP,
    METHOD_EDIT,
    METHOD_OUTPAINT,
    STORY_SAFE_BOTTOM,
    STORY_SAFE_TOP,
    PackFormat,
)
from bot.refine.pricing import estimate_cost
from storage.packs import PackResult
from storage.records import UsageEntry

log = logging.getLogger(__name__)

FORMAT_PASS_SCORE = 5
"""A format's critique below this score fails its check (the caption says why)."""

WHITE_INSTRUCTION = (
    "Put this exact product on a pure white background (#FFFFFF) for a marketplace main "
    "image: remove the scene, props and text; keep the product exactly as it is (shape, "
    "colours, label text, logo), centred, filling about 85% of the frame, with no shadow "
    "touching the edges."
)


@dataclass(frozen=True, slots=True)
class MadeFormat:
    """One format made: the delivered JPEG, what to store with it, and its paid call."""

    data: bytes
    result: PackResult
    image: GeneratedImage | None  # None: a crop, nothing paid


@dataclass(frozen=True, slots=True)
class FormatJob:
    """What making one format needs: the kept image and who and what it is for."""

    fmt: PackFormat
    kept: bytes
    prompt: str  # the kept round's prompt: what the picture shows
    brief: str
    round_id: int
    chat_id: int
    actor: Actor
    quality: str | None = None


def format_check_text(fmt: PackFormat) -> str:
    """Return what the critic checks of one format (the kept image is its reference)."""
    lines = [
        f"This is the {fmt.label} format ({fmt.size_text}) made from the kept image (the "
        "reference). Check only: the product is fully visible, uncut and identical to the "
        "reference; the new area continues the picture with no visible seam, no repeated or "
        "half objects. Score 0-10 how ready it is to post; name each failed check in problems."
    ]
    if fmt.name == "story":
        lines.append(
            f"It is a Story: the product and any text must stay out of the top "
            f"{round(STORY_SAFE_TOP * 100)}% and the bottom {round(STORY_SAFE_BOTTOM * 100)}% "
            "of the frame, where the app's overlays sit."
        )
    if fmt == MARKETPLACE:
        lines.append("It is a marketplace main image: the product alone on pure white.")
    return " ".join(lines)


class PackMaker:
    """Makes and checks one format at a time with the configured backends."""

    def __init__(
        self,
        *,
        outpainter: Outpainter,
        generator: ImageGenerator,
        critic: Critic,
        critic_max_side: int,
        safety_identifier: Callable[[Actor], str | None],
        record_usage: Callable[[UsageEntry], Awaitable[None]],
    ) -> None:
        self._outpainter = outpainter
        self._generator = generator
        self._critic = critic
        self._critic_max_side = critic_max_side
        self._safety_identifier = safety_identifier
        self._record_usage = record_usage

    async def make(self, job: FormatJob) -> MadeFormat:
        """Return the format made and checked. Raises BackendError when the image cannot be
        made (the critic's failure only leaves it unchecked)."""
        if job.fmt == MARKETPLACE:
            data, method, image = await self._marketplace(job)
            problem = await asyncio.to_thread(marketplace_problem, data)
        else:
            data, method, image = await self._recomposed(job)
            problem = None
        note = problem or await self._critique(job, data)
        cost = None if image is None else estimate_cost(image.model, image.usage)
        result = PackResult(method, job.fmt.width, job.fmt.height, cost, note)
        return MadeFormat(data, result, image)

    async def _recomposed(self, job: FormatJob) -> tuple[bytes, str, GeneratedImage | None]:
        fmt = job.fmt
        width, height = await asyncio.to_thread(size_of, job.kept)
        extra = margins(width, height, fmt.ratio)
        if not extra.any or not self._outpainter.can_outpaint:
            return await self._crop(job), METHOD_CROP, None
        request = OutpaintRequest(
            image=job.kept,
            extra=extra,
            prompt=job.prompt,
            format=fmt.name,
            quality=job.quality,
            safety_identifier=self._safety_identifier(job.actor),
        )
        try:
            image = await self._outpainter.outpaint(request)
        except EditsUnsupported:
            return await self._crop(job), METHOD_CROP, None

        def finish() -> bytes:
            locked = lock_product(image.data, job.kept, extra)
            return exact_size(locked, fmt.width, fmt.height)

        return await asyncio.to_thread(finish), METHOD_OUTPAINT, image

    async def _crop(self, job: FormatJob) -> bytes:
        return await asyncio.to_thread(centre_crop, job.kept, job.fmt.width, job.fmt.height)

    async def _marketplace(self, job: FormatJob) -> tuple[bytes, str, GeneratedImage | None]:
        side = job.fmt.width
        if not self._generator.can_edit:
            return await asyncio.to_thread(on_white, job.kept, side), METHOD_CROP, None
        try:
            image = await self._generator.edit(
                job.prompt,
                instruction=WHITE_INSTRUCTION,
                image=job.kept,
                safety_identifier=self._safety_identifier(job.actor),
            )
        except EditsUnsupported:
            return await asyncio.to_thread(on_white, job.kept, side), METHOD_CROP, None
        return await asyncio.to_thread(on_white, image.data, side), METHOD_EDIT, image

    async def _critique(self, job: FormatJob, data: bytes) -> str | None:
        """Return why the format fails its critique, or None if it passes (or the critic
        could not look: logged)."""
        started = time.monotonic()
        try:
            reference = await asyncio.to_thread(critic_jpeg, job.kept, self._critic_max_side)
            image = await asyncio.to_thread(critic_jpeg, data, self._critic_max_side)
            answer = await self._critic.critique(
                CritiqueRequest(
                    brief=job.brief,
                    prompt=job.prompt,
                    image_jpeg=image,
                    reference_jpeg=reference,
                    safety_identifier=self._safety_identifier(job.actor),
                    format_check=format_check_text(job.fmt),
                )
            )
        except BackendError as error:
            log.warning("pack %s of round %s: not checked: %s", job.fmt.name, job.round_id, error)
            return None
        await self._record_usage(
            UsageEntry(
                job.round_id,
                job.chat_id,
                job.actor.user_id,
                "critic",
                answer.model,
                answer.usage,
                estimate_cost(answer.model, answer.usage),
            )
        )
        critique = answer.critique
        log.info(
            "pack %s of round %s: checked in %d ms, score %s",
            job.fmt.name,
            job.round_id,
            (time.monotonic() - started) * 1000,
            critique.score,
        )
        low_fidelity = critique.fidelity is not None and critique.fidelity < FIDELITY_OK
        if critique.score >= FORMAT_PASS_SCORE and not low_fidelity:
            return None
        return critique.problems[0] if critique.problems else f"scored {critique.score}/10"

"""The two paid steps of every round, and what they need: drawing one image and checking it,
and having the critic judge one image against the brief."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.backends.base import (
    Critic,
    CritiqueRequest,
    EarlierCritique,
    GeneratedImage,
    ImageGenerator,
    Preview,
)
from bot.backends.critique import Critique
from bot.backends.errors import BadOutput
from bot.backends.formats import ImageOptions
from bot.images import ImageInfo, InvalidImage, critic_jpeg, prepare
from bot.refine.errors import ReferenceExpired
from bot.refine.models import Actor
from bot.refine.pricing import estimate_cost
from bot.refine.rules import EARLIER_CRITIQUES, critique_of, fidelity_first
from bot.refine.sizes import SizeCheck, SizeNote, check_size
from storage.records import ChatSettings, SessionRecord, UsageEntry
from storage.store import Store


def image_usage(
    image: GeneratedImage, round_id: int, session: SessionRecord, actor: Actor
) -> UsageEntry:
    """Return the usage row that records what drawing `image` cost (estimated)."""
    cost = estimate_cost(image.model, image.usage)
    return UsageEntry(
        round_id, session.chat_id, actor.user_id, "image", image.model, image.usage, cost
    )


class UnusableImage(BadOutput):
    """The backend answered (and billed) an image the bot cannot use: it does not decode, or
    is too large; `image` is what it answered, with the usage to record."""

    def __init__(self, image: GeneratedImage, detail: str) -> None:
        super().__init__("image", detail)
        self.image = image


class UnusableSize(UnusableImage):
    """The backend answered (and billed) a picture too small or too thin to use
    (`bot.refine.sizes.check_size`); `check` holds its size, the size asked and why."""

    kind = "bad_size"

    def __init__(self, image: GeneratedImage, check: SizeCheck) -> None:
        asked = check.asked.label if check.asked is not None else "no exact size"
        super().__init__(image, f"{check.problem}: {check.width}x{check.height} for {asked}")
        self.check = check


def safety_identifier(key: bytes, actor: Actor) -> str | None:
    """Return the stable, salted hash of the Telegram user id that the image and critic calls
    carry, so a provider can act on one abusive user instead of the bot's whole key (OpenAI's
    guidance for apps with end users); None without a key. The id itself never leaves the
    bot."""
    if not key:
        return None
    digest = hmac.new(key, str(actor.user_id).encode(), hashlib.sha256)
    return "rb-" + digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Drawn:
    """A drawn image that decoded, not stored yet, with what the critic sees of it."""

    image: GeneratedImage
    info: ImageInfo
    jpeg: bytes  # what the critic sees
    generate_ms: int
    cost_usd: float | None
    size_note: SizeNote | None = None  # a size other than the one asked for

    def usage(self, round_id: int, session: SessionRecord, actor: Actor) -> UsageEntry:
        """Return the usage row that records what drawing the image cost."""
        return image_usage(self.image, round_id, session, actor)


@dataclass(frozen=True, slots=True)
class Judged:
    """A critique of an image (its usage already stored), and what it cost."""

    critique: Critique
    cost_usd: float | None
    critique_ms: int


@dataclass(frozen=True, slots=True)
class CriticContext:
    """What the critic sees of a round besides its image."""

    earlier: tuple[EarlierCritique, ...]
    reference_jpeg: bytes | None  # the product photo's small JPEG, for photo briefs
    edit_of: Mapping[int, int | None] = field(default_factory=dict)  # round id -> edit_of

    def edits_in_a_row(self, edit_of: int | None) -> int:
        """Return how many edits in a row led to a draft that edits round `edit_of` (0 for a
        redraw): this one, and those that made the rounds it edits."""
        count, seen = 0, set()
        while edit_of is not None and edit_of not in seen:
            count += 1
            seen.add(edit_of)
            edit_of = self.edit_of.get(edit_of)
        return count


@dataclass(frozen=True, slots=True)
class Judgement:
    """One image to judge: its round, the prompt it was drawn from and its critic's JPEG."""

    session: SessionRecord
    round_id: int
    actor: Actor
    prompt: str
    jpeg: bytes
    language: str | None
    edit_of: int | None = None  # the round whose picture this image edited
    instruction: str | None = None  # the edit that made it


class PaidSteps:
    """Draws and judges images with the configured backends; stores the critic's usage."""

    def __init__(
        self,
        *,
        store: Store,
        generator: ImageGenerator,
        critic: Critic,
        critic_max_side: int,
        default_format: str,
        safety_key: bytes = b"",
    ) -> None:
        """`safety_key`: the secret the users' safety identifiers are hashed with (none
        are sent without one)."""
        self._store = store
        self._generator = generator
        self._critic = critic
        self._critic_max_side = critic_max_side
        self._default_format = default_format
        self._safety_key = safety_key

    def safety_identifier(self, actor: Actor) -> str | None:
        """Return the actor's `safety_identifier` under this service's key."""
        return safety_identifier(self._safety_key, actor)

    def image_options(self, settings: ChatSettings) -> ImageOptions:
        """Return the image options a chat's settings ask for (configured defaults otherwise)."""
        return ImageOptions(settings.image_format or self._default_format, settings.quality)

    async def draw(
        self,
        prompt: str,
        *,
        seed: int | None,
        reference: bytes | None,
        options: ImageOptions,
        actor: Actor,
        preview: Preview | None = None,
    ) -> Drawn:
        """Draw one image for the actor and check it, making the critic's JPEG in the same
        decode; nothing is stored. `preview` gets the partial images of a backend that
        streams. Raises BackendError (an image that cannot be used is UnusableImage)."""
        started = time.monotonic()
        image = await self._generator.generate(
            prompt,
            seed=seed,
            options=options,
            reference=reference,
            safety_identifier=self.safety_identifier(actor),
            preview=preview,
        )
        return await self._checked(image, started)

    @property
    def can_edit(self) -> bool:
        """Whether the image backend can edit pictures (False once its server refused)."""
        return self._generator.can_edit

    async def edit(
        self,
        prompt: str,
        *,
        instruction: str,
        image: bytes,
        seed: int | None,
        reference: bytes | None,
        options: ImageOptions,
        actor: Actor,
        preview: Preview | None = None,
    ) -> Drawn:
        """Change `image` as `instruction` says (`prompt`: the picture after the change) and
        check the result as `draw` does; nothing is stored. Raises EditsUnsupported when the
        server cannot edit pictures, other BackendError as `draw`."""
        started = time.monotonic()
        edited = await self._generator.edit(
            prompt,
            instruction=instruction,
            image=image,
            reference=reference,
            seed=seed,
            options=options,
            safety_identifier=self.safety_identifier(actor),
            preview=preview,
        )
        return await self._checked(edited, started)

    async def _checked(self, image: GeneratedImage, started: float) -> Drawn:
        """Check the image the backend answered, making the critic's JPEG in the same decode,
        and its size against the size asked for; return it as Drawn (with a SizeNote when its
        size differs). Raises UnusableImage (it was billed all the same): UnusableSize for a
        picture too small or too thin to use."""
        try:
            info, jpeg = await asyncio.to_thread(prepare, image.data, self._critic_max_side)
        except InvalidImage as error:
            raise UnusableImage(image, str(error)) from error
        check = check_size(image.asked, info.width, info.height)
        if check.problem is not None:
            raise UnusableSize(image, check)
        elapsed = int((time.monotonic() - started) * 1000)
        cost = estimate_cost(image.model, image.usage)
        return Drawn(image, info, jpeg, elapsed, cost, size_note=check.note)

    async def picture_of(self, round_id: int) -> bytes | None:
        """Return the stored full-quality image of the round (what an edit of it starts
        from), or None if it has none or its file is gone."""
        round = await self._store.rounds.get(round_id)
        if round is None or round.image_sha is None:
            return None
        try:
            return (await self._store.images.read(round.image_sha))[1]
        except LookupError:
            return None

    async def judge(self, judgement: Judgement, context: CriticContext) -> Judged:
        """Critique one image; store the critic's usage; return the critique with a low
        product fidelity named first. Raises BackendError."""
        started = time.monotonic()
        session = judgement.session
        result = await self._critic.critique(
            CritiqueRequest(
                brief=session.brief,
                prompt=judgement.prompt,
                image_jpeg=judgement.jpeg,
                earlier=context.earlier,
                reference_jpeg=context.reference_jpeg,
                language=judgement.language,
                instruction=judgement.instruction,
                edits_in_a_row=context.edits_in_a_row(judgement.edit_of),
                safety_identifier=self.safety_identifier(judgement.actor),
            )
        )
        cost = estimate_cost(result.model, result.usage)
        await self._store.chats.record_usage(
            UsageEntry(
                judgement.round_id,
                session.chat_id,
                judgement.actor.user_id,
                "critic",
                result.model,
                result.usage,
                cost,
            )
        )
        elapsed = int((time.monotonic() - started) * 1000)
        return Judged(fidelity_first(result.critique), cost, elapsed)

    async def critic_context(
        self, session: SessionRecord, round_id: int, reference_jpeg: bytes | None
    ) -> CriticContext:
        """Return what the critic sees of the round besides its image: the session's last
        EARLIER_CRITIQUES critiques of other rounds, and the product photo's JPEG."""
        rounds = await self._store.rounds.of_session(session.id)
        earlier = [
            EarlierCritique(r.number, r.prompt, critique)
            for r in rounds
            if r.id != round_id and (critique := critique_of(r)) is not None
        ]
        return CriticContext(
            tuple(earlier[-EARLIER_CRITIQUES:]),
            reference_jpeg,
            {r.id: r.edit_of for r in rounds},
        )

    async def critic_image(self, image: bytes) -> bytes:
        """Return the small JPEG of a stored image that the critic sees."""
        return await asyncio.to_thread(critic_jpeg, image, self._critic_max_side)

    async def reference_of(self, session: SessionRecord) -> bytes | None:
        """Return the session's product photo (JPEG bytes), or None for a text brief.

        Raises ReferenceExpired when the photo's file is gone.
        """
        if session.reference_sha is None:
            return None
        try:
            return (await self._store.images.read(session.reference_sha))[1]
        except LookupError:
            raise ReferenceExpired() from None

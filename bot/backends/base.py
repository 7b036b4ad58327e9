"""The small Protocols the domain uses to draw and to critique, and what they return."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.backends.critique import Critique
from bot.backends.errors import Unavailable
from bot.backends.formats import ImageOptions, SizeAsked

Preview = Callable[[bytes], None]
"""Handed each partial image of a streamed answer (its bytes) as it arrives, before the final
image; it must not block (it schedules whatever showing it takes)."""


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """An image as the backend returned it, plus what the call used (for the usage table)
    and the size it asked for (`asked`; None: no exact expectation, such as `size=auto` or
    an image-to-image call that keeps its input's shape)."""

    data: bytes
    model: str
    usage: dict[str, Any] = field(default_factory=dict)
    asked: SizeAsked | None = None


class ImageGenerator(Protocol):
    """Draws one image for a prompt, or edits one. Raises a `BackendError` subclass on failure.

    `seed` asks for a repeatable composition where the provider supports one (Stability);
    others ignore it. `options` carry the chat's format preset and quality. `reference` is a
    photo of the real product (JPEG, PNG or WebP bytes): the image keeps that product and
    changes the scene around it (an image edit, or an image-to-image generation, depending on
    the provider). `safety_identifier` is a stable, hashed id of the user who asked, for the
    provider's abuse monitoring: sent where the API has that parameter (OpenAI's Images API:
    openai types/image_generate_params.py and image_edit_params.py, `safety_identifier`),
    ignored elsewhere (Stability). `preview`, where the backend can stream (the openai
    backend with IMAGE_PREVIEWS above 0), is handed partial images of the picture as it forms;
    backends that cannot ignore it.
    """

    model: str

    @property
    def can_edit(self) -> bool:
        """False once the server has answered that it has no edits endpoint (`edit` then
        raises `EditsUnsupported` without a request); True until then."""
        ...

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        options: ImageOptions | None = None,
        reference: bytes | None = None,
        safety_identifier: str | None = None,
        preview: Preview | None = None,
    ) -> GeneratedImage: ...

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
        """Return `image` changed as `instruction` says, keeping all it does not mention.

        `image` is the picture to change (PNG, JPEG or WebP bytes: the bot's stored original
        of the parent round, never a Telegram copy); `instruction` the imperative change ("make
        the backdrop plain white"); `prompt` the full description of the picture after the
        change, for backends that take a description rather than an instruction; `reference`
        the user's product photo of a photo brief, whose product must stay exactly as in it.
        Raises `EditsUnsupported` when the server has no edits endpoint.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EarlierCritique:
    """A previous round's critique, as context for the next one."""

    round_number: int
    prompt: str
    critique: Critique


@dataclass(frozen=True, slots=True)
class CritiqueRequest:
    """What the critic judges: the draft (a small JPEG) against the brief and current prompt.

    `reference_jpeg`, when set, is the user's photo of the real product (a small JPEG): the
    critic then also scores how faithfully the draft keeps that product (`Critique.fidelity`);
    without one, a critique has no fidelity. `safety_identifier`, when set, is sent as the
    Chat Completions parameter of that name (a stable, hashed id of the user, at most 128
    characters: openai types/chat/completion_create_params.py).
    """

    brief: str
    prompt: str
    image_jpeg: bytes
    earlier: tuple[EarlierCritique, ...] = ()
    reference_jpeg: bytes | None = None
    language: str | None = None  # IETF code the critique is written in; None: English
    instruction: str | None = None  # the edit that made this draft (None: a redraw)
    edits_in_a_row: int = 0  # edits in a row that led to this draft (it included)
    safety_identifier: str | None = None
    # The campaign pack: what to check of one format made from the kept image (None: a
    # round's critique). The kept image is then `reference_jpeg`.
    format_check: str | None = None


@dataclass(frozen=True, slots=True)
class CritiqueResult:
    critique: Critique
    model: str
    usage: dict[str, Any] = field(default_factory=dict)


class Critic(Protocol):
    """Judges a draft against the brief. Raises a `BackendError` subclass on failure."""

    model: str

    async def critique(self, request: CritiqueRequest) -> CritiqueResult: ...

    async def aclose(self) -> None: ...


def image_mime(data: bytes) -> str:
    """Return the MIME type of JPEG, PNG or WebP bytes from their signature (else JPEG)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


@asynccontextmanager
async def deadline(seconds: float, service: str) -> AsyncIterator[None]:
    """Bound a whole backend call, retries included; raise Unavailable when time runs out.

    Each attempt has the same timeout too, so a hung server costs at most `seconds`,
    not one timeout per retry.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as error:
        raise Unavailable(service, f"no answer within {seconds:g}s") from error

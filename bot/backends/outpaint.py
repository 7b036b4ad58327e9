"""What the campaign pack asks of an image backend: extend a picture into a larger frame.

An `Outpainter` takes the kept image and the pixels to add on each side (`Margins`) and
answers the extended picture: the frame's ratio, at whatever scale the backend draws, with
the original where the margins put it. A backend that cannot extend pictures raises
`EditsUnsupported` (and says so in `can_outpaint`); the pack then falls back to a labelled
crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.backends.base import GeneratedImage
from bot.pack_images import Margins


@dataclass(frozen=True, slots=True)
class OutpaintRequest:
    """One picture to extend: its bytes (PNG, JPEG or WebP), the margins in its own pixels,
    what the new area should show, and the pack's format name (for logs)."""

    image: bytes
    extra: Margins
    prompt: str
    format: str
    quality: str | None = None
    safety_identifier: str | None = None


class Outpainter(Protocol):
    """Extends pictures. Raises a `BackendError` subclass on failure, `EditsUnsupported` when
    the backend cannot."""

    model: str

    @property
    def can_outpaint(self) -> bool: ...

    async def outpaint(self, request: OutpaintRequest) -> GeneratedImage: ...

    async def aclose(self) -> None: ...

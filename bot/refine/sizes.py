"""Pure rules on a drawn picture's pixel size against the size its backend asked for: a
picture too small or too thin to use is refused (it was billed all the same), and a usable one
of another shape, or smaller than asked, is kept with a note saying so (`SizeNote`, stored with
its draft and round)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.backends.formats import SizeAsked

MIN_SIDE = 64
"""A picture with a side under this many pixels is unusable (the product photos' minimum)."""
MAX_ASPECT = 8.0
"""A picture longer than 8:1 is unusable, unless that shape was asked for."""
SMALLER = 0.9
"""An answer with under 90 % of the pixels of an exact size asked for is smaller than asked
(a server rounding 1024 to 1008 is not)."""


@dataclass(frozen=True, slots=True)
class SizeCheck:
    """A drawn picture's size, the size asked for, and what the rule says of it."""

    width: int
    height: int
    asked: SizeAsked | None
    problem: str | None = None  # "too_small" or "too_thin": unusable
    differs: bool = False  # usable, but not the shape, or fewer pixels than asked

    @property
    def note(self) -> SizeNote | None:
        """The note a usable picture of another size than asked keeps; None when it is the
        size asked for (or nothing exact was asked)."""
        if not self.differs or self.asked is None:
            return None
        return SizeNote(self.width, self.height, self.asked.label)


def _same_shape(width: int, height: int, asked: SizeAsked) -> bool:
    """Whether width x height has the asked aspect ratio, within its tolerance."""
    off = abs(math.log(width / height) - math.log(asked.width / asked.height))
    return off <= math.log1p(asked.tolerance)


def check_size(asked: SizeAsked | None, width: int, height: int) -> SizeCheck:
    """Return what the rule says of a `width` x `height` answer to `asked` (None: no exact
    expectation, so only the unusable sizes are looked for)."""
    if min(width, height) < MIN_SIDE:
        return SizeCheck(width, height, asked, problem="too_small")
    same_shape = asked is not None and _same_shape(width, height, asked)
    if max(width, height) > MAX_ASPECT * min(width, height) and not same_shape:
        return SizeCheck(width, height, asked, problem="too_thin")
    if asked is None:
        return SizeCheck(width, height, asked)
    smaller = asked.exact and width * height < SMALLER * asked.width * asked.height
    return SizeCheck(width, height, asked, differs=not same_shape or smaller)


_NOTE = re.compile(r"(\d+)x(\d+) for (\S+)")


@dataclass(frozen=True, slots=True)
class SizeNote:
    """A kept picture whose size is not the one asked for: `width` x `height` received for
    `asked` (a size such as "1024x1024", or an aspect ratio such as "16:9"). Stored as text,
    "640x480 for 1024x1024" (`str`, `parse`)."""

    width: int
    height: int
    asked: str

    def __str__(self) -> str:
        return f"{self.width}x{self.height} for {self.asked}"

    @classmethod
    def parse(cls, text: str | None) -> SizeNote | None:
        """Return the note stored as `text`; None for None or anything else."""
        match = _NOTE.fullmatch(text or "")
        if match is None:
            return None
        return cls(int(match.group(1)), int(match.group(2)), match.group(3))

    @property
    def smaller(self) -> bool:
        """Whether the picture has fewer pixels than the exact size asked for (False when an
        aspect ratio was asked)."""
        width, _, height = self.asked.partition("x")
        if not (width.isdigit() and height.isdigit()):
            return False
        return self.width * self.height < SMALLER * int(width) * int(height)

"""What every check of `python -m bot check` returns, and how long a service may take."""

from __future__ import annotations

from dataclasses import dataclass

CHECK_TIMEOUT = 5.0
"""Seconds each service may take to answer."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome; `line()` renders it for people."""

    name: str
    ok: bool
    detail: str
    hint: str = ""

    def line(self) -> str:
        """Return `✓ name: detail`, or `✗ name: detail — hint` for a failure."""
        mark = "✓" if self.ok else "✗"
        hint = f" — {self.hint}" if self.hint and not self.ok else ""
        return f"{mark} {self.name}: {self.detail}{hint}"

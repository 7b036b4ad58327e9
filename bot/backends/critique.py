"""The critic's answer: a pydantic model that is both the JSON schema sent and the validator."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PROMPT_CHARS = 4000


class Critique(BaseModel):
    """A structured critique of one draft against the brief."""

    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=0, le=10, description="How well the draft fits the brief, 0 to 10.")
    strengths: list[str] = Field(description="What already matches the brief, briefly.")
    problems: list[str] = Field(description="Problems with the draft, most important first.")
    revised_prompt: str = Field(
        description="The current prompt, changed only where the problems require."
    )

    # Checked here rather than as schema keywords: strict structured outputs accept only a
    # subset of JSON Schema, and self-hosted servers accept even less.
    @field_validator("revised_prompt")
    @classmethod
    def _usable_prompt(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("revised_prompt is empty")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"revised_prompt is longer than {MAX_PROMPT_CHARS} characters")
        return value


@cache
def critique_json_schema() -> dict[str, Any]:
    """Return the `response_format` for Chat Completions: a strict json_schema of `Critique`."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "critique",
            "schema": Critique.model_json_schema(),
            "strict": True,
        },
    }

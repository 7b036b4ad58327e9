"""The critic's answer: a pydantic model that is both the JSON schema sent and the validator."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PROMPT_CHARS = 4000

FIDELITY_OK = 7
"""A product fidelity below this is a problem worth naming first."""


class Critique(BaseModel):
    """A structured critique of one draft against the brief."""

    # The docstring above and the field descriptions are sent to the critic in the schema.
    # `fidelity` is only given when the user sent a photo of the real product; `score` then
    # judges the rest of the brief (scene, light, composition). Critiques stored before
    # fidelity existed, and critics that leave it out, parse with `fidelity=None`.
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=0, le=10, description="How well the draft fits the brief, 0 to 10.")
    fidelity: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description=(
            "Only with a reference photo: how faithfully the draft keeps the real product "
            "(same shape, colour, label text, logo), 0 to 10; otherwise null."
        ),
    )
    strengths: list[str] = Field(description="What already matches the brief, briefly.")
    problems: list[str] = Field(description="Problems with the draft, most important first.")
    revised_prompt: str = Field(
        description="The current prompt, changed only where the problems require."
    )
    # Critiques stored before edit rounds existed parse as "redraw" without an instruction.
    next_step: Literal["edit", "redraw"] = Field(
        default="redraw",
        description=(
            "edit: change this picture (the problems are local: a colour, a missing or wrong "
            "detail, the background, the light, text on the product); redraw: draw a new "
            "picture from revised_prompt (the subject, framing or composition is wrong, or "
            "repeated edits have degraded it)."
        ),
    )
    edit_instruction: str | None = Field(
        default=None,
        description=(
            "With next_step edit: one imperative instruction that fixes the problems and "
            "names what must stay; otherwise null."
        ),
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

    @field_validator("edit_instruction")
    @classmethod
    def _usable_instruction(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"edit_instruction is longer than {MAX_PROMPT_CHARS} characters")
        return value or None

    @property
    def suggests_edit(self) -> bool:
        """Whether the critic's next step is an edit of this picture, with its instruction."""
        return self.next_step == "edit" and self.edit_instruction is not None

    @property
    def quality(self) -> int:
        """The figure rounds and drafts are ranked by: the score, capped by the fidelity.

        A beautiful scene around the wrong product is not a good image of that product.
        """
        return self.score if self.fidelity is None else min(self.score, self.fidelity)

    @property
    def low_fidelity(self) -> bool:
        """Whether the draft visibly departs from the user's product photo."""
        return self.fidelity is not None and self.fidelity < FIDELITY_OK


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the schema as strict structured outputs want it: every property required
    (a nullable one says so with its type, not by being optional) and no defaults."""
    properties = schema.get("properties", {})
    for spec in properties.values():
        spec.pop("default", None)
    schema["required"] = list(properties)
    return schema


@cache
def critique_json_schema() -> dict[str, Any]:
    """Return the `response_format` for Chat Completions: a strict json_schema of `Critique`."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "critique",
            "schema": _strict(Critique.model_json_schema()),
            "strict": True,
        },
    }

"""The critic's answer: a pydantic model that is both the JSON schema sent and the validator,
and the tolerant reader that finds it in what real servers answer."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


# --- reading a critic's answer -------------------------------------------------------------
#
# The schema above is sent strict, but many servers do not enforce it (or enforce only part
# of it), so the answer's text is read tolerantly: the JSON object is found inside whatever
# surrounds it, keys the model added are dropped and out-of-range scores are clamped; only
# then is it validated. What each repair is for, and which servers need it, is in
# tests/test_critic_reader.py and the critic personalities of tests/fakes/openai_server.py.

log = logging.getLogger(__name__)

_THINK_BLOCK = re.compile(r"<(think|thinking)>.*?</\1>", re.S | re.I)
_THINK_END = re.compile(r"</think(?:ing)?>", re.I)
_THINK_START = re.compile(r"<think(?:ing)?>", re.I)
_FENCE = re.compile(r"```[\w+-]*")
_DECODER = json.JSONDecoder(strict=False)  # a raw newline inside a string is not fatal
_SCORES = ("score", "fidelity")


class UnreadableCritique(ValueError):
    """The text holds no usable critique; the message says what was wrong (no input values)."""


@dataclass(frozen=True, slots=True)
class ReadCritique:
    """A critique read from an answer's text, and the repairs it needed (for logs and
    `python -m bot check`): "<think> block", "code fence", "text around the JSON",
    "unknown keys dropped (…)", "score clamped (11 → 10)"."""

    critique: Critique
    repairs: tuple[str, ...] = ()


def without_thinking(text: str) -> tuple[str, bool]:
    """Return `text` without `<think>…</think>` blocks (also a closing tag whose opening tag
    the chat template wrote, and an unclosed one to the end), and whether there were any."""
    stripped = _THINK_BLOCK.sub("", text)
    if ends := list(_THINK_END.finditer(stripped)):
        stripped = stripped[ends[-1].end() :]
    if start := _THINK_START.search(stripped):
        stripped = stripped[: start.start()]
    return stripped, stripped != text


def first_json_object(text: str) -> tuple[dict[str, Any], int, int] | None:
    """Return the first JSON object in `text` with where it starts and ends, or None.

    Each `{` is tried in turn with the JSON decoder, so braces inside strings, nested
    objects and prose with braces of its own (`{brief}`) cannot fool it; the first one that
    decodes to an object wins, even when another object follows."""
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            value, end = None, start
        if isinstance(value, dict):
            return value, start, end
        start = text.find("{", start + 1)
    return None


def read_critique(text: str) -> ReadCritique:
    """Read a critique from an answer's text; raise UnreadableCritique when there is none.

    Removes `<think>` blocks, takes the first JSON object (ignoring code fences and prose
    around it), drops keys `Critique` does not know (logged at DEBUG), clamps `score` and
    `fidelity` into 0..10 (logged), then validates.
    """
    repairs: list[str] = []
    text, had_thinking = without_thinking(text)
    if had_thinking:
        repairs.append("<think> block")
    found = first_json_object(text)
    if found is None:
        raise UnreadableCritique("no JSON object in the answer" if text.strip() else "no answer")
    data, start, end = found
    around = text[:start] + text[end:]
    if _FENCE.search(around):
        repairs.append("code fence")
    if _FENCE.sub("", around).strip():
        repairs.append("text around the JSON")
    unknown = sorted(set(data) - set(Critique.model_fields))
    if unknown:
        log.debug("critic answer: dropped unknown keys %s", ", ".join(unknown))
        repairs.append(f"unknown keys dropped ({', '.join(unknown)})")
        data = {key: value for key, value in data.items() if key not in unknown}
    for name in _SCORES:
        value = data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value <= 10:
            clamped = min(max(value, 0), 10)
            log.info("critic answer: %s %s is outside 0-10, read as %s", name, value, clamped)
            repairs.append(f"{name} clamped ({value} → {clamped})")
            data[name] = clamped
    try:
        critique = Critique.model_validate(data)
    except ValidationError as error:
        raise UnreadableCritique(f"invalid critique: {_first_error(error)}") from None
    return ReadCritique(critique, tuple(repairs))


def _first_error(error: ValidationError) -> str:
    """Return "N errors, the first: where: what" without input values."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "answer"
    count = error.error_count()
    return f"{count} error{'s' if count > 1 else ''}, the first: {where}: {first['msg']}"

"""The parts of OpenAI-compatible answers the bot reads, validated straight from the JSON bytes.

The SDK builds its response models without validating them, so an off-spec server's answer
(a choice or an image entry that is a string, not an object) used to surface as an
AttributeError deep in a round. These models check exactly what the backends use and ignore
every other field; pydantic reads the JSON in Rust, about a third of the standard json module's
time on a 0.4 MB image answer (bench/).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError


class ChatMessage(BaseModel):
    content: str | None = None
    refusal: str | None = None


class ChatChoice(BaseModel):
    message: ChatMessage


class ChatAnswer(BaseModel):
    """A Chat Completions answer: its first choice's message is the one read."""

    choices: list[ChatChoice]
    usage: Any = None

    @property
    def message(self) -> ChatMessage | None:
        """Return the first choice's message, or None when there is no choice."""
        return self.choices[0].message if self.choices else None


class ImageItem(BaseModel):
    b64_json: str = Field(min_length=1)


class ImagesAnswer(BaseModel):
    """An Images API answer with at least one base64 image (the bot asks for one)."""

    data: list[ImageItem] = Field(min_length=1)
    usage: Any = None


def usage_of(answer: ChatAnswer | ImagesAnswer) -> dict[str, Any]:
    """Return the answer's usage data, or {} when the server sent none (or not an object)."""
    return answer.usage if isinstance(answer.usage, dict) else {}


def what_is_wrong(error: ValidationError) -> str:
    """Return a short description of why an answer was refused (no input values: they can be
    megabytes of base64)."""
    first = error.errors(include_input=False, include_url=False)[0]
    if first["type"] == "json_invalid":
        return "response is not valid JSON"
    where = ".".join(str(part) for part in first["loc"]) or "response"
    return f"{where}: {first['msg']}"

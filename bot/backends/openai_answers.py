"""The parts of OpenAI-compatible answers the bot reads, validated straight from the JSON bytes.

The SDK builds its response models without validating them, so an off-spec server's answer
(a choice or an image entry that is a string, not an object) used to surface as an
AttributeError deep in a round. These models check exactly what the backends use and ignore
every other field; pydantic reads the JSON in Rust, about a third of the standard json module's
time on a 0.4 MB image answer (bench/).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator


class ChatMessage(BaseModel):
    """The assistant message, with what real servers put besides a string `content`.

    `content` may be a list of parts: Mistral's reasoning models answer
    `[{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}, {"type": "text",
    "text": ...}]` (simonw/llm-mistral PR #39, vercel/ai PR #8072). A reasoning parser puts the
    model's thinking in `reasoning_content` (DeepSeek's API; llama.cpp `--reasoning-format
    deepseek`; vLLM before its rename) or `reasoning` (vLLM's ChatMessage today,
    vllm/entrypoints/openai/chat_completion/protocol.py; Ollama's openai/openai.go `Message`),
    and some parsers put the whole answer, JSON included, there with `content` null (vLLM
    issues #15618, #48863, #50948). Neither field is in OpenAI's ChatCompletionMessage; each is
    read only when it is a string.
    """

    content: str | list[Any] | None = None
    refusal: str | None = None
    reasoning_content: Any = None
    reasoning: Any = None

    @property
    def has_parts(self) -> bool:
        """Whether `content` came as a list of parts rather than a string."""
        return isinstance(self.content, list)

    @property
    def text(self) -> str:
        """Return the answer's text: `content`, or its text parts joined ("" when none)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(_part_texts(self.content or [], "text"))

    def thoughts(self) -> list[tuple[str, str]]:
        """Return the reasoning the server sent apart from the answer, as (where, text): the
        `reasoning_content` field, the `reasoning` field, then thinking parts of `content`."""
        found = [
            (name, value)
            for name in ("reasoning_content", "reasoning")
            if isinstance(value := getattr(self, name), str) and value.strip()
        ]
        if isinstance(self.content, list):
            thinking = "".join(_part_texts(self.content, "thinking"))
            if thinking.strip():
                found.append(("thinking part", thinking))
        return found


def _part_texts(parts: list[Any], kind: str) -> list[str]:
    """Return the texts of the content parts of `kind` ("text", or Mistral's "thinking",
    whose value is a string or a list of text parts)."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str) and kind == "text":
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") == kind:
            value = part.get(kind)
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, list):
                texts.extend(_part_texts(value, "text"))
    return texts


class ChatChoice(BaseModel):
    message: ChatMessage
    finish_reason: Any = None  # "length": the token limit ended the answer


class ChatAnswer(BaseModel):
    """A Chat Completions answer: its first choice's message is the one read."""

    choices: list[ChatChoice]
    usage: Any = None

    @property
    def message(self) -> ChatMessage | None:
        """Return the first choice's message, or None when there is no choice."""
        return self.choices[0].message if self.choices else None

    @property
    def cut_off(self) -> bool:
        """Whether the first choice ended because it ran out of tokens (finish_reason
        "length": "the maximum number of tokens specified in the request was reached",
        openai types/chat/chat_completion.py; servers also send it when the context is full)."""
        return bool(self.choices) and self.choices[0].finish_reason == "length"


class ImageItem(BaseModel):
    """One image of an Images API answer: base64 bytes, or a URL to them.

    openai types/image.py: `b64_json` is "Returned by default for GPT image models, or when
    `response_format` is set to `b64_json`"; `url` is "The URL of the generated image when
    `response_format` is set to `url`". Other servers fill `url` by default: LocalAI with a
    link to its own /generated-images/ (core/http/endpoints/openai/image.go), openedai-images
    with a `data:image/png;base64,...` URL (images.py). Either one, not empty, is an image.
    """

    b64_json: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _has_an_image(self) -> ImageItem:
        if not self.b64_json and not self.url:
            raise ValueError("neither b64_json nor url holds an image")
        return self


class ImagesAnswer(BaseModel):
    """An Images API answer with at least one image (the bot asks for one)."""

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

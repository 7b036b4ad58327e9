"""Streamed Images API answers: the partial images of a generation or an edit as they come,
then the final image.

With `stream=True` and `partial_images` (0..3) the API answers Server-Sent Events
(openai types/image_gen_stream_event.py, image_edit_stream_event.py): partial image events
(`image_generation.partial_image` / `image_edit.partial_image`: `b64_json`,
`partial_image_index`, ...) and one completed event (`image_generation.completed` /
`image_edit.completed`: `b64_json` and the call's `usage`). The SDK returns them as an
`AsyncStream` (resources/images.py, `stream_cls=AsyncStream[ImageGenStreamEvent]`).

A server that does not stream either refuses the parameters (a 400/422 naming `stream` or
`partial_images`: the generator's parameter negotiation drops them) or ignores them and
answers the usual JSON: `answer_body` tells the two apart by the content type, so that
answer's image is used all the same (it was paid for) and streaming is not asked again.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any

import openai
import pybase64

from bot.backends.base import Preview
from bot.backends.errors import BadOutput

log = logging.getLogger(__name__)

STREAM_PARAMS = ("stream", "partial_images")
"""The parameters that ask for a streamed answer; refused or ignored, both are dropped."""

MAX_PREVIEWS = 3
"""The most partial images the API sends (types/image_generate_params.py, `partial_images`:
"Value must be between 0 and 3")."""


def stream_params(previews: int) -> dict[str, Any]:
    """Return the parameters that ask for a streamed answer with `previews` partial images."""
    return {"stream": True, "partial_images": max(0, min(previews, MAX_PREVIEWS))}


def is_stream(response: Any) -> bool:
    """Return whether `response` is the SDK's event stream (asked with stream=True)."""
    return isinstance(response, openai.AsyncStream)


async def answer_body(response: Any) -> bytes | None:
    """Return the JSON body of an answer that is not an event stream: a raw response's
    content, or the body a server sent as JSON although a stream was asked for. None: the
    answer is an event stream, to read with `read_events`."""
    if not is_stream(response):
        return bytes(response.content)
    content_type = str(response.response.headers.get("content-type", "")).lower()
    if content_type.startswith("text/event-stream"):
        return None
    try:
        return bytes(await response.response.aread())
    finally:
        await response.close()


async def read_events(stream: Any, preview: Preview | None) -> tuple[bytes, dict[str, Any]]:
    """Return the completed image's bytes and the call's usage from an event stream, handing
    each partial image before it to `preview`. Raises BadOutput when the stream ends without
    a completed image (or its base64 is bad); a partial image that does not decode is skipped.
    Events after the completed one are read (so the connection can be reused) and ignored.
    """
    final: tuple[bytes, dict[str, Any]] | None = None
    try:
        async for event in stream:
            data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
            kind = str(data.get("type") or "")
            if kind.endswith(".completed") and final is None:
                usage = data.get("usage")
                final = (_decoded(data.get("b64_json")), usage if isinstance(usage, dict) else {})
            elif kind.endswith(".partial_image") and final is None and preview is not None:
                try:
                    image = _decoded(data.get("b64_json"))
                except BadOutput:
                    log.info("a partial image that is not valid base64 was skipped")
                    continue
                preview(image)
    finally:
        await stream.close()
    if final is None:
        raise BadOutput("image", "the image stream ended without the final image")
    return final


def _decoded(value: Any) -> bytes:
    """Return strictly decoded base64; raise BadOutput."""
    if not isinstance(value, str) or not value:
        raise BadOutput("image", "a streamed image event has no b64_json")
    try:
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadOutput("image", "a streamed image is not valid base64") from error

"""The Images API's streamed answer, as the fake OpenAI server sends it (`stream=True`).

What the events hold is the installed SDK's own description of them (openai 3.60):
types/image_gen_partial_image_event.py (`type` "image_generation.partial_image", `b64_json`,
`background`, `created_at`, `output_format`, `partial_image_index` (0-based), `quality`,
`size`), types/image_gen_completed_event.py (`type` "image_generation.completed", the same
fields without the index, plus `usage` with input_tokens, input_tokens_details {image_tokens,
text_tokens}, output_tokens, total_tokens, and the optional `safety_identifier`), and the edit
counterparts types/image_edit_partial_image_event.py / image_edit_completed_event.py (`type`
"image_edit.partial_image" / "image_edit.completed"). The SDK reads them with
`stream_cls=AsyncStream[ImageGenStreamEvent]` (resources/images.py), which parses Server-Sent
Events and discriminates on `type` (types/image_gen_stream_event.py).

On the wire each event is `event: <type>` and `data: <json>` then a blank line, the framing
OpenAI's streaming endpoints use (the SDK's _streaming.py SSEDecoder reads `event:` and
`data:` fields); the stream ends when the server closes it (no `[DONE]` sentinel: the SDK
stops at the end of the body either way). `partial_images` (0..3, types/image_generate_params.py:
"When set to 0, the response will be a single image sent in one streaming event") sets how
many partial events come before the completed one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pybase64
from aiohttp import web

FIRST_PARTIAL_AT = 0.4
"""The fraction of the image's latency at which the first partial image is sent; later ones
are spread evenly between it and the completed event."""


def partial_fractions(count: int, first: float = FIRST_PARTIAL_AT) -> list[float]:
    """Return when each of `count` partial images goes out, as fractions of the latency."""
    if count <= 0:
        return []
    step = (1.0 - first) / count
    return [first + index * step for index in range(count)]


def sse(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """Return one Server-Sent Event: its `event:` and `data:` lines and the blank line."""
    return f"event: {event_type}\ndata: {json.dumps(payload)}\n\n".encode()


def partial_event(
    prefix: str, index: int, picture: bytes, common: Mapping[str, Any]
) -> dict[str, Any]:
    """Return a partial image event (`prefix`: "image_generation" or "image_edit")."""
    return {
        "type": f"{prefix}.partial_image",
        "b64_json": pybase64.b64encode_as_string(picture),
        "created_at": int(time.time()),
        "partial_image_index": index,
        **common,
    }


def completed_event(
    prefix: str,
    picture: bytes,
    common: Mapping[str, Any],
    usage: Mapping[str, Any],
    safety_identifier: str | None,
) -> dict[str, Any]:
    """Return the completed event, with the usage the non-streamed answer carries (without
    its `output_tokens_details`, which the event's Usage type does not have)."""
    event: dict[str, Any] = {
        "type": f"{prefix}.completed",
        "b64_json": pybase64.b64encode_as_string(picture),
        "created_at": int(time.time()),
        **common,
        "usage": {key: value for key, value in usage.items() if key != "output_tokens_details"},
    }
    if safety_identifier:
        event["safety_identifier"] = safety_identifier
    return event


async def stream_answer(
    request: web.Request,
    headers: Mapping[str, str],
    *,
    prefix: str,
    partials: list[bytes],
    final: bytes,
    common: Mapping[str, Any],
    usage: Mapping[str, Any],
    safety_identifier: str | None,
    wait_until: Callable[[float], Awaitable[None]],
    latency: float,
    first_partial_at: float = FIRST_PARTIAL_AT,
    before_completed: Callable[[], Awaitable[None]] | None = None,
    completed: bool = True,
) -> web.StreamResponse:
    """Send the partial images and the completed image as an event stream, each at its
    fraction of `latency` (`wait_until(seconds)` sleeps until that long after the request
    arrived; `before_completed`, if any, is awaited too before the completed event: a test's
    way to order it after something else; `completed` False ends the stream without it, as an
    off-spec server might); return the finished response."""
    response = web.StreamResponse(
        status=200,
        headers={**headers, "Content-Type": "text/event-stream; charset=utf-8"},
    )
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    for index, (picture, at) in enumerate(
        zip(partials, partial_fractions(len(partials), first_partial_at), strict=True)
    ):
        await wait_until(latency * at)
        await response.write(
            sse(f"{prefix}.partial_image", partial_event(prefix, index, picture, common))
        )
    await wait_until(latency)
    if before_completed is not None:
        await before_completed()
    if completed:
        done = completed_event(prefix, final, common, usage, safety_identifier)
        await response.write(sse(done["type"], done))
    await response.write_eof()
    return response

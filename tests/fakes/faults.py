"""Shared plumbing for the fake HTTP backends: scripted faults, request records, server base.

A `Fault` says how the next request to an endpoint is answered instead of the normal reply:
an HTTP status with a body and headers, optionally after a delay, or a dropped connection.
`Fault(status=None, delay=...)` only delays the normal reply (a slow server). Faults are
queued per endpoint (FIFO) in a `FaultQueue`; every incoming request pops one if queued.

`FakeServer` is the aiohttp base both fakes build on: start/stop on 127.0.0.1 with a free
port in the running event loop, a recording middleware (`requests`), a fault queue, and a
`sleep` that returns early when the server stops, so a slow reply never stalls teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web

__all__ = [
    "DecodedImage",
    "FakeServer",
    "Fault",
    "FaultQueue",
    "RecordedRequest",
    "redact_headers",
]

JsonBody = dict[str, Any] | list[Any]

_REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


@dataclass(frozen=True)
class Fault:
    """One scripted answer that replaces the normal reply.

    Attributes:
        status: HTTP status to answer with; None serves the normal reply (after `delay`).
        body: A dict/list (sent as JSON) or a raw string (sent verbatim); None sends no body.
        headers: Extra response headers, e.g. ``{"retry-after-ms": "5"}``.
        delay: Seconds to wait before answering (slow replies, client timeouts).
        disconnect: Drop the connection without answering (after `delay`).
        content_type: Overrides the content type; by default JSON bodies are
            ``application/json`` and string bodies ``text/plain``.
    """

    status: int | None = 500
    body: JsonBody | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    disconnect: bool = False
    content_type: str | None = None

    @classmethod
    def slow(cls, delay: float) -> Self:
        """Serve the normal reply, but only after ``delay`` seconds."""
        return cls(status=None, delay=delay)

    @classmethod
    def drop_connection(cls, delay: float = 0.0) -> Self:
        """Close the connection without any response (a network failure)."""
        return cls(status=None, delay=delay, disconnect=True)

    @classmethod
    def raw(
        cls,
        status: int,
        text: str,
        *,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Self:
        """Answer ``status`` with a raw text body (e.g. a non-JSON gateway page)."""
        return cls(
            status=status,
            body=text,
            headers=dict(headers or {}),
            delay=delay,
            content_type=content_type,
        )

    @classmethod
    def bad_gateway_html(cls) -> Self:
        """A 502 HTML page as a reverse proxy in front of a self-hosted API sends it."""
        page = (
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return cls.raw(502, page, content_type="text/html")

    def with_delay(self, delay: float) -> Self:
        """Return a copy of this fault that answers after ``delay`` seconds."""
        return dataclasses.replace(self, delay=delay)

    def with_headers(self, headers: Mapping[str, str]) -> Self:
        """Return a copy with extra response headers (e.g. ``{"x-should-retry": "false"}``)."""
        return dataclasses.replace(self, headers={**self.headers, **headers})

    def to_response(self, extra_headers: Mapping[str, str] | None = None) -> web.Response:
        """Build the aiohttp response for this fault (``status`` must not be None)."""
        if self.status is None:
            raise ValueError("a pass-through fault has no response of its own")
        headers = {**(extra_headers or {}), **self.headers}
        if self.body is None:
            return web.Response(status=self.status, headers=headers)
        if isinstance(self.body, str):
            return web.Response(
                status=self.status,
                text=self.body,
                content_type=self.content_type or "text/plain",
                headers=headers,
            )
        return web.Response(
            status=self.status,
            text=json.dumps(self.body),
            content_type=self.content_type or "application/json",
            headers=headers,
        )


class FaultQueue:
    """Per-endpoint FIFO queues of faults."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def push(self, endpoint: str, fault: Fault, count: int = 1) -> None:
        """Queue ``fault`` for the next ``count`` requests to ``endpoint``."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._queues.setdefault(endpoint, deque()).extend([fault] * count)

    def pop(self, endpoint: str) -> Fault | None:
        """Take the next fault for ``endpoint``, or None if nothing is queued."""
        queue = self._queues.get(endpoint)
        return queue.popleft() if queue else None

    def pending(self, endpoint: str | None = None) -> int:
        """Count the faults still queued (for one endpoint or all)."""
        if endpoint is not None:
            return len(self._queues.get(endpoint, ()))
        return sum(len(queue) for queue in self._queues.values())

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queues.clear()


@dataclass
class DecodedImage:
    """An image a fake received (a chat data URL or an uploaded file), decoded with Pillow.

    ``mime`` is what the client declared (data-URL media type or multipart content type);
    ``format`` is what Pillow found in the bytes (``"JPEG"``, ``"PNG"``...).
    """

    mime: str
    format: str
    size_bytes: int
    width: int
    height: int
    detail: str | None = None


@dataclass
class RecordedRequest:
    """One request as a fake saw it.

    ``json`` holds a parsed JSON body; multipart bodies land in ``form`` (text fields, a
    list when a name repeats), ``files`` (field name -> list of file contents) and
    ``file_types`` (the declared part content types, ``""`` when a part had none).
    ``images`` holds the images a fake decoded (chat data URLs, input images).
    ``started_at``/``finished_at`` are `time.monotonic` values; ``status`` is the status
    answered (None while in flight, or when the connection was dropped or abandoned).
    """

    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    started_at: float
    json: Any = None
    form: dict[str, str | list[str]] = field(default_factory=dict)
    files: dict[str, list[bytes]] = field(default_factory=dict)
    file_types: dict[str, list[str]] = field(default_factory=dict)
    images: list[DecodedImage] = field(default_factory=list)
    fault: Fault | None = None
    finished_at: float | None = None
    status: int | None = None

    @property
    def duration(self) -> float | None:
        """Seconds between arrival and answer (None while in flight)."""
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def file_sizes(self) -> dict[str, list[int]]:
        """Byte sizes of the uploaded files, per field name."""
        return {name: [len(blob) for blob in blobs] for name, blobs in self.files.items()}

    @property
    def retry_count(self) -> int:
        """The ``x-stainless-retry-count`` header the OpenAI SDK sends (0 if absent)."""
        return int(self.headers.get("x-stainless-retry-count", "0") or 0)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case header names and hide credentials, keeping the scheme (``Bearer ***``)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in _REDACTED_HEADERS:
            scheme, _, secret = value.partition(" ")
            value = f"{scheme} ***" if secret else "***"
        out[key] = value
    return out


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RECORD = web.RequestKey("record", RecordedRequest)
"""Where the recording middleware keeps the current request's `RecordedRequest`."""


class FakeServer:
    """Base for an aiohttp fake on 127.0.0.1 with a free port, in the running event loop.

    Subclasses add routes in `_setup_routes`, naming each route after its endpoint (the
    name used for `requests_to` and fault queues).
    """

    #: Endpoint names this fake serves (route names).
    endpoints: ClassVar[tuple[str, ...]] = ()
    #: Largest accepted request body.
    client_max_size: ClassVar[int] = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults = FaultQueue()
        #: Called for a request with no queued fault; may return one (random fault injection).
        self.chaos: Callable[[str], Fault | None] | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (only after `start`)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        """Bind a free port and start serving; returns self."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._record], client_max_size=self.client_max_size)
        self._setup_routes(app)
        runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop serving; replies still sleeping are woken and abandoned."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _setup_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # --- records and faults -------------------------------------------------------------

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests to one endpoint, oldest first."""
        return [record for record in self.requests if record.endpoint == endpoint]

    def reset(self) -> None:
        """Forget recorded requests and queued faults."""
        self.requests.clear()
        self.faults.clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, returning early if the server is stopping."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def finish_latency(self, record: RecordedRequest, seconds: float) -> None:
        """Sleep until `seconds` after the request arrived. The fake's own work (reading and
        checking the request, encoding the reply) counts toward its latency, as a real server's
        does, so it is never measured as the bot's overhead."""
        await self.sleep(seconds - (time.monotonic() - record.started_at))

    async def apply_fault(
        self,
        request: web.Request,
        fault_key: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> web.StreamResponse | None:
        """Pop the next fault for ``fault_key`` and act on it.

        Returns the fault's response, or None when the normal reply should follow (no fault
        queued, or a pass-through delay). A dropped connection aborts the transport and never
        returns (the handler is cancelled).
        """
        fault = self.faults.pop(fault_key)
        if fault is None and self.chaos is not None:
            fault = self.chaos(fault_key)
        if fault is None:
            return None
        record = request[RECORD]
        record.fault = fault
        await self.sleep(fault.delay)
        if fault.disconnect:
            if request.transport is not None:
                request.transport.abort()
            # Losing the connection cancels this handler (handler_cancellation); wait for that
            # so aiohttp treats it as a client disconnect rather than a handler error.
            await asyncio.sleep(5)
            raise ConnectionResetError("fault: connection dropped")
        if fault.status is None:
            return None
        return fault.to_response(extra_headers)

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        record = RecordedRequest(
            endpoint=route.name or "unknown",
            method=request.method,
            path=request.path,
            headers=redact_headers(request.headers),
            started_at=time.monotonic(),
        )
        request[RECORD] = record
        self.requests.append(record)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            record.status = exc.status
            raise
        finally:
            record.finished_at = time.monotonic()
        record.status = response.status
        return response

    @staticmethod
    async def read_multipart(request: web.Request, record: RecordedRequest) -> bool:
        """Parse a multipart/form-data body into ``record.form``/``files``; False if not one."""
        if not request.content_type.startswith("multipart/form-data"):
            return False
        post = await request.post()
        for name, value in post.items():
            if isinstance(value, web.FileField):
                record.files.setdefault(name, []).append(value.file.read())
                # aiohttp reports a missing part Content-Type as octet-stream; keep it "".
                declared = value.headers.get("Content-Type", "")
                record.file_types.setdefault(name, []).append(declared)
                continue
            text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
            existing = record.form.get(name)
            if existing is None:
                record.form[name] = text
            elif isinstance(existing, list):
                existing.append(text)
            else:
                record.form[name] = [existing, text]
        return True

    @staticmethod
    def form_value(record: RecordedRequest, name: str) -> str | None:
        """A multipart text field (the last one when repeated), or None."""
        value = record.form.get(name)
        if isinstance(value, list):
            return value[-1] if value else None
        return value

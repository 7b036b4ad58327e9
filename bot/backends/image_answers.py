"""Reading an Images API answer in whichever form the server sent its image: base64, a
`data:` URL, or an http(s) URL downloaded from the image server's host."""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai
import pybase64
from pydantic import ValidationError

from bot.backends.errors import BadOutput, Unavailable
from bot.backends.openai_answers import ImagesAnswer, usage_of, what_is_wrong

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
"""The largest image downloaded from an answer's URL. A fixed cap rather than MAX_UPLOAD_MB
(which is about product photos from Telegram, whose cloud Bot API stops at 20 MB): 50 MB is
the largest input image the Images API itself takes (types/image_edit_params.py, `image`:
"less than 50MB"), well above a 3840x2160 PNG, while bot/images.py caps the pixels anyway."""


def parse_hosts(text: str | None) -> tuple[str, ...]:
    """Return the hosts of a comma-separated list (IMAGE_DOWNLOAD_HOSTS): `host` or
    `host:port`, lower-cased, blanks dropped."""
    return tuple(part.strip().lower() for part in (text or "").split(",") if part.strip())


class ImageAnswers:
    """Reads the first image of an Images API answer, in whichever form the server sent it.

    `b64_json` (OpenAI, and anyone asked for it), a `data:` URL in `url` (openedai-images,
    images.py: `img_dat = {'url': f'data:image/png;base64,{b64_json}'}`), or an http(s) URL
    (LocalAI: `item.URL, err = url.JoinPath(baseURL, "generated-images", base)`,
    core/http/endpoints/openai/image.go).

    A URL is downloaded with the openai client's public request method (`client.get` with
    `cast_to=httpx2.Response`, the SDK README's "Undocumented endpoints"), not with the private
    `client._client`: the same connection pool, proxy, TLS and timeout settings and the
    client's retries, through a documented API. Only from `hosts` (`host` or `host:port`;
    default: the base URL's host), never following a redirect (it could lead anywhere), at
    most `max_bytes`, and only PNG, JPEG or WebP bytes. The API key goes only to the base URL's
    own origin: LocalAI's /generated-images/ needs it when its API keys are on
    (core/http/auth/middleware_test.go lists it among the protected routes), while another
    host (a CDN, a presigned bucket URL) must never see it.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        hosts: Iterable[str] | None = None,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self._client = client
        self._max_bytes = max_bytes
        base = urlsplit(str(client.base_url))
        self._origin = _origin(base.scheme, base.hostname, _port(base))
        listed = tuple(hosts) if hosts is not None else ()
        self._hosts = [_host_entry(entry) for entry in listed] or [(base.hostname or "", None)]

    @property
    def hosts(self) -> list[str]:
        """The hosts images may be downloaded from, as configured (for `python -m bot check`)."""
        return [host if port is None else f"{host}:{port}" for host, port in self._hosts]

    async def read(self, body: bytes) -> tuple[bytes, dict[str, Any]]:
        """Return the first image's bytes and the usage data of the answer's JSON `body`;
        raise BadOutput when it holds no image in a form the bot can read.

        A 200 that is not such an answer is not retried: the image may have been billed.
        pybase64's SIMD decoder does a 1024 px JPEG's 0.44 MB in ~0.04 ms, so it runs on the
        loop: the standard library's a2b_base64 took ~2.5 ms and holds the GIL.
        """
        try:
            answer = ImagesAnswer.model_validate_json(body)
        except ValidationError as error:
            raise BadOutput("image", what_is_wrong(error)) from error
        item = answer.data[0]
        if item.b64_json:
            data = _base64(item.b64_json, "b64_json")
        else:
            url = (item.url or "").strip()
            if url[:5].lower() == "data:":
                data = _data_url(url)
            else:
                data = await self._download(url)
        return data, usage_of(answer)

    async def _download(self, url: str) -> bytes:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = _port(parts)
        except ValueError:
            raise BadOutput("image", "the answer's image URL has an invalid port") from None
        if parts.scheme.lower() not in ("http", "https") or not host:
            raise BadOutput("image", "the answer's image URL is not an http(s) URL")
        if not any(host == name and wanted in (None, port) for name, wanted in self._hosts):
            # Only the host is named: a URL may carry a signed token in its query.
            raise BadOutput(
                "image",
                f"the answer's image URL is on {host}, not on {', '.join(self.hosts)} "
                "(IMAGE_DOWNLOAD_HOSTS)",
            )
        headers: dict[str, Any] = {"Accept": "image/png, image/jpeg, image/webp"}
        if _origin(parts.scheme, host, port) != self._origin:
            headers["Authorization"] = openai.omit
        try:
            response = await self._client.get(
                url,
                cast_to=httpx2.Response,
                stream=True,
                stream_cls=None,
                options={"headers": headers, "follow_redirects": False},
            )
        except openai.APIStatusError as error:
            raise BadOutput(
                "image", f"the image URL on {host} answered HTTP {error.status_code}"
            ) from error
        try:
            return await self._body(response, host)
        finally:
            await response.aclose()

    async def _body(self, response: httpx2.Response, host: str) -> bytes:
        too_big = BadOutput(
            "image", f"the image on {host} is over {self._max_bytes / 1024 / 1024:g} MB"
        )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise too_big
                chunks.append(chunk)
        except (httpx2.HTTPError, OSError) as error:
            raise Unavailable("image", f"the download from {host} broke off") from error
        data = b"".join(chunks)
        if not _is_image(data):
            raise BadOutput("image", f"the download from {host} is not a PNG, JPEG or WebP image")
        return data


def _base64(text: str, where: str) -> bytes:
    """Return strictly decoded base64 (the alphabet and padding only); raise BadOutput."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadOutput("image", f"{where} is not valid base64") from error


def _data_url(url: str) -> bytes:
    """Return the bytes of a base64 `data:` URL (`data:image/png;base64,...`); the declared
    type is not trusted (the bytes are checked like any image)."""
    head, comma, payload = url.partition(",")
    if not comma or ";base64" not in head.lower():
        raise BadOutput("image", "the answer's data: URL is not base64")
    return _base64(payload, "the answer's data: URL")


def _is_image(data: bytes) -> bool:
    """Return whether `data` starts with the PNG, JPEG or WebP signature."""
    return (
        data.startswith(b"\x89PNG\r\n\x1a\n")
        or data.startswith(b"\xff\xd8\xff")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


def _port(parts: Any) -> int | None:
    """Return the URL's port, the scheme's default when it names none (ValueError if bad)."""
    port = parts.port
    if port is not None:
        return int(port)
    return {"http": 80, "https": 443}.get(str(parts.scheme).lower())


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int | None]:
    return (scheme.lower(), (host or "").lower(), port)


def _host_entry(entry: str) -> tuple[str, int | None]:
    """Return (host, port or None for any port) of an IMAGE_DOWNLOAD_HOSTS entry."""
    parts = urlsplit(f"//{entry.strip()}")
    return (parts.hostname or entry.strip().lower(), parts.port)

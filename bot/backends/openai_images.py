"""Image generation through any OpenAI-compatible Images API.

Without a reference photo: `images.generate`. With one: `images.edit` with the photo as the
input image, so the real product is kept and the scene around it changes. An edit of an
earlier round (`edit`) is `images.edit` too, with the parent round's image first and the
product photo, if any, second.

What is sent besides model, prompt, size, image and n is optional (`OPTIONAL_PARAMS`), and
asked for only where the installed SDK's documentation says the model takes it:
`input_fidelity="high"` (`supports_input_fidelity`), `response_format="b64_json"` (not to GPT
image models, `takes_response_format`), plus quality, the output format and the user's
`safety_identifier`. A 400 (or a validation 422) naming any of them drops those for the
process and asks once more: a refused request is not a generation, so not billed.

Answers are read in every form servers send (`ImageAnswers`): base64 in `b64_json`, a `data:`
URL, or an http(s) URL downloaded through the client's own HTTP stack from the image server's
host (or the hosts configured), size-capped and checked to be an image.

A server without an edits endpoint (404 or 405 there) is remembered for the process:
`can_edit` turns False and later edits raise `EditsUnsupported` without a request.

With `previews` (IMAGE_PREVIEWS) above 0 and a `preview` callback, a call asks for a streamed
answer (`stream=True`, `partial_images`) and hands each partial image to the callback as it
arrives (bot/backends/image_stream.py). A server that refuses those parameters (a 400/422
naming them) or answers plain JSON all the same is asked without them from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypedDict

import openai

from bot.backends.base import GeneratedImage, Preview, deadline, image_mime
from bot.backends.errors import BadOutput, EditsUnsupported
from bot.backends.formats import ImageOptions, openai_size, openai_size_asked
from bot.backends.image_answers import MAX_DOWNLOAD_BYTES, ImageAnswers
from bot.backends.image_params import (
    GOES_WITH,
    no_edits_route,
    no_edits_route_in_success,
    refused_parameters,
    supports_input_fidelity,
    takes_response_format,
    translated,
)
from bot.backends.image_stream import (
    STREAM_PARAMS,
    answer_body,
    is_stream,
    read_events,
    stream_params,
)
from bot.backends.openai_common import (
    REASON_CHARS,
    server_reason,
)

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}

REFERENCE_SENTENCE = (
    "The second image is a photo of the real product: keep that product exactly as it is "
    "there (the same shape, colours, label text and logo)."
)
"""Appended to an edit's instruction when the product photo goes with it as the second image."""

OUTPUT_COMPRESSION = 95
"""JPEG/WebP quality asked of the API: visually lossless for product photos."""


class _OutputFormat(TypedDict, total=False):
    """The output arguments sent with every request (none for PNG, the API's default)."""

    output_format: Literal["jpeg", "webp"]
    output_compression: int


class OpenAIImageGenerator:
    """Draws with `images.generate` (or `images.edit` from a reference photo) on the client,
    and edits earlier rounds with `images.edit`."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        quality: str,
        timeout: float,
        output_format: Literal["png", "jpeg", "webp"] = "png",
        *,
        download_hosts: Iterable[str] | None = None,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        previews: int = 0,
    ) -> None:
        """`previews`: partial images asked for when a call has a `preview` callback (0:
        never streamed)."""
        self._client = client
        self._previews = previews
        self._timeout = timeout
        self.model = model
        self._quality = quality
        # A JPEG decodes several times faster than a PNG of the same picture and is a fifth
        # of its size: the bot's own cost per round is mostly that decode. PNG is the API's
        # default, so it is not sent (servers that know no output_format keep working).
        self._format: _OutputFormat = (
            {}
            if output_format == "png"
            else {"output_format": output_format, "output_compression": OUTPUT_COMPRESSION}
        )
        self.answers = ImageAnswers(client, hosts=download_hosts, max_bytes=max_download_bytes)
        # The optional parameters this model's server refused, never sent again.
        self._refused: set[str] = set()
        # Why the server has no edits endpoint, once it has said so; None until then.
        self._no_edits: str | None = None

    @property
    def can_edit(self) -> bool:
        """False once the server answered that it has no edits endpoint."""
        return self._no_edits is None

    @property
    def refused(self) -> frozenset[str]:
        """The optional parameters the server refused so far (they are no longer sent)."""
        return frozenset(self._refused)

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        options: ImageOptions | None = None,
        reference: bytes | None = None,
        safety_identifier: str | None = None,
        preview: Preview | None = None,
    ) -> GeneratedImage:
        """Return the drawn image's bytes; raise a BackendError on any failure.

        The Images API has no seed parameter, so `seed` is ignored. With `reference`, the
        photo is edited into the scene the prompt describes (on the edits endpoint, so a
        server without one raises EditsUnsupported). `preview` is handed the partial images
        of a streamed answer (see the module's docstring).
        """
        options = options or ImageOptions()
        try:
            async with deadline(self._timeout, "image"):
                size = openai_size(options.image_format, self.model)
                quality = options.quality or self._quality
                if reference is None:
                    optional = self._optional(quality, safety_identifier, edit=False)
                    optional.update(self._streaming(preview))

                    async def call(**sent: Any) -> Any:
                        images = self._client.images
                        if "stream" in sent:
                            return await images.generate(
                                model=self.model, prompt=prompt, n=1, size=size, **sent
                            )
                        return await images.with_raw_response.generate(
                            model=self.model, prompt=prompt, n=1, size=size, **sent
                        )

                    response = await self._negotiated(call, optional)
                    body = await self._body(response)
                else:
                    optional = self._optional(quality, safety_identifier, edit=True)
                    optional.update(self._streaming(preview))
                    upload = _upload("product", reference)
                    response, body = await self._edit(upload, prompt, size, optional)
                data, usage = await self._read(response, body, preview)
        except openai.OpenAIError as error:
            raise translated(error) from error
        return GeneratedImage(
            data=data, model=self.model, usage=usage, asked=openai_size_asked(size)
        )

    async def edit(
        self,
        prompt: str,
        *,
        instruction: str,
        image: bytes,
        reference: bytes | None = None,
        seed: int | None = None,
        options: ImageOptions | None = None,
        safety_identifier: str | None = None,
        preview: Preview | None = None,
    ) -> GeneratedImage:
        """Return `image` changed as `instruction` says; raise a BackendError on any failure.

        `images.edit` with `image` as the first input image and `reference` (the product
        photo), if any, as the second, with a sentence saying the second is the real product
        to keep. The model reads the instruction, so `prompt` (the full description) is sent
        only when the instruction is empty; `seed` is ignored as in `generate`. Size, quality
        and output format are `generate`'s.
        """
        options = options or ImageOptions()
        text = instruction.strip() or prompt
        parent = _upload("image", image)
        if reference is None:
            # One input goes as the plain `image` field, which every server with an edits
            # endpoint reads; a list goes as repeated `image[]` parts (the SDK's default array
            # format, the real API's multi-image form), which servers reading only `image` miss.
            uploads: Any = parent
        else:
            uploads = [parent, _upload("product", reference)]
            text = f"{text}\n\n{REFERENCE_SENTENCE}"
        try:
            async with deadline(self._timeout, "image"):
                size = openai_size(options.image_format, self.model)
                quality = options.quality or self._quality
                optional = self._optional(quality, safety_identifier, edit=True)
                optional.update(self._streaming(preview))
                response, body = await self._edit(uploads, text, size, optional)
                data, usage = await self._read(response, body, preview)
        except openai.OpenAIError as error:
            raise translated(error) from error
        return GeneratedImage(
            data=data, model=self.model, usage=usage, asked=openai_size_asked(size)
        )

    def _optional(
        self, quality: str, safety_identifier: str | None, *, edit: bool
    ) -> dict[str, Any]:
        """Return the optional parameters for one call (before refused ones are taken out)."""
        optional: dict[str, Any] = {"quality": _sdk_quality(quality), **self._format}
        if takes_response_format(self.model):
            optional["response_format"] = "b64_json"
        if edit and supports_input_fidelity(self.model):
            optional["input_fidelity"] = "high"
        if safety_identifier:
            optional["safety_identifier"] = safety_identifier
        return optional

    def _streaming(self, preview: Preview | None) -> dict[str, Any]:
        """Return the parameters that ask for a streamed answer when partial images are
        wanted (a callback, IMAGE_PREVIEWS above 0) and the server has not refused them."""
        if preview is None or self._previews <= 0 or self._refused.intersection(STREAM_PARAMS):
            return {}
        return stream_params(self._previews)

    async def _body(self, response: Any) -> bytes | None:
        """Return the answer's JSON body (None: an event stream); a server that answered
        JSON to a stream request is not asked for one again."""
        body = await answer_body(response)
        if body is not None and is_stream(response):
            self._refused.update(STREAM_PARAMS)
            log.warning(
                "%s: the image server answered without streaming; asking without stream and "
                "partial_images from now on, until the bot restarts",
                self.model,
            )
        return body

    async def _read(
        self, response: Any, body: bytes | None, preview: Preview | None
    ) -> tuple[bytes, dict[str, Any]]:
        """Return the answer's image bytes and usage: from the JSON `body`, or from the
        event stream (`body` None), its partial images handed to `preview`."""
        if body is None:
            try:
                return await read_events(response, preview)
            except BadOutput as error:
                # A stream the bot cannot read would fail every round: ask without one.
                self._refused.update(STREAM_PARAMS)
                log.warning(
                    "%s: the image server's stream was unusable (%s); asking without stream "
                    "and partial_images from now on, until the bot restarts",
                    self.model,
                    error,
                )
                raise
        return await self.answers.read(body)

    async def _negotiated(
        self, call: Callable[..., Awaitable[Any]], optional: dict[str, Any]
    ) -> Any:
        """Return `call` with the `optional` parameters the server has not refused; on a 400
        (or 422) naming some of them, drop those for good and call once more.

        Not billed: a refused request draws nothing. A second refusal is remembered too (the
        next call goes without it) but not retried within this call.
        """
        sent = {name: value for name, value in optional.items() if name not in self._refused}
        try:
            return await call(**sent)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
            if not self._refuse(error, sent):
                raise
        again = {name: value for name, value in sent.items() if name not in self._refused}
        try:
            return await call(**again)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
            self._refuse(error, again)
            raise

    def _refuse(self, error: openai.APIStatusError, sent: dict[str, Any]) -> set[str]:
        """Remember the sent optional parameters `error` names (and what goes with them); log
        one line with the server's reason. Return them (empty: nothing of ours to drop)."""
        named = refused_parameters(error) & set(sent)
        if not named:
            return set()
        dropped = set(named)
        for name in named:
            dropped.update(GOES_WITH.get(name, ()))
        self._refused |= dropped
        log.warning(
            "%s: the image server refused %s (HTTP %s: %s); asking without %s from now on, "
            "until the bot restarts",
            self.model,
            ", ".join(sorted(named)),
            error.status_code,
            server_reason(error.body)[:REASON_CHARS] or "no reason given",
            "them" if len(dropped) > 1 else "it",
        )
        return dropped

    async def _edit(
        self, image: Any, prompt: str, size: str, optional: dict[str, Any]
    ) -> tuple[Any, bytes | None]:
        """Call the edits endpoint with `image` (one upload or a list of them); return the
        answer and its JSON body (None: an event stream). Raise EditsUnsupported, then and
        on every later call, if the server has none."""
        if self._no_edits is not None:
            raise EditsUnsupported("image", self._no_edits)

        async def call(**sent: Any) -> Any:
            images = self._client.images
            if "stream" in sent:
                return await images.edit(
                    model=self.model, image=image, prompt=prompt, n=1, size=size, **sent
                )
            return await images.with_raw_response.edit(
                model=self.model, image=image, prompt=prompt, n=1, size=size, **sent
            )

        try:
            response = await self._negotiated(call, optional)
        except openai.APIStatusError as error:
            reason = no_edits_route(error)
            if reason is None:
                raise
            self._remember_no_edits(reason)
            raise EditsUnsupported("image", reason) from error
        body = await self._body(response)
        reason = None if body is None else no_edits_route_in_success(body)
        if reason is not None:
            self._remember_no_edits(reason)
            raise EditsUnsupported("image", reason)
        return response, body

    def _remember_no_edits(self, reason: str) -> None:
        if self._no_edits is None:
            log.info(
                "%s: the image server has no edits endpoint (%s); edits and photo briefs "
                "are off until the bot restarts",
                self.model,
                reason,
            )
        self._no_edits = reason

    async def aclose(self) -> None:
        await self._client.close()


def _sdk_quality(quality: str) -> Any:
    """Return `quality` as the SDK's parameter type takes it: the SDK lists the values of
    OpenAI's own models, other OpenAI-compatible servers take others, so the configured
    string is sent as it is."""
    return quality


def _upload(name: str, data: bytes) -> tuple[str, bytes, str]:
    """Return an upload as the SDK takes it: (file name, bytes, declared MIME type)."""
    mime = image_mime(data)
    return (f"{name}.{_EXTENSIONS[mime]}", data, mime)

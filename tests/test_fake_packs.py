"""The fakes' parts the campaign pack relies on: Stability's outpaint endpoint (its limits,
the original pixels kept) and the Bot API's album rules, through httpx and the real PTB Bot."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from telegram import Bot, InputMediaDocument, InputMediaPhoto
from telegram.error import BadRequest

from tests.fakes.pngs import image_size, solid_png
from tests.fakes.stability_server import FakeStability, StabilityFault
from tests.fakes.telegram_server import FakeTelegram

TOKEN = "123456:TEST-TOKEN"
URL = "/v2beta/stable-image/edit/outpaint"


def image_file(width: int = 100, height: int = 100) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("image.png", solid_png(width, height, (200, 30, 90)), "image/png")}


async def test_outpaint_adds_the_margins_and_keeps_the_original(
    stability_fake: FakeStability, stability_http: httpx.AsyncClient
) -> None:
    form = {"left": "20", "right": "30", "up": "0", "down": "10", "output_format": "png"}
    response = await stability_http.post(URL, data=form, files=image_file())
    assert response.status_code == 200 and response.headers["finish-reason"] == "SUCCESS"
    assert image_size(response.content) == (150, 110)
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.convert("RGB").getpixel((70, 50)) == (200, 30, 90)
    [call] = stability_fake.outpaint_calls
    assert (call.left, call.right, call.up, call.down) == (20, 30, 0, 10)


@pytest.mark.parametrize(
    ("form", "size", "message"),
    [
        ({"left": "2001"}, (100, 100), "left: must be between 0 and 2000"),
        ({"up": "-1"}, (100, 100), "up: must be between 0 and 2000"),
        ({}, (100, 100), "at least one must be greater than 0"),
        ({"left": "10", "creativity": "1.5"}, (100, 100), "creativity: must be between 0 and 1"),
        ({"left": "10", "output_format": "gif"}, (100, 100), "output_format: must be one of"),
        ({"left": "10"}, (63, 100), "every side must be at least 64 pixels"),
        ({"left": "10"}, (300, 100), "aspect ratio must be between 1:2.5 and 2.5:1"),
    ],
)
async def test_outpaint_refuses_what_the_real_endpoint_refuses(
    stability_fake: FakeStability,
    stability_http: httpx.AsyncClient,
    form: dict[str, str],
    size: tuple[int, int],
    message: str,
) -> None:
    response = await stability_http.post(URL, data=form, files=image_file(*size))
    assert response.status_code == 400
    body = response.json()
    assert body["name"] == "bad_request" and message in body["errors"][0]
    assert stability_fake.outpaint_calls == []


async def test_outpaint_faults_are_its_own(
    stability_fake: FakeStability, stability_http: httpx.AsyncClient
) -> None:
    stability_fake.fail_next_outpaint(StabilityFault.content_moderation())
    response = await stability_http.post(URL, data={"left": "10"}, files=image_file())
    assert response.status_code == 403 and response.json()["name"] == "content_moderation"
    assert (
        await stability_http.post(URL, data={"left": "10"}, files=image_file())
    ).status_code == 200


async def test_an_album_never_mixes_documents_with_photos() -> None:
    async with FakeTelegram(token=TOKEN) as fake:
        chat = fake.private_chat(fake.make_user(1001, "Ana"))
        async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
            photo = solid_png(64, 64)
            with pytest.raises(BadRequest, match=r"(?i)can't be mixed"):
                await bot.send_media_group(
                    chat["id"],
                    [InputMediaPhoto(photo), InputMediaDocument(photo, filename="a.png")],
                )
            documents = await bot.send_media_group(
                chat["id"],
                [
                    InputMediaDocument(photo, filename="a.png", caption="A"),
                    InputMediaDocument(solid_png(32, 32), filename="b.png", caption="B"),
                ],
            )
            assert [m.document.file_name for m in documents] == ["a.png", "b.png"]
            assert len({m.media_group_id for m in documents}) == 1

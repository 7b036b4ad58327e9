"""End to end: one test per row of the README's compatibility table ("Self-hosted servers").

The real Application, through the Telegram fake, against a `FakeOpenAI` answering as that
server does (`tests.fakes.servers`): a text brief gives a round with its picture and its
critique, and a photo brief gives a round where the image server has an edits endpoint, or
the one sentence saying it can't edit pictures where it has none.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.fakes.pngs import prompt_of, render_image
from tests.fakes.servers import PROFILES, Deployment, ServerProfile
from tests.fakes.telegram_server import BotMessage, FakeTelegram

BRIEF = "white ceramic mug with a blue logo on a wooden table"
SCENE = "on a marble table, soft morning light"


def product_photo() -> bytes:
    """A photo-like JPEG of the 'product', as a phone sends it."""
    image = Image.open(io.BytesIO(render_image(800, 600, "png"))).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


async def outcome(telegram: FakeTelegram, chat: dict, after: int = 0) -> BotMessage:
    """The first bot message newer than `after` that ends a brief: the round's photo once it
    has its buttons, or a text (a refusal, or a failure with Retry)."""

    def ended() -> BotMessage | None:
        for message in telegram.messages(chat["id"], include_deleted=False):
            if message.message_id <= after:
                continue
            if (message.photo is not None and message.buttons) or message.text is not None:
                return message
        return None

    return await telegram.wait_for(ended, timeout=20)


def judged(message: BotMessage) -> bool:
    """Whether a round message shows a critique (its score and the suggested next prompt)."""
    return (
        message.photo is not None
        and "/10" in message.plain
        and "Suggested next prompt" in message.plain
    )


@pytest.mark.parametrize("profile", PROFILES, ids=[profile.key for profile in PROFILES])
async def test_a_round_and_a_photo_brief(
    profile: ServerProfile, telegram, openai_fake, bots, make_settings, ana, ana_chat
) -> None:
    async with Deployment(profile, openai_fake) as deployment:
        await bots.start(make_settings(**deployment.settings))

        # A text brief: the image server's picture, critiqued by the critic.
        telegram.user_sends_text(ana_chat, ana, BRIEF)
        round1 = await outcome(telegram, ana_chat)
        assert judged(round1), f"{profile.name}: {round1.plain!r}"
        assert round1.photo is not None and prompt_of(round1.photo) == BRIEF
        assert [r.status for r in deployment.images.requests_to("images")] == [200]
        assert [r.status for r in deployment.critic.requests_to("chat")] == [200]
        if deployment.critic is not deployment.images:
            assert deployment.images.requests_to("chat") == []  # CRITIC_BASE_URL is used

        # A photo brief: images.edit with the photo where the image server can edit.
        telegram.user_sends_photo(ana_chat, ana, product_photo(), caption=SCENE)
        answer = await outcome(telegram, ana_chat, after=round1.message_id)
        [edit] = deployment.images.edit_requests
        if deployment.can_edit:
            assert judged(answer), f"{profile.name}: {answer.plain!r}"
            assert edit.record.status == 200 and edit.prompt == SCENE
            assert len(deployment.critic.requests_to("chat")) == 2
        else:
            assert "can't edit pictures" in answer.plain, f"{profile.name}: {answer.plain!r}"
            assert len(deployment.images.requests_to("images")) == 1  # nothing drawn instead

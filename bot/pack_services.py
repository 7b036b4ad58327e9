"""The campaign pack's long-lived objects, built once per process from the settings: the
outpainter of IMAGE_BACKEND (its own HTTP client) and the PackService on it."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from bot.backends.base import Critic, ImageGenerator
from bot.backends.image_answers import parse_hosts
from bot.backends.openai_outpaint import OpenAIOutpainter
from bot.backends.outpaint import Outpainter
from bot.backends.stability_outpaint import StabilityOutpainter
from bot.clients import openai_images_client, stability_http
from bot.config import Settings
from bot.refine.models import QuotaPolicy
from bot.refine.pack_maker import PackMaker
from bot.refine.pack_plan import PackEstimate, PackFormat, estimate
from bot.refine.packs import PackService
from bot.refine.steps import safety_identifier
from storage.store import Store


def build_outpainter(settings: Settings) -> Outpainter:
    """Return the campaign pack's outpainter for IMAGE_BACKEND, with its own HTTP client."""
    if settings.image_backend == "stability":
        assert settings.stability_api_key is not None  # checked by Settings
        return StabilityOutpainter(
            stability_http(settings),
            settings.stability_api_key.get_secret_value(),
            output_format="png",  # lossless: the original pixels come back as they were
            timeout=settings.image_timeout,
        )
    return OpenAIOutpainter(
        openai_images_client(settings),
        settings.image_model,
        settings.image_quality,
        settings.image_timeout,
        download_hosts=parse_hosts(settings.image_download_hosts) or None,
    )


def build_packs(
    settings: Settings,
    store: Store,
    generator: ImageGenerator,
    critic: Critic,
    outpainter: Outpainter,
    quota: QuotaPolicy,
) -> PackService:
    """Return the campaign pack's service on the configured backends."""
    maker = PackMaker(
        outpainter=outpainter,
        generator=generator,
        critic=critic,
        critic_max_side=settings.critic_image_max_side,
        safety_identifier=functools.partial(safety_identifier, settings.safety_key()),
        record_usage=store.chats.record_usage,
    )

    def estimated(formats: Sequence[PackFormat], quality: str | None) -> PackEstimate:
        return estimate(
            formats,
            outpaint_model=outpainter.model,
            edit_model=generator.model,
            can_outpaint=outpainter.can_outpaint,
            can_edit=generator.can_edit,
            quality=quality or settings.image_quality,
        )

    return PackService(store=store, maker=maker, quota=quota, estimate=estimated)

"""The long-lived objects the handlers use, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.backends.base import Critic, ImageGenerator
from bot.backends.image_answers import parse_hosts
from bot.backends.openai_common import make_client
from bot.backends.openai_critic import OpenAICritic
from bot.backends.openai_images import OpenAIImageGenerator
from bot.backends.outpaint import Outpainter
from bot.backends.stability import StabilityImageGenerator
from bot.clients import openai_images_client, stability_http
from bot.config import Settings
from bot.pack_services import build_outpainter, build_packs
from bot.refine.history import ChatHistory
from bot.refine.models import AutopilotDefaults, QuotaPolicy
from bot.refine.outbox import Outbox
from bot.refine.packs import PackService
from bot.refine.service import RefineService
from storage.store import Store


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    generator: ImageGenerator
    critic: Critic
    refine: RefineService
    history: ChatHistory
    outbox: Outbox  # refine.outbox
    packs: PackService | None = None  # the campaign pack (None: not built, e.g. some tests)
    outpainter: Outpainter | None = None

    async def close(self) -> None:
        """Close the backends' HTTP clients and the database."""
        await self.generator.aclose()
        await self.critic.aclose()
        if self.outpainter is not None:
            await self.outpainter.aclose()
        await self.store.close()


def build_generator(settings: Settings) -> ImageGenerator:
    """Return the image backend chosen by IMAGE_BACKEND, with its own HTTP client."""
    if settings.image_backend == "stability":
        assert settings.stability_api_key is not None  # checked by Settings
        return StabilityImageGenerator(
            stability_http(settings),
            settings.stability_api_key.get_secret_value(),
            settings.stability_model,
            settings.stability_output_format,
            settings.image_timeout,
            settings.stability_image_strength,
            edit_strength=settings.stability_edit_strength,
        )
    return OpenAIImageGenerator(
        openai_images_client(settings),
        settings.image_model,
        settings.image_quality,
        settings.image_timeout,
        output_format=settings.image_output_format,
        download_hosts=parse_hosts(settings.image_download_hosts) or None,
        previews=settings.image_previews,
    )


def build_critic(settings: Settings) -> Critic:
    """Return the critic on CRITIC_BASE_URL (or OPENAI_BASE_URL) with its own client."""
    api_key = settings.effective_critic_api_key
    assert api_key is not None  # checked by Settings
    client = make_client(
        settings.effective_critic_base_url, api_key.get_secret_value(), settings.critic_timeout
    )
    return OpenAICritic(client, settings.critic_model, settings.critic_timeout)


def build_refine(
    settings: Settings,
    store: Store,
    generator: ImageGenerator,
    critic: Critic,
    quota: QuotaPolicy,
) -> RefineService:
    """Return the domain service configured from the settings (critic image size, default
    format, autopilot defaults, rounds in flight), under the given quota policy."""
    autopilot = AutopilotDefaults(
        rounds=settings.autopilot_rounds,
        drafts=settings.autopilot_drafts,
        threshold=settings.autopilot_threshold,
    )
    return RefineService(
        store=store,
        generator=generator,
        critic=critic,
        critic_max_side=settings.critic_image_max_side,
        quota=quota,
        default_format=settings.image_format,
        autopilot=autopilot,
        max_rounds_in_flight=settings.max_rounds_in_flight,
        safety_key=settings.safety_key(),
    )


async def build_services(settings: Settings) -> Services:
    """Open the store and build the backends and the domain services."""
    store = await Store.open(settings.database_path)
    generator = build_generator(settings)
    critic = build_critic(settings)
    quota = QuotaPolicy(
        rounds_per_user_per_day=settings.quota_rounds_per_user_per_day,
        rounds_per_chat_per_day=settings.quota_rounds_per_chat_per_day,
        exempt_user_ids=settings.admin_user_ids,
    )
    refine = build_refine(settings, store, generator, critic, quota)
    outpainter = build_outpainter(settings)
    packs = build_packs(settings, store, generator, critic, outpainter, quota)
    history = ChatHistory(store)
    return Services(
        settings, store, generator, critic, refine, history, refine.outbox, packs, outpainter
    )

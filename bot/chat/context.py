"""The context every handler, error handler and job receives: PTB's CallbackContext, plus the
process's Services (built in post_init, closed in post_shutdown, see bot/app.py)."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot, JobQueue

from bot.services import Services

_SERVICES = "services"
"""The bot_data key the Services are kept under while the application runs."""


class BotContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The handlers' context (`ContextTypes(context=BotContext)`): `context.services`."""

    __slots__ = ()

    @property
    def services(self) -> Services:
        """The process's Services; raises LookupError outside post_init..post_shutdown."""
        return services_of(self.application)


BotApplication = Application[
    ExtBot[Any], BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], JobQueue[Any]
]
"""The Application that bot/app.py builds: its handlers, error handlers and jobs get a
BotContext (PTB's builder types its job queue before `context_types`, hence `Any`)."""


def services_of(application: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    """Return the application's Services; raises LookupError if none are attached."""
    services: Services | None = application.bot_data.get(_SERVICES)
    if services is None:
        raise LookupError("the application's services are not built (post_init has not run)")
    return services


def attach_services(application: BotApplication, services: Services) -> None:
    """Make `services` what every BotContext of the application returns."""
    application.bot_data[_SERVICES] = services


def detach_services(application: BotApplication) -> Services | None:
    """Remove the application's Services and return them (None if there were none)."""
    services: Services | None = application.bot_data.pop(_SERVICES, None)
    return services

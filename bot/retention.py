"""Image retention (IMAGE_RETENTION_DAYS): the daily job that prunes old image files.

What is pruned, and how safely, is the store's (`Store.images.prune`, storage/images.py, which
owns the image files): old files go, every row stays, and images still needed (chosen at
Stop, of rounds in flight, active sessions' product photos) are kept. This module only
schedules it on the application's job queue, on the bot's own store, and logs what it did.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.chat.context import services_of
from bot.config import Settings
from storage.records import PruneReport

if TYPE_CHECKING:
    from telegram.ext import Application, CallbackContext

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 24 * 60 * 60.0
"""Seconds between two prunings (daily)."""
FIRST_RUN_DELAY = 30.0
"""Seconds after start-up before the first pruning."""


def log_report(report: PruneReport, days: int) -> None:
    """Log one line saying what a pruning did."""
    log.info(
        "retention: deleted %d image files (%.1f MB) older than %d days; kept %d chosen",
        len(report.pruned),
        report.freed_bytes / 1e6,
        days,
        report.kept_chosen,
    )


def schedule_retention(
    application: Application[Any, Any, Any, Any, Any, Any], settings: Settings
) -> None:
    """If IMAGE_RETENTION_DAYS is set, prune shortly after start-up and then daily, through
    the application's store (its Services must be attached by then, see bot/app.py)."""
    days = settings.image_retention_days
    if days is None:
        return
    if application.job_queue is None:
        log.warning("no job queue (install python-telegram-bot[job-queue]): no image retention")
        return

    async def prune(context: CallbackContext[Any, Any, Any, Any]) -> None:
        store = services_of(context.application).store
        log_report(await store.images.prune(older_than_days=days), days)

    application.job_queue.run_repeating(
        prune, interval=RETENTION_INTERVAL, first=FIRST_RUN_DELAY, name="image-retention"
    )

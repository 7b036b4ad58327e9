"""`python -m bot`: load settings, build the Application, run it (long polling or webhook).

`python -m bot check|health|backup PATH` run the operator commands instead, and
`python -m bot refine "brief"` the refinement loop in the terminal (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import sys

from pydantic import ValidationError

from bot.config import Settings, describe_errors, load_settings
from bot.health import DEFAULT_MAX_AGE
from bot.logs import configure_logging

log = logging.getLogger("bot")

_BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}
"""Why the webhook server may fail to listen on WEBHOOK_LISTEN:WEBHOOK_PORT."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="refinebot. Without a command, run the bot."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "check", help="validate the configuration and reach every configured service"
    )
    health = commands.add_parser(
        "health", help="exit 0 if the running bot is healthy (for Docker's HEALTHCHECK)"
    )
    health.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE,
        help="seconds a heartbeat may be old (default %(default)s)",
    )
    backup = commands.add_parser(
        "backup", help="copy the database and the images into PATH, while the bot runs"
    )
    backup.add_argument("path", help="backup folder (created if needed)")
    refine = commands.add_parser(
        "refine",
        help="run the autopilot in the terminal: images and a report into a folder",
        description="Refine a brief (and a product photo) with the configured backends, "
        "without Telegram. Every image, report.json and report.html go into --out.",
    )
    refine.add_argument("brief", help="what to draw, or the scene for --photo")
    refine.add_argument(
        "--photo", metavar="PATH", help="a product photo to keep (JPEG/PNG/WebP/HEIC)"
    )
    refine.add_argument("--rounds", type=int, metavar="N", help="rounds at most (AUTOPILOT_ROUNDS)")
    refine.add_argument(
        "--drafts", type=int, metavar="K", help="drafts per round, in parallel (AUTOPILOT_DRAFTS)"
    )
    refine.add_argument("--out", metavar="DIR", help="output folder (default: refine-<time>)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the bot, or the operator command named in `argv`; return the process exit status.

    Each command imports only what it needs: `health` runs every minute under Docker.
    """
    args = _parser().parse_args(argv)
    if args.command == "check":
        from bot.cli import check

        return check.main()
    if args.command == "health":
        from bot.cli import health

        return health.main(args.max_age)
    if args.command == "backup":
        from bot.cli import backup

        return backup.main(args.path)
    if args.command == "refine":
        from bot.cli import refine

        return refine.main(args.brief, args.photo, args.rounds, args.drafts, args.out)
    return run_bot()


def use_fast_event_loop() -> None:
    """Run the bot's asyncio on uvloop's event loop (libuv, in C) where it is installed (it is
    a dependency everywhere but Windows): ~10 % less CPU per round and ~5 ms less overhead
    (bench/). python-telegram-bot runs on the loop set here."""
    try:
        import uvloop
    except ImportError:
        log.info("event loop: asyncio's own (uvloop is not installed)")
        return
    asyncio.set_event_loop(uvloop.new_event_loop())
    log.info("event loop: uvloop %s", uvloop.__version__)


def run_bot() -> int:
    """Run the bot until interrupted; return the process exit status."""
    try:
        settings = load_settings()
    except ValidationError as error:
        print(
            f"refinebot: configuration problem: {describe_errors(error)}. "
            "Set it in .env (copy .env.example) or the environment.",
            file=sys.stderr,
        )
        return 2
    from storage.startup import StorageProblem, check_database, lock_database

    try:  # one process per database, and a database that opens and is not damaged
        lock = lock_database(settings.database_path)
    except StorageProblem as problem:
        print(f"refinebot: {problem}.", file=sys.stderr)
        return 1
    try:
        check_database(settings.database_path)
        return _run_application(settings)
    except StorageProblem as problem:
        print(f"refinebot: {problem}.", file=sys.stderr)
        return 2
    finally:
        lock.release()


def _run_application(settings: Settings) -> int:
    """Run the Application until a stop signal; return the exit status."""
    # Imported only now: a configuration problem is reported without a second of imports.
    from telegram.error import InvalidToken, NetworkError

    from bot import webhook
    from bot.app import build_application
    from bot.handlers.gate import stopped_by_conflict

    configure_logging(settings.log_level, settings.secret_values(), settings.log_format)
    application = build_application(settings)
    # What is loaded by now (the libraries: ~135,000 objects) lives as long as the process;
    # frozen, the collector's full passes skip it instead of stalling the event loop for
    # ~0.1 s each under load (bench/, 500 chats).
    gc.freeze()
    use_fast_event_loop()
    if settings.webhook_mode:
        log.info(
            "webhook mode: Telegram posts to %s; listening on %s:%s%s",
            settings.webhook_url,
            settings.webhook_listen,
            settings.webhook_port,
            settings.webhook_url_path,
        )
    try:
        webhook.run(application, settings)
    except InvalidToken:
        print(
            "refinebot: Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather.",
            file=sys.stderr,
        )
        return 2
    except NetworkError as error:
        print(f"refinebot: cannot reach the Telegram Bot API: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if not settings.webhook_mode or error.errno not in _BIND_ERRORS:
            raise
        print(
            f"refinebot: cannot listen on {settings.webhook_listen}:{settings.webhook_port} "
            f"(WEBHOOK_LISTEN, WEBHOOK_PORT): {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    if stopped_by_conflict(application):
        print(
            "refinebot: another bot is getting this token's updates (Telegram answered 409 "
            "Conflict); stop the other one, it may run on another machine.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

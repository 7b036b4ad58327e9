"""LOG_FORMAT=json: one JSON object per line, secrets redacted, in both formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import TEXT_FORMAT, JsonFormatter, RedactSecrets
from tests.cli_helpers import fakes_environment, start_bot, stop_bot

SECRET = "sk-very-secret-value-42"


@pytest.fixture(params=["text", "json"])
def captured(request) -> Iterator[tuple[logging.Logger, io.StringIO, str]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = JsonFormatter() if request.param == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets([SECRET]))
    logger = logging.getLogger(f"test.json_logs.{request.param}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream, request.param
    logger.removeHandler(handler)


def test_secrets_are_redacted_in_messages_and_tracebacks(captured) -> None:
    logger, stream, fmt = captured
    logger.info("calling https://api.example/bot%s/getMe", SECRET)
    try:
        raise RuntimeError(f"request with key {SECRET} failed")
    except RuntimeError:
        logger.exception("backend failed")
    output = stream.getvalue()
    assert SECRET not in output
    assert "***" in output
    if fmt == "json":
        first, second = (json.loads(line) for line in output.splitlines())
        assert set(first) == {"time", "level", "logger", "message"}
        assert first["level"] == "INFO" and first["logger"] == "test.json_logs.json"
        assert first["message"] == "calling https://api.example/bot***/getMe"
        assert first["time"].endswith("+00:00")
        assert second["message"] == "backend failed" and second["level"] == "ERROR"
        assert "RuntimeError: request with key *** failed" in second["exception"]
        assert second["exception"].startswith("Traceback")


def test_json_lines_survive_awkward_text(captured) -> None:
    logger, stream, fmt = captured
    logger.warning('quote " backslash \\ newline\n and ünïcödé')
    if fmt == "json":
        (line,) = stream.getvalue().splitlines()
        assert json.loads(line)["message"] == 'quote " backslash \\ newline\n and ünïcödé'


async def test_the_process_logs_json(telegram, openai_fake, ana, ana_chat, tmp_path) -> None:
    env = fakes_environment(telegram, openai_fake, tmp_path / "data", LOG_FORMAT="json")
    process = await start_bot(env, tmp_path)
    try:
        telegram.user_sends_text(ana_chat, ana, "/help")
        await telegram.wait_for(lambda: telegram.last_message(ana_chat), timeout=30)
    finally:
        stderr = await stop_bot(process)
    assert process.returncode == 0
    lines = stderr.splitlines()
    assert len(lines) > 5
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(entry["level"] == "DEBUG" for entry in entries)
    text = stderr
    assert telegram.token not in text and openai_fake.api_key not in text

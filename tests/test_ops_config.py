"""The operations settings: webhook, log format, image retention, and the data-only settings."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from bot.config import DataSettings, Settings, describe_errors

BASE = {"TELEGRAM_BOT_TOKEN": "123:abc", "OPENAI_API_KEY": "sk-x"}
SECRET = "A-good_secret-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in list(os.environ):
        if key.startswith(
            ("TELEGRAM_", "OPENAI_", "IMAGE_", "CRITIC_", "STABILITY_", "WEBHOOK_", "LOG_")
        ) or key in ("DATABASE_PATH", "ADMIN_USER_IDS"):
            monkeypatch.delenv(key)


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key, value in {**BASE, **env}.items():
        monkeypatch.setenv(key, value)
    return Settings()


def error_of(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(monkeypatch, **env)
    return describe_errors(caught.value)


def test_defaults_are_polling_text_logs_and_no_retention(monkeypatch) -> None:
    s = settings(monkeypatch)
    assert not s.webhook_mode
    assert (s.webhook_listen, s.webhook_port) == ("0.0.0.0", 8443)
    assert s.log_format == "text"
    assert s.image_retention_days is None


def test_blank_values_mean_unset(monkeypatch) -> None:
    s = settings(monkeypatch, WEBHOOK_URL="", WEBHOOK_SECRET=" ", IMAGE_RETENTION_DAYS="")
    assert not s.webhook_mode and s.webhook_secret is None and s.image_retention_days is None


def test_webhook_mode(monkeypatch) -> None:
    s = settings(
        monkeypatch,
        WEBHOOK_URL="https://bot.example.com/tg/",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_PORT="9000",
        LOG_FORMAT="JSON",
        IMAGE_RETENTION_DAYS="30",
    )
    assert s.webhook_mode and s.webhook_port == 9000
    assert s.webhook_url_path == "/tg"
    assert s.log_format == "json" and s.image_retention_days == 30
    assert SECRET in s.secret_values()
    assert SECRET not in repr(s)
    with_path = settings(monkeypatch, WEBHOOK_PATH="hook")
    assert with_path.webhook_url_path == "/hook"


def test_webhook_url_without_path_listens_on_root(monkeypatch) -> None:
    s = settings(monkeypatch, WEBHOOK_URL="https://bot.example.com", WEBHOOK_SECRET=SECRET)
    assert s.webhook_url_path == "/"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WEBHOOK_URL": "https://bot.example.com/tg"}, "WEBHOOK_SECRET is required"),
        (
            {"WEBHOOK_URL": "https://b.example.com/", "WEBHOOK_SECRET": "has space" * 3},
            "WEBHOOK_SECRET: may only contain A-Z a-z 0-9 _ -",
        ),
        (
            {"WEBHOOK_URL": "https://b.example.com/", "WEBHOOK_SECRET": "x" * 257},
            "be 1-256 characters long",
        ),
        (
            {"WEBHOOK_URL": "https://b.example.com/", "WEBHOOK_SECRET": "Zq9-x"},
            "WEBHOOK_SECRET: is too short",
        ),
        ({"WEBHOOK_URL": "bot.example.com"}, "WEBHOOK_URL: must be the public https:// URL"),
        (
            {"WEBHOOK_URL": "http://bot.example.com/", "WEBHOOK_SECRET": SECRET},
            "WEBHOOK_URL must start with https://",
        ),
        (
            {"WEBHOOK_URL": "https://bot.example.com:9000/", "WEBHOOK_SECRET": SECRET},
            "port 9000 is not one Telegram delivers to",
        ),
        ({"WEBHOOK_PORT": "70000"}, "WEBHOOK_PORT"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"IMAGE_RETENTION_DAYS": "0"}, "IMAGE_RETENTION_DAYS"),
    ],
)
def test_bad_operations_settings_are_named(monkeypatch, env, expected) -> None:
    message = error_of(monkeypatch, **env)
    assert expected in message
    secret = env.get("WEBHOOK_SECRET")
    assert secret is None or secret not in message


def test_http_webhook_is_allowed_with_a_local_bot_api_server(monkeypatch) -> None:
    s = settings(
        monkeypatch,
        TELEGRAM_API_BASE_URL="http://localhost:8081/bot",
        WEBHOOK_URL="http://bot.internal:9000/tg",
        WEBHOOK_SECRET=SECRET,
    )
    assert s.webhook_mode


def test_data_settings_need_nothing_but_the_database_path(monkeypatch, tmp_path) -> None:
    assert str(DataSettings().database_path) == "data/refinebot.db"
    (tmp_path / ".env").write_text("DATABASE_PATH=/srv/bot/bot.db\n")
    assert str(DataSettings().data_dir) == "/srv/bot"

"""Configuration: defaults, id lists, and errors that name each bad key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings, describe_errors

BASE = {"TELEGRAM_BOT_TOKEN": "123:abc", "OPENAI_API_KEY": "sk-x"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in list(__import__("os").environ):
        if key.startswith(("TELEGRAM_", "OPENAI_", "IMAGE_", "CRITIC_", "STABILITY_", "ALLOWED_")):
            monkeypatch.delenv(key)
    monkeypatch.delenv("ADMIN_USER_IDS", raising=False)


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for key, value in {**BASE, **env}.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch)
    assert s.image_backend == "openai"
    assert s.telegram_api_base_url.startswith("https://") and s.telegram_api_base_url.endswith(
        "/bot"
    )
    assert s.admin_user_ids == frozenset()
    assert s.critic_image_max_side == 768
    assert str(s.database_path) == "data/refinebot.db"


def test_id_lists_and_star(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, ALLOWED_USER_IDS="1, 2,3", ALLOWED_CHAT_IDS="*", ADMIN_USER_IDS="9")
    assert s.allowed_user_ids == frozenset({1, 2, 3})
    assert s.allowed_chat_ids is None
    assert s.admin_user_ids == frozenset({9})


def test_dotenv_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / ".env").write_text(
        "TELEGRAM_BOT_TOKEN=1:fromfile\nOPENAI_API_KEY=k\nLOG_LEVEL=debug\n"
    )
    assert Settings().telegram_bot_token.get_secret_value() == "1:fromfile"
    assert Settings().log_level == "DEBUG"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "2:fromenv")
    assert Settings().telegram_bot_token.get_secret_value() == "2:fromenv"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN: is empty"),
        ({"TELEGRAM_BOT_TOKEN": "nocolon"}, "TELEGRAM_BOT_TOKEN: does not look like"),
        ({"ALLOWED_USER_IDS": "12,abc"}, "ALLOWED_USER_IDS: 'abc' is not a numeric"),
        ({"IMAGE_BACKEND": "dalle"}, "IMAGE_BACKEND"),
        ({"IMAGE_BACKEND": "stability"}, "needs STABILITY_API_KEY"),
        ({"CRITIC_IMAGE_MAX_SIDE": "10"}, "CRITIC_IMAGE_MAX_SIDE"),
    ],
)
def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch, env: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(monkeypatch, **env)
    assert expected in describe_errors(caught.value)


def test_missing_token_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_errors(caught.value) == "TELEGRAM_BOT_TOKEN is missing"


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, OPENAI_API_KEY="sk-very-secret")
    assert "sk-very-secret" not in repr(s)
    assert "123:abc" not in repr(s)

"""`python -m bot check` as a real process against the fakes: each check passing and failing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.cli.check import (
    check_critic,
    check_database,
    check_openai_model,
    check_stability,
    check_webhook,
)
from tests.cli_helpers import Finished, clean_environment, free_port, run_cli
from tests.fakes.openai_server import FakeOpenAI, OpenAIFault
from tests.fakes.stability_server import FakeStability
from tests.fakes.telegram_server import FakeTelegram

SECRET = "check-Webhook_secret-0123456789"


@pytest.fixture
def environment(telegram: FakeTelegram, openai_fake: FakeOpenAI, data_dir: Path):
    def make(**extra: str) -> dict[str, str]:
        values = dict(
            TELEGRAM_BOT_TOKEN=telegram.token,
            TELEGRAM_API_BASE_URL=telegram.base_url,
            TELEGRAM_FILE_BASE_URL=telegram.base_file_url,
            OPENAI_API_KEY=openai_fake.api_key,
            OPENAI_BASE_URL=openai_fake.base_url,
            DATABASE_PATH=str(data_dir / "refinebot.db"),
        )
        values.update(extra)
        return clean_environment(**values)

    return make


async def check(env: dict[str, str], cwd: Path) -> Finished:
    finished = await run_cli("check", env=env, cwd=cwd)
    assert "Traceback" not in finished.stderr, finished.stderr
    for line in finished.lines:
        assert line[:2] in ("✓ ", "✗ "), finished.stdout
    return finished


def line_for(finished: Finished, name: str) -> str:
    matches = [line for line in finished.lines if line[2:].startswith(f"{name}:")]
    assert len(matches) == 1, finished.stdout
    return matches[0]


def assert_no_secrets(finished: Finished, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in finished.stdout and secret not in finished.stderr


async def test_everything_passes(environment, telegram, openai_fake, tmp_path) -> None:
    finished = await check(environment(), tmp_path)
    assert finished.returncode == 0, finished.stdout
    assert [line[2:].split(":")[0] for line in finished.lines] == [
        "Configuration",
        "Database",
        "Telegram",
        "Image backend",
        "Critic",
    ]
    assert all(line.startswith("✓") for line in finished.lines)
    assert line_for(finished, "Telegram") == f"✓ Telegram: @{telegram.bot_username}"
    assert "gpt-image-2.5-flare" in line_for(finished, "Image backend")
    assert "gpt-5.4-mini" in line_for(finished, "Critic")
    assert_no_secrets(finished, telegram.token, openai_fake.api_key)
    # Only cheap calls: no image drawn, no critique asked for, nothing sent to a chat.
    # No image is paid for; the critic is probed once, with a tiny image and the real schema.
    assert not openai_fake.requests_to("images") and len(openai_fake.requests_to("chat")) == 1
    assert [call.method for call in telegram.calls] == ["getMe"]


async def test_rejected_token_and_unknown_models(environment, telegram, tmp_path) -> None:
    env = environment(
        TELEGRAM_BOT_TOKEN="999:wrong-token", CRITIC_MODEL="gpt-x", IMAGE_MODEL="gpt-image-9"
    )
    finished = await check(env, tmp_path)
    assert finished.returncode == 1
    line = line_for(finished, "Telegram")
    assert line.startswith("✗ Telegram: the token was rejected — ") and "@BotFather" in line
    critic = line_for(finished, "Critic")
    assert critic.startswith("✗ Critic: model gpt-x not found")
    assert critic.endswith("— set CRITIC_MODEL to a vision model your server has")
    image = line_for(finished, "Image backend")
    assert image.startswith("✗ Image backend: model gpt-image-9 not found")
    assert image.endswith("— set IMAGE_MODEL to an image model your server has")
    assert line_for(finished, "Database").startswith("✓")
    assert_no_secrets(finished, "999:wrong-token")


async def test_unreachable_telegram_and_wrong_openai_key(environment, tmp_path) -> None:
    base = f"http://127.0.0.1:{free_port()}/bot"
    env = environment(TELEGRAM_API_BASE_URL=base, OPENAI_API_KEY="sk-wrong-key-000")
    finished = await check(env, tmp_path)
    assert finished.returncode == 1
    line = line_for(finished, "Telegram")
    assert line.startswith(f"✗ Telegram: cannot reach {base}")
    assert "TELEGRAM_API_BASE_URL" in line
    for name in ("Image backend", "Critic"):
        line = line_for(finished, name)
        assert line.startswith(f"✗ {name}: ") and "rejected the API key" in line
        assert line.endswith("check OPENAI_API_KEY")
    assert_no_secrets(finished, "sk-wrong-key-000")


async def test_critic_on_its_own_server(environment, make_settings, tmp_path) -> None:
    async with FakeOpenAI(api_key="ollama-key-123") as critic_server:
        critic_server.models = ["qwen2.5vl:7b"]
        env = environment(
            CRITIC_BASE_URL=critic_server.base_url,
            CRITIC_API_KEY="ollama-key-123",
            CRITIC_MODEL="qwen2.5vl:7b",
        )
        finished = await check(env, tmp_path)
        assert finished.returncode == 0, finished.stdout
        assert critic_server.base_url in line_for(finished, "Critic")
        wrong = await check_critic(
            make_settings(
                critic_base_url=critic_server.base_url,
                critic_api_key="nope-nope-nope",
                critic_model="qwen2.5vl:7b",
            )
        )
    assert wrong.line().endswith("check CRITIC_API_KEY")


@pytest.fixture
def stability_environment(environment, stability_fake: FakeStability):
    def make(**extra: str) -> dict[str, str]:
        values = dict(
            IMAGE_BACKEND="stability",
            STABILITY_API_KEY=stability_fake.api_key,
            STABILITY_API_BASE_URL=stability_fake.base_url,
        )
        return environment(**{**values, **extra})

    return make


async def test_stability_with_credits(stability_environment, stability_fake, tmp_path) -> None:
    finished = await check(stability_environment(), tmp_path)
    assert finished.returncode == 0, finished.stdout
    expected = "✓ Image backend: Stability sd3.5-large, 25 credits"
    assert line_for(finished, "Image backend") == expected
    assert_no_secrets(finished, stability_fake.api_key)
    assert not stability_fake.requests_to("sd3")


async def test_stability_without_credits(stability_environment, stability_fake, tmp_path) -> None:
    stability_fake.credits = 0
    finished = await check(stability_environment(), tmp_path)
    assert finished.returncode == 1
    line = line_for(finished, "Image backend")
    assert line.startswith("✗ Image backend: the Stability account has no credits left — ")
    assert "platform.stability.ai" in line


async def test_stability_bad_key(stability_environment, tmp_path) -> None:
    finished = await check(stability_environment(STABILITY_API_KEY="sk-stab-wrong"), tmp_path)
    assert finished.returncode == 1
    line = line_for(finished, "Image backend")
    assert line == "✗ Image backend: Stability rejected the API key — check STABILITY_API_KEY"
    assert_no_secrets(finished, "sk-stab-wrong")


async def test_stability_unknown_model(make_settings) -> None:
    result = await check_stability(
        make_settings(image_backend="stability", stability_model="sdxl-9")
    )
    assert not result.ok and result.line().endswith("— set STABILITY_MODEL")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TELEGRAM_BOT_TOKEN": ""}, "✗ Configuration: TELEGRAM_BOT_TOKEN: is empty — "),
        (
            {"IMAGE_BACKEND": "stability"},
            "✗ Configuration: IMAGE_BACKEND=stability needs STABILITY_API_KEY — ",
        ),
        ({"IMAGE_BACKEND": "midjourney"}, "✗ Configuration: IMAGE_BACKEND: "),
        (
            {"WEBHOOK_URL": "https://bot.example.com/tg"},
            "✗ Configuration: WEBHOOK_URL is set, so WEBHOOK_SECRET is required",
        ),
    ],
)
async def test_invalid_configuration(environment, telegram, tmp_path, env, expected) -> None:
    finished = await check(environment(**env), tmp_path)
    assert finished.returncode == 2
    assert any(line.startswith(expected) for line in finished.lines), finished.stdout
    assert not telegram.calls  # nothing is tried with a broken configuration


async def test_missing_token(tmp_path) -> None:
    finished = await check(clean_environment(OPENAI_API_KEY="sk-x"), tmp_path)
    assert finished.returncode == 2
    assert finished.lines == [
        "✗ Configuration: TELEGRAM_BOT_TOKEN is missing — "
        "copy the token from @BotFather (/mybots → API Token) into .env"
    ]


async def test_webhook_mode_reports_delivery_errors(
    environment, make_settings, telegram, tmp_path
) -> None:
    settings = make_settings(webhook_url="https://bot.example.com/tg", webhook_secret=SECRET)
    before_start = await check_webhook(settings)
    assert before_start.line() == (
        "✓ Webhook: https://bot.example.com/tg (Telegram is told when the bot starts)"
    )

    env = environment(WEBHOOK_URL="https://bot.example.com/tg", WEBHOOK_SECRET=SECRET)
    telegram.webhook = {"url": "https://bot.example.com/tg", "secret_token": SECRET}
    telegram.webhook_last_error = (int(time.time()) - 120, "Connection refused")
    finished = await check(env, tmp_path)
    assert finished.returncode == 1
    line = line_for(finished, "Webhook")
    assert line.startswith("✗ Webhook: Telegram could not deliver to https://bot.example.com/tg")
    assert "Connection refused" in line and "reverse proxy" in line
    assert_no_secrets(finished, SECRET, telegram.token)

    telegram.webhook_last_error = None
    running = await check_webhook(settings)
    assert running.line() == "✓ Webhook: Telegram delivers to https://bot.example.com/tg (0 queued)"


async def test_server_without_model_retrieval_is_asked_for_its_list(openai_fake) -> None:
    # Some self-hosted servers only implement GET /models: the check falls back to the list.
    openai_fake.fail_next("model", OpenAIFault.error(404, "Invalid URL (GET /v1/models/x)"))
    result = await check_openai_model(
        "Critic",
        openai_fake.base_url,
        openai_fake.api_key,
        "gpt-5.4-mini",
        key_setting="OPENAI_API_KEY",
        url_setting="OPENAI_BASE_URL",
        model_hint="set CRITIC_MODEL",
    )
    assert result.ok, result.line()
    assert openai_fake.requests_to("models")


async def test_database_check(tmp_path) -> None:
    from storage.store import Store

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 200)
    result = check_database(broken)
    assert not result.ok and "does not open" in result.line() and "backup" in result.line()

    good = tmp_path / "data" / "refinebot.db"
    store = await Store.open(good)
    await store.sessions.create(1, chat_type="private", thread_id=0, user_id=1, brief="vase")
    await store.close()
    assert check_database(good).line() == f"✓ Database: {good} (1 sessions)"

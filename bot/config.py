"""Settings from the environment and `.env`, validated once at start-up.

Real environment variables win over `.env`. Every bad key is named in one readable line by
`describe_errors`, so `python -m bot` can exit with a message instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[frozenset[int] | None, NoDecode]
"""A comma-separated id list; None stands for `*` (everyone)."""


def _parse_ids(value: object) -> frozenset[int] | None:
    if value is None or isinstance(value, frozenset):
        return value
    text = str(value).strip()
    if text == "*":
        return None
    ids = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a numeric Telegram id (use numbers or *)") from None
    return frozenset(ids)


class Settings(BaseSettings):
    """Everything the bot reads from its environment. See the table in README.md."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    image_backend: Literal["openai", "stability"] = "openai"
    image_model: str = "gpt-image-2.5-flare"
    image_size: str = "1024x1024"
    image_quality: Literal["low", "medium", "high", "auto"] = "medium"
    image_timeout: float = Field(default=180.0, gt=0)

    critic_model: str = "gpt-5.4-mini"
    critic_base_url: str | None = None
    critic_api_key: SecretStr | None = None
    critic_image_max_side: int = Field(default=768, ge=256, le=2048)
    critic_timeout: float = Field(default=90.0, gt=0)

    stability_api_key: SecretStr | None = None
    stability_api_base_url: str = "https://api.stability.ai"
    stability_model: str = "sd3.5-large"
    stability_aspect_ratio: str = "1:1"
    stability_output_format: Literal["png", "jpeg", "webp"] = "png"

    database_path: Path = Path("data/refinebot.db")

    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    admin_user_ids: IdList = frozenset()

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("allowed_user_ids", "allowed_chat_ids", "admin_user_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> frozenset[int] | None:
        return _parse_ids(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError("is empty")
        if ":" not in token:
            raise ValueError("does not look like a BotFather token (expected 123456:ABC...)")
        return SecretStr(token)

    @model_validator(mode="after")
    def _backend_keys(self) -> Settings:
        missing = []
        if self.image_backend == "stability" and self.stability_api_key is None:
            missing.append("IMAGE_BACKEND=stability needs STABILITY_API_KEY")
        if self.image_backend == "openai" and self.openai_api_key is None:
            missing.append("IMAGE_BACKEND=openai needs OPENAI_API_KEY")
        if self.effective_critic_api_key is None:
            missing.append("the critic needs CRITIC_API_KEY or OPENAI_API_KEY")
        if missing:
            raise ValueError("; ".join(missing))
        return self

    @property
    def data_dir(self) -> Path:
        """The folder that holds the database and the image store."""
        return self.database_path.parent

    @property
    def effective_critic_base_url(self) -> str | None:
        return self.critic_base_url or self.openai_base_url

    @property
    def effective_critic_api_key(self) -> SecretStr | None:
        return self.critic_api_key or self.openai_api_key


def describe_errors(error: ValidationError) -> str:
    """Return one line naming each bad or missing key, e.g. `TELEGRAM_BOT_TOKEN is missing`."""
    parts = []
    for item in error.errors():
        key = "_".join(str(p) for p in item["loc"]).upper()
        if item["type"] == "missing":
            parts.append(f"{key} is missing")
        else:
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"{key}: {message}" if key else message)
    return "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides win (for tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]

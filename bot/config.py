"""Settings from the environment and `.env`, validated once at start-up.

Real environment variables win over `.env`. Every bad key is named in one readable line by
`describe_errors`, so `python -m bot` can exit with a message instead of a traceback.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[frozenset[int] | None, NoDecode]
"""A comma-separated id list; None stands for `*` (everyone)."""

DEFAULT_DATABASE_PATH = Path("data/refinebot.db")
OFFICIAL_API_HOST = "api.telegram.org"
WEBHOOK_PORTS = (443, 80, 88, 8443)
"""The only ports Telegram delivers webhooks to (the public URL's port, not the listen port)."""
_WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
MIN_WEBHOOK_SECRET = 16
"""Telegram accepts 1 character; fewer than 16 can be guessed, so refinebot asks for more."""
SECRET_HINT = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


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
    image_format: Literal["square", "portrait", "story", "banner"] = "square"
    image_quality: Literal["low", "medium", "high", "auto"] = "medium"
    image_output_format: Literal["png", "jpeg", "webp"] = "jpeg"
    image_timeout: float = Field(default=180.0, gt=0)
    # Partial images the openai backend streams per manual round (the first is shown while
    # the picture is drawn); 0: not streamed. The API takes 0..3 (`partial_images`).
    image_previews: int = Field(default=1, ge=0, le=3)
    max_rounds_in_flight: int = Field(default=64, ge=1, le=10_000)

    critic_model: str = "gpt-5.4-mini"
    critic_base_url: str | None = None
    critic_api_key: SecretStr | None = None
    critic_image_max_side: int = Field(default=768, ge=256, le=2048)
    critic_timeout: float = Field(default=90.0, gt=0)
    image_download_hosts: str | None = None

    stability_api_key: SecretStr | None = None
    stability_api_base_url: str = "https://api.stability.ai"
    stability_model: str = "sd3.5-large"
    stability_output_format: Literal["png", "jpeg", "webp"] = "jpeg"
    stability_image_strength: float = Field(default=0.6, ge=0.0, le=1.0)
    stability_edit_strength: float = 0.45

    max_upload_mb: float = Field(default=20.0, gt=0, le=2000)

    autopilot_rounds: int = Field(default=3, ge=1, le=10)
    autopilot_drafts: int = Field(default=2, ge=1, le=6)
    autopilot_threshold: int = Field(default=8, ge=1, le=10)

    quota_rounds_per_user_per_day: int = Field(default=50, ge=0)
    quota_rounds_per_chat_per_day: int = Field(default=200, ge=0)

    database_path: Path = DEFAULT_DATABASE_PATH
    image_retention_days: int | None = Field(default=None, ge=1)

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_path: str | None = None

    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    admin_user_ids: IdList = frozenset()

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator(
        "image_retention_days", "webhook_url", "webhook_secret", "webhook_path", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("stability_edit_strength")
    @classmethod
    def _edit_strength_range(cls, value: float) -> float:
        # Stability's `strength` is [0 .. 1]; 0 would send the parent back unchanged.
        if not 0 < value <= 1:
            raise ValueError(
                f"must be above 0 and at most 1 (how far an edit may move from the previous "
                f"image; 0.45 by default), not {value:g}"
            )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the public https:// URL Telegram posts updates to")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        if not _WEBHOOK_SECRET_RE.fullmatch(secret):
            raise ValueError(
                "may only contain A-Z a-z 0-9 _ - and be 1-256 characters long (Telegram's rule)"
                f"; {SECRET_HINT}"
            )
        if len(secret) < MIN_WEBHOOK_SECRET:
            raise ValueError(
                f"is too short: use at least {MIN_WEBHOOK_SECRET} characters; {SECRET_HINT}"
            )
        return SecretStr(secret)

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

    @model_validator(mode="after")
    def _webhook_complete(self) -> Settings:
        if self.webhook_url is None:
            return self
        if self.webhook_secret is None:
            raise ValueError(f"WEBHOOK_URL is set, so WEBHOOK_SECRET is required; {SECRET_HINT}")
        if urlsplit(self.telegram_api_base_url).hostname == OFFICIAL_API_HOST:
            url = urlsplit(self.webhook_url)
            if url.scheme != "https":
                raise ValueError("WEBHOOK_URL must start with https:// (Telegram's rule)")
            if (url.port or 443) not in WEBHOOK_PORTS:
                raise ValueError(
                    f"WEBHOOK_URL port {url.port} is not one Telegram delivers to "
                    f"({', '.join(map(str, WEBHOOK_PORTS))}); keep WEBHOOK_PORT for the local "
                    "listener behind your proxy"
                )
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

    @property
    def webhook_mode(self) -> bool:
        """True when updates arrive by webhook (WEBHOOK_URL is set), False for long polling."""
        return self.webhook_url is not None

    @property
    def webhook_url_path(self) -> str:
        """The path the local webhook server answers on: WEBHOOK_PATH, else WEBHOOK_URL's path."""
        path = self.webhook_path or (urlsplit(self.webhook_url).path if self.webhook_url else "")
        return "/" + path.strip("/")

    def safety_key(self) -> bytes:
        """Return the secret the users' safety identifiers are hashed with: derived from the
        bot's token, so it is stable across restarts, differs per bot, and needs no setting;
        the Telegram user id cannot be read back from an identifier without the token."""
        token = self.telegram_bot_token.get_secret_value().encode()
        return hashlib.sha256(b"refinebot safety identifier\0" + token).digest()

    def secret_values(self) -> list[str]:
        """Return every configured secret (token, API keys, webhook secret), for log redaction."""
        return [
            s.get_secret_value()
            for s in (
                self.telegram_bot_token,
                self.openai_api_key,
                self.critic_api_key,
                self.stability_api_key,
                self.webhook_secret,
            )
            if s is not None
        ]


class DataSettings(BaseSettings):
    """Only where the data lives: what `python -m bot health` and `backup` need.

    Read from the same environment and `.env` as `Settings`, but without its required keys, so
    a health check or a backup never fails because, say, an API key is missing.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_path: Path = DEFAULT_DATABASE_PATH

    @property
    def data_dir(self) -> Path:
        """The folder that holds the database and the image store."""
        return self.database_path.parent


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

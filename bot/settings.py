"""Settings from the environment and `.env` (pydantic-settings): one validated object, built once at start."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///peerbot.db"


class ConfigError(Exception):
    """A setting is invalid; the message names the variable and is shown as one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    timezone: str = Field("UTC", alias="PEERBOT_TIMEZONE")
    locale: Literal["en", "fr"] = Field("en", alias="PEERBOT_LOCALE")
    http_host: str = Field("127.0.0.1", alias="PEERBOT_HTTP_HOST")
    http_port: int = Field(3000, alias="PEERBOT_HTTP_PORT", ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="PEERBOT_LOG_LEVEL")
    outbox_interval_seconds: float = Field(15.0, alias="PEERBOT_OUTBOX_INTERVAL", gt=0, le=3600)
    video_url_template: str = Field("", alias="PEERBOT_VIDEO_URL_TEMPLATE")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    slack_trainer_ids: str = Field("", alias="SLACK_TRAINER_IDS")
    slack_trainer_group: str = Field("", alias="SLACK_TRAINER_GROUP")

    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    discord_guild_id: int | None = Field(None, alias="DISCORD_GUILD_ID")
    discord_application_id: int | None = Field(None, alias="DISCORD_APPLICATION_ID")
    discord_trainer_role: str = Field("", alias="DISCORD_TRAINER_ROLE")
    discord_api_url: str = Field("https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_breakout_cleanup: Literal["delete", "archive"] = Field("archive", alias="DISCORD_BREAKOUT_CLEANUP")
    discord_archive_days: int = Field(14, ge=0, alias="DISCORD_ARCHIVE_DAYS")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_db_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"malformed database URL {value!r}") from exc
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("only sqlite+aiosqlite:/// and postgresql+asyncpg:// URLs are supported")
        return value

    @field_validator("slack_api_url", "discord_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def slack_enabled(self) -> bool:
        """A bot token, and a signing secret for HTTP mode (Socket Mode, with an app token, is not signed)."""
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None and self.discord_guild_id is not None

    @property
    def trainer_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.slack_trainer_ids.split(",") if part.strip())


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{alias or field}: {message}") from None


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) pairs for `peerbot check-config`, secrets masked."""
    rows: list[tuple[str, str]] = []
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            shown = raw[:4] + "…" + f" ({len(raw)} chars)" if raw else "(empty)"
        elif value is None or value == "":
            shown = "(not set)"
        else:
            shown = str(value)
        rows.append((info.alias or name, shown))
    return rows

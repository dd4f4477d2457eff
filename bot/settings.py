"""Settings from the environment and `.env` (pydantic-settings): one validated object, built once at start."""

from __future__ import annotations

from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///peerbot.db"


class ConfigError(Exception):
    """A setting is invalid; the message names the variable and is shown as one line."""


class Settings(BaseSettings):
    """Every variable is optional: an empty value (`DISCORD_GUILD_ID=` as `.env.example` ships it) means "not set"."""

    # env_ignore_empty: an empty variable in the environment or .env falls through to the next source or default.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    timezone: str = Field("UTC", alias="PEERBOT_TIMEZONE")
    locale: Literal["en", "fr"] = Field("en", alias="PEERBOT_LOCALE")
    http_host: str = Field("127.0.0.1", alias="PEERBOT_HTTP_HOST")
    http_port: int = Field(3000, alias="PEERBOT_HTTP_PORT", ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="PEERBOT_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="PEERBOT_LOG_FORMAT")
    metrics: Literal["on", "off"] = Field("on", alias="PEERBOT_METRICS")
    # Groups drafted when check-in opens and refined at each check-in (CPU in a worker thread); off: a start
    # forms them from scratch within its 0.2 s budget (what a start on another replica does anyway).
    grouping_ahead: Literal["on", "off"] = Field("on", alias="PEERBOT_GROUPING_AHEAD")
    outbox_interval_seconds: float = Field(15.0, alias="PEERBOT_OUTBOX_INTERVAL", gt=0, le=3600)
    video_url_template: str = Field("", alias="PEERBOT_VIDEO_URL_TEMPLATE")
    organisation: str = Field("", alias="PEERBOT_ORGANISATION", max_length=200)
    retention_days: int = Field(0, alias="PEERBOT_RETENTION_DAYS", ge=0, le=36500)
    dashboard: Literal["on", "off"] = Field("off", alias="PEERBOT_DASHBOARD")
    public_url: str = Field("", alias="PEERBOT_PUBLIC_URL")
    secret_key: SecretStr | None = Field(None, alias="PEERBOT_SECRET_KEY", min_length=32)

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

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        """The same rule for values passed in code (`load_settings(DISCORD_GUILD_ID="")`) as for the environment."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

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
        if not value:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        """The address people open: http(s), no query, no trailing slash (paths are appended to it)."""
        if not value:
            return value
        if not value.startswith(("http://", "https://")) or any(c in value for c in "?#") or value.strip() != value:
            raise ValueError(f"not an http(s) base URL: {value!r}; e.g. https://peerbot.example.org")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _platforms_complete(self) -> Self:
        """A half-configured platform would otherwise be silently off, or fail deep inside its SDK at start."""
        slack_http, slack_socket = self.slack_signing_secret is not None, self.slack_app_token is not None
        if self.slack_bot_token is None and (slack_http or slack_socket):
            other = "SLACK_SIGNING_SECRET" if slack_http else "SLACK_APP_TOKEN"
            raise ValueError(
                f"SLACK_BOT_TOKEN: not set, but {other} is; set it to the Bot User OAuth Token (xoxb-…) "
                f"from OAuth & Permissions, or empty {other} to turn Slack off"
            )
        if self.slack_bot_token is not None and not (slack_http or slack_socket):
            raise ValueError(
                "SLACK_SIGNING_SECRET: not set, but SLACK_BOT_TOKEN is; set it (Basic Information → Signing Secret) "
                "for HTTP mode, or set SLACK_APP_TOKEN for Socket Mode"
            )
        if (self.discord_token is None) != (self.discord_guild_id is None):
            missing, present = (
                ("DISCORD_TOKEN", "DISCORD_GUILD_ID")
                if self.discord_token is None
                else ("DISCORD_GUILD_ID", "DISCORD_TOKEN")
            )
            raise ValueError(f"{missing}: not set, but {present} is; set both to turn Discord on, or neither")
        return self

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
    def slack_http_mode(self) -> bool:
        """Slack without an app token: `peerbot run` listens on PEERBOT_HTTP_HOST:PEERBOT_HTTP_PORT."""
        return self.slack_enabled and self.slack_app_token is None

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None and self.discord_guild_id is not None

    @property
    def dashboard_on(self) -> bool:
        return self.dashboard == "on"

    @property
    def dashboard_base_url(self) -> str:
        """Where the dashboard's links point: PEERBOT_PUBLIC_URL, else this process's own HTTP address."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def trainer_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.slack_trainer_ids.split(",") if part.strip())


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a rule across variables (`_platforms_complete`): its message names the variable
            raise ConfigError(message) from None
        field = str(first["loc"][0])
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        raise ConfigError(f"{alias or field}: {message}") from None


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) pairs for `peerbot check-config`, secrets masked."""
    rows: list[tuple[str, str]] = []
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()  # never empty: an empty value is "not set"
            shown = f"{raw[:4]}… ({len(raw)} chars)"
        elif value is None or value == "":
            shown = "(not set)"
        else:
            shown = str(value)
        rows.append((info.alias or name, shown))
    return rows

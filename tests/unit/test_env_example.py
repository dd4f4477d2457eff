"""`.env.example` lists every setting, with a default the settings accept."""

from __future__ import annotations

from pathlib import Path

from bot.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def parse_example() -> dict[str, str]:
    values = {}
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for previous, line in zip(["", *lines], lines, strict=False):
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert previous.startswith("#"), f"{key} has no comment above it"
            values[key] = value
    return values


def test_every_setting_is_listed_and_commented() -> None:
    listed = set(parse_example())
    aliases = {info.alias for info in Settings.model_fields.values()}
    assert listed == aliases


def test_the_example_values_load() -> None:
    settings = load_settings(_env_file=None, **parse_example())  # empty values included: they mean "not set"
    assert not settings.slack_enabled and not settings.discord_enabled

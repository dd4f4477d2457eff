"""A wrong environment, met by the real `peerbot` process: one line on stderr that names the variable and the fix,
exit status 2, no traceback, and nothing started before the check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_settings_and_cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
PREFIX = "peerbot: configuration error: "


def one_config_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The process failed the documented way; returns the line so a test can look closer."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------ empty means not set


def test_env_example_copied_as_is_is_a_valid_configuration(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / ".env")
    checked = run_cli(["check-config"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""
    assert "Platforms enabled: none" in checked.stdout
    assert "DISCORD_GUILD_ID" in checked.stdout  # listed, as "(not set)"
    ran = run_cli(["run"], tmp_path)  # the documented "nothing configured" answer, not a validation error
    assert ran.returncode == 2 and "no chat platform is configured" in ran.stderr
    assert PREFIX not in ran.stderr


def test_an_empty_value_falls_back_to_the_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PEERBOT_HTTP_PORT=\nSLACK_API_URL=\nDISCORD_BREAKOUT_CLEANUP=\nPEERBOT_LOCALE=fr\n")
    result = run_cli(["check-config"], tmp_path, PEERBOT_TIMEZONE="", DISCORD_APPLICATION_ID="")
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("\n\n")[0]  # the variables, before "Platforms enabled"
    shown = dict(line.split(maxsplit=1) for line in table.splitlines())
    assert shown["PEERBOT_HTTP_PORT"] == "3000" and shown["SLACK_API_URL"] == "https://slack.com/api/"
    assert shown["DISCORD_BREAKOUT_CLEANUP"] == "archive" and shown["PEERBOT_TIMEZONE"] == "UTC"
    assert shown["DISCORD_APPLICATION_ID"] == "(not set)" and shown["PEERBOT_LOCALE"] == "fr"


# ------------------------------------------------------------------------------------------- a half-set platform


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "s3cret"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xapp-1-abc"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
        ({"DISCORD_TOKEN": "abc", "DISCORD_GUILD_ID": ""}, "DISCORD_GUILD_ID"),
        ({"DISCORD_GUILD_ID": "1234"}, "DISCORD_TOKEN"),
    ],
)
def test_a_half_configured_platform_names_the_missing_variable(
    tmp_path: Path, env: dict[str, str], missing: str
) -> None:
    line = one_config_line(run_cli(["run"], tmp_path, **env), missing)
    assert line.startswith(f"{PREFIX}{missing}: not set")


def test_the_missing_slack_token_is_named_when_it_comes_from_dotenv(tmp_path: Path) -> None:
    """The README's path: copy .env.example, fill in the signing secret, forget the token."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("SLACK_SIGNING_SECRET=\n", "SLACK_SIGNING_SECRET=s3cret\n")
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    for command in (["run"], ["check-config"]):
        one_config_line(run_cli(command, tmp_path), "SLACK_BOT_TOKEN", "xoxb-")

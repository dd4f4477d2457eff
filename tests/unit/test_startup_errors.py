"""A wrong environment, met by the real `peerbot` process: one line on stderr that names the variable and the fix,
exit status 2, no traceback, and nothing started before the check."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.unit.test_settings_and_cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
PREFIX = "peerbot: configuration error: "


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

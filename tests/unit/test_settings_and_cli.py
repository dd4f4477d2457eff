from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigError, load_settings

PEERBOT = [sys.executable, "-m", "bot.cli"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PEERBOT_TIMEZONE": "Mars/Olympus"}, "PEERBOT_TIMEZONE"),
        ({"PEERBOT_HTTP_PORT": "70000"}, "PEERBOT_HTTP_PORT"),
        ({"PEERBOT_LOCALE": "de"}, "PEERBOT_LOCALE"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load_settings(_env_file=None, **env)


def run_cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PEERBOT_", "SLACK_", "DISCORD_", "DATABASE_"))}
    return subprocess.run(
        [*PEERBOT, *args], capture_output=True, text=True, cwd=tmp_path, env={**clean, **env}, timeout=60, check=False
    )


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli(["check-config"], tmp_path, PEERBOT_TIMEZONE="Nowhere/City")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "peerbot: configuration error: PEERBOT_TIMEZONE: unknown time zone 'Nowhere/City'; "
        "use an IANA name such as Europe/Paris"
    ]
    assert "Traceback" not in result.stderr


def test_dotenv_is_read_and_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-very-secret-token\nSLACK_SIGNING_SECRET=signing-very-secret\nPEERBOT_LOCALE=fr\n"
    )
    result = run_cli(["check-config"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "very-secret" not in result.stdout
    assert "xoxb…" in result.stdout and "sign…" in result.stdout
    assert "PEERBOT_LOCALE" in result.stdout and " fr" in result.stdout and "Platforms enabled: slack" in result.stdout


def test_run_without_platform_points_to_the_variables_and_the_demo(tmp_path: Path) -> None:
    result = run_cli(["run"], tmp_path)
    assert result.returncode == 2
    for needle in ("SLACK_BOT_TOKEN", "DISCORD_TOKEN", "peerbot demo"):
        assert needle in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = run_cli(["db", "upgrade"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 0, result.stderr
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(tmp_path / "x.db").execute("select name from sqlite_master")}
    assert {"peer_session", "attendance", "delivery", "alembic_version"} <= tables


def test_platform_helper_commands(tmp_path: Path) -> None:
    import json

    manifest = run_cli(["slack-manifest", "https://bot.example.org"], tmp_path)
    assert manifest.returncode == 0, manifest.stderr
    data = json.loads(manifest.stdout)
    assert data["features"]["slash_commands"][0]["command"] == "/peer"
    assert data["settings"]["interactivity"]["request_url"].startswith("https://bot.example.org")
    invite = run_cli(["discord-invite-url"], tmp_path, DISCORD_APPLICATION_ID="1234")
    assert invite.returncode == 0 and "client_id=1234" in invite.stdout and "applications.commands" in invite.stdout
    missing = run_cli(["discord-invite-url"], tmp_path)
    assert missing.returncode == 2 and "DISCORD_APPLICATION_ID" in missing.stderr


def test_slack_manifest_without_url_explains(tmp_path: Path) -> None:
    result = run_cli(["slack-manifest"], tmp_path)
    assert result.returncode == 2 and "--socket-mode" in result.stderr and "Traceback" not in result.stderr

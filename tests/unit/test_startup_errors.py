"""A wrong environment, met by the real `peerbot` process: one line on stderr that names the variable and the fix,
exit status 2, no traceback, and nothing started before the check."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import postgres_or_skip
from tests.unit.test_settings_and_cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
PREFIX = "peerbot: configuration error: "


def closed_port() -> int:
    """A loopback port nothing listens on: bound by the kernel's choice, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def slack_http(**extra: str) -> dict[str, str]:
    """Slack in HTTP mode on a free port, its Web API on a closed loopback port: `run` gets as far as it can."""
    return {
        "SLACK_BOT_TOKEN": "xoxb-startup-test",
        "SLACK_SIGNING_SECRET": "startup-test-secret",
        "SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/",
        "PEERBOT_HTTP_PORT": str(closed_port()),
        **extra,
    }


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
    assert "Platforms enabled: none" in checked.stdout and "Database: opened" in checked.stdout
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


# ------------------------------------------------------------------------------------------------ the database


@pytest.fixture(params=["run", "check-config", "db upgrade"])
def command(request: pytest.FixtureRequest) -> list[str]:
    return str(request.param).split()


def test_unreachable_postgres(tmp_path: Path, command: list[str]) -> None:
    port = closed_port()
    env = slack_http(DATABASE_URL=f"postgresql+asyncpg://nobody@127.0.0.1:{port}/x")
    one_config_line(run_cli(command, tmp_path, **env), "DATABASE_URL: ", f"127.0.0.1:{port}", "refused")


@pytest.mark.postgres
def test_postgres_refusing_the_login(tmp_path: Path, command: list[str]) -> None:
    """The server answers, but not for this role: the line says which user and database, never the password."""
    server = make_url(postgres_or_skip())
    url = server.set(username="peerbot_no_such_role", password="hunter2-secret")
    env = slack_http(DATABASE_URL=url.render_as_string(hide_password=False))
    line = one_config_line(
        run_cli(command, tmp_path, **env), "DATABASE_URL: ", "'peerbot_no_such_role'", f"{server.database!r}"
    )
    assert "hunter2" not in line


@pytest.fixture
def not_a_folder(tmp_path: Path) -> Iterator[Path]:
    """A regular file where the database's folder should be: unlike a chmod'ed folder, this stops root too."""
    blocker = tmp_path / "data"
    blocker.write_text("a file, not a folder\n")
    yield blocker


def test_sqlite_folder_that_cannot_be_created(tmp_path: Path, not_a_folder: Path, command: list[str]) -> None:
    env = slack_http(DATABASE_URL=f"sqlite+aiosqlite:///{not_a_folder / 'db' / 'peerbot.db'}")
    one_config_line(run_cli(command, tmp_path, **env), "DATABASE_URL: ", f"{not_a_folder} is a file, not a folder")


def test_sqlite_path_that_is_a_folder(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "store").mkdir()
    env = slack_http(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'store'}")
    one_config_line(run_cli(command, tmp_path, **env), "DATABASE_URL: ", "is a folder", "store/peerbot.db")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_sqlite_file_where_no_file_may_be_created(tmp_path: Path, command: list[str]) -> None:
    """/proc refuses new files even to root: the read-only folder case, whoever runs the tests."""
    env = slack_http(DATABASE_URL="sqlite+aiosqlite:////proc/peerbot-test.db")
    one_config_line(run_cli(command, tmp_path, **env), "DATABASE_URL: ", "cannot open the SQLite file /proc/")


def test_file_that_is_not_a_database(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "peerbot.db").write_bytes(b"\x00not sqlite\xff" * 200)  # the default DATABASE_URL's file
    one_config_line(run_cli(command, tmp_path, **slack_http()), "DATABASE_URL: ", "is not a SQLite database")
    assert (tmp_path / "peerbot.db").read_bytes() == b"\x00not sqlite\xff" * 200  # left as it was


def test_check_config_opens_the_database(tmp_path: Path) -> None:
    result = run_cli(["check-config"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'sub' / 'ok.db'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("Database: opened, answers queries.")
    assert (tmp_path / "sub" / "ok.db").is_file()


# ---------------------------------------------------------------------------------------------- the HTTP port


def test_http_port_in_use_is_found_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        result = run_cli(["run"], tmp_path, **slack_http(PEERBOT_HTTP_PORT=str(port)))
    one_config_line(result, "PEERBOT_HTTP_PORT: ", f"127.0.0.1:{port} is already in use")
    assert not (tmp_path / "peerbot.db").exists()  # checked before the database was even created


def test_http_host_that_is_not_this_machine(tmp_path: Path) -> None:
    env = slack_http(PEERBOT_HTTP_HOST="no-such-host.invalid")
    one_config_line(run_cli(["run"], tmp_path, **env), "PEERBOT_HTTP_HOST: ", "'no-such-host.invalid'")

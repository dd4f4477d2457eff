"""The production path (`docker compose up`) stays true to the code: compose.yaml's services, health checks and
every variable it sets are checked against `bot.settings.Settings`, and the Dockerfile's promises (non-root, a
health check on /healthz, slim Python 3.11). Where Docker Compose is installed, `docker compose config` validates
the file too; the image is never built here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ("peerbot-1", "peerbot-2")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def settings_variables() -> set[str]:
    return {info.alias or name for name, info in Settings.model_fields.items()}


def test_compose_yaml_is_valid_against_the_compose_specification_schema() -> None:
    """The official JSON Schema (tests/specs/compose_spec.json, see SOURCES.md): what Docker Compose itself
    validates a file against, so an unknown key or a wrong shape fails here even where Docker is not installed."""
    schema = json.loads((ROOT / "tests" / "specs" / "compose_spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose())  # the draft its $schema names


def test_compose_runs_postgres_and_two_replicas_that_wait_for_it() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", *REPLICAS}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in REPLICAS:
        replica = services[name]
        assert replica["build"] == "."
        assert replica["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert replica["env_file"] == [{"path": ".env", "required": True}]  # the platform tokens
        env = replica["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["PEERBOT_HTTP_HOST"] == "0.0.0.0"
        check = " ".join(replica["healthcheck"]["test"])
        assert f"127.0.0.1:{env['PEERBOT_HTTP_PORT']}/healthz" in check
        for key in ("interval", "timeout", "retries"):
            assert key in replica["healthcheck"]


def test_every_variable_compose_sets_for_peerbot_is_a_real_setting() -> None:
    known = settings_variables()
    for name in REPLICAS:
        env = compose()["services"][name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which bot/settings.py does not read"
        # the values (compose's ${…:-default} substituted) make valid settings
        values = {k: str(v).replace("${POSTGRES_PASSWORD:-peerbot}", "peerbot") for k, v in env.items()}
        Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_replicas_are_configured_alike() -> None:
    """Either one may lead (scheduler and Discord's gateway go to the leader), so neither may lack a platform:
    they differ only in the host port they publish."""
    services = compose()["services"]
    first, second = (dict(services[name]) for name in REPLICAS)
    assert first.pop("ports") != second.pop("ports")
    assert first == second


def test_the_image_is_slim_python_311_non_root_and_probes_healthz() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    text = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'CMD ["peerbot", "run"]' in lines
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".git" in ignored  # secrets and history never enter the image


def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or the standalone `docker-compose`, when one of them works here."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return command
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """Run in a copy of the project files it names, with `.env.example` as the `.env` an operator writes."""
    command = _compose_command()
    if command is None:
        pytest.skip("Docker Compose is not installed here")
    for name in ("compose.yaml", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [*command, "--project-directory", str(tmp_path), "-f", str(tmp_path / "compose.yaml"), "config", "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _exec_form(line: str) -> list[str]:
    """The JSON array of a Dockerfile exec-form instruction (`CMD [...]`)."""
    command = json.loads(line[line.index("[") :])
    assert isinstance(command, list)
    return [str(part) for part in command]


async def test_the_health_checks_pass_on_a_serving_peerbot_and_fail_without_one(tmp_path: Path) -> None:
    """The very commands of the Dockerfile and compose.yaml, run against the real HTTP server's /healthz."""
    import asyncio

    from bot.app import HttpServer, build
    from tests.conftest import make_settings

    dockerfile = (ROOT / "Dockerfile").read_text()
    image_check = _exec_form(dockerfile[dockerfile.index("CMD [", dockerfile.index("HEALTHCHECK")) :].splitlines()[0])
    compose_check = compose()["services"]["peerbot-1"]["healthcheck"]["test"]
    assert compose_check[0] == "CMD"

    async def exit_code(command: list[str], port: int) -> int:
        env = {**os.environ, "PEERBOT_HTTP_PORT": str(port)}
        if command[0] == "python":
            command = [sys.executable, *command[1:]]
        proc = await asyncio.create_subprocess_exec(*command, env=env, stderr=asyncio.subprocess.DEVNULL)
        return await asyncio.wait_for(proc.wait(), timeout=30)

    app = await build(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'hc.db'}"), {}, with_scheduler=False)
    app.http = HttpServer(app)
    try:
        await app.http.start(port=0)
        port = app.http.port
        assert await exit_code(image_check, port) == 0
        # compose's check names the port the replicas listen on in their container (3000); here, this server's
        in_container = compose()["services"]["peerbot-1"]["environment"]["PEERBOT_HTTP_PORT"]
        here = [part.replace(f":{in_container}/", f":{port}/") for part in compose_check[1:]]
        assert here != compose_check[1:] and await exit_code(here, port) == 0
    finally:
        await app.close()
    assert await exit_code(image_check, port) != 0  # nothing answers any more: unhealthy

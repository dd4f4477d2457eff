"""GET /healthz, /readyz and /metrics through real HTTP on loopback: `peerbot run` as a process (Discord-only,
and two replicas on one PostgreSQL), and the composition root's server in-process on port 0."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.discord.runner import DiscordRunner
from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.app import App, HttpServer, build
from bot.clock import FakeClock
from tests.conftest import T0, make_settings, postgres_or_skip, reset_postgres
from tests.e2e.test_run_process import SECRET, free_port, process_env, start_run, wait_healthy
from tests.emulators.discord_emulator import DiscordEmulator
from tests.emulators.slack_api import SlackEmulator

BOUND = 60.0  # seconds: a hang guard for polling, not a speed assertion


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition parsed by prometheus-client's own parser: (sample name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def until_ready(base: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll /readyz until its body satisfies `check`; returns that body."""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                _status, body = await get_json(f"{base}/readyz")
                if check(body):
                    return body
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    return stderr.decode()


async def test_discord_only_run_serves_health_readiness_and_metrics(tmp_path: Path) -> None:
    """No Slack HTTP mode at all: the server is there anyway, and counts a command done through Discord."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with DiscordEmulator(time_scale=0.01) as emu:
        trainer = emu.add_user("dina", roles=[emu.trainer_role_id])
        env = process_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
            PEERBOT_HTTP_PORT=str(port),
            DISCORD_TOKEN=emu.token,
            DISCORD_GUILD_ID=str(emu.guild_id),
            DISCORD_APPLICATION_ID=str(emu.application_id),
            DISCORD_TRAINER_ROLE="Trainer",
            DISCORD_API_URL=emu.api_url,
        )
        proc = await start_run(tmp_path, env)
        try:
            await wait_healthy(f"{base}/healthz", proc)
            body = await until_ready(base, lambda b: bool(b["ready"]))
            assert body["checks"] == {"database": "ok", "discord": "connected", "scheduler": "leader"}

            await emu.wait_until(lambda: bool(emu.guild_commands), within=20)
            inter = await emu.slash(trainer, "peer", ["cohort", "create"], {"cohort": "gamers"}, within=20)
            assert "created" in (await inter.wait_message(within=20)).content

            status, text = await get(f"{base}/metrics")
            assert status == 200
            values = samples(text)
            assert values[("peerbot_commands_total", (("command", "cohort create"), ("outcome", "ok")))] == 1
            assert values[("peerbot_scheduler_leader", ())] == 1
            assert values[("peerbot_outbox_depth", ())] == 0
            assert values[("peerbot_outbox_oldest_due_age_seconds", ())] == 0
        finally:
            stderr = await stop(proc)
    assert proc.returncode == 0, stderr[-2000:]


@pytest.mark.postgres
async def test_two_replicas_one_leader_and_the_standby_leads_after_the_leader_is_killed(tmp_path: Path) -> None:
    """Two `peerbot run` processes on one PostgreSQL (Slack HTTP mode, one port each): /readyz and /metrics say
    which one leads; SIGKILL the leader and the other one reports leading."""
    url = postgres_or_skip()
    await reset_postgres(url)
    ports = [free_port(), free_port()]
    async with SlackEmulator(time_scale=0.01) as slack:
        procs = []
        for port in ports:
            env = process_env(
                DATABASE_URL=url,
                PEERBOT_HTTP_PORT=str(port),
                SLACK_BOT_TOKEN=slack.token,
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=slack.base_url,
            )
            procs.append(await start_run(tmp_path, env))
            await wait_healthy(f"http://127.0.0.1:{port}/healthz", procs[-1])  # one at a time: one migrates
        try:
            roles = []
            for port in ports:
                body = await until_ready(f"http://127.0.0.1:{port}", lambda b: bool(b["ready"]))
                assert body["checks"]["database"] == "ok" and body["checks"]["slack"] == "connected"
                roles.append(body["checks"]["scheduler"])
            assert sorted(roles) == ["leader", "standby"]
            leader = roles.index("leader")
            standby = 1 - leader
            gauges = [samples((await get(f"http://127.0.0.1:{p}/metrics"))[1]) for p in ports]
            assert [g[("peerbot_scheduler_leader", ())] for g in gauges] == [int(r == "leader") for r in roles]

            procs[leader].kill()  # SIGKILL: no goodbye; the server drops its connection and the lock with it
            await procs[leader].wait()
            await until_ready(f"http://127.0.0.1:{ports[standby]}", lambda b: b["checks"]["scheduler"] == "leader")
        finally:
            for proc in procs:
                if proc.returncode is None:
                    await stop(proc)
        assert procs[standby].returncode == 0


# -------------------------------------------------------------------------------------------------- in-process


async def served(app: App) -> str:
    app.http = HttpServer(app)
    await app.http.start(port=0)
    return f"http://127.0.0.1:{app.http.port}"


async def test_readyz_names_what_is_not_ready_and_metrics_read_the_database(database_url: str) -> None:
    platform = LocalPlatform()
    clock = FakeClock(T0)
    settings = make_settings(database_url, DISCORD_TOKEN="not-a-real-token", DISCORD_GUILD_ID="42")
    app = await build(settings, {"local": platform}, clock=clock)
    try:
        app.runners.append(DiscordRunner(app.core, settings))  # built, never started: not connected
        base = await served(app)
        assert await get_json(f"{base}/healthz") == (200, {"ok": True})
        status, body = await get_json(f"{base}/readyz")
        assert status == 503
        assert body == {
            "ready": False,
            "checks": {"database": "ok", "discord": "not connected", "scheduler": "not started"},
            "not_ready": ["discord", "scheduler"],
        }
        app.runners.clear()
        await app.lead()
        assert await get_json(f"{base}/readyz") == (
            200,
            {"ready": True, "checks": {"database": "ok", "scheduler": "leader"}, "not_ready": []},
        )

        # A session whose questionnaires are queued: outbox depth, the oldest's age, sessions by state, commands.
        trainer = LocalUser(app.core, platform, "T1", "Trainer", trainer=True)
        learners = [LocalUser(app.core, platform, f"L{i}", f"L{i}") for i in range(1, 4)]
        channel = platform.add_channel("cohort", ["T1", *(u.user_id for u in learners)])
        assert (await trainer.command(f"cohort create py <#{channel.id}|cohort>")).ok
        assert (await trainer.command("cohort add py " + " ".join(f"<@{u.user_id}>" for u in learners))).ok
        assert not (await learners[0].command("cohort create nope")).ok  # a learner may not: refused
        reply = await trainer.command('session plan py "Metrics" 2026-03-09 10:00 1h groups_from=checked_in')
        short = str(reply.extra["session"])
        assert (await trainer.command('session plan py "Other" 2026-03-10 10:00 1h')).ok
        start = T0.replace(day=9, hour=9)  # 10:00 in Paris
        clock.set(start)
        for learner in learners:
            assert (await learner.click(f"checkin:in:{short}")).ok
        assert not (await learners[0].click("no-such-button")).ok
        await app.core.timeline.start(short, by="test")
        clock.set(start + timedelta(minutes=90))
        await app.core.timeline.end(short, by="test")
        clock.set(clock.now() + timedelta(minutes=10))

        values = samples((await get(f"{base}/metrics"))[1])
        assert values[("peerbot_outbox_depth", ())] == 3
        assert values[("peerbot_outbox_oldest_due_age_seconds", ())] >= 600
        assert values[("peerbot_sessions", (("state", "ended"),))] == 1
        assert values[("peerbot_sessions", (("state", "planned"),))] == 1
        assert values[("peerbot_scheduler_leader", ())] == 1
        assert values[("peerbot_commands_total", (("command", "cohort create"), ("outcome", "ok")))] == 1
        assert values[("peerbot_commands_total", (("command", "cohort create"), ("outcome", "refused")))] == 1
        assert values[("peerbot_actions_total", (("kind", "CheckIn"), ("outcome", "ok")))] == 3
        assert values[("peerbot_actions_total", (("kind", "(unknown)"), ("outcome", "refused")))] == 1

        await app.core.deliver_due()
        values = samples((await get(f"{base}/metrics"))[1])
        assert values[("peerbot_outbox_depth", ())] == 0
        assert values[("peerbot_deliveries_total", (("kind", "feedback"), ("outcome", "sent")))] == 3
    finally:
        await app.close()


async def test_metrics_off_removes_the_route(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'off.db'}", PEERBOT_METRICS="off")
    app = await build(settings, {}, with_scheduler=False)
    try:
        base = await served(app)
        assert (await get(f"{base}/metrics"))[0] == 404
        assert (await get(f"{base}/healthz"))[0] == 200
    finally:
        await app.close()

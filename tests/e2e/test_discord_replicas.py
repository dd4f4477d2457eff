"""Several replicas with Discord configured, on one PostgreSQL database: every replica logs in over REST (its
DMs go out), exactly one holds the gateway (elected like the scheduler), and a standby opens it when the holder's
database connection dies; commands are answered throughout by whoever holds it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from adapters.discord import invite
from adapters.discord.runner import DiscordRunner
from bot.app import App, build
from bot.clock import FakeClock
from bot.messages import Message
from bot.refs import UserRef
from scheduler.leader import Role
from storage.dm_channels import DmChannelStore
from tests.conftest import make_settings, postgres_or_skip, reset_postgres
from tests.emulators.discord_emulator import DiscordEmulator

pytestmark = pytest.mark.postgres


async def replica(emu: DiscordEmulator, url: str) -> tuple[App, DiscordRunner]:
    """What `peerbot run` does for Discord in one replica, without the scheduler."""
    settings = make_settings(
        url,
        DISCORD_TOKEN=emu.token,
        DISCORD_GUILD_ID=str(emu.guild_id),
        DISCORD_APPLICATION_ID=str(emu.application_id),
        DISCORD_TRAINER_ROLE="Trainer",
        DISCORD_API_URL=emu.api_url,
    )
    app = await build(settings, clock=FakeClock(datetime.now(UTC)), with_scheduler=False)
    runner = DiscordRunner(
        app.core, settings, global_rate=1000.0, guild_ready_timeout=0.05,
        dm_store=DmChannelStore(app.db, "discord", str(emu.guild_id)),
    )  # fmt: skip
    app.core.attach(runner.platform)
    app.runners.append(runner)
    await app.hold_gateway(runner)
    return app, runner


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = postgres_or_skip()
    await reset_postgres(url)
    yield url


async def test_one_replica_holds_the_gateway_and_a_standby_takes_it_over(pg_url: str) -> None:
    async with DiscordEmulator(time_scale=0.01, bot_permissions=invite.permissions().value) as emu:
        trainer = emu.add_user("tina", roles=[emu.trainer_role_id])
        learner = emu.add_user("leo")
        first, first_runner = await replica(emu, pg_url)
        second, second_runner = await replica(emu, pg_url)
        try:
            assert first.gateway is not None and second.gateway is not None
            assert (first.gateway.role, second.gateway.role) == (Role.LEADER, Role.STANDBY)
            assert (emu.identified, emu.open_gateways) == (1, 1)
            for app in (first, second):  # both ready: the standby has REST, which is all it needs
                checks = await app.readiness()
                assert checks["discord"] == "connected", checks
            assert (await first.readiness())["discord gateway"] == "leader"
            assert (await second.readiness())["discord gateway"] == "standby"

            inter = await emu.slash(trainer, "peer", ["cohort", "create"], {"cohort": "c1"}, within=10)
            assert "created" in (await inter.wait_message(within=10)).content
            await second_runner.platform.send_dm(UserRef("discord", str(learner.id)), Message("from the standby"))
            dms = emu.messages_in(emu.dm_channels[learner.id])  # sent over REST by the replica without a gateway
            assert [m.content for m in dms] == ["from the standby"]

            pid = first.gateway.backend_pid  # the holder's database connection dies (a lost network)
            assert pid is not None
            conn = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
            try:
                await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            finally:
                await conn.close()
            await emu.wait_until(lambda: second_runner.client.is_ready() and emu.open_gateways == 1, within=20)
            assert first.gateway.role != Role.LEADER and second.gateway.role == Role.LEADER
            assert emu.identified == 2 and not first_runner.client.is_ready()

            inter = await emu.slash(trainer, "peer", ["cohort", "create"], {"cohort": "c2"}, within=10)
            assert "created" in (await inter.wait_message(within=10)).content
        finally:
            for app in (first, second):
                await app.close()
            await asyncio.sleep(0)

"""One scheduler leader among replicas: a PostgreSQL advisory lock on a dedicated connection elects it, and a
standby takes over when the leader's connection dies (SQLite: always the leader)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from bot.app import build
from bot.clock import FakeClock
from scheduler.leader import LeaderElector, Role
from tests.conftest import T0, make_settings, postgres_or_skip, reset_postgres

TAKEOVER_BOUND = 30.0  # seconds: generous; the design's figure is under 10 s (retry every 2 s)


class Replica:
    """An elector and what it was told, in order."""

    def __init__(self, url: str) -> None:
        self.events: list[str] = []
        self.elector = LeaderElector(url, on_elected=self._elected, on_demoted=self._demoted)

    async def _elected(self) -> None:
        self.events.append("elected")

    async def _demoted(self) -> None:
        self.events.append("demoted")


async def eventually(condition: Callable[[], bool], bound: float = TAKEOVER_BOUND) -> None:
    """Poll `condition` until it holds; fail after `bound` seconds (a hang guard, not a speed assertion)."""
    async with asyncio.timeout(bound):
        while not condition():  # noqa: ASYNC110  (the roles change in another task's callbacks: polled on purpose)
            await asyncio.sleep(0.1)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = postgres_or_skip()
    await reset_postgres(url)
    yield url


async def terminate(url: str, pid: int) -> None:
    """What an admin (or a lost network, as the server sees it) does to the leader's connection."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_two_replicas_elect_one_leader_and_the_standby_takes_over_when_its_connection_dies(
    pg_url: str,
) -> None:
    first, second = Replica(pg_url), Replica(pg_url)
    await first.elector.start()
    await second.elector.start()
    try:
        assert (first.elector.role, second.elector.role) == (Role.LEADER, Role.STANDBY)
        assert (first.events, second.events) == (["elected"], [])

        pid = first.elector.backend_pid
        assert pid is not None
        await terminate(pg_url, pid)

        await eventually(lambda: second.elector.is_leader)
        await eventually(lambda: not first.elector.is_leader)  # the old leader notices and stands by
        assert (first.events, second.events) == (["elected", "demoted"], ["elected"])
        # and it keeps standing by while the new leader holds the lock (it retries, and is refused)
        await asyncio.sleep(2 * first.elector.retry)
        assert (first.elector.role, second.elector.role) == (Role.STANDBY, Role.LEADER)
    finally:
        await second.elector.stop()
        await first.elector.stop()


@pytest.mark.postgres
async def test_a_leader_that_stops_hands_over_and_the_old_one_can_lead_again(pg_url: str) -> None:
    first, second = Replica(pg_url), Replica(pg_url)
    await first.elector.start()
    await second.elector.start()
    try:
        await first.elector.stop()  # a clean shutdown closes the connection: the lock goes with it
        assert first.events == ["elected", "demoted"] and first.elector.role == Role.STOPPED
        await eventually(lambda: second.elector.is_leader)

        third = Replica(pg_url)  # the first process restarted
        await third.elector.start()
        assert third.elector.role == Role.STANDBY
        await second.elector.stop()
        await eventually(lambda: third.elector.is_leader)
        await third.elector.stop()
    finally:
        await second.elector.stop()


@pytest.mark.postgres
async def test_a_standby_whose_database_is_unreachable_stays_standby_and_retries(pg_url: str) -> None:
    # A port nothing listens on: the elector neither leads nor crashes; it reports standby and keeps trying.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lonely = Replica(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    await lonely.elector.start()
    try:
        assert lonely.elector.role == Role.STANDBY and lonely.events == []
    finally:
        await lonely.elector.stop()


async def test_on_sqlite_the_only_process_is_the_leader(tmp_path: Path) -> None:
    replica = Replica(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    await replica.elector.start()
    assert replica.elector.role == Role.LEADER and replica.events == ["elected"]
    await replica.elector.stop()
    assert replica.events == ["elected", "demoted"]


async def test_the_app_runs_jobs_only_while_it_leads(database_url: str) -> None:
    """`App.lead`: the scheduler starts paused and runs jobs once elected; a standby on PostgreSQL stays paused
    but still writes the jobs of the sessions it plans to the shared store."""
    settings = make_settings(database_url)
    leader = await build(settings, {}, clock=FakeClock(T0))
    try:
        await leader.lead()
        assert leader.scheduler is not None and leader.scheduler.running_jobs
        if not database_url.startswith("postgresql"):
            return
        standby = await build(settings, {}, clock=FakeClock(T0))
        try:
            await standby.lead()
            assert standby.elector is not None and standby.elector.role == Role.STANDBY
            assert standby.scheduler is not None and not standby.scheduler.running_jobs
            standby.scheduler.session_changed("s9", {"start": T0.replace(year=2099)})
            assert "session:s9:start" in leader.scheduler.job_ids()  # the leader sees the standby's job
            await leader.close()  # the leader goes away: the standby runs the jobs now
            await eventually(lambda: standby.scheduler is not None and standby.scheduler.running_jobs)
        finally:
            await standby.close()
    finally:
        await leader.close()

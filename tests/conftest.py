"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when reachable; in CI it must be)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.app import App, build
from bot.clock import FakeClock
from bot.settings import Settings

POSTGRES_URL = os.environ.get("PEERBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL.replace("+asyncpg", ""), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


_PG_OK: bool | None = None


def postgres_or_skip() -> str:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _postgres_reachable()
    if not _PG_OK:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but {POSTGRES_URL} is unreachable")
        pytest.skip("PostgreSQL not reachable (set PEERBOT_TEST_POSTGRES_URL)")
    return POSTGRES_URL


async def reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}"
    url = postgres_or_skip()
    await reset_postgres(url)
    return url


def make_settings(database_url: str, **extra: str) -> Settings:
    # Work ahead off unless a test asks for it: each check-in opening would start seconds of background search
    # that outlives the test (tests/integration/test_group_ahead.py turns it on).
    values = {
        "DATABASE_URL": database_url,
        "PEERBOT_TIMEZONE": "Europe/Paris",
        "PEERBOT_GROUPING_AHEAD": "off",
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class World:
    """A workspace on the local platform: one trainer, learners L1..Ln, a fake clock."""

    app: App
    platform: LocalPlatform
    clock: FakeClock
    trainer: LocalUser
    learners: list[LocalUser]
    channel_id: str

    @property
    def core(self):  # type: ignore[no-untyped-def]
        return self.app.core

    def user(self, user_id: str, trainer: bool = False) -> LocalUser:
        return LocalUser(self.app.core, self.platform, user_id, user_id, trainer)

    async def check_in_at_start(self, short: str, count: int) -> datetime:
        """Set the clock to the session's start and check in the first `count` learners; returns the start."""
        from sqlmodel import select

        from storage.models import PeerSession

        async with self.app.db.transaction() as tx:
            start = (await tx.exec(select(PeerSession.starts_at).where(PeerSession.short_id == short))).one()
        self.clock.set(start)
        for learner in self.learners[:count]:
            assert (await learner.click(f"checkin:in:{short}")).ok
        return start

    async def advance(self, moment: datetime) -> list[str]:
        self.clock.set(moment)
        return [r.step for r in await self.app.core.advance()]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    platform = LocalPlatform(closed_dms={"L12"})
    clock = FakeClock(T0)
    app = await build(make_settings(database_url), {"local": platform}, clock=clock, with_scheduler=False)
    trainer = LocalUser(app.core, platform, "T1", "Trainer", trainer=True)
    learners = [LocalUser(app.core, platform, f"L{i}", f"Learner {i}") for i in range(1, 13)]
    channel = platform.add_channel("cohort", ["T1", *(u.user_id for u in learners)])
    yield World(app, platform, clock, trainer, learners, channel.id)
    await app.close()

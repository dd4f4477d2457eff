"""Replicas started at the same moment (`docker compose up`) migrate one at a time: on a fresh PostgreSQL
schema, three concurrent upgrades all succeed and leave one schema at head."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy

from storage.db import Database
from tests.conftest import postgres_or_skip, reset_postgres


@pytest.mark.postgres
async def test_concurrent_upgrades_on_a_fresh_postgres_all_succeed() -> None:
    url = postgres_or_skip()
    await reset_postgres(url)
    databases = [Database(url) for _ in range(3)]
    try:
        async with asyncio.timeout(60):  # a hang guard: unserialised, concurrent DDL deadlocks instead
            await asyncio.gather(*(db.upgrade() for db in databases))
        async with databases[0].engine.connect() as conn:
            versions = (await conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))).all()
        assert len(versions) == 1
    finally:
        for db in databases:
            await db.dispose()

"""The database's memory of handled events, shared by replicas (`storage.seen_events`), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from storage.db import Database
from storage.models import SeenEvent
from storage.seen_events import SeenEventStore


async def test_each_event_is_first_once_across_replicas_and_per_platform(database_url: str) -> None:
    db = Database(database_url)
    await db.upgrade()
    try:
        one, two = SeenEventStore(db, "slack"), SeenEventStore(db, "slack")  # two replicas
        assert await one.first_time("Ev1") is True
        assert await two.first_time("Ev1") is False
        assert await one.first_time("Ev1") is False
        assert await SeenEventStore(db, "other").first_time("Ev1") is True
        assert await two.first_time("Ev2") is True
    finally:
        await db.dispose()


async def test_events_older_than_the_window_are_purged(database_url: str) -> None:
    db = Database(database_url)
    await db.upgrade()
    try:
        async with db.transaction() as tx:
            tx.add(SeenEvent(platform="slack", event_id="old", seen_at=datetime.now(UTC) - timedelta(days=2)))
        store = SeenEventStore(db, "slack")
        assert await store.first_time("new") is True  # the first insert of a process purges
        async with db.transaction() as tx:
            assert {r.event_id for r in (await tx.exec(select(SeenEvent))).all()} == {"new"}
    finally:
        await db.dispose()

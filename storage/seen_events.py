"""Which platform events were already handled, in the database: Slack redelivers an event it thinks was not
acknowledged (`X-Slack-Retry-Num`), and behind a load balancer the retry may reach another replica, so a
per-process memory would run it twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage.db import Database
from storage.models import SeenEvent

KEEP = timedelta(days=1)  # Slack stops retrying after about an hour; a day leaves room for a long outage


class SeenEventStore:
    """`first_time(event_id)` is true exactly once per event id of `platform`, across every replica."""

    def __init__(self, db: Database, platform: str, *, keep: timedelta = KEEP) -> None:
        self.db, self.platform, self.keep = db, platform, keep
        self._next_purge = datetime.min.replace(tzinfo=UTC)

    async def first_time(self, event_id: str) -> bool:
        now = datetime.now(UTC)
        try:
            async with self.db.transaction() as tx:
                tx.add(SeenEvent(platform=self.platform, event_id=event_id[:100], seen_at=now))
        except IntegrityError:
            return False  # this replica or another one has it already
        if now >= self._next_purge:  # at most hourly per process; cheap, and keeps the table to a day of events
            self._next_purge = now + timedelta(hours=1)
            async with self.db.transaction() as tx:
                await tx.exec(
                    delete(SeenEvent).where(
                        col(SeenEvent.platform) == self.platform, col(SeenEvent.seen_at) < now - self.keep
                    )
                )
        return True

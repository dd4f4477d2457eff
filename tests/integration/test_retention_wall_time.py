"""The retention quiz lands "N weeks later" at the session's local end time, across DST changes in both
hemispheres; the 24-hour reminder stays 24 hours (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.actions import CheckIn
from bot.app import build
from bot.clock import FakeClock
from storage.models import Delivery, PeerSession
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("zone", "day", "retention", "expected_local"),
    [
        ("Europe/Paris", "2027-03-18", "2w", "2027-04-01 15:00"),  # clocks go forward on 2027-03-28
        ("Europe/Paris", "2027-10-21", "2w", "2027-11-04 15:00"),  # and back on 2027-10-31
        ("Australia/Sydney", "2027-03-25", "2w", "2027-04-08 15:00"),  # DST ends there on 2027-04-04
        ("Australia/Sydney", "2027-09-16", "4w", "2027-10-14 15:00"),  # and starts on 2027-10-03
    ],
)
async def test_the_quiz_comes_at_the_same_local_time_weeks_later(
    database_url: str, zone: str, day: str, retention: str, expected_local: str
) -> None:
    tz = ZoneInfo(zone)
    clock = FakeClock(datetime.fromisoformat(f"{day} 08:00").replace(tzinfo=tz))
    platform = LocalPlatform()
    app = await build(
        make_settings(database_url, PEERBOT_TIMEZONE=zone), {"local": platform}, clock=clock, with_scheduler=False
    )
    try:
        trainer = LocalUser(app.core, platform, "T1", "T", trainer=True)
        learner = LocalUser(app.core, platform, "L1", "L")
        assert (await trainer.command("cohort create dst")).ok
        assert (await trainer.command("cohort add dst <@L1>")).ok
        reply = await trainer.command(f'session plan dst "DST" {day} 13:30 1h30m retention={retention}')
        assert reply.ok, reply.text
        short = reply.extra["session"]
        async with app.db.transaction() as tx:
            start = (await tx.exec(select(PeerSession.starts_at).where(PeerSession.short_id == short))).one()
        clock.set(start)
        assert (await learner.click(str(CheckIn(short)))).ok
        await app.core.advance()
        end = start + timedelta(minutes=90)
        clock.set(end)
        await app.core.advance()
        async with app.db.transaction() as tx:
            due = {d.kind: d.due_at for d in (await tx.exec(select(Delivery))).all()}
        assert due["retention"].astimezone(tz).strftime("%Y-%m-%d %H:%M") == expected_local
        assert due["feedback_reminder"] - end == timedelta(hours=24)
    finally:
        await app.close()

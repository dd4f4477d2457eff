"""Simultaneous clicks of the same person (PostgreSQL runs them on separate connections): one record each."""

from __future__ import annotations

import asyncio

from sqlmodel import func, select

from storage.models import Attendance, Member, PrepAck
from tests.conftest import World
from tests.integration.test_session_flow import plan, session_row


async def test_simultaneous_clicks_record_once(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    newcomer = world.user("L1")  # first sight of this person happens in all the clicks at once
    replies = await asyncio.gather(*(newcomer.click(f"checkin:in:{short}") for _ in range(8)))
    assert all(r.ok for r in replies), [r.text for r in replies]
    assert sum(r.text == "You are already checked in." for r in replies) == 7
    preps = await asyncio.gather(*(world.learners[1].click(f"prep:done:{short}") for _ in range(8)))
    assert all(r.ok for r in preps)
    async with world.app.db.transaction() as tx:
        assert (await tx.exec(select(func.count()).select_from(Attendance))).one() == 1
        assert (await tx.exec(select(func.count()).select_from(PrepAck))).one() == 1
        assert (await tx.exec(select(func.count()).select_from(Member).where(Member.user_id == "L1"))).one() == 1

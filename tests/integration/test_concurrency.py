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


async def test_a_caller_who_gives_up_does_not_stop_the_others_check_ins(world: World) -> None:
    """Check-ins arriving together are written in one batch; one request cancelled while it waits (a timed-out
    web request) must not cost the others their answer or their record."""
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    tasks = [asyncio.create_task(learner.click(f"checkin:in:{short}")) for learner in world.learners[:6]]
    await asyncio.sleep(0)  # every click is queued for the writer before it runs
    tasks[2].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    answered = [r for i, r in enumerate(done) if i != 2]
    assert all(not isinstance(r, BaseException) and r.ok and r.text.startswith("Checked in") for r in answered)
    async with world.app.db.transaction() as tx:
        assert (await tx.exec(select(func.count()).select_from(Attendance))).one() in {5, 6}

"""Simultaneous clicks of the same person (PostgreSQL runs them on separate connections): one record each."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, event, insert
from sqlmodel import func, select

from bot.documents.verify import check
from storage.db import sync_url
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


@pytest.mark.postgres
async def test_a_row_another_replica_wrote_after_the_lookup_is_kept_and_the_batch_still_answers(
    world: World, database_url: str
) -> None:
    """Another replica records the learner's check-in between this batch's lookups and its insert (PostgreSQL
    runs them side by side): the insert skips that row instead of failing the batch, all four clicks get
    "Checked in", each learner has one row, and the evidence chain still verifies."""
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL; SQLite has one writer")
    short = await plan(world)
    row = await session_row(world, short)
    world.clock.set(row.starts_at - timedelta(minutes=1))
    async with world.app.db.transaction() as tx:
        first = (await tx.exec(select(Member).where(Member.user_id == "L1"))).one()
    other = create_engine(sync_url(database_url))

    def replica_writes_first(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO attendance") and not done:
            done.append(True)
            with other.begin() as conn:
                conn.execute(
                    insert(Attendance.__table__),  # type: ignore[attr-defined]
                    {"session_id": row.id, "member_id": first.id, "status": "on_time", "method": "command"},
                )

    done: list[bool] = []
    engine = world.app.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", replica_writes_first)
    try:
        replies = await asyncio.gather(*(learner.click(f"checkin:in:{short}") for learner in world.learners[:4]))
    finally:
        event.remove(engine, "before_cursor_execute", replica_writes_first)
        other.dispose()
    assert done and all(r.ok and r.text.startswith("Checked in") for r in replies), [r.text for r in replies]
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Attendance.member_id, Attendance.method))).all()
    assert len(rows) == len({m for m, _ in rows}) == 4
    assert (first.id, "command") in rows  # the other replica's row, as it wrote it
    [result] = await check(world.app.db, [short])
    assert result.verdict.ok

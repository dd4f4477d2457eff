"""A crash at the worst moment of the end, and a session whose steps fail: nothing is lost, nothing is done
twice, and the other sessions go on (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from adapters.local.platform import LocalPlatform
from bot.actions import CheckIn
from bot.app import build
from bot.core.rules import DELIVERY_LEASE
from storage.models import AuditEvent, Delivery, PeerSession
from tests.conftest import World, make_settings
from tests.fakes import CrashAt, SimulatedCrash
from tests.integration.test_session_flow import plan, session_row


async def running_session(world: World) -> tuple[str, datetime]:
    short = await plan(world)
    start = await world.check_in_at_start(short, 8)
    assert "start" in await world.advance(start)
    assert len(world.platform.breakouts()) == 2
    return short, start


async def restart_and_advance(world: World, moment: datetime) -> None:
    """A new process on the same database and platform, whose catch-up runs what is due."""
    settings = make_settings(world.app.settings.database_url)
    restarted = await build(settings, {"local": world.platform}, clock=world.clock, with_scheduler=False)
    try:
        world.clock.set(moment)
        await restarted.core.advance()
        await restarted.core.advance()  # a second pass finds nothing left to do
    finally:
        await restarted.close()


def summaries(world: World) -> list[str]:
    return [p.message.text for p in world.platform.dms_to("T1") if p.message.text.startswith("Summary of")]


@pytest.mark.parametrize(("method", "done"), [("send_dm", False), ("send_dm", True), ("archive_channel", True)])
async def test_a_crash_during_the_end_is_finished_once_after_a_restart(world: World, method: str, done: bool) -> None:
    short, start = await running_session(world)
    end = start + timedelta(minutes=90)
    world.clock.set(end)
    world.app.core.attach(CrashAt(world.platform, method, done=done))  # type: ignore[arg-type]
    with pytest.raises(SimulatedCrash):
        await world.app.core.timeline.end(short, by="test")
    assert (await session_row(world, short)).state == "ended"  # the end itself is saved
    assert not all(c.archived for c in world.platform.breakouts())

    await restart_and_advance(world, end + DELIVERY_LEASE + timedelta(minutes=1))  # a claim made before the
    assert len(summaries(world)) == 1  # crash comes back after its lease; the platform's dedupe key holds
    assert all(c.archived for c in world.platform.breakouts())
    archived = [line for line in world.platform.log if line.startswith("archived #")]
    # Each breakout is closed; only the one archived in the instant of the crash may be archived again.
    assert len(set(archived)) == 2 and len(archived) == (3 if method == "archive_channel" else 2)
    assert [e.status for e in world.platform.events.values()] == ["completed"]
    async with world.app.db.transaction() as tx:
        feedback = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).all()
    assert sorted(d.state for d in feedback) == ["sent"] * 8
    for learner in world.learners[:8]:
        assert sum(p.message.key.startswith("feedback:") for p in world.platform.dms_to(learner.user_id)) == 1


async def test_the_could_not_reach_notice_survives_a_crash_and_is_sent_once(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in (world.learners[11], world.learners[0]):  # L12's DMs are closed
        assert (await learner.click(str(CheckIn(short)))).ok
    await world.advance(start)
    world.clock.set(start + timedelta(minutes=90))
    await world.app.core.timeline.end(short, by="test")
    world.app.core.attach(CrashAt(world.platform, "send_dm", done=False))  # type: ignore[arg-type]
    with pytest.raises(SimulatedCrash):  # the feedback fan-out dies at its first DM
        await world.app.core.deliver_due()
    await restart_and_advance(world, start + timedelta(minutes=90) + DELIVERY_LEASE + timedelta(minutes=1))
    notices = [p.message.text for p in world.platform.dms_to("T1") if "could not reach" in p.message.text]
    assert notices == [f"I could not reach <@L12> by DM for `{short}` (their DMs are closed)."]


async def test_a_failing_session_never_stops_the_others_and_its_trainer_is_told_once(world: World) -> None:
    broken = await plan(world)
    healthy_reply = await world.trainer.command('session plan py "Healthy" 2026-03-04 15:00 1h')
    assert healthy_reply.ok, healthy_reply.text
    healthy = healthy_reply.extra["session"]
    async with world.app.db.transaction() as tx:  # data no command would write any more: steps overflow
        await tx.exec(
            update(PeerSession)  # type: ignore[call-overload]
            .where(col(PeerSession.short_id) == broken)
            .values(starts_at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC), duration_minutes=720)
        )
    healthy_start = (await session_row(world, healthy)).starts_at
    steps = await world.advance(healthy_start)
    assert "start" in steps
    assert (await session_row(world, healthy)).state == "running"
    await world.advance(healthy_start + timedelta(minutes=5))  # a second pass fails again
    told = [p.message.text for p in world.platform.dms_to("T1") if "Something went wrong" in p.message.text]
    assert len(told) == 1 and f"`{broken}`" in told[0]
    async with world.app.db.transaction() as tx:
        failures = (await tx.exec(select(AuditEvent).where(AuditEvent.action == "step.failed"))).all()
    assert len(failures) == 2
    assert {f.session_id for f in failures} == {(await session_row(world, broken)).id}


async def test_a_platform_missing_at_start_up_fails_its_session_only(world: World) -> None:
    short = await plan(world)
    start = await world.check_in_at_start(short, 4)
    other = LocalPlatform()
    settings = make_settings(world.app.settings.database_url)
    restarted = await build(settings, {"elsewhere": other}, clock=world.clock, with_scheduler=False)
    try:
        assert await restarted.core.advance() == []  # the local platform is not attached: logged, not raised
    finally:
        await restarted.close()
    assert "start" in await world.advance(start)  # the process that has the platform runs it

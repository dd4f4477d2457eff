"""Sessions as trainers run them: early and empty starts, crowds of latecomers, keep-apart learners, and
steps that are already due when a session is planned (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlmodel import col, func, select

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.actions import CheckIn
from bot.app import build
from bot.clock import SystemClock
from bot.core.rules import CHECKIN_OPENS, WAIT_ALONE
from scheduler import jobs
from storage.models import AuditEvent, GroupMembership, PeerGroup, PeerSession
from tests.conftest import World, make_settings
from tests.integration.test_session_flow import plan, session_row


async def layout(world: World, short: str) -> dict[int, set[str]]:
    """Group number → user ids, read from the database."""
    async with world.app.db.transaction() as tx:
        rows = await tx.exec(
            select(PeerGroup.number, GroupMembership.member_id)
            .join(GroupMembership, col(GroupMembership.group_id) == col(PeerGroup.id))
            .join(PeerSession, col(PeerSession.id) == col(PeerGroup.session_id))
            .where(PeerSession.short_id == short)
        )
        from storage.models import Member

        members = {m.id: m.user_id for m in (await tx.exec(select(Member))).all()}
        out: dict[int, set[str]] = {}
        for number, member_id in rows.all():
            out.setdefault(number, set()).add(members[member_id])
    return out


def dm_texts(world: World, user_id: str) -> list[str]:
    return [p.message.text for p in world.platform.dms_to(user_id)]


async def test_a_start_with_nobody_checked_in_opens_check_in_and_groups_form_as_learners_arrive(
    world: World,
) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start - CHECKIN_OPENS - timedelta(minutes=30))  # the trainer starts 45 minutes early
    reply = await world.trainer.command(f"session start {short}")
    assert reply.ok, reply.text
    assert "nobody has checked in yet" in reply.text and "a group starts with 3 learners" in reply.text
    row = await session_row(world, short)
    assert row.state == "running" and row.checkin_opened_at is not None
    assert any("Check-in is open" in p.message.text for p in world.platform.posts_in(world.channel_id))
    assert world.platform.breakouts() == []

    first, second, third = world.learners[:3]
    for learner in (first, second):
        answer = await learner.click(str(CheckIn(short)))
        assert answer.ok and "Your group forms as soon as 3 learners are here" in answer.text, answer.text
    shown = await world.trainer.command(f"session show {short}")
    assert "Waiting for a group: <@L1>, <@L2>" in shown.text, shown.text

    answer = await third.click(str(CheckIn(short)))
    assert answer.ok and "You joined group 1." in answer.text, answer.text
    assert await layout(world, short) == {1: {"L1", "L2", "L3"}}
    (room,) = world.platform.breakouts()
    assert {"L1", "L2", "L3"} <= room.members
    for learner in (first, second):  # the two who waited are told where they are
        assert any(t.startswith("You are in group 1 of") for t in dm_texts(world, learner.user_id))

    for learner in world.learners[3:6]:  # groups of 4 may grow to 6 before a new one starts
        assert "You joined group 1." in (await learner.click(str(CheckIn(short)))).text
    assert len(room.members & {u.user_id for u in world.learners}) == 6
    for learner in world.learners[6:9]:
        await learner.click(str(CheckIn(short)))
    assert await layout(world, short) == {1: {f"L{i}" for i in range(1, 7)}, 2: {"L7", "L8", "L9"}}
    assert len(world.platform.breakouts()) == 2
    assert "Waiting for a group" not in (await world.trainer.command(f"session show {short}")).text


async def test_the_scheduled_start_with_nobody_checked_in_places_latecomers_too(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    assert "start" in await world.advance(start)
    assert (await session_row(world, short)).state == "running"
    world.clock.set(start + timedelta(minutes=12))
    for learner in world.learners[:3]:
        reply = await learner.click(str(CheckIn(short)))
        assert reply.ok and "marked late" in reply.text
    assert await layout(world, short) == {1: {"L1", "L2", "L3"}}


async def test_a_learner_waiting_alone_joins_the_smallest_group_after_a_few_minutes(world: World) -> None:
    short = await plan(world, "size=3")  # groups of 3: at most 5 each
    start = await world.check_in_at_start(short, 6)  # two groups of 3
    assert "start" in await world.advance(start)
    world.clock.set(start + timedelta(minutes=5))
    for learner in world.learners[6:10]:  # they fill both groups up to the format's maximum
        assert "You joined group" in (await learner.click(str(CheckIn(short)))).text
    groups = await layout(world, short)
    assert sorted(len(g) for g in groups.values()) == [5, 5]

    late = world.learners[10]
    world.clock.set(start + timedelta(minutes=20))
    reply = await late.click(str(CheckIn(short)))
    assert "Your group forms as soon as 3 learners are here" in reply.text, reply.text
    world.clock.set(start + timedelta(minutes=20) + WAIT_ALONE - timedelta(seconds=1))
    await world.app.core.sweep()
    assert all(late.user_id not in g for g in (await layout(world, short)).values())

    world.clock.set(start + timedelta(minutes=20) + WAIT_ALONE)
    await world.app.core.sweep()
    after = await layout(world, short)
    assert sorted(len(g) for g in after.values()) == [5, 6]
    number = next(n for n, g in after.items() if late.user_id in g)
    assert f"You are in group {number} of" in " ".join(dm_texts(world, late.user_id))
    room = next(c for c in world.platform.breakouts() if c.name.endswith(f"g{number}"))
    assert late.user_id in room.members


async def test_simultaneous_late_check_ins_never_overfill_a_group(world: World) -> None:
    short = await plan(world, "size=3")
    extra = [world.user(f"X{i}") for i in range(1, 39)]
    mentions = " ".join(f"<@{u.user_id}>" for u in extra)
    assert (await world.trainer.command(f"cohort add py {mentions}")).ok
    everyone = [*world.learners, *extra]  # 50 learners
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in everyone[:30]:
        assert (await learner.click(str(CheckIn(short)))).ok
    assert "start" in await world.advance(start)
    assert sorted(len(g) for g in (await layout(world, short)).values()) == [3] * 10

    world.clock.set(start + timedelta(minutes=11))
    replies = await asyncio.gather(*(learner.click(str(CheckIn(short))) for learner in everyone[30:]))
    assert all(r.ok for r in replies), [r.text for r in replies if not r.ok]
    sizes = sorted(len(g) for g in (await layout(world, short)).values())
    assert sizes == [5] * 10, sizes  # 20 latecomers over 10 groups of 3, each group at most 5


async def test_a_keep_apart_rule_is_never_broken_by_a_latecomer(world: World) -> None:
    short = await plan(world, "size=3")
    start = await world.check_in_at_start(short, 6)  # two groups of 3
    assert "start" in await world.advance(start)
    groups = await layout(world, short)
    late = world.learners[6]
    for members in groups.values():  # one keep-apart partner in every group
        partner = sorted(members)[0]
        assert (await world.trainer.command(f"cohort apart py <@{late.user_id}> <@{partner}>")).ok
    world.clock.set(start + timedelta(minutes=15))
    reply = await late.click(str(CheckIn(short)))
    assert reply.ok and "Your group forms" in reply.text
    warned = [t for t in dm_texts(world, "T1") if "kept apart from" in t and f"<@{late.user_id}>" in t]
    assert len(warned) == 1

    world.clock.set(start + timedelta(minutes=15) + 3 * WAIT_ALONE)
    await world.app.core.sweep()
    await world.app.core.sweep()
    assert await layout(world, short) == groups  # still waiting: nobody is placed next to an apart partner
    assert len([t for t in dm_texts(world, "T1") if "kept apart from" in t]) == 1  # told once
    async with world.app.db.transaction() as tx:  # and the sweeps that changed nothing left no trace
        placed = (await tx.exec(select(func.count()).where(AuditEvent.action == "arrivals.placed"))).one()
    assert placed == 0
    shown = await world.trainer.command(f"session show {short}")
    assert f"Waiting for a group: <@{late.user_id}>" in shown.text


async def test_steps_already_due_when_a_session_is_planned_run_at_once(database_url: str) -> None:
    """Planned 10 minutes ahead: the check-in post goes out now, not at the start; planned tonight for
    tomorrow with a day's preparation lead: the material goes out now, not at the reminder's time."""
    platform = LocalPlatform()
    app = await build(make_settings(database_url, PEERBOT_TIMEZONE="UTC"), {"local": platform}, clock=SystemClock())
    assert app.scheduler is not None
    jobs.bind(app.core)
    app.scheduler.start()
    try:
        trainer = LocalUser(app.core, platform, "T1", "T", trainer=True)
        channel = platform.add_channel("cohort", ["T1", "L1", "L2", "L3"])
        assert (await trainer.command(f"cohort create soon <#{channel.id}|cohort>")).ok
        assert (await trainer.command("cohort add soon <@L1> <@L2> <@L3>")).ok
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        soon, tomorrow = now + timedelta(minutes=11), now + timedelta(hours=20)
        for when, title in ((soon, "Soon"), (tomorrow, "Tomorrow")):
            reply = await trainer.command(
                f'session plan soon "{title}" {when:%Y-%m-%d} {when:%H:%M} 1h prep="Read chapter 2"'
            )
            assert reply.ok, reply.text
        posts: list[str] = []
        for _ in range(100):
            await asyncio.sleep(0.05)
            posts = [p.message.text for p in platform.posts_in(channel.id)]
            if any("Check-in is open" in p for p in posts) and sum("Prepare for" in p for p in posts) == 2:
                break
        assert any("Check-in is open for “Soon”" in p for p in posts), posts
        assert any("Prepare for “Tomorrow”" in p for p in posts), posts
        async with app.db.transaction() as tx:
            opened = await tx.exec(select(func.count()).where(col(PeerSession.checkin_opened_at).is_not(None)))
            assert opened.one() == 1
            runs = await tx.exec(select(func.count()).where(AuditEvent.action == "prep.post"))
            assert runs.one() == 2  # each step once, however many passes ran
    finally:
        await app.close()


async def test_a_trainers_start_and_the_scheduled_start_at_the_same_instant_start_once(world: World) -> None:
    """The trainer types `session start` as the scheduler's start job fires: one set of groups, one start."""
    short = await plan(world, "size=3")
    start = (await session_row(world, short)).starts_at
    world.clock.set(start - timedelta(minutes=5))
    for learner in world.learners[:9]:
        assert (await learner.click(str(CheckIn(short)))).ok
    world.clock.set(start)
    typed, _scheduled = await asyncio.gather(
        world.trainer.command(f"session start {short}"), world.app.core.timeline.start(short, by="scheduler")
    )
    assert typed.ok, typed.text
    groups = await layout(world, short)
    assert sorted(len(g) for g in groups.values()) == [3, 3, 3], groups
    assert len(set().union(*groups.values())) == 9
    async with world.app.db.transaction() as tx:
        starts = (await tx.exec(select(func.count()).where(AuditEvent.action == "session.start"))).one()
    assert starts == 1
    assert len([c for c in world.platform.channels.values() if c.name.startswith(f"peer-{short}-")]) == 3


async def test_a_trainers_end_and_the_scheduled_end_at_the_same_instant_end_once(world: World) -> None:
    short = await plan(world, "size=3")
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners[:6]:
        assert (await learner.click(str(CheckIn(short)))).ok
    assert (await world.trainer.command(f"session start {short}")).ok
    world.clock.set(start + timedelta(minutes=60))
    typed, _scheduled = await asyncio.gather(
        world.trainer.command(f"session end {short}"), world.app.core.timeline.end(short, by="scheduler")
    )
    assert typed.ok or "is ended" in typed.text, typed.text  # whichever came second is told it is over
    async with world.app.db.transaction() as tx:
        ends = (await tx.exec(select(func.count()).where(AuditEvent.action == "session.end"))).one()
        wrapups = (await tx.exec(select(func.count()).where(AuditEvent.action == "wrapup"))).one()
    assert (ends, wrapups) == (1, 1)
    prompts = [p for p in world.platform.messages.values() if "wrap up" in p.message.text]
    assert len(prompts) == 2  # one per group, not two


async def test_a_cancel_racing_the_scheduled_start_either_cancels_or_is_refused(world: World) -> None:
    """Never both: a session cancelled after its groups formed would keep breakouts nobody closes."""
    short = await plan(world, "size=3")
    start = (await session_row(world, short)).starts_at
    world.clock.set(start - timedelta(minutes=5))
    for learner in world.learners[:6]:
        assert (await learner.click(str(CheckIn(short)))).ok
    world.clock.set(start)
    cancel, started = await asyncio.gather(
        world.trainer.command(f"session cancel {short}"), world.app.core.timeline.start(short, by="scheduler")
    )
    state = (await session_row(world, short)).state
    if cancel.ok:
        assert state == "cancelled" and not started and not await layout(world, short)
    else:
        assert state == "running" and "has not started" in cancel.text and started

"""Trainer control of groups: a draft before start, move/swap/reshuffle, breakouts following during the session."""

from __future__ import annotations

from sqlmodel import select

from storage.models import AuditEvent, GroupMembership, Member, PeerGroup
from tests.conftest import World
from tests.integration.test_session_flow import plan, session_row


async def groups_of(world: World) -> dict[str, int]:
    async with world.app.db.transaction() as tx:
        rows = await tx.exec(
            select(Member.user_id, PeerGroup.number)
            .join(GroupMembership, GroupMembership.member_id == Member.id)
            .join(PeerGroup, PeerGroup.id == GroupMembership.group_id)
        )
        return dict(rows.all())


async def test_draft_move_swap_reshuffle_then_start_keeps_the_draft(world: World) -> None:
    short = await plan(world)
    shown = await world.trainer.command(f"group show {short}")
    assert shown.ok and "Draft groups" in shown.text
    draft = await groups_of(world)
    assert len(draft) == 12 and set(draft.values()) == {1, 2, 3}

    mover = next(u for u, g in draft.items() if g == 1)
    assert (await world.trainer.command(f"group move {short} <@{mover}> 2")).ok
    a = next(u for u, g in draft.items() if g == 2 and u != mover)
    b = next(u for u, g in draft.items() if g == 3)
    swapped = await world.trainer.command(f"group swap {short} <@{a}> <@{b}>")
    assert swapped.ok, swapped.text
    edited = await groups_of(world)
    assert (edited[mover], edited[a], edited[b]) == (2, 3, 2)

    reshuffled = await world.trainer.command(f"group reshuffle {short}")
    assert reshuffled.ok and "Draft groups" in reshuffled.text
    assert len(await groups_of(world)) == 12
    assert (await world.trainer.command(f"group move {short} <@{mover}> 1")).ok
    kept = await groups_of(world)

    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    absent = next(u for u in kept if u != mover)
    for learner in world.learners:
        if learner.user_id != absent:
            assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start)
    final = await groups_of(world)
    assert absent not in final
    assert final == {u: g for u, g in kept.items() if u != absent}  # the trainer's draft, minus the absentee
    assert sorted(c.name for c in world.platform.breakouts()) == [f"peer-{short}-g{n}" for n in (1, 2, 3)]


async def test_swap_during_session_moves_breakout_membership(world: World) -> None:
    short = await plan(world)
    start = await world.check_in_at_start(short, 8)
    await world.advance(start)
    current = await groups_of(world)
    a = next(u for u, g in current.items() if g == 1)
    b = next(u for u, g in current.items() if g == 2)
    assert (await world.trainer.command(f"group swap {short} <@{a}> <@{b}>")).ok
    rooms = {c.name[-2:]: c.members for c in world.platform.breakouts()}
    assert a in rooms["g2"] and a not in rooms["g1"] and b in rooms["g1"] and b not in rooms["g2"]
    refused = await world.trainer.command(f"group reshuffle {short}")
    assert not refused.ok and "has started" in refused.text


async def test_group_errors_change_nothing(world: World) -> None:
    short = await plan(world)
    before_show = await world.trainer.command(f"group move {short} <@L1> 2")
    assert not before_show.ok and "group show" in before_show.text
    await world.trainer.command(f"group show {short}")
    snapshot = await groups_of(world)
    async with world.app.db.transaction() as tx:
        audits = len((await tx.exec(select(AuditEvent))).all())
    for text, expected in (
        (f"group move {short} <@L1> 9", "no group 9"),
        (f"group move {short} <@NOPE> 1", "in no group"),
        (f"group swap {short} <@L1> <@L1>", "two different people"),
        (f"group swap {short} <@L1>", "Usage"),
    ):
        reply = await world.trainer.command(text)
        assert not reply.ok and expected in reply.text, (text, reply.text)
    learner = await world.learners[0].command(f"group reshuffle {short}")
    assert not learner.ok and "Only trainers" in learner.text
    assert await groups_of(world) == snapshot
    async with world.app.db.transaction() as tx:
        assert len((await tx.exec(select(AuditEvent))).all()) == audits


async def test_engine_warnings_reach_the_trainer_with_mentions(world: World) -> None:
    short = await plan(world)
    assert (await world.trainer.command("cohort apart py <@L1> <@L2>")).ok
    start = await world.check_in_at_start(short, 3)  # three learners: one group, so the apart pair cannot be honoured
    await world.advance(start)
    notes = [dm.message.text for dm in world.platform.dms_to("T1") if dm.message.text.startswith("Groups for")]
    assert len(notes) == 1
    assert "I could not keep <@L1> and <@L2> apart" in notes[0]
    assert "Only 3 learner(s)" not in notes[0]  # three is a valid group: no size warning

"""Groups computed ahead: a draft when check-in opens, refined as learners check in, adjusted at the start."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.core import rules
from storage.models import Member
from tests.conftest import World
from tests.integration.test_group_control import groups_of
from tests.integration.test_session_flow import plan, session_row


def work_ahead(world: World) -> None:
    """Turn the work ahead on (the test settings turn it off), with budgets small enough for a test: the
    default's quality is the benchmark's business, not this test's."""
    ctx = world.app.core.ctx
    ctx.settings = ctx.settings.model_copy(update={"grouping_ahead": "on"})
    ctx.ahead_budget, ctx.course_budget = 0.3, 1.0


async def test_checkin_opening_drafts_groups_that_check_ins_refine_and_the_start_keeps(world: World) -> None:
    short = await plan(world)
    row = await session_row(world, short)
    assert row.id is not None
    groups = world.app.core.groups
    work_ahead(world)
    await world.advance(row.starts_at - rules.CHECKIN_OPENS)
    await groups.ahead_settled()
    opened = groups.drafts[row.id]
    assert len(opened.pool) == 12  # nobody has checked in yet: every enrolled learner is expected

    came = world.learners[:10]
    for learner in came:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await groups.ahead_settled()
    refined = groups.drafts[row.id]
    assert len(refined.pool) == 10 and sum(len(g) for g in refined.groups) == 10

    await world.advance(row.starts_at)
    final = await groups_of(world)
    assert set(final) == {u.user_id for u in came}
    by_member = {m.id: m.user_id for m in await members(world)}
    drafted = sorted(sorted(by_member[int(m)] for m in g) for g in refined.groups)
    formed: dict[int, list[str]] = {}
    for user, number in final.items():
        formed.setdefault(number, []).append(user)
    assert sorted(sorted(g) for g in formed.values()) == drafted  # the start had nothing to change
    assert row.id not in groups.drafts


async def test_a_start_without_a_draft_still_forms_groups(world: World) -> None:
    short = await plan(world)
    start = await world.check_in_at_start(short, 8)
    world.app.core.groups.drafts.clear()  # as on a replica that computed nothing ahead
    await world.advance(start + timedelta(seconds=1))
    assert len(await groups_of(world)) == 8


async def members(world: World) -> list[Member]:
    async with world.app.db.transaction() as tx:
        return list((await tx.exec(select(Member))).all())


async def test_with_the_work_ahead_off_check_in_opening_computes_nothing(world: World) -> None:
    """PEERBOT_GROUPING_AHEAD=off (small hosts): no background search; the start forms the groups itself."""
    short = await plan(world)
    row = await session_row(world, short)
    await world.advance(row.starts_at - rules.CHECKIN_OPENS)
    for learner in world.learners[:8]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    assert not world.app.core.groups.drafts and not world.app.core.groups._ahead
    await world.advance(row.starts_at)
    assert len(await groups_of(world)) == 8


async def test_check_ins_in_a_burst_are_served_by_one_refinement_after_it(world: World) -> None:
    """The search competes with the event loop, so it waits for the check-ins to pause: ten clicks in a row
    cause one refinement after the last one (not one per click, not one while they still come)."""
    short = await plan(world)
    row = await session_row(world, short)
    assert row.id is not None
    groups = world.app.core.groups
    work_ahead(world)
    world.app.core.ctx.ahead_quiet = 2.0  # ten clicks take far less, even on a busy machine
    await world.advance(row.starts_at - rules.CHECKIN_OPENS)
    await groups.ahead_settled()
    assert groups._steps[row.id] == 1
    for learner in world.learners[:10]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    assert groups._steps[row.id] == 1  # still coming: nothing computed yet
    await groups.ahead_settled()
    assert groups._steps[row.id] == 2 and len(groups.drafts[row.id].pool) == 10

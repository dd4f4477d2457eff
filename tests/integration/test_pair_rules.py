"""A cohort's pair rules (`/peer cohort apart|together|unpair`): set and listed by the trainer, honoured by every
draft, reshuffle, start and late check-in, enforced on move and swap; errors change nothing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlmodel import select

from storage.models import AuditEvent, GroupMembership, Member, PairConstraint, PeerGroup
from tests.conftest import World
from tests.integration.test_group_control import groups_of
from tests.integration.test_session_flow import plan, session_row


async def reshuffled(world: World, short: str, rounds: int) -> list[dict[str, int]]:
    """The draft after each of `rounds` reshuffles (each one a new seed)."""
    drafts = []
    for _ in range(rounds):
        reply = await world.trainer.command(f"group reshuffle {short}")
        assert reply.ok, reply.text
        drafts.append(await groups_of(world))
    return drafts


async def rules(world: World) -> list[tuple[str, str, str]]:
    """(kind, first, second) of every stored rule, members as stored (smaller member id first)."""
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(PairConstraint).order_by(PairConstraint.id))).all()
        users = {m.id: m.user_id for m in (await tx.exec(select(Member))).all()}
        return [(r.kind, users[r.member_a_id], users[r.member_b_id]) for r in rows]


async def audit_count(world: World) -> int:
    async with world.app.db.transaction() as tx:
        return len((await tx.exec(select(AuditEvent))).all())


async def test_apart_beats_a_chain_of_together_rules_in_every_reshuffle(world: World) -> None:
    short = await plan(world)
    # L1 and L2 are each to be kept with L3: without more, every draft puts L1 and L2 together.
    assert (await world.trainer.command("cohort together py <@L1> <@L3>")).ok
    assert (await world.trainer.command("cohort together py <@L3> <@L2>")).ok
    before = await reshuffled(world, short, 4)
    assert all(d["L1"] == d["L2"] == d["L3"] for d in before)

    set_apart = await world.trainer.command("cohort apart py <@L2> <@L1>")
    assert set_apart.ok and "will be kept apart" in set_apart.text, set_apart.text
    assert f"Session `{short}` already has them both in group" in set_apart.text
    after = await reshuffled(world, short, 10)
    assert all(d["L1"] != d["L2"] for d in after)
    assert all(d["L3"] in {d["L1"], d["L2"]} for d in after)  # one together rule still kept each time
    assert len({tuple(sorted(d.items())) for d in after}) > 1  # the seeds did produce different drafts

    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start)
    final = await groups_of(world)
    assert final["L1"] != final["L2"]


async def test_sessions_started_without_a_draft_honour_both_kinds(world: World) -> None:
    """Each start forms fresh groups with its own seed and a growing history that favours new pairs."""
    await plan(world)
    assert (await world.trainer.command("cohort apart py <@L1> <@L6>")).ok  # same level: a likely pair
    assert (await world.trainer.command("cohort together py <@L4> <@L9>")).ok
    assert (await world.trainer.command("cohort together py <@L2> <@L12>")).ok
    for day in range(5, 10):
        reply = await world.trainer.command(f'session plan py "Round {day}" 2026-03-{day:02d} 14:00 1h')
        short = reply.extra["session"]
        start = (await session_row(world, short)).starts_at
        world.clock.set(start)
        for learner in world.learners:
            assert (await learner.click(f"checkin:in:{short}")).ok
        await world.advance(start)
        final = await groups_of_session(world, short)
        assert len(final) == 12
        assert final["L1"] != final["L6"], (short, final)
        assert final["L4"] == final["L9"] and final["L2"] == final["L12"], (short, final)
        await world.advance(start + timedelta(hours=1))


async def groups_of_session(world: World, short: str) -> dict[str, int]:
    session = await session_row(world, short)
    async with world.app.db.transaction() as tx:
        rows = await tx.exec(
            select(Member.user_id, PeerGroup.number)
            .join(GroupMembership, GroupMembership.member_id == Member.id)
            .join(PeerGroup, PeerGroup.id == GroupMembership.group_id)
            .where(GroupMembership.session_id == session.id)
        )
        return dict(rows.all())


async def test_late_check_in_avoids_the_group_of_an_apart_partner(world: World) -> None:
    short = await plan(world)
    assert (await world.trainer.command("cohort apart py <@L1> <@L2>")).ok
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners:
        if learner.user_id != "L2":
            assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start)
    await isolate(world, short, "L1")  # the smallest group: without the rule, L2 would join it
    world.clock.set(start + timedelta(minutes=20))
    joined = await world.learners[1].command(f"checkin {short}")
    assert joined.ok and "You joined group" in joined.text, joined.text
    final = await groups_of(world)
    assert final["L2"] != final["L1"]


async def test_move_and_swap_that_would_join_an_apart_pair_are_refused(world: World) -> None:
    short = await plan(world)
    assert (await world.trainer.command("cohort apart py <@L1> <@L2>")).ok
    await world.trainer.command(f"group show {short}")
    draft = await groups_of(world)
    assert draft["L1"] != draft["L2"]
    mate = next(u for u, g in draft.items() if g == draft["L1"] and u != "L1")
    audits = await audit_count(world)

    moved = await world.trainer.command(f"group move {short} <@L2> {draft['L1']}")
    assert (moved.ok, moved.text) == (
        False,
        "<@L2> and <@L1> are kept apart in cohort `py`: I will not put them in the same group. Nothing changed.\n"
        "Pick another group, or lift the rule first with `/peer cohort unpair py <@L2> <@L1>`.",
    )
    swapped = await world.trainer.command(f"group swap {short} <@L2> <@{mate}>")
    assert not swapped.ok and "<@L2> and <@L1> are kept apart" in swapped.text, swapped.text
    swapped_back = await world.trainer.command(f"group swap {short} <@{mate}> <@L2>")
    assert not swapped_back.ok and "kept apart" in swapped_back.text
    assert await groups_of(world) == draft and await audit_count(world) == audits

    # Swapping the pair itself keeps them apart, so it is allowed; so is a move that does not join them.
    assert (await world.trainer.command(f"group swap {short} <@L1> <@L2>")).ok
    third = next(g for g in set(draft.values()) if g not in {draft["L1"], draft["L2"]})
    assert (await world.trainer.command(f"group move {short} <@L1> {third}")).ok

    # During the session too; and once the rule is lifted, the same move goes through.
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start)
    running = await groups_of(world)
    refused = await world.trainer.command(f"group move {short} <@L2> {running['L1']}")
    assert not refused.ok and "kept apart" in refused.text
    assert await groups_of(world) == running
    lifted = await world.trainer.command("cohort unpair py <@L2> <@L1>")
    assert (lifted.ok, lifted.text) == (True, "<@L2> and <@L1> are no longer kept apart in cohort `py`.")
    assert await rules(world) == []
    assert (await world.trainer.command(f"group move {short} <@L2> {running['L1']}")).ok
    rooms = {c.name[-2:]: c.members for c in world.platform.breakouts()}
    assert "L2" in rooms[f"g{running['L1']}"]


async def test_rules_are_stored_once_per_pair_replaced_listed_and_audited(world: World) -> None:
    await plan(world)
    first = await world.trainer.command("cohort together py <@L5> <@L3>")
    assert first.text == (
        "<@L5> and <@L3> will be kept together in the groups of cohort `py` whenever the split allows."
    )
    again = await world.trainer.command("cohort together py <@L3> <@L5>")
    assert again.text == "<@L3> and <@L5> are already kept together in cohort `py`."
    replaced = await world.trainer.command("cohort apart py <@L3> <@L5>")
    assert replaced.text.startswith(
        "<@L3> and <@L5> were kept together in cohort `py`; that rule is replaced: they will now be kept apart."
    )
    assert await rules(world) == [("apart", "L3", "L5")]  # one row, smaller member id first
    back = await world.trainer.command("cohort together py <@L5> <@L3>")
    assert "that rule is replaced" in back.text and await rules(world) == [("together", "L3", "L5")]
    assert (await world.trainer.command("cohort apart py <@L12> <@L1>")).ok

    shown = await world.trainer.command("cohort show py")
    assert "*Pair rules*\n• <@L1> and <@L12>: kept apart\n• <@L3> and <@L5>: kept together\n*Sessions*" in shown.text
    assert (await world.trainer.command("cohort unpair py <@L3> <@L5>")).ok
    assert "<@L3>" not in (await world.trainer.command("cohort show py")).text.split("*Pair rules*")[1]
    async with world.app.db.transaction() as tx:
        actions = [a.action for a in (await tx.exec(select(AuditEvent).order_by(AuditEvent.id))).all()]
    assert [a for a in actions if a.startswith("cohort.") and a not in {"cohort.create", "cohort.add"}] == [
        "cohort.together",
        "cohort.apart",
        "cohort.together",
        "cohort.apart",
        "cohort.unpair",
    ]


async def test_pair_errors_change_nothing(world: World) -> None:
    await plan(world)
    assert (await world.trainer.command("cohort apart py <@L1> <@L2>")).ok
    stranger = world.user("X9")
    assert (await stranger.command("help")).ok
    before, audits = await rules(world), await audit_count(world)
    for text, expected in (
        ("cohort apart py <@L1> <@L1>", "a person cannot be paired with themselves"),
        ("cohort together py <@!L4> <@L4>", "a person cannot be paired with themselves"),
        ("cohort apart nope <@L1> <@L3>", "There is no cohort named `nope` here."),
        ("cohort apart py <@L1> <@T1>", "<@T1> is not a learner of cohort `py`. Nothing changed."),
        ("cohort together py <@X9> <@L1>", "<@X9> is not a learner of cohort `py`."),
        ("cohort together py <@L1> <@L2> <@L3>", "Mention exactly two people."),
        ("cohort apart py <@L1>", "Usage: `/peer cohort apart <cohort> <@user> <@user>`"),
        ("cohort unpair py <@L1> <@L3>", "<@L1> and <@L3> have no pair rule in cohort `py`. Nothing changed."),
        ("cohort unpair py <@L1> <@NOBODY>", "have no pair rule"),
        ("cohort unpair nope <@L1> <@L2>", "There is no cohort named `nope` here."),
    ):
        reply = await world.trainer.command(text)
        assert not reply.ok and expected in reply.text, (text, reply.text)
    for text in ("cohort apart py <@L3> <@L4>", "cohort together py <@L3> <@L4>", "cohort unpair py <@L1> <@L2>"):
        learner = await world.learners[0].command(text)
        assert not learner.ok and "Only trainers" in learner.text
    assert await rules(world) == before and await audit_count(world) == audits
    async with world.app.db.transaction() as tx:
        assert "NOBODY" not in {m.user_id for m in (await tx.exec(select(Member))).all()}


async def test_a_rule_set_after_the_draft_is_flagged_now_and_at_start(world: World) -> None:
    short = await plan(world)
    await world.trainer.command(f"group show {short}")
    draft = await groups_of(world)
    a, b = sorted((u for u, g in draft.items() if g == 1), key=lambda u: int(u[1:]))[:2]
    reply = await world.trainer.command(f"cohort apart py <@{a}> <@{b}>")
    assert reply.text.endswith(
        f"Session `{short}` already has them both in group 1: move one of them with `/peer group move` "
        f"(or `/peer group reshuffle {short}` before the start)."
    )
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start)
    assert await groups_of(world) == draft  # the trainer's draft is kept ...
    warned = [m.message.text for m in world.platform.dms_to("T1")]
    assert any(  # ... and the trainer is told which group to fix
        f"Group 1 holds <@{a}> and <@{b}>, who are kept apart: move one of them with `/peer group move`." in text
        for text in warned
    ), warned


async def isolate(world: World, short: str, user: str) -> int:
    """Move everyone else out of `user`'s group so it is the strictly smallest; returns its number."""
    groups = await groups_of(world)
    mates = [u for u, g in groups.items() if g == groups[user] and u != user]
    others = sorted({g for g in groups.values() if g != groups[user]})
    for mate, target in zip(mates, others * len(mates), strict=False):
        assert (await world.trainer.command(f"group move {short} <@{mate}> {target}")).ok
    sizes = Counter((await groups_of(world)).values())
    assert sizes[groups[user]] == 1 and all(n > 1 for g, n in sizes.items() if g != groups[user])
    return groups[user]


async def test_a_newcomer_joining_the_draft_at_start_avoids_an_apart_partner(world: World) -> None:
    short = await plan(world)
    await world.trainer.command(f"group show {short}")
    alone = await isolate(world, short, "L1")
    newcomer = world.user("N1")
    assert (await world.trainer.command("cohort add py <@N1>")).ok
    assert (await world.trainer.command("cohort apart py <@N1> <@L1>")).ok
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in [*world.learners, newcomer]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start)
    final = await groups_of(world)
    assert final["L1"] == alone and final["N1"] != alone
    assert not any("kept apart" in m.message.text for m in world.platform.dms_to("T1"))

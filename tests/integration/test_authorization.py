"""Who may do what: every trainer command and every action, for a learner, the cohort's trainer, a trainer of
another cohort, an outsider, someone in another workspace and an admin. A refusal changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlmodel import SQLModel, select

from adapters.local.driver import LocalUser
from bot import grammar
from bot.actions import (
    CheckIn,
    OpenQuestionnaire,
    OpenTakeaways,
    PrepDone,
    Questionnaire,
    SaveQuestionnaire,
    SubmitQuestionnaire,
    SubmitTakeaways,
)
from bot.messages import Reply
from storage.models import Cohort, Delivery, GroupMembership, Member
from tests.conftest import World
from tests.integration.test_session_flow import plan, session_row

# In the order the cohort's own trainer can run them one after the other; `{g}` is a group number.
TRAINER_COMMANDS = [
    "cohort show py",
    "cohort add py <@N1>",
    "cohort apart py <@L1> <@L2>",
    "cohort together py <@L1> <@L2>",
    "cohort unpair py <@L1> <@L2>",
    "cohort trainers add py <@T9>",
    "cohort trainers remove py <@T9>",
    "cohort import py <#{channel}>",
    'session plan py "Second" 2026-03-05 10:00 1h format=review reviewers=2',
    'review criteria s2 "Clarity" "Evidence"',
    "session show {s}",
    "group show {s}",
    "group reshuffle {s}",
    'quiz add {s} "Which fixture scope lasts longest?" "session" "function"',
    "report {s}",
    'note {s} "Pairs worked better than fours."',
    "export py csv",
    "export {s}",
    "export py audit",
    "alerts py",
    "questionnaire edit py",
    "followup plan {s} 4 observer=<@M1>",
    "session start {s}",
    "group move {s} <@L1> 2",
    "group swap {s} <@L1> <@L5>",
    "session end {s}",
    "session cancel s2",
]


async def snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a refusal changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with world.app.db.transaction() as tx:
        connection = await tx.connection()
        for table in SQLModel.metadata.sorted_tables:
            rows = await connection.execute(table.select())
            out[table.name] = sorted((tuple(map(repr, r)) for r in rows.all()), key=str)
    return out


async def refused(world: World, act: Callable[[], Awaitable[Reply | Any]]) -> str:
    before = await snapshot(world)
    reply = await act()
    text_ = reply.text if isinstance(reply, Reply) else ""
    assert isinstance(reply, Reply) and not reply.ok, f"expected a refusal, got {reply!r}"
    assert text_.strip()
    assert await snapshot(world) == before, f"a refusal changed the database: {text_}"
    return text_


def test_the_matrix_covers_every_trainer_command() -> None:
    covered = {grammar.parse(c.format(channel="C1", s="s1", g=1)).name for c in TRAINER_COMMANDS}
    assert covered | {"cohort create", "dashboard"} == set(grammar.TRAINER_COMMANDS)


async def test_any_trainer_or_admin_may_ask_for_a_dashboard_link_and_no_one_else(world: World) -> None:
    """`/peer dashboard` acts on no cohort (the dashboard shows each trainer their own): like `cohort create`, it is
    for every trainer and admin; learners, outsiders and people of another workspace who are not trainers are
    refused without a row written."""
    outsider = LocalUser(world.app.core, world.platform, "O1", "Outsider")
    elsewhere = LocalUser(world.app.core, world.platform, "LW", "Learner elsewhere", workspace="ws2")
    for person in (world.learners[0], outsider, elsewhere):
        assert "Only trainers" in await refused(world, lambda p=person: p.command("dashboard"))
    other_trainer = LocalUser(world.app.core, world.platform, "TB", "Other trainer", trainer=True)
    admin = LocalUser(world.app.core, world.platform, "AD", "Admin", admin=True)
    for person in (world.trainer, other_trainer, admin):  # the dashboard is off here: the reply says how to turn it on
        assert "PEERBOT_DASHBOARD=on" in await refused(world, lambda p=person: p.command("dashboard"))


async def test_only_the_cohorts_trainers_and_admins_act_on_it(world: World) -> None:
    short = await plan(world, "groups_from=enrolled")
    assert short == "s1"
    learner = world.learners[0]
    other_trainer = LocalUser(world.app.core, world.platform, "TB", "Other trainer", trainer=True)
    outsider = LocalUser(world.app.core, world.platform, "O1", "Outsider")
    elsewhere = LocalUser(world.app.core, world.platform, "TW", "Elsewhere", trainer=True, workspace="ws2")
    admin = LocalUser(world.app.core, world.platform, "AD", "Admin", admin=True)
    assert (await other_trainer.command("cohort create other")).ok  # any trainer may create a cohort
    assert (await elsewhere.command("cohort create theirs")).ok
    for person in (learner, outsider):
        assert "Only trainers" in await refused(world, lambda p=person: p.command("cohort create mine"))
    channel = world.platform.add_channel("import", ["T1", "N3", "N4"]).id

    start = (await session_row(world, short)).starts_at
    world.clock.set(start - timedelta(minutes=5))
    for template in TRAINER_COMMANDS:
        command = template.format(channel=channel, s=short)
        for person in (learner, other_trainer, outsider, elsewhere):
            answer = await refused(world, lambda p=person, c=command: p.command(c))
            if person is other_trainer:
                assert "You are not a trainer of cohort `py`" in answer, (command, answer)
        reply = await world.trainer.command(command)
        assert reply.ok, (command, reply.text)
        if command == f"session start {short}":
            group_id = await check_actions_while_running(world, learner, other_trainer, outsider, elsewhere)

    await check_questionnaires(world, learner, other_trainer, elsewhere)
    await check_template_form(world, learner, other_trainer, elsewhere)
    # The group's takeaways are closed once the session is over, even for its members.
    assert "is over" in (await learner.click(str(OpenTakeaways(group_id)))).text
    assert (await admin.command("cohort show py")).ok  # a workspace admin acts on every cohort
    assert (await admin.command("cohort add py <@N2>")).ok
    assert (await admin.command("cohort trainers add py <@AD2>")).ok


async def check_actions_while_running(world: World, learner: LocalUser, *others: LocalUser) -> int:
    """Buttons and forms during the session; returns the learner's group id."""
    async with world.app.db.transaction() as tx:
        row = (await tx.exec(select(Member).where(Member.user_id == learner.user_id))).one()
        group_id = (await tx.exec(select(GroupMembership.group_id).where(GroupMembership.member_id == row.id))).one()
        mates = await tx.exec(
            select(Member.user_id)
            .join(GroupMembership, GroupMembership.member_id == Member.id)  # type: ignore[arg-type]
            .where(GroupMembership.group_id == group_id)
        )
        in_group = set(mates.all())
    not_in_group = next(u for u in world.learners if u.user_id not in in_group)
    for person in others:
        await refused(world, lambda p=person: p.click(str(CheckIn("s1"))))
        await refused(world, lambda p=person: p.click(str(PrepDone("s1"))))
    for person in (*others, not_in_group):
        await refused(world, lambda p=person: p.click(str(OpenTakeaways(group_id))))
        await refused(
            world,
            lambda p=person: p.core.handle_form(p.actor, str(SubmitTakeaways(group_id)), {"takeaways": "forged"}),
        )
    assert (await world.trainer.click(str(CheckIn("s1")))).ok is False  # a trainer is not a learner here
    assert (await learner.click(str(CheckIn("s1")))).ok
    assert (await learner.click(str(OpenTakeaways(group_id)))).form is not None
    assert (await world.trainer.click(str(OpenTakeaways(group_id)))).form is not None
    reply = await learner.core.handle_form(learner.actor, str(SubmitTakeaways(group_id)), {"takeaways": "Fixtures"})
    assert reply.ok, reply.text
    return int(group_id)


async def check_template_form(world: World, *others: LocalUser) -> None:
    """The questionnaire editor's form, submitted by someone who may not edit the cohort (a forged form)."""
    async with world.app.db.transaction() as tx:
        cohort_id = (await tx.exec(select(Cohort.id).where(Cohort.name == "py"))).one()
    assert cohort_id is not None
    form = str(SaveQuestionnaire(cohort_id))
    items = {"items": "likert: A\nlikert: B\ntext: C"}
    for person in others:
        await refused(world, lambda p=person: p.core.handle_form(p.actor, form, items))
    assert (await world.trainer.core.handle_form(world.trainer.actor, form, items)).ok


async def check_questionnaires(world: World, learner: LocalUser, *others: LocalUser) -> None:
    await world.app.core.deliver_due()
    async with world.app.db.transaction() as tx:
        delivery = (
            await tx.exec(
                select(Delivery.id)
                .join(Member, Member.id == Delivery.member_id)  # type: ignore[arg-type]
                .where(Member.user_id == learner.user_id, Delivery.kind == "feedback")
            )
        ).one()
    assert delivery is not None
    survey = str(OpenQuestionnaire(Questionnaire.SURVEY, delivery))
    for person in (*others, world.learners[1]):
        await refused(world, lambda p=person: p.click(survey))
        submit = str(SubmitQuestionnaire(Questionnaire.SURVEY, delivery))
        await refused(world, lambda p=person, f=submit: p.core.handle_form(p.actor, f, {"clarity": "5"}))
    assert (await learner.click(survey)).form is not None

"""Dropout alerts: the learners a trainer should reach out to, on demand and once a week, with a friendly
check-in DM the trainer edits before it goes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.actions import CheckIn, Nudge, Questionnaire
from bot.messages import TextField
from storage.models import Cohort, Member
from tests.conftest import World


async def three_sessions(world: World) -> None:
    """Cohort `py`: three sessions held; L1 came to the first only, everyone else to all three."""
    assert (await world.trainer.command(f"cohort create py <#{world.channel_id}|cohort>")).ok
    mentions = " ".join(f"<@{u.user_id}>" for u in world.learners[:4])
    assert (await world.trainer.command(f"cohort add py {mentions}")).ok
    for day in (4, 11, 18):
        reply = await world.trainer.command(f'session plan py "Week {day}" 2026-03-{day:02d} 14:00 1h')
        assert reply.ok, reply.text
        short = reply.extra["session"]
        start = await world.check_in_at_start(short, 0)
        for learner in world.learners[:4]:
            if learner.user_id == "L1" and day != 4:
                continue
            assert (await learner.click(str(CheckIn(short)))).ok
        await world.advance(start)
        await world.advance(start + timedelta(hours=1))
        for learner in world.learners[1:4]:  # the others answer their questionnaire
            form = await learner.open_form(learner.invite(Questionnaire.SURVEY))
            values = {f.field_id: "4" for f in form.fields if f.field_id != "open"}
            assert (await learner.submit(form, values)).ok


async def ids(world: World) -> tuple[int, int]:
    async with world.app.db.transaction() as tx:
        cohort = (await tx.exec(select(Cohort.id).where(Cohort.name == "py"))).one()
        member = (await tx.exec(select(Member.id).where(Member.user_id == "L1"))).one()
    assert cohort is not None and member is not None
    return cohort, member


async def test_the_trainer_sees_who_drifts_and_sends_an_edited_check_in(world: World) -> None:
    await three_sessions(world)
    reply = await world.trainer.command("alerts py")
    assert reply.ok and "<@L1>: absent from the last two sessions" in reply.text, reply.text
    assert "<@L2>" not in reply.text
    cohort, member = await ids(world)
    assert reply.message is not None and [b.action_id for b in reply.message.buttons] == [str(Nudge(cohort, member))]

    form = await world.trainer.open_form(str(Nudge(cohort, member)))
    (field,) = form.fields
    assert isinstance(field, TextField) and "we have missed you" in field.initial
    assert not (await world.learners[1].click(str(Nudge(cohort, member)))).ok  # a learner cannot
    sent = await world.trainer.submit(form, {"message": "Hi Learner 1, shall we talk on Monday?"})
    assert sent.ok and sent.text == "Sent to <@L1>."
    assert [p.message.text for p in world.platform.dms_to("L1")][-1] == "Hi Learner 1, shall we talk on Monday?"
    empty = await world.trainer.submit(form, {"message": "  "})
    assert not empty.ok and empty.extra.get("field") == "message"


async def test_the_weekly_alert_comes_once_a_week(world: World) -> None:
    await three_sessions(world)
    alerts = lambda: [p for p in world.platform.dms_to("T1") if "may be drifting away" in p.message.text]  # noqa: E731
    await world.app.core.sweep()
    await world.app.core.sweep()
    assert len(alerts()) == 1
    assert "<@L1>" in alerts()[0].message.sections[0].text
    world.clock.set(world.clock.now() + timedelta(days=7))
    await world.app.core.sweep()
    assert len(alerts()) == 2  # a new week, still at risk: a new alert


async def test_no_alert_without_a_signal(world: World) -> None:
    assert (await world.trainer.command("cohort create calm")).ok
    reply = await world.trainer.command("alerts calm")
    assert reply.ok and "Nobody in cohort `calm` shows a dropout signal" in reply.text
    await world.app.core.sweep()
    assert not [p for p in world.platform.dms_to("T1") if "drifting" in p.message.text]

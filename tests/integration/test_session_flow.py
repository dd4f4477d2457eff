"""The core's use cases on the local platform, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select

from adapters.local.driver import LocalUser
from bot.core.rules import CHECKIN_OPENS
from storage.models import Attendance, AuditEvent, Delivery, GroupMembership, PeerGroup, PeerSession, PrepAck
from tests.conftest import World

PLAN = 'session plan py "Testing with pytest" 2026-03-04 14:00 1h30m prep="Read the guide" objectives="Fixtures"'


async def plan(world: World, extra: str = "") -> str:
    assert (await world.trainer.command(f"cohort create py <#{world.channel_id}|cohort>")).ok
    mentions = " ".join(f"<@{u.user_id}>={1 + i % 5}" for i, u in enumerate(world.learners))
    assert (await world.trainer.command(f"cohort add py {mentions}")).ok
    reply = await world.trainer.command(f"{PLAN} {extra}".strip())
    assert reply.ok, reply.text
    return reply.extra["session"]


async def session_row(world: World, short: str) -> PeerSession:
    async with world.app.db.transaction() as tx:
        return (await tx.exec(select(PeerSession).where(PeerSession.short_id == short))).one()


async def attend_and_end(world: World) -> tuple[str, LocalUser]:
    """A planned session that the first learner attended, now ended: their questionnaire DM is out."""
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    learner = world.learners[0]
    assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start + timedelta(minutes=90))
    return short, learner


async def count(world: World, model: type, **where: object) -> int:
    async with world.app.db.transaction() as tx:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int((await tx.exec(query)).one())


async def test_plan_is_read_in_the_configured_time_zone(world: World) -> None:
    short = await plan(world)
    row = await session_row(world, short)
    assert row.starts_at.isoformat() == "2026-03-04T13:00:00+00:00"  # 14:00 Europe/Paris (CET)
    assert (row.state, row.duration_minutes, row.format, row.group_size) == ("planned", 90, "groups", 4)


async def test_full_cycle_records_prep_attendance_groups_and_deliveries(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    assert "prep" in await world.advance(start - timedelta(days=1))
    prep_post = world.platform.posts_in(world.channel_id)[-1]
    assert prep_post.message.buttons[0].action_id == f"prep:done:{short}"
    assert (await world.learners[0].click(f"prep:done:{short}")).ok
    assert (await world.learners[1].react(prep_post.ref)).ok  # ✅ on the prep post
    assert (await world.learners[1].click(f"prep:done:{short}")).text.startswith("Your preparation was already")
    assert await count(world, PrepAck) == 2

    assert "prep_reminder" in await world.advance(start - timedelta(hours=2))
    reminded = [u for u in world.learners if world.platform.dms_to(u.user_id)]
    assert len(reminded) == 9  # 12 learners, 2 prepared, L12 has closed DMs

    assert "checkin" in await world.advance(start - CHECKIN_OPENS)
    announce = world.platform.posts_in(world.channel_id)[-1]
    for learner in world.learners[:8]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    assert (await world.learners[8].react(announce.ref)).ok
    assert (await world.learners[9].command("checkin")).ok
    assert (await world.learners[0].click(f"checkin:in:{short}")).text == "You are already checked in."
    assert await count(world, Attendance) == 10

    assert "start" in await world.advance(start)
    async with world.app.db.transaction() as tx:
        groups = (await tx.exec(select(PeerGroup))).all()
        members = (await tx.exec(select(GroupMembership))).all()
    assert len(members) == 10 and all(3 <= sum(m.group_id == g.id for m in members) <= 6 for g in groups)
    breakouts = world.platform.breakouts()
    assert sorted(c.name for c in breakouts) == [
        f"peer-{short}-g{g.number}" for g in sorted(groups, key=lambda g: g.number)
    ]
    for channel in breakouts:
        assert "T1" in channel.members  # the trainer is in every breakout
        intro = world.platform.posts_in(channel.id)[0].message
        assert any("Ground rules" in sec.text for sec in intro.sections)

    world.clock.set(start + timedelta(minutes=12))
    late = await world.learners[10].click(f"checkin:in:{short}")
    assert "marked late" in late.text and "joined group" in late.text
    async with world.app.db.transaction() as tx:
        sizes = [
            len((await tx.exec(select(GroupMembership).where(GroupMembership.group_id == g.id))).all()) for g in groups
        ]
    assert sum(sizes) == 11 and max(sizes) - min(sizes) <= 1

    assert "end" in await world.advance(start + timedelta(minutes=90))
    assert all(c.archived for c in world.platform.breakouts())
    assert (await session_row(world, short)).state == "ended"
    assert await count(world, Delivery, kind="feedback", state="sent") == 11
    assert await count(world, Delivery, kind="feedback", state="undeliverable") == 0
    trainer_dms = world.platform.dms_to("T1")
    assert any(dm.message.text.startswith(f"Summary of `{short}`") for dm in trainer_dms)


async def test_undeliverable_dm_is_recorded_and_the_trainer_told(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start - timedelta(minutes=5))
    await world.advance(start - timedelta(minutes=5))
    assert (await world.learners[11].click(f"checkin:in:{short}")).ok  # L12: DMs closed
    assert (await world.learners[0].click(f"checkin:in:{short}")).ok
    await world.advance(start + timedelta(minutes=90))
    assert await count(world, Delivery, kind="feedback", state="undeliverable") == 1
    assert any("could not reach <@L12>" in dm.message.text for dm in world.platform.dms_to("T1"))


async def test_questionnaire_validation_keeps_first_answers(world: World) -> None:
    _, learner = await attend_and_end(world)
    form = await learner.open_form(learner.dm_button("survey:open:"))
    assert [f.field_id for f in form.fields] == ["clarity", "interactions", "progress", "safety", "focus", "open"]
    good = {"clarity": "5", "interactions": "4", "progress": "4", "safety": "5", "focus": "3", "open": "ok"}
    for bad, message in (
        ({**good, "clarity": "6"}, "from 1 to 5"),
        ({**good, "bogus": "1"}, "not a question"),
        ({"clarity": "4", "open": "x"}, "answer every rated question"),
    ):
        reply = await learner.submit(form, bad)
        assert not reply.ok and message in reply.text
    assert await count(world, AuditEvent, action="feedback.answer") == 0
    assert (await learner.submit(form, good)).ok
    second = await learner.submit(form, {**good, "clarity": "1"})
    assert not second.ok and "already answered" in second.text
    other = world.learners[1]
    stolen = await other.submit(form, good)
    assert not stolen.ok and "not addressed to you" in stolen.text


async def test_per_item_answers_then_quiz_score(world: World) -> None:
    short = await plan(world, "retention=4w")
    for question in ('"2+2?" "4" "5" "3"', '"Capital of France?" "Paris" "Lyon"'):
        assert (await world.trainer.command(f"quiz add {short} {question}")).ok
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    learner = world.learners[0]
    await learner.click(f"checkin:in:{short}")
    await world.advance(start + timedelta(minutes=90))
    delivery = learner.dm_button("survey:open:").split(":")[2]
    assert (await learner.click(f"survey:rate:{delivery}.clarity.4")).ok
    again = await learner.click(f"survey:rate:{delivery}.clarity.2")
    assert not again.ok and "first answer is kept" in again.text
    assert not (await learner.click(f"survey:rate:{delivery}.clarity.9")).ok
    await world.advance(start + timedelta(days=27))
    assert not any("quiz:open" in b.action_id for d in world.platform.dms_to("L1") for b in d.message.buttons)
    await world.advance(start + timedelta(days=28, minutes=90))
    form = await learner.open_form(learner.dm_button("quiz:open:"))
    assert {v for v, _ in form.fields[0].options} == {"0", "1", "2"}  # type: ignore[union-attr]
    reply = await learner.submit(form, {"q1": "0", "q2": "1"})
    assert reply.ok and reply.extra["score"] == "1" and "1/2" in reply.text


async def test_checkin_rules(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start - CHECKIN_OPENS - timedelta(minutes=1))
    early = await world.learners[0].click(f"checkin:in:{short}")
    assert not early.ok and "opens 15 minutes before" in early.text
    world.clock.set(start)
    outsider = await world.user("X9").click(f"checkin:in:{short}")
    assert not outsider.ok and "not enrolled" in outsider.text
    trainer_checkin = await world.trainer.click(f"checkin:in:{short}")
    assert not trainer_checkin.ok
    world.clock.set(start + timedelta(minutes=91))
    closed = await world.learners[0].click(f"checkin:in:{short}")
    assert not closed.ok and "closed" in closed.text
    assert await count(world, Attendance) == 0


async def test_absence_reason_is_kept_with_attendance(world: World) -> None:
    short = await plan(world)
    reply = await world.learners[2].command(f'absent {short} "Sick leave"')
    assert reply.ok
    async with world.app.db.transaction() as tx:
        row = (await tx.exec(select(Attendance))).one()
    assert (row.status, row.absence_reason) == ("excused", "Sick leave")


async def test_bad_input_changes_nothing(world: World) -> None:
    short = await plan(world)
    before = await count(world, AuditEvent)
    cases = {
        'session plan nope "T" 2026-03-04 14:00 1h': "no cohort named `nope`",
        'session plan py "T" 2020-01-01 14:00 1h': "in the past",
        'session plan py "T" 2026-03-04 14:00 0m': "more than 0 and at most 12h",
        'session plan py "T" 2026-03-04 14:00 13h': "more than 0 and at most 12h",
        'session plan py "T" 2026-03-04 14:00 1h size=7': "from 2 to 6",
        'session plan py "T" 2026-03-04 14:00 1h format=lecture': "Unknown format",
        'session plan py "T" 2026-13-04 14:00 1h': "not a date",
        "session show s999": "no session `s999`",
        "cohort add py bob": "not a user mention",
        "cohort add py <@U1>=9": "from 1 to 5",
        "frobnicate": "don't know the command",
    }
    for text, expected in cases.items():
        reply = await world.trainer.command(text)
        assert not reply.ok and expected in reply.text, (text, reply.text)
        assert "/peer" in reply.text, f"no hint for {text!r}: {reply.text}"
    learner = await world.learners[0].command(f"session start {short}")
    assert not learner.ok and "Only trainers" in learner.text
    assert await count(world, AuditEvent) == before
    assert (await session_row(world, short)).state == "planned"


async def test_steps_are_idempotent(world: World) -> None:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start - timedelta(minutes=1))
    for learner in world.learners[:6]:
        await learner.click(f"checkin:in:{short}")
    await world.advance(start)
    await world.advance(start)  # a job firing twice
    assert await count(world, PeerGroup) == 2
    assert len(world.platform.breakouts()) == 2
    assert (await world.core.timeline.start(short, by="test")) == ""


async def test_tutoring_marks_tutors(world: World) -> None:
    await plan(world)
    reply = await world.trainer.command('session plan py "Pairs" 2026-03-05 10:00 1h format=tutoring')
    short = reply.extra["session"]
    start = await world.check_in_at_start(short, 7)
    await world.advance(start)
    async with world.app.db.transaction() as tx:
        roles = [m.role for m in (await tx.exec(select(GroupMembership))).all()]
        groups = (await tx.exec(select(PeerGroup))).all()
    assert len(groups) == 3 and roles.count("tutor") == 3  # 7 learners: two pairs and one trio


async def test_group_move_follows_breakout(world: World) -> None:
    short = await plan(world)
    start = await world.check_in_at_start(short, 8)
    await world.advance(start)
    async with world.app.db.transaction() as tx:
        membership = (await tx.exec(select(GroupMembership).where(GroupMembership.member_id == 2))).one()
        source = await tx.get(PeerGroup, membership.group_id)
    assert source is not None
    target = 2 if source.number == 1 else 1
    mover = world.platform.channels[source.channel_id]
    user_id = next(u for u in sorted(mover.members) if u != "T1")
    reply = await world.trainer.command(f"group move {short} <@{user_id}> {target}")
    assert reply.ok, reply.text
    assert user_id not in world.platform.channels[source.channel_id].members
    target_channel = next(c for c in world.platform.breakouts() if c.name.endswith(f"-g{target}"))
    assert user_id in target_channel.members


async def test_home_shows_next_sessions_and_pending_questionnaires(world: World) -> None:
    short = await plan(world)
    learner = world.learners[0]
    home = await world.core.home(learner.actor)
    assert any(short in sec.text and sec.times for sec in home.sections)  # rendered in the reader's own time
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    await learner.click(f"checkin:in:{short}")
    await world.advance(start + timedelta(minutes=90))
    home = await world.core.home(learner.actor)
    assert [b.action_id.split(":")[0:2] for b in home.buttons] == [["survey", "open"]]
    assert any("1/1 session(s) attended" in sec.text for sec in home.sections)
    form = await learner.open_form(home.buttons[0].action_id)
    await learner.submit(form, {f.field_id: "3" for f in form.fields if f.field_id != "open"})
    assert (await world.core.home(learner.actor)).buttons == ()
    trainer_home = await world.core.home(world.trainer.actor)
    assert any("Trainer" in sec.text for sec in trainer_home.sections)


async def test_open_question_may_follow_the_last_rating(world: World) -> None:
    _, learner = await attend_and_end(world)
    delivery = learner.dm_button("survey:open:").split(":")[2]
    for key in ("clarity", "interactions", "progress", "safety", "focus"):
        assert (await learner.click(f"survey:rate:{delivery}.{key}.4")).ok
    form = await learner.open_form(f"survey:text:{delivery}.open")
    assert [f.field_id for f in form.fields] == ["open"]
    assert (await learner.submit(form, {"open": "More practice"})).ok
    again = await learner.submit(form, {"open": "Changed my mind"})
    assert not again.ok and "first answer is kept" in again.text
    assert not (await learner.click(f"survey:rate:{delivery}.clarity.1")).ok


async def test_suggest_names_for_autocomplete(world: World) -> None:
    short = await plan(world)
    assert await world.core.suggest(world.trainer.actor, "cohort", "P") == ["py"]
    assert await world.core.suggest(world.trainer.actor, "session", "") == [short]
    assert await world.core.suggest(world.trainer.actor, "cohort", "zz") == []


async def test_form_errors_name_the_field_at_fault(world: World) -> None:
    _, learner = await attend_and_end(world)
    form = await learner.open_form(learner.dm_button("survey:open:"))
    values = {f.field_id: "4" for f in form.fields if f.field_id != "open"}
    reply = await learner.submit(form, {**values, "progress": "6"})
    assert not reply.ok and reply.extra == {"field": "progress"}


async def test_the_quiz_shows_each_answer_and_the_report_what_most_missed(world: World) -> None:
    """Retrieval practice: the learner sees the right answer to each question at once; the trainer sees the
    questions most learners got wrong."""
    short = await plan(world)
    for question in ('"2+2?" "4" "5" "3"', '"Capital of France?" "Paris" "Lyon"'):
        assert (await world.trainer.command(f"quiz add {short} {question}")).ok
    start = await world.check_in_at_start(short, 3)
    await world.advance(start)
    await world.advance(start + timedelta(minutes=90))
    await world.advance(start + timedelta(days=14, minutes=90))
    answers = [{"q1": "0", "q2": "1"}, {"q1": "1", "q2": "1"}, {"q1": "0", "q2": "0"}]
    for learner, values in zip(world.learners[:3], answers, strict=True):
        form = await learner.open_form(learner.dm_button("quiz:open:"))
        reply = await learner.submit(form, values)
        assert reply.ok, reply.text
    first = reply.text.splitlines()  # the third learner: both right
    assert first == ["Your score: 2/2.", "✅ 2+2? — 4", "✅ Capital of France? — Paris"], first
    again = await world.learners[1].click(world.learners[1].dm_button("quiz:open:"))
    assert not again.ok and "first answers are kept" in again.text  # the review came with the first
    report = (await world.trainer.command(f"report {short}")).text
    assert "*Most missed in the retention quiz*\n• “Capital of France?”: 2 of 3 wrong\n• “2+2?”: 1 of 3 wrong" in report

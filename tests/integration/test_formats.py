"""The sharing and tutoring formats end to end on the local platform (SQLite and PostgreSQL): the speaking order
and its timer edited in place across a restart, the tutoring agreement with its hash, and the meeting report."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from adapters.local.platform import Posted
from bot import actions
from bot.app import build
from bot.core.formats import MEETING_MINUTES, fingerprint, speaking_order, turn_at
from bot.documents.learner import learner_file_pdf, learner_files
from bot.documents.pack import indicators, session_figures
from bot.documents.sheet import attendance_sheet
from bot.documents.verify import check
from bot.reports import collect, csv_files
from storage.models import AuditEvent, PeerGroup, TutoringAgreement
from tests.conftest import World, make_settings
from tests.integration.conftest import pdf_text
from tests.integration.test_session_flow import plan, session_row


def timers(world: World, channel_id: str) -> list[Posted]:
    return [p for p in world.platform.posts_in(channel_id) if p.message.text == "🎙️ Speaking order"]


async def sharing_session(world: World) -> tuple[str, datetime]:
    await plan(world)
    reply = await world.trainer.command('session plan py "Share" 2026-03-05 10:00 1h format=sharing size=4')
    assert reply.ok, reply.text
    short = reply.extra["session"]
    start = await world.check_in_at_start(short, 8)
    await world.advance(start)
    return short, start


def test_turns_share_the_time_until_the_wrap_up() -> None:
    t0 = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    until = t0 + timedelta(minutes=40)
    assert turn_at(t0, until, 4, t0) == turn_at(t0, until, 4, t0 + timedelta(seconds=30))
    assert turn_at(t0, until, 4, t0).index == 0 and turn_at(t0, until, 4, t0).left == 10
    assert turn_at(t0, until, 4, t0 + timedelta(minutes=3)).left == 8  # rounded up to the 2-minute step
    assert turn_at(t0, until, 4, t0 + timedelta(minutes=10)).index == 1
    assert turn_at(t0, until, 4, until).index == 4  # time is up
    assert turn_at(t0, t0, 3, t0).index == 3  # a group formed after the wrap-up has no time left
    assert speaking_order([5, 1, 9], 7) == speaking_order([9, 5, 1], 7)  # the same after a restart


async def test_sharing_posts_one_timer_per_group_and_edits_it_as_turns_go(world: World) -> None:
    short, start = await sharing_session(world)
    breakouts = world.platform.breakouts()
    assert len(breakouts) == 2
    for channel in breakouts:
        [timer] = timers(world, channel.id)
        lines = timer.message.sections[0].text.splitlines()
        assert len(lines) == 4 and "speaking now, about 12 min left" in lines[0]  # 50 min to the wrap-up / 4
    channel = breakouts[0]
    await world.advance(start + timedelta(seconds=50))
    assert timers(world, channel.id)[0].edits == 0  # nothing to show yet: no edit
    await world.advance(start + timedelta(minutes=13))
    [timer] = timers(world, channel.id)
    assert timer.edits == 1
    assert "— done" in timer.message.sections[0].text.splitlines()[0]
    assert "speaking now" in timer.message.sections[0].text.splitlines()[1]

    # A restart: the new process continues the same message, never a second one.
    restarted = await build(
        make_settings(world.app.settings.database_url),
        {"local": world.platform},
        clock=world.clock,
        with_scheduler=False,
    )
    try:
        world.clock.set(start + timedelta(minutes=26))
        await restarted.core.sweep()
        await restarted.core.sweep()
    finally:
        await restarted.close()
    [timer] = timers(world, channel.id)
    assert timer.edits == 2 and "speaking now" in timer.message.sections[0].text.splitlines()[2]

    # The wrap-up shows that time is up, above the takeaways prompt.
    await world.advance(start + timedelta(minutes=50))
    [timer] = timers(world, channel.id)
    assert "Time is up" in timer.message.sections[1].text
    assert any(
        b.action_id.startswith("takeaways:open:")
        for p in world.platform.posts_in(channel.id)
        for b in p.message.buttons
    )
    await world.advance(start + timedelta(minutes=60))  # ended: archived breakouts are not edited
    assert timers(world, channel.id)[0].edits == timer.edits
    assert (await session_row(world, short)).state == "ended"


async def test_a_timer_claimed_by_a_crashed_post_is_never_posted_twice(world: World) -> None:
    _short, start = await sharing_session(world)
    async with world.app.db.transaction() as tx:
        group = (await tx.exec(select(PeerGroup).order_by(PeerGroup.number))).first()  # type: ignore[arg-type]
        assert group is not None
        group.format_message_id = "claimed"  # the process stopped between the claim and the post
        channel_id = group.channel_id
    for post in timers(world, channel_id):
        del world.platform.messages[post.ref.id]
    await world.advance(start + timedelta(minutes=15))
    assert timers(world, channel_id) == []


async def tutoring_session(world: World) -> tuple[str, datetime]:
    await plan(world)
    reply = await world.trainer.command(
        'session plan py "Pairs" 2026-03-05 10:00 1h format=tutoring objectives="Solve exercise 3 together"'
    )
    assert reply.ok, reply.text
    short = reply.extra["session"]
    start = await world.check_in_at_start(short, 4)
    await world.advance(start)
    return short, start


async def test_tutoring_pairs_accept_their_objectives_and_report_their_meeting(world: World) -> None:
    short, start = await tutoring_session(world)
    breakouts = world.platform.breakouts()
    assert len(breakouts) == 2
    pair = breakouts[0]
    [agreement] = [
        p
        for p in world.platform.posts_in(pair.id)
        if p.message.buttons and "tutoring" in p.message.buttons[0].action_id
    ]
    shown = agreement.message.sections[0].text
    assert "Solve exercise 3 together" in shown and fingerprint(shown)[:16] in agreement.message.sections[1].text
    button = agreement.message.buttons[0].action_id
    first, second = (world.user(u) for u in sorted(pair.members - {"T1"}))
    outsider = world.user(next(u for u in sorted(breakouts[1].members) if u != "T1"))

    refused = await outsider.click(button)
    assert not refused.ok and "Only the members of this pair" in refused.text
    reply = await first.click(button)
    assert reply.ok and fingerprint(shown)[:16] in reply.text
    assert "already" in (await first.click(button)).text
    assert (await second.click(button)).ok
    assert any("Everyone in this pair has accepted" in p.message.text for p in world.platform.posts_in(pair.id))
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(TutoringAgreement))).all()
    assert (
        len(rows) == 2 and {r.text_sha256 for r in rows} == {fingerprint(shown)} and {r.text for r in rows} == {shown}
    )
    assert all(r.accepted_at == start for r in rows)

    # The end asks each member, by DM, whether the pair met and for how long.
    await world.advance(start + timedelta(hours=1))
    question = world.platform.dms_to(first.user_id)[-1]
    assert [b.action_id.rsplit(".", 1)[1] for b in question.message.buttons] == [str(m) for m in MEETING_MINUTES]
    assert (await first.click(question.message.buttons[4].action_id)).text.startswith("Noted: your pair met for 60 min")
    late = await first.click(question.message.buttons[3].action_id)  # changed their mind: the last answer counts
    assert late.ok
    nope = world.platform.dms_to(second.user_id)[-1].message.buttons[0].action_id
    assert "did not meet" in (await second.click(nope)).text
    assert not (await first.click(str(actions.ReportMeeting(0, 30)))).ok  # a forged id

    report = await world.trainer.command(f"report {short}")
    assert "*Tutoring agreements*" in report.text
    assert f"<@{first.user_id}>: accepted" in report.text and "met 45 min" in report.text
    assert "did not meet" in report.text and "not accepted" in report.text  # the other pair never accepted
    async with world.app.db.transaction() as tx:
        audit = (await tx.exec(select(AuditEvent).where(AuditEvent.action == "tutoring.met"))).all()
    assert len(audit) == 3
    [checked] = await check(world.app.db, [short])
    assert checked.verdict.ok and checked.verdict.links >= 4 + 2 + 3  # check-ins, acceptances, reports chained


async def test_tutoring_in_french_and_after_the_end(world: World) -> None:
    _short, start = await tutoring_session(world)
    pair = world.platform.breakouts()[0]
    button = next(
        p
        for p in world.platform.posts_in(pair.id)
        if p.message.buttons and "tutoring" in p.message.buttons[0].action_id
    )
    member = world.user(sorted(pair.members - {"T1"})[0])
    await world.advance(start + timedelta(hours=1))
    refused = await world.core.handle_action(replace(member.actor, locale="fr"), button.message.buttons[0].action_id)
    assert not refused.ok and "est terminée" in refused.text


async def test_a_sharing_session_ended_early_shows_time_is_up(world: World) -> None:
    short, start = await sharing_session(world)
    world.clock.set(start + timedelta(minutes=5))
    assert (await world.trainer.command(f"session end {short}")).ok
    for channel in world.platform.breakouts():
        [timer] = timers(world, channel.id)
        assert "Time is up" in timer.message.sections[1].text and "speaking now" not in timer.message.sections[0].text


async def test_the_learner_file_and_the_audit_pack_show_the_tutoring_agreements(world: World) -> None:
    """Evidence of a tutoring session: each pair member's role, the objectives they accepted (the shown text's
    fingerprint) and the meeting they reported, in tutoring.csv, their learner file and the pack's index."""
    short, start = await tutoring_session(world)
    pair = world.platform.breakouts()[0]
    [agreement] = [
        p
        for p in world.platform.posts_in(pair.id)
        if p.message.buttons and "tutoring" in p.message.buttons[0].action_id
    ]
    first, second = (world.user(u) for u in sorted(pair.members - {"T1"}))
    assert (await first.click(agreement.message.buttons[0].action_id)).ok
    await world.advance(start + timedelta(hours=1))
    question = world.platform.dms_to(first.user_id)[-1]
    assert (await first.click(question.message.buttons[4].action_id)).ok  # 60 min
    evidence = await collect(world.app.db, [short])
    rows = {r["learner_id"]: r for r in evidence.tutoring}
    assert len(rows) == 4 and {r["role"] for r in rows.values()} == {"tutor", "tutee"}
    mine, theirs = rows[first.user_id], rows[second.user_id]
    assert (mine["accepted"], mine["met"], mine["met_minutes"]) == ("yes", "yes", "60")
    assert mine["objectives_sha256"] == fingerprint(agreement.message.sections[0].text)
    assert (theirs["accepted"], theirs["met"]) == ("no", "")
    assert "csv/tutoring.csv" not in csv_files(evidence) and "tutoring.csv" in csv_files(evidence)
    sheet = await attendance_sheet(world.app.db, world.app.settings, short)
    files = {f.learner_id: f for f in learner_files([sheet], evidence)}
    text = pdf_text(learner_file_pdf(files[first.user_id], "en"))
    assert "objectives accepted (text fingerprint " + mine["objectives_sha256"][:16] in text
    assert "met for 60 min" in text
    assert "objectives not accepted; meeting not reported" in pdf_text(learner_file_pdf(files[second.user_id], "en"))
    figures = [await session_figures(world.app.db, world.app.settings, short, chain_ok=True)]
    listed = {i.number: i.files for i in indicators(figures, "en", None, list(files.values()))}
    assert "csv/tutoring.csv" in listed[11] and "csv/reviews.csv" not in listed[11]

"""The peer review format end to end on the local platform (SQLite and PostgreSQL): work handed in before the
start, reviewers assigned at the start, rubric forms, reminders at the wrap-up, feedback at the end, the report."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from sqlmodel import select

from adapters.local.driver import LocalUser
from bot import actions
from bot.documents.learner import learner_file_pdf, learner_files
from bot.documents.pack import indicators, session_figures
from bot.documents.sheet import attendance_sheet
from bot.documents.verify import check
from bot.reports import collect, csv_files
from storage.models import AuditEvent, Delivery, Member, ReviewAssignment, WorkSubmission
from tests.conftest import World
from tests.integration.conftest import pdf_text
from tests.integration.test_session_flow import plan, session_row


async def review_session(world: World, extra: str = "") -> str:
    await plan(world)
    reply = await world.trainer.command(
        f'session plan py "Essays" 2026-03-05 10:00 1h format=review groups_from=enrolled {extra}'.strip()
    )
    assert reply.ok, reply.text
    assert "/peer submit" in reply.text
    return str(reply.extra["session"])


async def hand_in(learner: LocalUser, short: str, text: str) -> None:
    form = await learner.open_form(actions.OpenWork(short))
    assert form.form_id == f"review:hand:{short}"
    reply = await learner.submit(form, {"work": text})
    assert reply.ok, reply.text


def review_buttons(world: World, user: LocalUser) -> list[str]:
    return [
        b.action_id
        for p in world.platform.dms_to(user.user_id)
        for b in p.message.buttons
        if b.action_id.startswith("review:open:")
    ]


async def test_peer_review_from_work_to_feedback(world: World) -> None:
    short = await review_session(world)
    criteria = await world.trainer.command(f'review criteria {short} "Clarity" "Evidence"')
    assert criteria.ok and "Clarity; Evidence" in criteria.text
    writers = world.learners[:5]
    assert (await world.trainer.command(f"cohort apart py <@{writers[0].user_id}> <@{writers[1].user_id}>")).ok
    for i, learner in enumerate(writers):
        await hand_in(learner, short, f"Essay {i} https://example.org/{i}")
    await hand_in(writers[0], short, "Essay 0, second draft")  # handing in again replaces it
    assert not (await writers[1].submit(await writers[1].open_form(actions.OpenWork(short)), {"work": " "})).ok
    slash = await writers[2].command(f"submit {short}")
    assert slash.form is not None and slash.form.fields[0].initial == "Essay 2 https://example.org/2"

    start = (await session_row(world, short)).starts_at
    await world.advance(start)
    late = await writers[4].command(f"submit {short}")
    assert not late.ok and "due by its start" in late.text
    async with world.app.db.transaction() as tx:
        works = {w.id: w for w in (await tx.exec(select(WorkSubmission))).all()}
        rows = (await tx.exec(select(ReviewAssignment))).all()
    assert len(works) == 5 and len(rows) == 10  # two reviewers each
    assert {w.content for w in works.values()} >= {"Essay 0, second draft"}
    load: dict[int, int] = {}
    for row in rows:
        load[row.reviewer_id] = load.get(row.reviewer_id, 0) + 1
        assert works[row.submission_id].member_id != row.reviewer_id
    assert set(load.values()) == {2}

    # Each reviewer got one DM per work, anonymous, with the work quoted and a Review button.
    first = writers[0]
    buttons = review_buttons(world, first)
    assert len(buttons) == 2
    dm = next(p for p in world.platform.dms_to(first.user_id) if p.message.buttons[0].action_id == buttons[0])
    assert "they will not know it was you" in dm.message.text and dm.message.sections[0].text.startswith("> Essay")
    form = await first.open_form(buttons[0])
    assert [f.field_id for f in form.fields] == ["c1", "c2", "comment"] and "Clarity" in form.fields[0].label
    bad = await first.submit(form, {"c1": "5", "c2": "3", "comment": "ok"})
    assert not bad.ok and bad.extra == {"field": "c1"}
    assert (await first.submit(form, {"c1": "4", "c2": "3", "comment": "Clear and well argued"})).ok
    again = await first.submit(form, {"c1": "4", "c2": "3", "comment": "again"})
    assert not again.ok and "already sent" in again.text
    stranger = await world.learners[6].click(buttons[1])
    assert not stranger.ok and "someone else" in stranger.text
    second = await first.open_form(buttons[1])
    assert (await first.submit(second, {"c1": "3", "c2": "3", "comment": "Fine"})).ok

    # Everyone but one reviewer answers; one review is far from the others.
    for learner in writers[1:]:
        for number, button in enumerate(review_buttons(world, learner)):
            if learner is writers[4] and number == 1:
                continue  # late
            score = "1" if learner is writers[3] and number == 0 else "3"
            reply = await learner.submit(await learner.open_form(button), {"c1": score, "c2": score, "comment": "Fine"})
            assert reply.ok, reply.text

    # The wrap-up reminds the late reviewer only.
    await world.advance(start + timedelta(minutes=50))
    reminders = [p for p in world.platform.dms_to(writers[4].user_id) if p.message.text.startswith("⏰")]
    assert len(reminders) == 1
    assert not any(p.message.text.startswith("⏰") for p in world.platform.dms_to(first.user_id))

    # The end sends each author the aggregated feedback.
    await world.advance(start + timedelta(hours=1))
    feedback = [p for p in world.platform.dms_to(writers[2].user_id) if p.message.text.startswith("📬")]
    assert len(feedback) == 1 and "review(s)" in feedback[0].message.text
    assert "Clarity:" in feedback[0].message.sections[0].text and "Evidence:" in feedback[0].message.sections[0].text
    assert "<@" not in feedback[0].message.sections[1].text  # anonymous

    report = await world.trainer.command(f"report {short}")
    assert (
        "*Peer review*" in report.text
        and "5 of 12 learner(s) handed in their work; 9 of 10 review(s) done" in report.text
    )
    assert "Outlier:" in report.text and f"Reviews missing from: <@{writers[4].user_id}>" in report.text

    # Apart partners never review each other; the records are chained.
    async with world.app.db.transaction() as tx:
        apart = {
            m.id for m in (await tx.exec(select(Member))).all() if m.user_id in {writers[0].user_id, writers[1].user_id}
        }
        rows = (await tx.exec(select(ReviewAssignment))).all()
        deliveries = (await tx.exec(select(Delivery).where(Delivery.kind == "review_request"))).all()
    assert len(apart) == 2 and all({works[r.submission_id].member_id, r.reviewer_id} != apart for r in rows)
    assert len(deliveries) == 10
    submitted = [json.loads(r.scores_json) for r in rows if r.reviewed_at]
    assert len(submitted) == 9 and all(len(s) == 2 for s in submitted)
    [checked] = await check(world.app.db, [short])
    assert checked.verdict.ok


async def test_named_reviews_and_refusals(world: World) -> None:
    short = await review_session(world, "reviewers=1 named=yes")
    assert not (await world.learners[0].command(f'review criteria {short} "x"')).ok  # a trainer command
    refused = await world.trainer.command(f'review criteria {short} "a" "b" "c" "d" "e"')
    assert not refused.ok and "At most 4" in refused.text
    wrong = await world.trainer.command('session plan py "X" 2026-03-06 10:00 1h reviewers=2')
    assert not wrong.ok and "format=review" in wrong.text
    other = await world.trainer.command('session plan py "Groups" 2026-03-06 10:00 1h')
    not_review = await world.learners[0].command(f"submit {other.extra['session']}")
    assert not not_review.ok and "not a peer review session" in not_review.text
    for learner in world.learners[:2]:
        await hand_in(learner, short, f"Work of {learner.user_id}")
    start = (await session_row(world, short)).starts_at
    await world.advance(start)
    dm = next(
        p
        for p in world.platform.dms_to(world.learners[0].user_id)
        if p.message.buttons and "review:open" in p.message.buttons[0].action_id
    )
    assert f"<@{world.learners[1].user_id}>'s work" in dm.message.text  # named
    form = await world.learners[0].open_form(dm.message.buttons[0].action_id)
    assert [f.field_id for f in form.fields] == ["c1", "comment"]  # the default criterion
    assert (await world.learners[0].submit(form, {"c1": "2", "comment": "Good start"})).ok
    fr = replace(world.learners[0].actor, locale="fr")
    again = await world.core.handle_form(fr, form.form_id, {"c1": "2", "comment": "x"})
    assert not again.ok and "déjà" in again.text
    await world.advance(start + timedelta(hours=1))
    feedback = [p for p in world.platform.dms_to(world.learners[1].user_id) if p.message.text.startswith("📬")]
    assert f"<@{world.learners[0].user_id}>: Good start" in feedback[0].message.sections[1].text


async def test_mydata_shows_and_erasure_clears_the_formats_free_text(world: World) -> None:
    short = await review_session(world, "reviewers=1")
    author, reviewer = world.learners[:2]
    await hand_in(author, short, "My essay on fixtures")
    await hand_in(reviewer, short, "Another essay")
    await world.advance((await session_row(world, short)).starts_at)
    button = review_buttons(world, reviewer)[0]
    assert (await reviewer.submit(await reviewer.open_form(button), {"c1": "3", "comment": "Nice scoping"})).ok
    await reviewer.command("mydata")
    mydata = world.platform.dms_to(reviewer.user_id)[-1].message.text
    assert "work for `s2`: Another essay" in mydata and "review given for `s2`: Nice scoping" in mydata

    erased = await world.core.privacy.erase_member("local", reviewer.user_id)
    assert erased is not None and erased.answers == 2
    async with world.app.db.transaction() as tx:
        texts = [w.content for w in (await tx.exec(select(WorkSubmission))).all()]
        comments = [r.comment for r in (await tx.exec(select(ReviewAssignment))).all()]
    assert sorted(texts) == ["", "My essay on fixtures"] and comments == ["", ""]
    [checked] = await check(world.app.db, [short])
    assert checked.verdict.ok  # cleared through the ORM: the chain holds the cleared versions


async def test_nothing_handed_in_assigns_nothing_once(world: World) -> None:
    short = await review_session(world)
    start = (await session_row(world, short)).starts_at
    await world.advance(start)
    await world.advance(start + timedelta(minutes=5))
    async with world.app.db.transaction() as tx:
        marks = (await tx.exec(select(AuditEvent).where(AuditEvent.action == "review.assign"))).all()
    assert len(marks) == 1 and '"reviews": 0' in marks[0].detail
    report = await world.trainer.command(f"report {short}")
    assert "0 of 12 learner(s) handed in their work; 0 of 0 review(s) done" in report.text


async def test_the_learner_file_and_the_audit_pack_show_the_peer_review(world: World) -> None:
    """Evidence of a peer-review session: who handed in work, reviews received (count, mean of the scores) and
    given, in reviews.csv, in each learner's file and under indicators 11 and 12 of the audit pack."""
    short = await review_session(world)
    writers = world.learners[:3]
    for i, learner in enumerate(writers):
        await hand_in(learner, short, f"Essay {i}")
    start = (await session_row(world, short)).starts_at
    await world.advance(start)
    for button in review_buttons(world, writers[0]):  # only the first writer reviews: both works they got
        form = await writers[0].open_form(button)
        values = {f.field_id: "4" for f in form.fields if f.field_id != "comment"}
        assert (await writers[0].submit(form, {**values, "comment": "Private words"})).ok
    evidence = await collect(world.app.db, [short])
    rows = {r["learner_id"]: r for r in evidence.reviews}
    assert set(rows) == {u.user_id for u in writers}
    first = rows[writers[0].user_id]
    assert (first["handed_in"], first["reviews_given"], first["reviews_assigned"]) == ("yes", "2", "2")
    assert first["reviews_received"] == "0" and first["mean_score_received"] == ""
    others = [rows[u.user_id] for u in writers[1:]]
    assert sum(int(r["reviews_received"]) for r in others) == 2
    assert {r["mean_score_received"] for r in others if r["reviews_received"] == "1"} == {"4.00"}
    assert "Private words" not in csv_files(evidence)["reviews.csv"].decode()
    sheet = await attendance_sheet(world.app.db, world.app.settings, short)
    files = {f.learner_id: f for f in learner_files([sheet], evidence)}
    text = pdf_text(learner_file_pdf(files[writers[0].user_id], "en"))
    assert "Tutoring and peer review" in text and "0 review(s) received" in text and "2 of 2 review(s) given" in text
    french = pdf_text(learner_file_pdf(files[writers[0].user_id], "fr"))
    assert "Tutorat et évaluation par les pairs" in french and "travail rendu" in french
    figures = [await session_figures(world.app.db, world.app.settings, short, chain_ok=True)]
    listed = {i.number: i.files for i in indicators(figures, "en", None, list(files.values()))}
    assert "csv/reviews.csv" in listed[11] and "csv/reviews.csv" in listed[12]
    assert "csv/tutoring.csv" not in listed[11]

"""Read-only views: a person's overview (Slack App Home), autocomplete suggestions (Discord) and the
one-screen summary of a session that `/peer session show`, the end-of-session summary and the report
all print. Nothing here changes state, so any other concern can build on it.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import queries, rules
from bot.core.context import Context
from bot.core.rules import AttendanceStatus, DeliveryKind, DeliveryState, SessionState
from bot.i18n import SESSION_STATES, label, t
from bot.inbound import Actor
from bot.messages import Button, ButtonStyle, Message, Section
from storage.models import (
    Answer,
    Attendance,
    Cohort,
    Delivery,
    Enrollment,
    PeerSession,
    PrepAck,
    QuestionnaireItem,
    Submission,
)

QUESTIONNAIRES = ("feedback", "retention", "retention2", "followup", "observation")  # DMs answered by a form


class Views:
    """What a person or a trainer sees of their sessions."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def home(self, actor: Actor) -> Message:
        """A person's overview (Slack App Home): upcoming sessions in their own time, attendance and pending
        questionnaires; a trainer also sees their cohorts and sessions."""
        now = self.ctx.clock.now()
        sections: list[Section] = []
        buttons: list[Button] = []
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            member = await queries.actor_member(tx, actor)
            workspace = await queries.workspace(tx, actor)
            rows = await tx.exec(
                select(PeerSession, Enrollment)
                .join(Enrollment, col(Enrollment.cohort_id) == col(PeerSession.cohort_id))
                .join(Cohort, col(Cohort.id) == col(PeerSession.cohort_id))
                .where(Enrollment.member_id == member.id, Cohort.workspace_id == workspace.id)
                .order_by(col(PeerSession.starts_at))
            )
            mine = list(rows.all())
            attendance = {
                a.session_id: a
                for a in (await tx.exec(select(Attendance).where(Attendance.member_id == member.id))).all()
            }
            pending = (
                await tx.exec(
                    select(Delivery, PeerSession)
                    .join(PeerSession, col(PeerSession.id) == col(Delivery.session_id))
                    .where(
                        Delivery.member_id == member.id,
                        col(Delivery.kind).in_(QUESTIONNAIRES),
                        Delivery.state == DeliveryState.SENT,
                    )
                )
            ).all()
            whose = {member.id, *(d.subject_id for d, _p in pending if d.subject_id is not None)}
            answered = {
                (sub.session_id, sub.kind, sub.member_id)
                for sub in (
                    await tx.exec(
                        select(Submission).where(
                            col(Submission.member_id).in_(whose),
                            Submission.completed == True,  # noqa: E712
                        )
                    )
                ).all()
            }
        upcoming = [(p, e) for p, e in mine if p.state in rules.UPCOMING and rules.end_of(p) > now]
        if upcoming:
            sections.append(Section(t(locale, "*Your next sessions*")))
            for p, e in upcoming[:10]:
                stamp = self.ctx.stamp(p.starts_at)
                text = (
                    t(locale, "`{session}` {title} (trainer) — {0}", stamp, session=p.short_id, title=p.title)
                    if e.role == "trainer"
                    else t(locale, "`{session}` {title} — {0}", stamp, session=p.short_id, title=p.title)
                )
                sections.append(Section(text, (stamp,)))
        else:
            sections.append(Section(t(locale, "No upcoming session.")))
        past = [(p, attendance.get(p.id or 0)) for p, e in mine if e.role == "learner" and p.started_at is not None]
        if past:
            present = sum(1 for _p, a in past if a is not None and a.status in rules.PRESENT)
            sections.append(
                Section(
                    t(
                        locale,
                        "*Your attendance*: {present}/{total} session(s) attended",
                        present=present,
                        total=len(past),
                    )
                )
            )
        todo = [
            (d, p)
            for d, p in pending
            if (p.id, rules.submission_kind(d.kind), d.subject_id or member.id) not in answered
        ]
        todo = [(d, p) for d, p in todo if d.kind != DeliveryKind.FEEDBACK or p.state != SessionState.CLOSED]
        if todo:
            sections.append(Section(t(locale, "*Questionnaires waiting for you*")))
            for delivery, p in todo[:10]:
                questionnaire = actions.Questionnaire.of_kind(delivery.kind)
                text = (
                    t(locale, "Retention quiz: {title}", title=p.title)
                    if questionnaire is actions.Questionnaire.QUIZ
                    else t(locale, "Follow-up: {title}", title=p.title)
                    if questionnaire is actions.Questionnaire.FOLLOWUP
                    else t(locale, "Feedback: {title}", title=p.title)
                )
                sections.append(Section(text))
                action = actions.OpenQuestionnaire(questionnaire, delivery.id or 0)
                buttons.append(Button(str(action), text[:75], ButtonStyle.PRIMARY))
        if actor.is_trainer:
            trained = [(p, e) for p, e in mine if e.role == "trainer"]
            cohorts = sorted({p.cohort_id for p, _e in trained})
            sections.append(
                Section(
                    t(
                        locale,
                        "*Trainer*: {cohorts} cohort(s), {sessions} session(s)",
                        cohorts=len(cohorts),
                        sessions=len(trained),
                    )
                )
            )
            for p, _e in trained[-10:]:
                stamp = self.ctx.stamp(p.starts_at)
                text = t(
                    locale,
                    "`{session}` {title} — {state}, {0}",
                    stamp,
                    session=p.short_id,
                    title=p.title,
                    state=label(locale, SESSION_STATES, p.state),
                )
                sections.append(Section(text, (stamp,)))
            sections.append(Section(t(locale, "Type `/peer help` for the commands.")))
        return Message("peerbot", sections=tuple(sections), buttons=tuple(buttons))

    async def suggest(self, actor: Actor, kind: str, prefix: str) -> list[str]:
        """Names for autocomplete (Discord): the actor's cohorts, or their workspace's open sessions."""
        prefix = prefix.strip().lower()
        async with self.ctx.db.transaction() as tx:
            workspace = await queries.workspace(tx, actor)
            if kind == "cohort":
                names = (await tx.exec(select(Cohort.name).where(Cohort.workspace_id == workspace.id))).all()
            else:
                names = (
                    await tx.exec(
                        select(PeerSession.short_id)
                        .join(Cohort, col(Cohort.id) == col(PeerSession.cohort_id))
                        .where(Cohort.workspace_id == workspace.id, col(PeerSession.state).in_(rules.ACTIVE))
                        .order_by(col(PeerSession.starts_at))
                    )
                ).all()
        return [n for n in names if n.startswith(prefix)][:25]

    async def describe_session(self, actor: Actor | None, short_id: str, locale: str = "") -> str:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, short_id)
            return await self.describe(tx, peer_session, locale or self.ctx.settings.locale)

    async def describe(self, tx: AsyncSession, peer_session: PeerSession, locale: str) -> str:
        """The one-screen summary of a session: `/peer session show`, the trainer's end summary, the report."""
        assert peer_session.id is not None
        learners = await queries.learners(tx, peer_session.cohort_id)
        attendance = {
            a.member_id: a
            for a in (await tx.exec(select(Attendance).where(Attendance.session_id == peer_session.id))).all()
        }
        prepped = {
            p.member_id for p in (await tx.exec(select(PrepAck).where(PrepAck.session_id == peer_session.id))).all()
        }
        groups = await queries.groups(tx, peer_session.id)
        lines = [
            t(
                locale,
                "*`{session}` {title}* — {start}, {minutes} min, {format}, state *{state}*",
                session=peer_session.short_id,
                title=peer_session.title,
                start=self.ctx.fallback(peer_session.starts_at),
                minutes=peer_session.duration_minutes,
                format=peer_session.format,
                state=label(locale, SESSION_STATES, peer_session.state),
            )
        ]
        if peer_session.objectives:
            lines.append(t(locale, "Objectives: {objectives}", objectives=peer_session.objectives))
        present = [m for _e, m in learners if m.id in attendance and attendance[m.id].status in rules.PRESENT]
        lines.append(
            t(
                locale,
                "Enrolled {enrolled} · prepared {prepared} · checked in {present} (late {late}) · excused {excused}",
                enrolled=len(learners),
                prepared=len(prepped),
                present=len(present),
                late=sum(1 for a in attendance.values() if a.status == AttendanceStatus.LATE),
                excused=sum(1 for a in attendance.values() if a.status == AttendanceStatus.EXCUSED),
            )
        )
        for group, members in groups:
            lines.append(
                t(
                    locale,
                    "Group {number}: {names} (level spread {spread}, repeated pairs {repeated})",
                    number=group.number,
                    names=", ".join(f"<@{m.user_id}>" for m, _role in members),
                    spread=group.level_spread,
                    repeated=group.repeated_pairs,
                )
            )
        grouped = {m.id for _g, members in groups for m, _role in members}
        waiting = [m for m in present if m.id not in grouped]
        if waiting and peer_session.state == SessionState.RUNNING:
            lines.append(
                t(
                    locale,
                    "Waiting for a group: {names}",
                    names=", ".join(f"<@{m.user_id}>" for m in waiting),
                )
            )
        return "\n".join(lines)

    async def missed_questions(self, tx: AsyncSession, peer_session: PeerSession, locale: str) -> list[str]:
        """The retention questions most learners got wrong, worst first: what to go over again."""
        rows = await tx.exec(
            select(QuestionnaireItem.text, Answer.correct)
            .join(Answer, col(Answer.item_id) == col(QuestionnaireItem.id))
            .join(Submission, col(Submission.id) == col(Answer.submission_id))
            .where(
                QuestionnaireItem.session_id == peer_session.id,
                QuestionnaireItem.kind == "retention",
                Submission.kind == "retention",  # the first round: the second re-asks what each one missed
                col(Submission.completed).is_(True),
            )
        )
        tally: dict[str, list[int]] = {}
        for question, correct in rows.all():
            wrong_total = tally.setdefault(question, [0, 0])
            wrong_total[0] += 0 if correct else 1
            wrong_total[1] += 1
        worst = sorted(((w, n, q) for q, (w, n) in tally.items() if w), key=lambda x: (-x[0] / x[1], x[2]))[:3]
        if not worst:
            return []
        return [t(locale, "*Most missed in the retention quiz*")] + [
            t(locale, "• “{question}”: {wrong} of {total} wrong", question=q, wrong=w, total=n) for w, n, q in worst
        ]

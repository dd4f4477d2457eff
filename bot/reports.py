"""Evidence for quality audits (Qualiopi): attendance, feedback and retention, one row per learner per session."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import mean
from typing import TYPE_CHECKING

from babel.numbers import get_decimal_symbol
from sqlmodel import col, select

from bot.i18n import ATTENDANCE_STATUSES, N_, QUESTIONNAIRE_KINDS, ROLES, label, t
from bot.refs import UserRef
from storage.models import (
    Answer,
    Attendance,
    Cohort,
    Delivery,
    Enrollment,
    GroupMembership,
    Member,
    PeerGroup,
    PeerSession,
    PrepAck,
    QuestionnaireItem,
    SessionNote,
    Submission,
)

if TYPE_CHECKING:
    from bot.core.views import Views
    from storage.db import Database

ATTENDANCE_COLUMNS = [
    "session",
    "title",
    "starts_at",
    "learner_id",
    "learner",
    "level",
    "prepared",
    "status",
    "checked_in_at",
    "method",
    "absence_reason",
    "group",
]
FEEDBACK_KEYS = ["clarity", "interactions", "progress", "safety", "focus", "open"]
# The short names of the ratings in a report; English keeps the CSV column names.
FEEDBACK_NAMES = {
    "clarity": N_("clarity"),
    "interactions": N_("interactions"),
    "progress": N_("progress"),
    "safety": N_("safety"),
    "focus": N_("focus"),
}
FEEDBACK_COLUMNS = ["session", "title", "learner_id", "learner", "delivery", "answered", "submitted_at", *FEEDBACK_KEYS]
RETENTION_COLUMNS = ["session", "title", "learner_id", "learner", "delivery", "answered", "score", "max_score"]


@dataclass
class Evidence:
    attendance: list[dict[str, str]]
    feedback: list[dict[str, str]]
    retention: list[dict[str, str]]


async def collect(db: Database, short_ids: list[str] | None = None) -> Evidence:
    """All rows for the given sessions (all sessions when None), ordered by session then learner."""
    evidence = Evidence([], [], [])
    async with db.transaction() as s:
        query = select(PeerSession).order_by(col(PeerSession.starts_at), col(PeerSession.id))
        if short_ids is not None:
            query = query.where(col(PeerSession.short_id).in_(short_ids))
        sessions = list((await s.exec(query)).all())
        for session in sessions:
            learners = (
                await s.exec(
                    select(Enrollment, Member)
                    .join(Member, col(Member.id) == col(Enrollment.member_id))
                    .where(Enrollment.cohort_id == session.cohort_id, Enrollment.role == "learner")
                    .order_by(col(Member.id))
                )
            ).all()
            attendance = {
                a.member_id: a
                for a in (await s.exec(select(Attendance).where(Attendance.session_id == session.id))).all()
            }
            prepped = {
                p.member_id for p in (await s.exec(select(PrepAck).where(PrepAck.session_id == session.id))).all()
            }
            groups = dict(
                (
                    await s.exec(
                        select(GroupMembership.member_id, PeerGroup.number)
                        .join(PeerGroup, col(PeerGroup.id) == col(GroupMembership.group_id))
                        .where(GroupMembership.session_id == session.id)
                    )
                ).all()
            )
            items = {
                i.id: i
                for i in (
                    await s.exec(select(QuestionnaireItem).where(QuestionnaireItem.session_id == session.id))
                ).all()
            }
            submissions = {
                (sub.member_id, sub.kind): sub
                for sub in (await s.exec(select(Submission).where(Submission.session_id == session.id))).all()
            }
            answers: dict[int, dict[str, str]] = {}
            for answer in (
                await s.exec(
                    select(Answer)
                    .join(Submission, col(Submission.id) == col(Answer.submission_id))
                    .where(Submission.session_id == session.id)
                )
            ).all():
                item = items[answer.item_id]
                value = str(answer.value_int) if item.item_type == "likert" else answer.value_text
                answers.setdefault(answer.submission_id, {})[item.item_key] = value
            deliveries = {
                (d.member_id, d.kind): d.state
                for d in (await s.exec(select(Delivery).where(Delivery.session_id == session.id))).all()
            }
            for enrollment, member in learners:
                base = {
                    "session": session.short_id,
                    "title": session.title,
                    "learner_id": member.user_id,
                    "learner": member.display_name,
                }
                record = attendance.get(member.id or 0)
                status = record.status if record else ("absent" if session.started_at else "")
                evidence.attendance.append(
                    {
                        **base,
                        "starts_at": session.starts_at.isoformat(),
                        "level": str(enrollment.level),
                        "prepared": "yes" if member.id in prepped else "no",
                        "status": status or "not yet",
                        "checked_in_at": record.checked_in_at.isoformat() if record and record.checked_in_at else "",
                        "method": record.method if record else "",
                        "absence_reason": record.absence_reason if record else "",
                        "group": str(groups.get(member.id or 0, "")),
                    }
                )
                feedback = submissions.get((member.id or 0, "feedback"))
                values = answers.get(feedback.id or 0, {}) if feedback else {}
                evidence.feedback.append(
                    {
                        **base,
                        "delivery": deliveries.get((member.id or 0, "feedback"), "not sent"),
                        "answered": "yes" if feedback and feedback.completed else "no",
                        "submitted_at": feedback.submitted_at.isoformat() if feedback and feedback.completed else "",
                        **{k: values.get(k, "") for k in FEEDBACK_KEYS},
                    }
                )
                quiz = submissions.get((member.id or 0, "retention"))
                evidence.retention.append(
                    {
                        **base,
                        "delivery": deliveries.get((member.id or 0, "retention"), "not sent"),
                        "answered": "yes" if quiz and quiz.completed else "no",
                        "score": str(quiz.score) if quiz and quiz.score is not None else "",
                        "max_score": str(quiz.max_score) if quiz and quiz.max_score is not None else "",
                    }
                )
    return evidence


def csv_files(evidence: Evidence) -> dict[str, bytes]:
    """The three CSV files by name (UTF-8, header first), for `write_csv` and for archives."""
    files = {}
    for name, columns, rows in (
        ("attendance.csv", ATTENDANCE_COLUMNS, evidence.attendance),
        ("feedback.csv", FEEDBACK_COLUMNS, evidence.feedback),
        ("retention.csv", RETENTION_COLUMNS, evidence.retention),
    ):
        handle = io.StringIO(newline="")
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        files[name] = handle.getvalue().encode("utf-8")
    return files


def write_csv(evidence: Evidence, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in csv_files(evidence).items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written


@dataclass(frozen=True)
class NoteRow:
    """A trainer's note as the report and the audit pack show it."""

    session: str  # short id
    title: str
    starts_at: datetime
    written_at: datetime
    author: str
    text: str


async def session_notes(db: Database, short_ids: list[str]) -> list[NoteRow]:
    """The notes of these sessions in the order a reader follows a cohort: by session start, then as written."""
    async with db.transaction() as s:
        rows = await s.exec(
            select(SessionNote, PeerSession, Member)
            .join(PeerSession, col(PeerSession.id) == col(SessionNote.session_id))
            .join(Member, col(Member.id) == col(SessionNote.author_id))
            .where(col(PeerSession.short_id).in_(short_ids))
            .order_by(col(PeerSession.starts_at), col(PeerSession.id), col(SessionNote.created_at), col(SessionNote.id))
        )
        return [
            NoteRow(p.short_id, p.title, p.starts_at, n.created_at, m.display_name or m.user_id, n.text)
            for n, p, m in rows.all()
        ]


def _one_decimal(value: float, locale: str) -> str:
    return f"{value:.1f}".replace(".", get_decimal_symbol(locale))


async def session_report(views: Views, short_id: str, locale: str = "en") -> str:
    evidence = await collect(views.ctx.db, [short_id])
    rows = evidence.attendance
    present = [r for r in rows if r["status"] in {"on_time", "late"}]
    lines = [await views.describe_session(None, short_id, locale)]
    lines.append(
        t(
            locale,
            "Attendance: {present}/{total} present ({late} late, {excused} excused)",
            present=len(present),
            total=len(rows),
            late=sum(r["status"] == "late" for r in rows),
            excused=sum(r["status"] == "excused" for r in rows),
        )
    )
    answered = [r for r in evidence.feedback if r["answered"] == "yes"]
    if answered:
        averages = ", ".join(
            f"{label(locale, FEEDBACK_NAMES, k)} {_one_decimal(mean(int(r[k]) for r in answered if r[k]), locale)}"
            for k in FEEDBACK_KEYS[:-1]
            if any(r[k] for r in answered)
        )
        lines.append(
            t(locale, "Feedback: {count} answer(s); averages (1–5): {averages}", count=len(answered), averages=averages)
        )
        comments = [r["open"] for r in answered if r["open"]]
        lines += ["  " + t(locale, "“{comment}”", comment=c) for c in comments[:10]]
    scored = [r for r in evidence.retention if r["answered"] == "yes"]
    if scored:
        ratio = mean(int(r["score"]) / int(r["max_score"]) for r in scored if r["max_score"] not in {"", "0"})
        lines.append(
            t(
                locale,
                "Retention quiz: {count} answer(s), mean score {percent}%",
                count=len(scored),
                percent=f"{ratio * 100:.0f}",
            )
        )
    return "\n".join(lines)


async def my_data(db: Database, user: UserRef, locale: str = "en") -> str:
    """Everything stored about one person (GDPR right of access), as readable text."""
    async with db.transaction() as s:
        member = (
            await s.exec(select(Member).where(Member.platform == user.platform, Member.user_id == user.id))
        ).first()
        if member is None:
            return t(locale, "I store nothing about you.")
        enrollments = (
            await s.exec(
                select(Enrollment, Cohort)
                .join(Cohort, col(Cohort.id) == col(Enrollment.cohort_id))
                .where(Enrollment.member_id == member.id)
            )
        ).all()
        attendance = (
            await s.exec(
                select(Attendance, PeerSession)
                .join(PeerSession, col(PeerSession.id) == col(Attendance.session_id))
                .where(Attendance.member_id == member.id)
            )
        ).all()
        submissions = (
            await s.exec(
                select(Submission, PeerSession)
                .join(PeerSession, col(PeerSession.id) == col(Submission.session_id))
                .where(Submission.member_id == member.id)
            )
        ).all()
    lines = [
        t(
            locale,
            "*What peerbot stores about you* ({name}, {platform} id {user_id})",
            name=member.display_name,
            platform=member.platform,
            user_id=member.user_id,
        )
    ]
    lines += [
        t(
            locale,
            "• cohort `{cohort}`: {role}, level {level}",
            cohort=c.name,
            role=label(locale, ROLES, e.role),
            level=e.level,
        )
        for e, c in enrollments
    ]
    lines += [
        t(
            locale,
            "• session `{session}`: {status}",
            session=p.short_id,
            status=label(locale, ATTENDANCE_STATUSES, a.status),
        )
        + (t(locale, " at {time} UTC", time=f"{a.checked_in_at:%Y-%m-%d %H:%M}") if a.checked_in_at else "")
        + (t(locale, ", reason: {reason}", reason=a.absence_reason) if a.absence_reason else "")
        for a, p in attendance
    ]
    lines += [
        t(
            locale,
            "• {kind} for `{session}`: {progress}",
            kind=label(locale, QUESTIONNAIRE_KINDS, sub.kind),
            session=p.short_id,
            progress=t(locale, "answered") if sub.completed else t(locale, "started"),
        )
        + (t(locale, ", score {score}/{total}", score=sub.score, total=sub.max_score) if sub.score is not None else "")
        for sub, p in submissions
    ]
    return "\n".join(lines)

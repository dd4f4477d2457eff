"""Evidence for quality audits (Qualiopi): attendance, feedback and retention, one row per learner per session."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
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
    ReviewAssignment,
    SessionNote,
    Submission,
    TutoringAgreement,
    WorkSubmission,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

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
FEEDBACK_BASE = ["session", "title", "learner_id", "learner", "delivery", "answered", "submitted_at"]
FEEDBACK_COLUMNS = [*FEEDBACK_BASE, *FEEDBACK_KEYS]  # with the default questionnaire (see `feedback_columns`)
RETENTION_COLUMNS = [
    "session",
    "title",
    "learner_id",
    "learner",
    "delivery",
    "answered",
    "score",
    "max_score",
    "second_delivery",  # the second retention quiz (`retention=2w,6w`): the questions missed in the first
    "second_answered",
    "second_score",
    "second_max_score",
]
TUTORING_COLUMNS = [
    "session",
    "title",
    "learner_id",
    "learner",
    "group",
    "role",
    "accepted",
    "accepted_at",
    "objectives_sha256",
    "met",
    "met_minutes",
]
REVIEW_COLUMNS = [
    "session",
    "title",
    "learner_id",
    "learner",
    "handed_in",
    "submitted_at",
    "reviews_received",
    "mean_score_received",
    "reviews_given",
    "reviews_assigned",
]
QUESTION_COLUMNS = ["session", "questionnaire", "position", "key", "type", "question", "question_fr", "options"]
FOLLOWUP_PART = ["delivery", "answered", "rating", "applied", "obstacles"]
FOLLOWUP_COLUMNS = [
    "session",
    "title",
    "learner_id",
    "learner",
    *FOLLOWUP_PART,
    "observer",
    *(f"observer_{c}" for c in FOLLOWUP_PART),
]


@dataclass
class Evidence:
    attendance: list[dict[str, str]]
    feedback: list[dict[str, str]]
    retention: list[dict[str, str]]
    questions: list[dict[str, str]] = field(default_factory=list)  # every item as it was asked, per session
    followup: list[dict[str, str]] = field(default_factory=list)  # learners with a behavioural follow-up
    tutoring: list[dict[str, str]] = field(default_factory=list)  # members of tutoring pairs
    reviews: list[dict[str, str]] = field(default_factory=list)  # learners of peer-review sessions

    def feedback_columns(self) -> list[str]:
        """The feedback CSV's columns: the default items', then each custom item key in order of appearance
        (a session's keys mean the questions `questions.csv` lists for it)."""
        keys = list(FEEDBACK_KEYS)
        for row in self.questions:
            if row["questionnaire"] == "feedback" and row["key"] not in keys:
                keys.append(row["key"])
        return [*FEEDBACK_BASE, *keys]

    def items(self, session: str, questionnaire: str = "feedback") -> list[dict[str, str]]:
        """The items one session asked in one questionnaire, in order."""
        return [r for r in self.questions if r["session"] == session and r["questionnaire"] == questionnaire]

    def items_of(self, questionnaire: str) -> list[dict[str, str]]:
        return [r for r in self.questions if r["questionnaire"] == questionnaire]


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
                    await s.exec(
                        select(QuestionnaireItem)
                        .where(QuestionnaireItem.session_id == session.id)
                        .order_by(col(QuestionnaireItem.kind), col(QuestionnaireItem.position))
                    )
                ).all()
            }
            evidence.questions += [
                {
                    "session": session.short_id,
                    "questionnaire": i.kind,
                    "position": str(i.position),
                    "key": i.item_key,
                    "type": i.item_type,
                    "question": i.text,
                    "question_fr": i.text_fr,
                    "options": " | ".join(json.loads(i.options_json or "[]")),
                }
                for i in items.values()
            ]
            feedback_keys = [i.item_key for i in items.values() if i.kind == "feedback"] or FEEDBACK_KEYS
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
            delivery_rows = (
                await s.exec(select(Delivery).where(Delivery.session_id == session.id).order_by(col(Delivery.id)))
            ).all()
            deliveries = {(d.subject_id or d.member_id, d.kind): d.state for d in delivery_rows}  # the latest
            observers = {d.subject_id: d.member_id for d in delivery_rows if d.kind == "observation"}
            names: dict[int | None, Member | None] = {m.id: m for _e, m in learners}
            for observer_id in set(observers.values()) - set(names):
                names[observer_id] = await s.get(Member, observer_id)
            base_of = {
                m.id: {
                    "session": session.short_id,
                    "title": session.title,
                    "learner_id": m.user_id,
                    "learner": m.display_name,
                }
                for _e, m in learners
            }
            for enrollment, member in learners:
                base = base_of[member.id]
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
                        **{k: values.get(k, "") for k in feedback_keys},
                    }
                )
                quiz = submissions.get((member.id or 0, "retention"))
                second = submissions.get((member.id or 0, "retention2"))
                evidence.retention.append(
                    {
                        **base,
                        "delivery": deliveries.get((member.id or 0, "retention"), "not sent"),
                        "answered": "yes" if quiz and quiz.completed else "no",
                        "score": str(quiz.score) if quiz and quiz.score is not None else "",
                        "max_score": str(quiz.max_score) if quiz and quiz.max_score is not None else "",
                        "second_delivery": deliveries.get((member.id or 0, "retention2"), ""),
                        "second_answered": "yes" if second and second.completed else "",
                        "second_score": str(second.score) if second and second.score is not None else "",
                        "second_max_score": str(second.max_score) if second and second.max_score is not None else "",
                    }
                )
                if (member.id or 0, "followup") in deliveries or (member.id or 0, "observation") in deliveries:
                    row = {**base}
                    for prefix, kind in (("", "followup"), ("observer_", "observation")):
                        done = submissions.get((member.id or 0, kind))
                        given = answers.get(done.id or 0, {}) if done else {}
                        row[f"{prefix}delivery"] = deliveries.get((member.id or 0, kind), "")
                        row[f"{prefix}answered"] = "yes" if done and done.completed else ""
                        for key in ("rating", "applied", "obstacles"):
                            row[f"{prefix}{key}"] = given.get(key, "")
                    watcher = names.get(observers.get(member.id))
                    row["observer"] = watcher.display_name if watcher is not None else ""
                    evidence.followup.append(row)
            evidence.tutoring += await _tutoring_rows(s, session, base_of, groups)
            evidence.reviews += await _review_rows(s, session, base_of)
    return evidence


async def _tutoring_rows(
    s: AsyncSession, session: PeerSession, base_of: dict[int | None, dict[str, str]], groups: dict[int, int]
) -> list[dict[str, str]]:
    """Each member of a tutoring pair: their role, the objectives they accepted (the text's SHA-256, as shown)
    and their own account of the meeting."""
    if session.format != "tutoring":
        return []
    roles = dict(
        (
            await s.exec(
                select(GroupMembership.member_id, GroupMembership.role).where(GroupMembership.session_id == session.id)
            )
        ).all()
    )
    agreed = {
        a.member_id: a
        for a in (await s.exec(select(TutoringAgreement).where(TutoringAgreement.session_id == session.id))).all()
    }
    rows = []
    for member_id, base in base_of.items():
        if member_id not in roles:
            continue
        found = agreed.get(member_id or 0)
        accepted = found is not None and found.accepted_at is not None
        rows.append(
            {
                **base,
                "group": str(groups.get(member_id or 0, "")),
                "role": roles[member_id],
                "accepted": "yes" if accepted else "no",
                "accepted_at": found.accepted_at.isoformat() if found and found.accepted_at else "",
                "objectives_sha256": found.text_sha256 if found else "",
                "met": "" if found is None or found.met is None else "yes" if found.met else "no",
                "met_minutes": str(found.met_minutes) if found and found.met_minutes is not None else "",
            }
        )
    return rows


async def _review_rows(
    s: AsyncSession, session: PeerSession, base_of: dict[int | None, dict[str, str]]
) -> list[dict[str, str]]:
    """Each learner of a peer-review session who handed in work or was asked to review: what they handed in
    when, the reviews they received (count, mean of every criterion's 1-4 score) and gave. No comment here:
    free text stays in peerbot (`/peer mydata`), the evidence is that the reviews happened."""
    if session.format != "review":
        return []
    works = {
        w.member_id: w
        for w in (await s.exec(select(WorkSubmission).where(WorkSubmission.session_id == session.id))).all()
    }
    author = {w.id: w.member_id for w in works.values()}
    received: dict[int, list[int]] = {}
    reviewed: dict[int, int] = {}
    given: dict[int, list[bool]] = {}
    for row in (await s.exec(select(ReviewAssignment).where(ReviewAssignment.session_id == session.id))).all():
        given.setdefault(row.reviewer_id, []).append(row.reviewed_at is not None)
        writer = author.get(row.submission_id, 0)
        if row.reviewed_at is not None:
            reviewed[writer] = reviewed.get(writer, 0) + 1
            received.setdefault(writer, []).extend(int(x) for x in json.loads(row.scores_json or "[]"))
    rows = []
    for member_id, base in base_of.items():
        work = works.get(member_id or 0)
        if work is None and member_id not in given:
            continue
        scores = received.get(member_id or 0, [])
        rows.append(
            {
                **base,
                "handed_in": "yes" if work else "no",
                "submitted_at": work.submitted_at.isoformat() if work else "",
                "reviews_received": str(reviewed.get(member_id or 0, 0)),
                "mean_score_received": f"{mean(scores):.2f}" if scores else "",
                "reviews_given": str(sum(given.get(member_id or 0, []))),
                "reviews_assigned": str(len(given.get(member_id or 0, []))),
            }
        )
    return rows


def csv_files(evidence: Evidence) -> dict[str, bytes]:
    """The CSV files by name (UTF-8, header first), for `write_csv` and for archives: attendance, feedback and
    retention always; the questions as asked when a cohort has its own questionnaire, the follow-up when one
    was planned, tutoring and peer review when a session had that format."""
    files = {}
    tables = [
        ("attendance.csv", ATTENDANCE_COLUMNS, evidence.attendance),
        ("feedback.csv", evidence.feedback_columns(), evidence.feedback),
        ("retention.csv", RETENTION_COLUMNS, evidence.retention),
    ]
    if any(r["key"] not in FEEDBACK_KEYS for r in evidence.items_of("feedback")):
        tables.append(("questions.csv", QUESTION_COLUMNS, evidence.questions))
    if evidence.followup:
        tables.append(("followup.csv", FOLLOWUP_COLUMNS, evidence.followup))
    if evidence.tutoring:
        tables.append(("tutoring.csv", TUTORING_COLUMNS, evidence.tutoring))
    if evidence.reviews:
        tables.append(("reviews.csv", REVIEW_COLUMNS, evidence.reviews))
    for name, columns, rows in tables:
        handle = io.StringIO(newline="")
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
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
        lines += _feedback_lines(evidence, short_id, answered, locale)
    for key, template in (
        ("", N_("Retention quiz: {count} answer(s), mean score {percent}%")),
        ("second_", N_("Second retention quiz: {count} answer(s), mean score {percent}%")),
    ):
        scored = [
            r for r in evidence.retention if r[f"{key}answered"] == "yes" and r[f"{key}max_score"] not in {"", "0"}
        ]
        if scored:
            ratio = mean(int(r[f"{key}score"]) / int(r[f"{key}max_score"]) for r in scored)
            lines.append(t(locale, template, count=len(scored), percent=f"{ratio * 100:.0f}"))
    lines += _followup_lines(evidence, locale)
    return "\n".join(lines)


def item_name(row: dict[str, str], locale: str) -> str:
    """How a report names an item: a default item by its short name, the trainer's own by its question."""
    if row["key"] in FEEDBACK_NAMES and row["questionnaire"] == "feedback":
        return label(locale, FEEDBACK_NAMES, row["key"])
    return row["question_fr"] if locale == "fr" and row["question_fr"] else row["question"]


def _feedback_lines(evidence: Evidence, short_id: str, answered: list[dict[str, str]], locale: str) -> list[str]:
    """Averages of the rated items, counts of the choices, and the comments."""
    items = evidence.items(short_id) or [
        {"key": k, "type": "open" if k == "open" else "likert", "questionnaire": "feedback", "question": k}
        for k in FEEDBACK_KEYS
    ]
    rated = [i for i in items if i["type"] == "likert" and any(r.get(i["key"]) for r in answered)]
    count = len(answered)
    if all(i["key"] in FEEDBACK_NAMES for i in rated) and all(i["type"] != "choice" for i in items):
        means = {i["key"]: mean(int(r[i["key"]]) for r in answered if r.get(i["key"])) for i in rated}
        averages = ", ".join(f"{item_name(i, locale)} {_one_decimal(means[i['key']], locale)}" for i in rated)
        lines = [t(locale, "Feedback: {count} answer(s); averages (1–5): {averages}", count=count, averages=averages)]
    else:
        lines = [t(locale, "Feedback: {count} answer(s); averages (1–5):", count=count)]
        for item in items:
            given = [r[item["key"]] for r in answered if r.get(item["key"])]
            if item["type"] == "likert" and given:
                average = _one_decimal(mean(int(v) for v in given), locale)
                lines.append(f"• {item_name(item, locale)}: {average}")
            elif item["type"] == "choice" and given:
                options = item.get("options", "").split(" | ")
                counts = ", ".join(f"{o} {given.count(o)}" for o in options if given.count(o))
                lines.append(f"• {item_name(item, locale)}: {counts}")
    comments = [r[i["key"]] for r in answered for i in items if i["type"] == "open" and r.get(i["key"])]
    lines += ["  " + t(locale, "“{comment}”", comment=c) for c in comments[:10]]
    return lines


def _followup_lines(evidence: Evidence, locale: str) -> list[str]:
    """The behavioural follow-up: how many answered, the mean ratings, what they say they apply."""
    rows = evidence.followup
    mine = [r for r in rows if r["answered"] == "yes"]
    seen = [r for r in rows if r["observer_answered"] == "yes"]
    if not mine and not seen:
        return []

    def rating(found: list[dict[str, str]], key: str) -> str:
        values = [int(r[key]) for r in found if r[key]]
        return _one_decimal(mean(values), locale) if values else "—"

    lines = [
        t(
            locale,
            "Follow-up: {learners} learner answer(s), self-rating {self_rating}; {observers} observer answer(s), "
            "rating {observer_rating}",
            learners=len(mine),
            self_rating=rating(mine, "rating"),
            observers=len(seen),
            observer_rating=rating(seen, "observer_rating"),
        )
    ]
    for r in rows:
        for key in ("applied", "obstacles", "observer_applied", "observer_obstacles"):
            if r[key]:
                lines.append("  " + t(locale, "{learner}: “{comment}”", learner=r["learner"], comment=r[key]))
    return lines[:21]


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
        agreements = (
            await s.exec(
                select(TutoringAgreement, PeerSession)
                .join(PeerSession, col(PeerSession.id) == col(TutoringAgreement.session_id))
                .where(TutoringAgreement.member_id == member.id)
            )
        ).all()
        works = (
            await s.exec(
                select(WorkSubmission, PeerSession)
                .join(PeerSession, col(PeerSession.id) == col(WorkSubmission.session_id))
                .where(WorkSubmission.member_id == member.id)
            )
        ).all()
        reviews = (
            await s.exec(
                select(ReviewAssignment, PeerSession)
                .join(PeerSession, col(PeerSession.id) == col(ReviewAssignment.session_id))
                .where(ReviewAssignment.reviewer_id == member.id, col(ReviewAssignment.reviewed_at).is_not(None))
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
    lines += [
        t(locale, "• tutoring agreement for `{session}`: {accepted}", session=p.short_id, accepted=a.text)
        + (t(locale, ", met {minutes} min", minutes=a.met_minutes) if a.met_minutes is not None else "")
        for a, p in agreements
        if a.accepted_at is not None or a.met_minutes is not None
    ]
    lines += [t(locale, "• work for `{session}`: {work}", session=p.short_id, work=w.content) for w, p in works]
    lines += [
        t(locale, "• review given for `{session}`: {comment}", session=p.short_id, comment=r.comment)
        for r, p in reviews
    ]
    return "\n".join(lines)

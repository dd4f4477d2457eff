"""Per learner: the learner file (every session of the cohort: objectives, preparation, attendance, feedback,
retention scores, the behavioural follow-up with the observer's view) and the certificate of attendance (the
sessions attended and their total duration).

Both are built from the attendance sheets and the rows of `collect`, so a learner's line reads the same on
their file, their certificate, the session's sheet and the CSV export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_date, format_time

from bot.documents.pdf import FONT, EvidencePDF
from bot.documents.sheet import PRESENT, STATUS_WORDS, AttendanceSheet
from bot.i18n import GROUP_ROLES, label, t
from bot.reports import Evidence


@dataclass(frozen=True)
class LearnerSession:
    sheet: AttendanceSheet
    status: str
    checked_in_at: datetime | None
    reason: str
    prepared: bool
    feedback_given: bool
    score: str  # "2/3", or "" when the quiz was not answered; "2/3 → 1/1" with the second quiz
    followup: dict[str, str] | None = None  # the `Evidence.followup` row, when a follow-up was planned
    tutoring: dict[str, str] | None = None  # the `Evidence.tutoring` row, in a tutoring pair
    review: dict[str, str] | None = None  # the `Evidence.reviews` row, in a peer-review session


@dataclass(frozen=True)
class LearnerFile:
    learner_id: str
    learner: str
    cohort: str
    organisation: str
    sessions: list[LearnerSession]

    @property
    def attended(self) -> list[LearnerSession]:
        return [s for s in self.sessions if s.status in PRESENT]

    @property
    def attended_time(self) -> timedelta:
        """The planned duration of the sessions attended (a late arrival still attended the session)."""
        return sum((s.sheet.ends_at - s.sheet.starts_at for s in self.attended), timedelta())


def learner_files(sheets: list[AttendanceSheet], evidence: Evidence) -> list[LearnerFile]:
    """One file per learner enrolled in the sessions' cohort, in the sheets' learner order."""
    feedback = {(r["session"], r["learner_id"]): r["answered"] == "yes" for r in evidence.feedback}
    scores = {
        (r["session"], r["learner_id"]): (f"{r['score']}/{r['max_score']}" if r["answered"] == "yes" else "")
        + (f" → {r['second_score']}/{r['second_max_score']}" if r.get("second_answered") == "yes" else "")
        for r in evidence.retention
    }
    followups = {(r["session"], r["learner_id"]): r for r in evidence.followup}
    tutoring = {(r["session"], r["learner_id"]): r for r in evidence.tutoring}
    reviews = {(r["session"], r["learner_id"]): r for r in evidence.reviews}
    files: dict[str, LearnerFile] = {}
    for sheet in sheets:
        for line in sheet.lines:
            file = files.setdefault(
                line.learner_id, LearnerFile(line.learner_id, line.learner, sheet.cohort, sheet.organisation, [])
            )
            key = (sheet.session, line.learner_id)
            file.sessions.append(
                LearnerSession(
                    sheet,
                    line.status,
                    line.checked_in_at,
                    line.reason,
                    line.prepared,
                    feedback.get(key, False),
                    scores.get(key, "").strip(),
                    followups.get(key),
                    tutoring.get(key),
                    reviews.get(key),
                )
            )
    return list(files.values())


def _when(sheet: AttendanceSheet, locale: str) -> str:
    start = sheet.starts_at.astimezone(sheet.zone)
    return t(
        locale,
        "{date}, {start}–{end}",
        date=format_date(start.date(), format="medium", locale=locale),
        start=format_time(start, "HH:mm", locale=locale),
        end=format_time(sheet.ends_at.astimezone(sheet.zone), "HH:mm", locale=locale),
    )


def _duration(value: timedelta, locale: str) -> str:
    minutes = int(value.total_seconds() // 60)
    return t(locale, "{hours} h {minutes:02d} min", hours=minutes // 60, minutes=minutes % 60)


def learner_file_pdf(file: LearnerFile, locale: str) -> bytes:
    first = file.sessions[0].sheet
    pdf = EvidencePDF(t(locale, "Learner file — {learner}", learner=file.learner), file.organisation, first.starts_at)
    pdf.new_section("")
    pdf.heading(t(locale, "Learner file — {learner}", learner=file.learner))
    pdf.field(t(locale, "Organisation"), file.organisation or t(locale, "(not set: PEERBOT_ORGANISATION)"))
    pdf.field(t(locale, "Programme / cohort"), file.cohort)
    pdf.field(
        t(locale, "Attendance"),
        t(
            locale,
            "{attended} of {total} session(s), {time}",
            attended=len(file.attended),
            total=len(file.sessions),
            time=_duration(file.attended_time, locale),
        ),
    )
    pdf.ln(3)
    pdf.set_font(FONT, size=8)
    columns = (
        t(locale, "Session"),
        t(locale, "Objectives"),
        t(locale, "Preparation"),
        t(locale, "Status"),
        t(locale, "Feedback given"),
        t(locale, "Retention score"),
    )
    with pdf.table(col_widths=(30, 36, 18, 22, 14, 14), text_align="LEFT", line_height=4.5) as table:
        row = table.row()
        for name in columns:
            row.cell(name)
        for s in file.sessions:
            status = label(locale, STATUS_WORDS, s.status)
            if s.checked_in_at is not None:
                status += " " + format_time(s.checked_in_at.astimezone(s.sheet.zone), "HH:mm", locale=locale)
            if s.reason:
                status += f" ({s.reason})"
            row = table.row()
            for value in (
                f"{s.sheet.title}\n{_when(s.sheet, locale)}",
                s.sheet.objectives or "—",
                t(locale, "done") if s.prepared else t(locale, "not done"),
                status,
                t(locale, "yes") if s.feedback_given else t(locale, "no"),
                s.score or "—",
            ):
                row.cell(value)
    _formats_section(pdf, file, locale)
    _followup_section(pdf, file, locale)
    return pdf.to_bytes()


def _formats_section(pdf: EvidencePDF, file: LearnerFile, locale: str) -> None:
    """Tutoring and peer review: the objectives the learner accepted and the meeting they reported; the work
    they handed in and the reviews received and given (counts and mean score, no comment)."""
    lines = []
    for s in file.sessions:
        if s.tutoring is not None:
            row = s.tutoring
            accepted = (
                t(
                    locale,
                    "objectives accepted (text fingerprint {fingerprint})",
                    fingerprint=row["objectives_sha256"][:16],
                )
                if row["accepted"] == "yes"
                else t(locale, "objectives not accepted")
            )
            met = {
                "yes": t(locale, "met for {minutes} min", minutes=row["met_minutes"] or "?"),
                "no": t(locale, "did not meet"),
            }.get(row["met"], t(locale, "meeting not reported"))
            role = label(locale, GROUP_ROLES, row["role"])
            lines.append(f"{s.sheet.title} — {role}: {accepted}; {met}")
        if s.review is not None:
            row = s.review
            handed = t(locale, "work handed in") if row["handed_in"] == "yes" else t(locale, "no work handed in")
            received = t(
                locale,
                "{count} review(s) received, mean {mean}/4",
                count=row["reviews_received"],
                mean=row["mean_score_received"] or "—",
            )
            given = t(
                locale,
                "{given} of {assigned} review(s) given",
                given=row["reviews_given"],
                assigned=row["reviews_assigned"],
            )
            lines.append(f"{s.sheet.title} — {handed}; {received}; {given}")
    if not lines:
        return
    pdf.ln(4)
    pdf.heading(t(locale, "Tutoring and peer review"), size=11)
    pdf.paragraph("\n".join(lines))


def _followup_section(pdf: EvidencePDF, file: LearnerFile, locale: str) -> None:
    """The behavioural follow-up: what the learner says they apply, and what their observer saw."""
    answered = [
        s for s in file.sessions if s.followup and "yes" in (s.followup["answered"], s.followup["observer_answered"])
    ]
    if not answered:
        return
    pdf.ln(4)
    pdf.heading(t(locale, "Behavioural follow-up"), size=11)
    for s in answered:
        row = s.followup or {}
        lines = [s.sheet.title]
        for prefix, who in (("", t(locale, "Learner")), ("observer_", t(locale, "Observer"))):
            if row[f"{prefix}answered"] != "yes":
                continue
            name = f"{who} ({row['observer']})" if prefix and row["observer"] else who
            rating = row[f"{prefix}rating"] or "—"
            lines.append(t(locale, "{who}: applies it {rating}/5", who=name, rating=rating))
            lines += [f"  “{row[prefix + key]}”" for key in ("applied", "obstacles") if row[prefix + key]]
        pdf.paragraph("\n".join(lines))


def certificate_pdf(file: LearnerFile, issued: datetime, locale: str) -> bytes:
    """The certificate of attendance for the cohort: who, which sessions, how long; issued on `issued`."""
    title = t(locale, "Certificate of attendance")
    pdf = EvidencePDF(f"{title} — {file.learner}", file.organisation, issued)
    pdf.new_section("")
    pdf.ln(10)
    pdf.heading(title, size=18)
    pdf.ln(4)
    attended = file.attended
    zone = file.sessions[0].sheet.zone
    pdf.paragraph(
        t(
            locale,
            "{organisation} certifies that {learner} attended {attended} of the {total} peer-learning session(s) "
            "of the programme “{cohort}”, for a total of {time}.",
            organisation=file.organisation or t(locale, "The training organisation"),
            learner=file.learner,
            attended=len(attended),
            total=len(file.sessions),
            cohort=file.cohort,
            time=_duration(file.attended_time, locale),
        ),
        size=11,
    )
    pdf.ln(4)
    for s in attended:
        pdf.paragraph(f"• {s.sheet.title} — {_when(s.sheet, locale)}", size=10)
    pdf.ln(8)
    trainers = sorted({name for s in file.sessions for name in s.sheet.trainers})
    pdf.paragraph(
        t(
            locale,
            "Issued on {date}. Trainer(s): {trainers}.",
            date=format_date(issued.astimezone(zone).date(), format="long", locale=locale),
            trainers=", ".join(trainers),
        ),
        size=10,
    )
    return pdf.to_bytes()

"""`peerbot audit-pack`: every document of a cohort in one ZIP, with an index (HTML and PDF) that maps the
Qualiopi indicators to the files and figures that evidence them.

Indicators (Qualiopi national reference, version 9): 2 result indicators (attendance, satisfaction and
retention rates), 11 achievement of objectives (retention quiz scores), 12 engagement and dropout prevention
(attendance, preparation, absences, reminders sent), 30 appreciations collected (the post-session questionnaire;
knowledge tests are not evidence for 30), 32 improvement (the trainer's notes, `/peer note`, listed in session
order with what changed in the figures from one session to the next).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from statistics import mean

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment
from sqlmodel import col, func, select

from bot.documents.charts import Trend, session_chart, trends_chart
from bot.documents.export import evidence_xlsx
from bot.documents.learner import LearnerFile, certificate_pdf, learner_file_pdf, learner_files
from bot.documents.pdf import FONT, EvidencePDF
from bot.documents.sheet import AttendanceSheet, attendance_sheet, sheet_pdf, sheet_xlsx
from bot.documents.targets import Target
from bot.documents.verify import check
from bot.errors import NotFound
from bot.i18n import N_, _, t
from bot.reports import FEEDBACK_KEYS, Evidence, NoteRow, collect, csv_files, session_notes
from bot.settings import Settings
from storage.db import Database
from storage.models import Delivery, PeerSession


@dataclass(frozen=True)
class SessionFigures:
    """The numbers of one session the index quotes; the same formulas as `/peer report`."""

    sheet: AttendanceSheet
    attendance_rate: float | None  # present / enrolled
    satisfaction: float | None  # mean of every rated answer (1–5)
    answers: int
    delivered: int  # questionnaires that reached the learner
    retention: float | None  # mean of score / max score
    quiz_answers: int
    reminders: int  # prep and questionnaire reminders sent
    chain_ok: bool
    files: list[str]


@dataclass(frozen=True)
class Improvement:
    """One session in indicator 32's list: how its figures moved since the session before, and its notes."""

    session: str
    change: str  # "" for the first session
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Indicator:
    number: int
    name: str
    evidence: str
    files: list[str]


INDEX_HTML = """<!doctype html>
<html lang="{{ locale }}">
<head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; background: #fff; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border: 1px solid #999; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #eee; }
code { font-size: .85em; word-break: break-all; }
</style></head>
<body>
<h1>{{ title }}</h1>
<p>{{ subtitle }}</p>
<h2>{{ indicators_heading }}</h2>
<table>
<tr>{% for h in indicator_columns %}<th scope="col">{{ h }}</th>{% endfor %}</tr>
{% for i in indicators %}<tr><th scope="row">{{ i.number }}. {{ i.name }}</th><td>{{ i.evidence }}</td>
<td>{% for f in i.files %}<a href="{{ f }}">{{ f }}</a>{% if not loop.last %}<br>{% endif %}{% endfor %}</td></tr>
{% endfor %}</table>
<h2>{{ sessions_heading }}</h2>
<table>
<tr>{% for h in session_columns %}<th scope="col">{{ h }}</th>{% endfor %}</tr>
{% for row in session_rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2 id="notes">{{ notes_heading }}</h2>
{% for block in improvements %}<h3>{{ block.session }}</h3>
{% if block.change %}<p>{{ block.change }}</p>{% endif %}
{% if block.notes %}<ul>{% for note in block.notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% else %}<p>{{ no_notes }}</p>{% endif %}
{% endfor %}
<h2>{{ learners_heading }}</h2>
<table>
<tr>{% for h in learner_columns %}<th scope="col">{{ h }}</th>{% endfor %}</tr>
{% for name, attended, file, certificate in learner_rows %}<tr><td>{{ name }}</td><td>{{ attended }}</td>
<td><a href="{{ file }}">{{ file }}</a><br><a href="{{ certificate }}">{{ certificate }}</a></td></tr>
{% endfor %}</table>
<h2>{{ chain_heading }}</h2>
<p>{{ chain_text }}</p>
<ul>{% for short, head, ok in chains %}<li>{{ short }}: <code>{{ head }}</code> — {{ ok }}</li>{% endfor %}</ul>
</body></html>
"""


def _rate(value: float | None, locale: str) -> str:
    return "—" if value is None else format_percent(value, locale=locale)


def _score(value: float | None, locale: str) -> str:
    return "—" if value is None else format_decimal(round(value, 1), format="0.0", locale=locale)


async def _reminders(db: Database, short: str) -> int:
    async with db.transaction() as tx:
        found = await tx.exec(
            select(func.count())
            .select_from(Delivery)
            .join(PeerSession, col(PeerSession.id) == col(Delivery.session_id))
            .where(
                PeerSession.short_id == short,
                col(Delivery.kind).in_(["prep_reminder", "feedback_reminder"]),
                Delivery.state == "sent",
            )
        )
        return int(found.one())


async def session_figures(db: Database, settings: Settings, short: str, chain_ok: bool) -> SessionFigures:
    evidence = await collect(db, [short])
    sheet = await attendance_sheet(db, settings, short)
    totals = sheet.totals
    answered = [r for r in evidence.feedback if r["answered"] == "yes"]
    rated = [q["key"] for q in evidence.items(short) if q["type"] == "likert"] or FEEDBACK_KEYS[:-1]
    ratings = [int(r[k]) for r in answered for k in rated if r.get(k)]
    scored = [
        int(r["score"]) / int(r["max_score"])
        for r in evidence.retention
        if r["answered"] == "yes" and r["max_score"] not in {"", "0"}
    ]
    folder = f"sessions/{short}"
    return SessionFigures(
        sheet=sheet,
        attendance_rate=totals.present / totals.enrolled if totals.enrolled else None,
        satisfaction=mean(ratings) if ratings else None,
        answers=len(answered),
        delivered=sum(r["delivery"] == "sent" for r in evidence.feedback),
        retention=mean(scored) if scored else None,
        quiz_answers=len(scored),
        reminders=await _reminders(db, short),
        chain_ok=chain_ok,
        files=[f"{folder}/attendance-sheet.pdf", f"{folder}/attendance-sheet.xlsx", f"{folder}/chart.png"],
    )


TRENDS = "cohort-trends.png"
NOTES_CSV = "notes.csv"
NOTES_COLUMNS = ["session", "title", "starts_at", "written_at", "author", "note"]
NOTES_HEADING = N_("Trainer's notes and what changed between sessions")


def cohort_trends(figures: list[SessionFigures], locale: str) -> list[Trend]:
    """The points of the cohort's trend chart: the same figures as the index's session table."""

    def day(sheet: AttendanceSheet) -> str:
        return format_date(sheet.starts_at.astimezone(sheet.zone).date(), "d MMM", locale=locale)

    return [
        Trend(
            f"{f.sheet.session}\n{day(f.sheet)}",
            f.attendance_rate,
            f.satisfaction,
            f.retention,
        )
        for f in figures
    ]


def _moved(before: float | None, after: float | None, show: str) -> str:
    return f"{show.format(before) if before is not None else '—'} → {show.format(after) if after is not None else '—'}"


def improvements(figures: list[SessionFigures], notes: list[NoteRow], locale: str) -> list[Improvement]:
    """Indicator 32: each session in start order, what changed in its figures since the one before, and the
    trainer's notes on it in the order they were written."""
    blocks = []
    for index, f in enumerate(figures):
        sheet = f.sheet
        day = format_date(sheet.starts_at.astimezone(sheet.zone).date(), format="medium", locale=locale)
        change = ""
        if index:
            before = figures[index - 1]
            change = t(
                locale,
                "Since {previous}: attendance {attendance}, satisfaction {satisfaction}, retention {retention}.",
                previous=before.sheet.session,
                attendance=f"{_rate(before.attendance_rate, locale)} → {_rate(f.attendance_rate, locale)}",
                satisfaction=f"{_score(before.satisfaction, locale)} → {_score(f.satisfaction, locale)}",
                retention=f"{_rate(before.retention, locale)} → {_rate(f.retention, locale)}",
            )
        written = [
            t(
                locale,
                "{when}, {author}: {text}",
                when=format_datetime(n.written_at.astimezone(sheet.zone), format="short", locale=locale),
                author=n.author,
                text=n.text,
            )
            for n in notes
            if n.session == sheet.session
        ]
        blocks.append(Improvement(f"{sheet.session} — {sheet.title} ({day})", change, written))
    return blocks


def indicators(
    figures: list[SessionFigures],
    locale: str,
    notes: list[NoteRow] | None = None,
    learners: list[LearnerFile] | None = None,
) -> list[Indicator]:
    notes = notes or []
    sessions = [s for file in learners or [] for s in file.sessions]
    formats = [  # tutoring agreements and peer reviews: objectives accepted and worked on, engagement
        name
        for name, present in (
            ("csv/tutoring.csv", any(s.tutoring for s in sessions)),
            ("csv/reviews.csv", any(s.review for s in sessions)),
        )
        if present
    ]
    sheets = [f.files[0] for f in figures]
    charts = [f.files[2] for f in figures]
    present = sum(f.sheet.totals.present for f in figures)
    enrolled = sum(f.sheet.totals.enrolled for f in figures)
    return [
        Indicator(
            2,
            t(locale, "Result indicators"),
            t(
                locale,
                "Attendance {present}/{enrolled} over {sessions} session(s); satisfaction and retention rates "
                "per session in the table below.",
                present=present,
                enrolled=enrolled,
                sessions=len(figures),
            ),
            [TRENDS, "evidence.xlsx", "csv/attendance.csv", "csv/feedback.csv", "csv/retention.csv"],
        ),
        Indicator(
            11,
            t(locale, "Achievement of objectives"),
            t(
                locale,
                "Retention quiz scores, 2 or 4 weeks after each session, against its objectives; each learner's "
                "scores over time in their learner file.",
            ),
            ["csv/retention.csv", *formats, *charts, *sheets],
        ),
        Indicator(
            12,
            t(locale, "Engagement and dropout prevention"),
            t(
                locale,
                "Attendance and lateness, preparation done, absences with their reasons, reminders sent ({count}).",
                count=sum(f.reminders for f in figures),
            ),
            [*sheets, "csv/attendance.csv", *formats],
        ),
        Indicator(
            30,
            t(locale, "Appreciations collected"),
            t(
                locale,
                "The post-session questionnaire (rated items and free comments, one reminder): {answers} answer(s) "
                "out of {delivered} delivered. Knowledge tests are not evidence for this indicator.",
                answers=sum(f.answers for f in figures),
                delivered=sum(f.delivered for f in figures),
            ),
            ["csv/feedback.csv", *charts],
        ),
        Indicator(
            32,
            t(locale, "Improvement"),
            t(
                locale,
                "The trainer's notes: {count} note(s) on {sessions} session(s), in session order under “{heading}”, "
                "with what changed in attendance, satisfaction and retention from one session to the next; the "
                "cohort's trends draw it.",
                count=len(notes),
                sessions=len({n.session for n in notes}),
                heading=t(locale, NOTES_HEADING),
            )
            if notes
            else t(
                locale,
                'The trainer\'s notes: not yet recorded (a trainer adds one with `/peer note <session> "<text>"`). '
                "What changed between sessions: listed under “{heading}” and drawn in the cohort's trends "
                "(attendance, satisfaction, retention).",
                heading=t(locale, NOTES_HEADING),
            ),
            [NOTES_CSV, TRENDS],
        ),
    ]


def _session_rows(figures: list[SessionFigures], locale: str) -> list[list[str]]:
    rows = []
    for f in figures:
        sheet = f.sheet
        rows.append(
            [
                f"{sheet.session} — {sheet.title}",
                format_date(sheet.starts_at.astimezone(sheet.zone).date(), format="medium", locale=locale),
                _rate(f.attendance_rate, locale),
                str(sheet.totals.prepared),
                str(sheet.totals.excused + sheet.totals.absent),
                f"{_score(f.satisfaction, locale)} ({f.answers}/{f.delivered})",
                f"{_rate(f.retention, locale)} ({f.quiz_answers})",
                str(f.reminders),
            ]
        )
    return rows


def _session_columns(locale: str) -> list[str]:
    return [
        t(locale, "Session"),
        t(locale, "Date"),
        t(locale, "Attendance rate"),
        t(locale, "Prepared"),
        t(locale, "Absences"),
        t(locale, "Satisfaction (1–5)"),
        t(locale, "Retention score"),
        t(locale, "Reminders"),
    ]


def _texts(target: Target, settings: Settings, generated_at: datetime, locale: str) -> dict[str, str]:
    return {
        "title": t(locale, "Audit pack — cohort {cohort}", cohort=target.name),
        "subtitle": t(
            locale,
            "{organisation}. Generated on {when} ({zone}) by peerbot from its database.",
            organisation=settings.organisation or t(locale, "(not set: PEERBOT_ORGANISATION)"),
            when=format_datetime(generated_at.astimezone(settings.zone), format="medium", locale=locale),
            zone=settings.timezone,
        ),
        "indicators_heading": t(locale, "Qualiopi indicators and their evidence"),
        "sessions_heading": t(locale, "Sessions"),
        "chain_heading": t(locale, "Tamper evidence"),
        "chain_text": t(
            locale,
            "Each session's attendance, preparation and questionnaire records form a hash chain; its head is "
            "printed on the attendance sheet. `peerbot verify` recomputes it.",
        ),
    }


def learner_folder(file: LearnerFile) -> str:
    """A path inside the ZIP that a platform id cannot escape from."""
    return "learners/" + (re.sub(r"[^A-Za-z0-9_-]", "_", file.learner_id) or "_")


def _learner_rows(learners: list[LearnerFile], locale: str) -> list[tuple[str, str, str, str]]:
    return [
        (
            file.learner,
            t(locale, "{attended} of {total} session(s)", attended=len(file.attended), total=len(file.sessions)),
            f"{learner_folder(file)}/learner-file.pdf",
            f"{learner_folder(file)}/certificate.pdf",
        )
        for file in learners
    ]


def index_html(
    target: Target,
    settings: Settings,
    figures: list[SessionFigures],
    learners: list[LearnerFile],
    generated_at: datetime,
    locale: str,
    notes: list[NoteRow] | None = None,
) -> str:
    env = Environment(autoescape=True)
    return env.from_string(INDEX_HTML).render(
        locale=locale,
        indicator_columns=[t(locale, "Indicator"), t(locale, "Evidence"), t(locale, "Files")],
        indicators=indicators(figures, locale, notes, learners),
        notes_heading=t(locale, NOTES_HEADING),
        improvements=improvements(figures, notes or [], locale),
        no_notes=t(locale, "No note on this session."),
        session_columns=_session_columns(locale),
        session_rows=_session_rows(figures, locale),
        chains=[(f.sheet.session, f.sheet.fingerprint, _chain_word(f, locale)) for f in figures],
        learners_heading=t(locale, "Learner files and certificates of attendance"),
        learner_columns=[t(locale, "Learner"), t(locale, "Attendance"), t(locale, "Files")],
        learner_rows=_learner_rows(learners, locale),
        **_texts(target, settings, generated_at, locale),
    )


def _chain_word(figure: SessionFigures, locale: str) -> str:
    return t(locale, "intact") if figure.chain_ok else t(locale, "ALTERED: run `peerbot verify`")


def index_pdf(
    target: Target,
    settings: Settings,
    figures: list[SessionFigures],
    learners: list[LearnerFile],
    generated_at: datetime,
    locale: str,
    notes: list[NoteRow] | None = None,
) -> bytes:
    texts = _texts(target, settings, generated_at, locale)
    pdf = EvidencePDF(texts["title"], settings.organisation or "peerbot", generated_at)
    pdf.new_section("")
    pdf.heading(texts["title"])
    pdf.paragraph(texts["subtitle"])
    pdf.ln(2)
    pdf.heading(texts["indicators_heading"], size=11)
    pdf.set_font(FONT, size=8)
    with pdf.table(col_widths=(25, 45, 30), text_align="LEFT", line_height=4.5) as table:
        row = table.row()
        for name in (t(locale, "Indicator"), t(locale, "Evidence"), t(locale, "Files")):
            row.cell(name)
        for item in indicators(figures, locale, notes, learners):
            row = table.row()
            row.cell(f"{item.number}. {item.name}")
            row.cell(item.evidence)
            row.cell("\n".join(item.files) or "—")
    pdf.ln(3)
    pdf.heading(texts["sessions_heading"], size=11)
    pdf.set_font(FONT, size=7)
    with pdf.table(text_align="LEFT", line_height=4) as table:
        row = table.row()
        for name in _session_columns(locale):
            row.cell(name)
        for values in _session_rows(figures, locale):
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.ln(3)
    pdf.heading(t(locale, NOTES_HEADING), size=11)
    for block in improvements(figures, notes or [], locale):
        pdf.paragraph(block.session, size=8)
        for line in [block.change, *(f"• {n}" for n in block.notes)] if block.notes else [block.change]:
            if line:
                pdf.paragraph(line, size=7)
        if not block.notes:
            pdf.paragraph(t(locale, "No note on this session."), size=7)
    pdf.ln(3)
    pdf.heading(t(locale, "Learner files and certificates of attendance"), size=11)
    pdf.set_font(FONT, size=7)
    with pdf.table(col_widths=(25, 20, 55), text_align="LEFT", line_height=4) as table:
        row = table.row()
        for name in (t(locale, "Learner"), t(locale, "Attendance"), t(locale, "Files")):
            row.cell(name)
        for name, attended, file, certificate in _learner_rows(learners, locale):
            row = table.row()
            for value in (name, attended, f"{file}\n{certificate}"):
                row.cell(value)
    pdf.ln(3)
    pdf.heading(texts["chain_heading"], size=11)
    pdf.paragraph(texts["chain_text"])
    pdf.set_font(FONT, size=7)
    for f in figures:
        pdf.paragraph(f"{f.sheet.session}: {f.sheet.fingerprint} — {_chain_word(f, locale)}", size=7)
    return pdf.to_bytes()


@dataclass(frozen=True)
class _PackData:
    """Everything the audit pack shows, read from the database before any drawing starts."""

    target: Target
    figures: list[SessionFigures]
    evidence: Evidence
    per_session: dict[str, Evidence]
    notes: list[NoteRow]


async def _pack_data(db: Database, settings: Settings, target: Target) -> _PackData:
    if not target.sessions:
        raise NotFound(_("Cohort `{cohort}` has no session yet.", cohort=target.name))
    checks = {c.session: c.verdict.ok for c in await check(db, target.sessions)}
    figures = [await session_figures(db, settings, short, checks[short]) for short in target.sessions]
    evidence = await collect(db, target.sessions)
    per_session = {short: await collect(db, [short]) for short in target.sessions}
    notes = await session_notes(db, target.sessions)
    return _PackData(target, figures, evidence, per_session, notes)


def notes_csv(notes: list[NoteRow]) -> bytes:
    """The trainer's notes in session order, one row each (UTF-8, header first, like the other CSV files)."""
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(NOTES_COLUMNS)
    for n in notes:
        writer.writerow([n.session, n.title, n.starts_at.isoformat(), n.written_at.isoformat(), n.author, n.text])
    return handle.getvalue().encode("utf-8")


def _render_pack(data: _PackData, settings: Settings, generated_at: datetime, locale: str) -> bytes:
    """The ZIP's bytes (pure drawing and packing, no database: it runs in a worker thread)."""
    target, figures, evidence = data.target, data.figures, data.evidence
    entries: dict[str, bytes] = {}
    entries.update({f"csv/{name}": payload for name, payload in csv_files(evidence).items()})
    entries[NOTES_CSV] = notes_csv(data.notes)
    entries["evidence.xlsx"] = evidence_xlsx([f.sheet for f in figures], evidence, locale)
    title = t(locale, "Cohort {cohort}", cohort=target.name)
    entries[TRENDS] = trends_chart(title, cohort_trends(figures, locale), locale)
    for f in figures:
        entries[f.files[0]] = sheet_pdf(f.sheet, locale)
        entries[f.files[1]] = sheet_xlsx(f.sheet, locale)
        entries[f.files[2]] = session_chart(data.per_session[f.sheet.session], locale)
    learners = learner_files([f.sheet for f in figures], evidence)
    for file in learners:
        folder = learner_folder(file)
        entries[f"{folder}/learner-file.pdf"] = learner_file_pdf(file, locale)
        entries[f"{folder}/certificate.pdf"] = certificate_pdf(file, generated_at, locale)
    entries["index.html"] = index_html(target, settings, figures, learners, generated_at, locale, data.notes).encode()
    entries["index.pdf"] = index_pdf(target, settings, figures, learners, generated_at, locale, data.notes)
    stamp = generated_at.astimezone(settings.zone).timetuple()[:6]
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in ["index.html", "index.pdf", *sorted(n for n in entries if not n.startswith("index."))]:
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), entries[name], compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


async def audit_pack_bytes(
    db: Database, settings: Settings, target: Target, generated_at: datetime, locale: str
) -> bytes:
    """The audit pack as bytes (for an upload): rows read here, drawing in a worker thread so the event loop
    keeps answering while a large cohort's pack is drawn."""
    data = await _pack_data(db, settings, target)
    return await asyncio.to_thread(_render_pack, data, settings, generated_at, locale)


async def audit_pack(
    db: Database, settings: Settings, target: Target, out: Path, generated_at: datetime, locale: str
) -> Path:
    """Write the ZIP; entries are dated `generated_at`, so the same data and date give the same archive."""
    payload = await audit_pack_bytes(db, settings, target, generated_at, locale)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(payload)
    return out

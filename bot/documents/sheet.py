"""The attendance sheet of one session (PDF and XLSX, A4): who was there, when, how, and who prepared.

An auditor reads it printed: the header names the organisation, cohort, session, local date and times,
trainers and objectives; one line per enrolled learner; the totals; the footer carries the evidence
fingerprint (the head of the session's hash chain, see `storage.chain`) so a printed copy can be checked
against the database later with `peerbot verify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet
from sqlmodel import col, select

from bot.core import queries
from bot.documents.pdf import FONT, EvidencePDF
from bot.i18n import N_, label, t
from bot.reports import collect
from bot.settings import Settings
from storage import chain
from storage.db import Database
from storage.models import Cohort

STATUS_WORDS = {
    "on_time": N_("on time"),
    "late": N_("late"),
    "excused": N_("excused"),
    "absent": N_("absent"),
    "not yet": N_("not yet"),
}
METHOD_WORDS = {"button": N_("button"), "command": N_("command"), "reaction": N_("reaction")}
PRESENT = frozenset({"on_time", "late"})


@dataclass(frozen=True)
class SheetLine:
    learner: str
    learner_id: str
    checked_in_at: datetime | None  # aware UTC
    method: str  # button | command | reaction | ""
    status: str  # on_time | late | excused | absent | "not yet"
    reason: str
    prepared: bool


@dataclass(frozen=True)
class Totals:
    enrolled: int
    present: int
    on_time: int
    late: int
    excused: int
    absent: int
    prepared: int


@dataclass(frozen=True)
class AttendanceSheet:
    organisation: str
    cohort: str
    session: str  # short id
    title: str
    starts_at: datetime
    ends_at: datetime
    zone: ZoneInfo
    trainers: list[str]
    objectives: str
    lines: list[SheetLine]
    fingerprint: str = ""

    @property
    def totals(self) -> Totals:
        """The same counts as `/peer report` (present = on time + late), computed from the same rows."""
        statuses = [line.status for line in self.lines]
        return Totals(
            enrolled=len(self.lines),
            present=sum(s in PRESENT for s in statuses),
            on_time=statuses.count("on_time"),
            late=statuses.count("late"),
            excused=statuses.count("excused"),
            absent=statuses.count("absent"),
            prepared=sum(line.prepared for line in self.lines),
        )


async def attendance_sheet(db: Database, settings: Settings, short_id: str) -> AttendanceSheet:
    """The sheet's content, from the rows `collect` gives the CSV export and `/peer report`, and the head of the
    session's evidence chain at this moment."""
    evidence = await collect(db, [short_id])
    async with db.transaction() as tx:
        peer_session = await queries.peer_session(tx, None, short_id)
        cohort = (await tx.exec(select(Cohort).where(col(Cohort.id) == peer_session.cohort_id))).one()
        trainers = [m.display_name or m.user_id for m in await queries.trainers(tx, peer_session)]
        fingerprint = await (await tx.connection()).run_sync(chain.head, peer_session.id or 0)
    lines = [
        SheetLine(
            learner=row["learner"],
            learner_id=row["learner_id"],
            checked_in_at=datetime.fromisoformat(row["checked_in_at"]) if row["checked_in_at"] else None,
            method=row["method"],
            status=row["status"],
            reason=row["absence_reason"],
            prepared=row["prepared"] == "yes",
        )
        for row in evidence.attendance
    ]
    return AttendanceSheet(
        organisation=settings.organisation,
        cohort=cohort.name,
        session=peer_session.short_id,
        title=peer_session.title,
        starts_at=peer_session.starts_at,
        ends_at=peer_session.starts_at + timedelta(minutes=peer_session.duration_minutes),
        zone=settings.zone,
        trainers=trainers,
        objectives=peer_session.objectives,
        lines=lines,
        fingerprint=fingerprint,
    )


def _header(sheet: AttendanceSheet, locale: str) -> list[tuple[str, str]]:
    start, end = sheet.starts_at.astimezone(sheet.zone), sheet.ends_at.astimezone(sheet.zone)
    return [
        (t(locale, "Organisation"), sheet.organisation or t(locale, "(not set: PEERBOT_ORGANISATION)")),
        (t(locale, "Programme / cohort"), sheet.cohort),
        (t(locale, "Session"), f"{sheet.title} ({sheet.session})"),
        (t(locale, "Date"), format_date(start.date(), format="full", locale=locale)),
        (
            t(locale, "Time"),
            t(
                locale,
                "{start}–{end} ({zone})",
                start=format_time(start, "HH:mm", locale=locale),
                end=format_time(end, "HH:mm", locale=locale),
                zone=str(sheet.zone),
            ),
        ),
        (t(locale, "Trainer(s)"), ", ".join(sheet.trainers)),
        (t(locale, "Objectives"), sheet.objectives),
    ]


def _columns(locale: str) -> list[str]:
    return [
        t(locale, "Learner"),
        t(locale, "Checked in"),
        t(locale, "Method"),
        t(locale, "Status"),
        t(locale, "Reason"),
        t(locale, "Preparation"),
    ]


def _cells(sheet: AttendanceSheet, line: SheetLine, locale: str) -> list[str]:
    checked_in = line.checked_in_at.astimezone(sheet.zone) if line.checked_in_at else None
    return [
        line.learner,
        format_time(checked_in, "HH:mm", locale=locale) if checked_in else "",
        label(locale, METHOD_WORDS, line.method) if line.method else "",
        label(locale, STATUS_WORDS, line.status),
        line.reason,
        t(locale, "done") if line.prepared else t(locale, "not done"),
    ]


def _totals_text(sheet: AttendanceSheet, locale: str) -> str:
    totals = sheet.totals
    return t(
        locale,
        "{enrolled} enrolled: {present} present ({on_time} on time, {late} late), {excused} excused, "
        "{absent} absent; preparation done by {prepared}.",
        enrolled=totals.enrolled,
        present=totals.present,
        on_time=totals.on_time,
        late=totals.late,
        excused=totals.excused,
        absent=totals.absent,
        prepared=totals.prepared,
    )


def _fingerprint_text(sheet: AttendanceSheet, locale: str) -> str:
    if not sheet.fingerprint:
        return ""
    return t(locale, "Evidence fingerprint (hash chain head): {head}", head=sheet.fingerprint)


def sheet_pdf(sheet: AttendanceSheet, locale: str) -> bytes:
    """The sheet as an A4 PDF: header block, one table row per learner (repeated headings), totals."""
    return sheets_pdf([sheet], locale)


def sheets_pdf(sheets: list[AttendanceSheet], locale: str) -> bytes:
    """Several sheets in one PDF (a cohort's export), each from a new page with its own fingerprint."""
    title = t(locale, "Attendance sheet")
    first = sheets[0]
    pdf = EvidencePDF(f"{title} — {first.title}", first.organisation or "peerbot", first.starts_at)
    for sheet in sheets:
        pdf.new_section(_fingerprint_text(sheet, locale))
        add_sheet(pdf, sheet, locale)
    return pdf.to_bytes()


def add_sheet(pdf: EvidencePDF, sheet: AttendanceSheet, locale: str) -> None:
    pdf.heading(t(locale, "Attendance sheet"))
    for name, value in _header(sheet, locale):
        pdf.field(name, value)
    pdf.ln(3)
    pdf.set_font(FONT, size=8)
    with pdf.table(col_widths=(34, 13, 14, 14, 30, 15), text_align="LEFT", line_height=4.5, repeat_headings=1) as table:
        heading = table.row()
        for name in _columns(locale):
            heading.cell(name)
        for line in sheet.lines:
            row = table.row()
            for value in _cells(sheet, line, locale):
                row.cell(value)
    pdf.ln(3)
    pdf.heading(t(locale, "Totals"), size=10)
    pdf.paragraph(_totals_text(sheet, locale))


def _fit_columns(ws: Worksheet, widths: list[int]) -> None:
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width


def sheet_xlsx(sheet: AttendanceSheet, locale: str) -> bytes:
    """The sheet as a workbook: the same header, a filterable table, totals; printable on A4 (fit to width)."""
    workbook = Workbook()
    ws = workbook.active
    assert ws is not None
    ws.title = t(locale, "Attendance sheet")[:31]
    write_sheet(ws, sheet, locale)
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def write_sheet(ws: Worksheet, sheet: AttendanceSheet, locale: str) -> None:
    """Fill one worksheet with the sheet (the cohort export puts one session per worksheet)."""
    bold = Font(bold=True)
    ws.append([t(locale, "Attendance sheet")])
    ws["A1"].font = Font(bold=True, size=14)
    for name, value in _header(sheet, locale):
        ws.append([name, value])
        ws.cell(ws.max_row, 1).font = bold
    ws.append([])
    ws.append(_columns(locale))
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = bold
        cell.fill = PatternFill("solid", fgColor="DDDDDD")
    for line in sheet.lines:
        ws.append(_cells(sheet, line, locale))
    last = ws.max_row
    ws.auto_filter.ref = f"A{header_row}:F{last}"
    ws.append([])
    totals = sheet.totals
    ws.append([t(locale, "Totals"), _totals_text(sheet, locale)])
    ws.cell(ws.max_row, 1).font = bold
    for word, number in (
        (t(locale, "enrolled"), totals.enrolled),
        (t(locale, "present"), totals.present),
        (label(locale, STATUS_WORDS, "on_time"), totals.on_time),
        (label(locale, STATUS_WORDS, "late"), totals.late),
        (label(locale, STATUS_WORDS, "excused"), totals.excused),
        (label(locale, STATUS_WORDS, "absent"), totals.absent),
        (t(locale, "preparation done"), totals.prepared),
    ):
        ws.append([word, number])
    if sheet.fingerprint:
        ws.append([_fingerprint_text(sheet, locale)])
    for row in ws.iter_rows(min_row=2, max_row=header_row - 2):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")
    _fit_columns(ws, [28, 14, 12, 12, 30, 14])
    ws.freeze_panes = f"A{header_row + 1}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)

"""`peerbot export`: a session's or a cohort's evidence as CSV files, one workbook, or one PDF of sheets."""

from __future__ import annotations

import asyncio
import zipfile
from io import BytesIO
from pathlib import Path

from openpyxl import Workbook

from bot.documents.sheet import AttendanceSheet, attendance_sheet, sheets_pdf, write_sheet
from bot.documents.targets import Target
from bot.errors import NotFound
from bot.i18n import _, t
from bot.reports import (
    FEEDBACK_KEYS,
    FOLLOWUP_COLUMNS,
    QUESTION_COLUMNS,
    RETENTION_COLUMNS,
    Evidence,
    collect,
    csv_files,
    write_csv,
)
from bot.settings import Settings
from storage.db import Database

FORMATS = ("csv", "xlsx", "pdf")


def evidence_xlsx(sheets: list[AttendanceSheet], evidence: Evidence, locale: str) -> bytes:
    """One worksheet per session's attendance sheet, then the feedback and retention rows (the CSV columns), and
    the questions as asked and the follow-up when there are any (as `csv_files` writes them)."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    word = t(locale, "attendance")
    for sheet in sheets:
        write_sheet(workbook.create_sheet(f"{sheet.session} {word}"[:31]), sheet, locale)
    tables = [
        (t(locale, "feedback"), evidence.feedback_columns(), evidence.feedback),
        (t(locale, "retention"), RETENTION_COLUMNS, evidence.retention),
    ]
    if any(r["key"] not in FEEDBACK_KEYS for r in evidence.items_of("feedback")):  # a trainer's own items
        tables.append((t(locale, "questions"), QUESTION_COLUMNS, evidence.questions))
    if evidence.followup:
        tables.append((t(locale, "follow-up"), FOLLOWUP_COLUMNS, evidence.followup))
    for title, columns, rows in tables:
        ws = workbook.create_sheet(title[:31])
        ws.append(columns)
        for row in rows:
            ws.append([row.get(c, "") for c in columns])
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape"
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_zip(evidence: Evidence) -> bytes:
    """The three CSV files in one ZIP: a chat upload carries one file."""
    out = BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in csv_files(evidence).items():
            archive.writestr(name, data)
    return out.getvalue()


async def export_bytes(db: Database, settings: Settings, target: Target, fmt: str, locale: str) -> bytes:
    """The target's evidence as one file (csv: the three files zipped) for an upload. The rows are read here;
    the drawing runs in a worker thread, so a long export never holds the event loop (and the acks) up."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if not target.sessions:
        raise NotFound(_("Cohort `{cohort}` has no session yet.", cohort=target.name))
    evidence = await collect(db, target.sessions)
    if fmt == "csv":
        return await asyncio.to_thread(csv_zip, evidence)
    sheets = [await attendance_sheet(db, settings, short) for short in target.sessions]
    if fmt == "xlsx":
        return await asyncio.to_thread(evidence_xlsx, sheets, evidence, locale)
    return await asyncio.to_thread(sheets_pdf, sheets, locale)


async def export(db: Database, settings: Settings, target: Target, fmt: str, out: Path, locale: str) -> list[Path]:
    """Write the target's evidence; `out` is a folder for csv (three files), a file for xlsx and pdf."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if not target.sessions:
        raise NotFound(_("Cohort `{cohort}` has no session yet.", cohort=target.name))
    evidence = await collect(db, target.sessions)
    if fmt == "csv":
        return write_csv(evidence, out)
    sheets = [await attendance_sheet(db, settings, short) for short in target.sessions]
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        out.write_bytes(evidence_xlsx(sheets, evidence, locale))
    else:
        out.write_bytes(sheets_pdf(sheets, locale))
    return [out]

"""The documents an auditor gets, generated for the demo's seeded cohort and read back: their numbers are the
database's, the CSV export's and `/peer report`'s."""

from __future__ import annotations

import re
from datetime import datetime
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from pypdf import PdfReader
from sqlmodel import select

from bot.documents.sheet import attendance_sheet, sheet_pdf, sheet_xlsx
from storage.db import Database
from storage.models import Attendance, PeerSession, PrepAck
from tests.integration.conftest import ORGANISATION, Seeded, pdf_text, settings_for


async def database_counts(db: Database, short: str) -> dict[str, int]:
    async with db.transaction() as tx:
        session_id = (await tx.exec(select(PeerSession.id).where(PeerSession.short_id == short))).one()
        statuses = [a.status for a in (await tx.exec(select(Attendance).where(Attendance.session_id == session_id)))]
        prepared = len((await tx.exec(select(PrepAck).where(PrepAck.session_id == session_id))).all())
    return {
        "on_time": statuses.count("on_time"),
        "late": statuses.count("late"),
        "excused": statuses.count("excused"),
        "prepared": prepared,
    }


async def test_attendance_sheet_pdf_carries_the_session_and_the_database_counts(seeded: Seeded, db: Database) -> None:
    short = seeded.result.session
    sheet = await attendance_sheet(db, settings_for(seeded.url), short)
    counts = await database_counts(db, short)
    totals = sheet.totals
    assert (totals.on_time, totals.late, totals.excused, totals.prepared) == (
        counts["on_time"],
        counts["late"],
        counts["excused"],
        counts["prepared"],
    )
    present, enrolled, late, excused = map(
        int,
        re.search(r"Attendance: (\d+)/(\d+) present \((\d+) late, (\d+) excused\)", seeded.report).groups(),  # type: ignore[union-attr]
    )
    assert (totals.present, totals.enrolled, totals.late, totals.excused) == (present, enrolled, late, excused)
    absent = enrolled - present - excused
    assert totals.absent == absent

    data = sheet_pdf(sheet, "en")
    reader = PdfReader(BytesIO(data))
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4 portrait, in points
    text = pdf_text(data)
    for expected in (
        "Attendance sheet",
        ORGANISATION,
        "python",
        "Testing with pytest",
        "Wednesday, March 4, 2026",
        "14:00–15:30 (Europe/Paris)",
        "Camille (trainer)",
        "Write fixtures; parametrize tests; read a failure report",
        "Medical appointment",
        f"12 enrolled: {present} present ({counts['on_time']} on time, {late} late), {excused} excused, "
        f"{absent} absent; preparation done by {counts['prepared']}.",
    ):
        assert expected in text, expected
    rows = seeded.csv_rows("attendance.csv")
    for row in rows:  # every learner of the CSV export is on the sheet, with the same check-in time in Paris
        assert row["learner"] in text
        if row["checked_in_at"]:
            local = datetime.fromisoformat(row["checked_in_at"]).astimezone(ZoneInfo("Europe/Paris"))
            assert re.search(rf"{re.escape(row['learner'])}\s+{local:%H:%M}", text), row
    late_row = next(r for r in rows if r["status"] == "late")
    assert late_row["checked_in_at"].startswith("2026-03-04T13:12") and "14:12" in text  # 12 min late, CET
    assert "Chloé" in text or "Gaëlle" in text  # non-Latin-1-safe names survive (embedded Unicode font)


async def test_attendance_sheet_in_french(seeded: Seeded, db: Database) -> None:
    sheet = await attendance_sheet(db, settings_for(seeded.url), seeded.result.session)
    text = pdf_text(sheet_pdf(sheet, "fr"))
    assert "Feuille d'émargement" in text
    assert "mercredi 4 mars 2026" in text
    assert "à l'heure" in text
    assert "excusé" in text


async def test_attendance_sheet_xlsx_reads_back_line_by_line(seeded: Seeded, db: Database) -> None:
    sheet = await attendance_sheet(db, settings_for(seeded.url), seeded.result.session)
    workbook = load_workbook(BytesIO(sheet_xlsx(sheet, "en")))
    ws = workbook.active
    assert ws is not None
    values = [[c for c in row] for row in ws.iter_rows(values_only=True)]
    header = values.index(["Learner", "Checked in", "Method", "Status", "Reason", "Preparation"])
    lines = values[header + 1 : header + 1 + 12]
    rows = seeded.csv_rows("attendance.csv")
    assert [line[0] for line in lines] == [r["learner"] for r in rows]
    words = {"on_time": "on time", "late": "late", "excused": "excused", "absent": "absent"}
    assert [line[3] for line in lines] == [words[r["status"]] for r in rows]
    assert [line[5] == "done" for line in lines] == [r["prepared"] == "yes" for r in rows]
    assert {line[2] for line in lines if line[2]} == {"button", "command", "reaction"}
    totals = {row[0]: row[1] for row in values[header + 13 :] if row and row[0]}
    assert totals["present"] == sheet.totals.present == sum(r["status"] in {"on_time", "late"} for r in rows)
    assert totals["preparation done"] == sum(r["prepared"] == "yes" for r in rows)
    assert str(ws.page_setup.paperSize) == str(ws.PAPERSIZE_A4)  # A4, fitted to the page width
    assert ws.sheet_properties.pageSetUpPr is not None and ws.sheet_properties.pageSetUpPr.fitToPage


def test_the_demo_database_is_where_the_fixture_expects(seeded: Seeded) -> None:
    assert Path(seeded.url.removeprefix("sqlite+aiosqlite:///")).exists()


async def test_a_whole_demo_cycle_verifies_clean(seeded: Seeded, db: Database) -> None:
    """Submissions filled over several clicks, answers, late check-ins: every version is chained."""
    from bot.documents.verify import check

    [result] = await check(db, [seeded.result.session])
    assert result.verdict.ok, result.first
    assert result.verdict.links >= 12 + 8 * 6  # attendance, prep, submissions and their answers

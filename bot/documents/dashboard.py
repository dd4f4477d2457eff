"""What the web dashboard shows and serves, for one cohort the reader may see (the caller checked that).

The pages read the same figures as the audit pack (`pack.session_figures`, the attendance sheets, `collect`), so
a number on screen is the number on paper. Every file is made by the existing document functions; their
CPU-bound part (PDF, XLSX, PNG, ZIP) runs in a worker thread so the HTTP server keeps answering meanwhile.
The audit pack, async from end to end, runs whole in a worker thread with its own event loop and database engine.
"""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from bot.documents.charts import ChartData, chart_data, session_chart, trends_chart
from bot.documents.export import evidence_xlsx
from bot.documents.learner import LearnerFile, certificate_pdf, learner_file_pdf, learner_files
from bot.documents.pack import SessionFigures, audit_pack, cohort_trends, session_figures
from bot.documents.sheet import attendance_sheet, sheets_pdf
from bot.documents.targets import Target
from bot.documents.verify import check
from bot.i18n import Text, _, t
from bot.reports import Evidence, collect, csv_files
from bot.settings import Settings
from storage.db import Database
from storage.models import Cohort, PeerSession


def no_session(cohort: str) -> Text:
    return _("Cohort `{cohort}` has no session yet.", cohort=cohort)


def safe_name(raw: str) -> str:
    """A platform id as part of a file name (the same rule as the audit pack's folders)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw) or "_"


@dataclass(frozen=True)
class SessionRow:
    short: str
    state: str
    figures: SessionFigures


@dataclass(frozen=True)
class CohortPage:
    cohort: Cohort
    sessions: list[SessionRow]
    learners: list[LearnerFile]


@dataclass(frozen=True)
class SessionPage:
    cohort: Cohort
    session: PeerSession
    figures: SessionFigures
    chart: ChartData
    evidence: Evidence
    chain_problem: str  # the first altered record in words, "" when the chain is intact


async def shorts_of(db: Database, cohort_id: int) -> list[str]:
    """The cohort's sessions, in start order."""
    async with db.transaction() as tx:
        rows = await tx.exec(
            select(PeerSession.short_id)
            .where(PeerSession.cohort_id == cohort_id)
            .order_by(col(PeerSession.starts_at), col(PeerSession.id))
        )
        return list(rows.all())


async def _figures(db: Database, settings: Settings, shorts: list[str]) -> list[SessionFigures]:
    verdicts = {c.session: c.verdict.ok for c in await check(db, shorts)}
    return [await session_figures(db, settings, short, verdicts[short]) for short in shorts]


async def cohort_page(db: Database, settings: Settings, cohort: Cohort) -> CohortPage:
    assert cohort.id is not None
    shorts = await shorts_of(db, cohort.id)
    figures = await _figures(db, settings, shorts)
    async with db.transaction() as tx:
        states = dict(
            (
                await tx.exec(
                    select(PeerSession.short_id, PeerSession.state).where(col(PeerSession.short_id).in_(shorts))
                )
            ).all()
        )
    learners = learner_files([f.sheet for f in figures], await collect(db, shorts)) if shorts else []
    rows = [SessionRow(f.sheet.session, states[f.sheet.session], f) for f in figures]
    return CohortPage(cohort, rows, learners)


async def session_page(db: Database, settings: Settings, cohort: Cohort, peer_session: PeerSession) -> SessionPage:
    short = peer_session.short_id
    [verdict] = await check(db, [short])
    figures = await session_figures(db, settings, short, verdict.verdict.ok)
    evidence = await collect(db, [short])
    return SessionPage(cohort, peer_session, figures, chart_data(evidence), evidence, verdict.first)


async def learner_file(db: Database, settings: Settings, cohort_id: int, learner_id: str) -> LearnerFile | None:
    """The learner's file in this cohort, or None when they are not one of its learners."""
    shorts = await shorts_of(db, cohort_id)
    if not shorts:
        return None
    sheets = [await attendance_sheet(db, settings, short) for short in shorts]
    files = learner_files(sheets, await collect(db, shorts))
    return next((f for f in files if f.learner_id == learner_id), None)


# ---------------------------------------------------------------------------------------------- files and charts


async def session_chart_png(db: Database, short: str, locale: str) -> bytes:
    evidence = await collect(db, [short])
    return await asyncio.to_thread(session_chart, evidence, locale)


async def trends_png(db: Database, settings: Settings, cohort: Cohort, locale: str) -> bytes:
    assert cohort.id is not None
    figures = await _figures(db, settings, await shorts_of(db, cohort.id))
    title = t(locale, "Cohort {cohort}", cohort=cohort.name)
    return await asyncio.to_thread(trends_chart, title, cohort_trends(figures, locale), locale)


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


async def csv_zip(db: Database, shorts: list[str]) -> bytes:
    """The three CSV files of `peerbot export … csv`, in one ZIP."""
    return await asyncio.to_thread(_zip, csv_files(await collect(db, shorts)))


async def workbook(db: Database, settings: Settings, shorts: list[str], locale: str) -> bytes:
    sheets = [await attendance_sheet(db, settings, short) for short in shorts]
    evidence = await collect(db, shorts)
    return await asyncio.to_thread(evidence_xlsx, sheets, evidence, locale)


async def sheets(db: Database, settings: Settings, shorts: list[str], locale: str) -> bytes:
    found = [await attendance_sheet(db, settings, short) for short in shorts]
    return await asyncio.to_thread(sheets_pdf, found, locale)


async def learner_pdf(file: LearnerFile, locale: str) -> bytes:
    return await asyncio.to_thread(learner_file_pdf, file, locale)


async def certificate(file: LearnerFile, issued: datetime, locale: str) -> bytes:
    return await asyncio.to_thread(certificate_pdf, file, issued, locale)


async def pack(settings: Settings, cohort: Cohort, shorts: list[str], generated_at: datetime, locale: str) -> bytes:
    """`peerbot audit-pack` for this cohort, made in a worker thread (its own loop and engine on the same database)."""
    target = Target("cohort", cohort.name, shorts)

    async def make(folder: Path) -> bytes:
        db = Database(settings.database_url)
        try:
            out = await audit_pack(db, settings, target, folder / "audit-pack.zip", generated_at, locale)
        finally:
            await db.dispose()
        return out.read_bytes()

    def in_thread() -> bytes:
        with tempfile.TemporaryDirectory(prefix="peerbot-pack-") as folder:
            return asyncio.run(make(Path(folder)))

    return await asyncio.to_thread(in_thread)

"""`/peer export`, `/peer note` and `/peer report`'s chart on the local platform, on a copy of the seeded cohort:
each uploaded file is read back (PDF text, XLSX cells, ZIP listing, PNG pixels) and its numbers are the database's
and the demo's CSV files'."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import select

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.app import App, build
from bot.clock import FakeClock
from bot.core import queries
from bot.grammar import MAX_NOTE
from storage.models import Attendance, AuditEvent, Enrollment, PeerSession, PrepAck, SessionNote
from tests.conftest import T0
from tests.integration.conftest import Seeded, pdf_text, settings_for


@dataclass
class Chat:
    app: App
    platform: LocalPlatform
    trainer: LocalUser
    learner: LocalUser
    short: str


@pytest.fixture
async def chat(seeded: Seeded, tmp_path: Path) -> AsyncIterator[Chat]:
    """The seeded cohort's database (copied: notes are added) served to the local platform."""
    copy = tmp_path / "chat.db"
    shutil.copy(seeded.result.out_dir / "peerbot-demo.db", copy)
    platform = LocalPlatform()
    app = await build(settings_for(f"sqlite+aiosqlite:///{copy}"), {"local": platform}, clock=FakeClock(T0),
                      with_scheduler=False)  # fmt: skip
    trainer = LocalUser(app.core, platform, "T1", "Camille (trainer)", trainer=True)
    learner = LocalUser(app.core, platform, "L1", "Learner")
    yield Chat(app, platform, trainer, learner, seeded.result.session)
    await app.close()


def last_upload(chat: Chat, name: str) -> bytes:
    uploads = chat.platform.uploads_to("T1")
    assert uploads and uploads[-1].name == name, [u.name for u in uploads]
    return uploads[-1].data


async def test_export_uploads_each_format_to_the_trainers_dm(chat: Chat, seeded: Seeded) -> None:
    reply = await chat.trainer.command("export python xlsx")
    assert reply.ok and "python-evidence.xlsx" in reply.text and "DM" in reply.text, reply.text
    workbook = load_workbook(io.BytesIO(last_upload(chat, "python-evidence.xlsx")))
    assert workbook.sheetnames == [f"{chat.short} attendance", "feedback", "retention"]
    feedback = [[cell or "" for cell in row] for row in workbook["feedback"].iter_rows(values_only=True)]
    assert feedback == list(csv.reader(io.StringIO((seeded.result.out_dir / "feedback.csv").read_text())))

    reply = await chat.trainer.command("export python csv")
    assert reply.ok, reply.text
    with zipfile.ZipFile(io.BytesIO(last_upload(chat, "python-evidence-csv.zip"))) as archive:
        assert sorted(archive.namelist()) == ["attendance.csv", "feedback.csv", "retention.csv"]
        for name in archive.namelist():
            assert archive.read(name) == (seeded.result.out_dir / name).read_bytes()

    reply = await chat.trainer.command(f"export {chat.short}")  # pdf by default, the session wins the name
    assert reply.ok, reply.text
    text = " ".join(pdf_text(last_upload(chat, f"{chat.short}-evidence.pdf")).split())
    async with chat.app.db.transaction() as tx:  # the totals from the database's rows, counted here
        statuses = list((await tx.exec(select(Attendance.status))).all())
        enrolled = await queries.count(tx, Enrollment, Enrollment.role == "learner")
        prepared = await queries.count(tx, PrepAck)
    present = sum(s in {"on_time", "late"} for s in statuses)
    totals = (
        f"{enrolled} enrolled: {present} present ({statuses.count('on_time')} on time, {statuses.count('late')} "
        f"late), {statuses.count('excused')} excused, {enrolled - len(statuses) + statuses.count('absent')} absent; "
        f"preparation done by {prepared}."
    )
    assert "Testing with pytest" in text and totals in text, text
    assert f"Attendance: {present}/{enrolled} present" in seeded.report  # the report's numbers too
    workbook = load_workbook(io.BytesIO(chat.platform.uploads_to("T1")[0].data))
    cells = [c for row in workbook[f"{chat.short} attendance"].iter_rows(values_only=True) for c in row if c]
    assert totals in cells

    reply = await chat.trainer.command("export python audit")
    assert reply.ok, reply.text
    with zipfile.ZipFile(io.BytesIO(last_upload(chat, "python-audit-pack.zip"))) as archive:
        names = archive.namelist()
    assert names[:2] == ["index.html", "index.pdf"] and "csv/attendance.csv" in names
    assert f"sessions/{chat.short}/chart.png" in names
    async with chat.app.db.transaction() as tx:
        exports = list((await tx.exec(select(AuditEvent).where(AuditEvent.action == "export"))).all())
    assert len(exports) == 4 and all(e.actor == "local:T1" for e in exports)


async def test_an_export_too_big_for_the_platform_is_refused_politely(chat: Chat) -> None:
    chat.platform.max_upload = 1000  # bytes: any workbook is larger
    reply = await chat.trainer.command("export python xlsx")
    assert not reply.ok
    assert "peerbot export python xlsx" in reply.text and "MB" in reply.text, reply.text
    assert chat.platform.uploads_to("T1") == []
    reply = await chat.trainer.command("export python audit")
    assert not reply.ok and "peerbot audit-pack python" in reply.text, reply.text


async def test_export_refusals_say_what_to_type(chat: Chat) -> None:
    reply = await chat.trainer.command("export python docx")
    assert not reply.ok and "pdf, xlsx, csv, audit" in reply.text and "/peer export" in reply.text
    reply = await chat.trainer.command(f"export {chat.short} audit")
    assert not reply.ok and "whole cohort" in reply.text
    reply = await chat.trainer.command("export nosuch")
    assert not reply.ok and "nosuch" in reply.text
    reply = await chat.learner.command("export python")
    assert not reply.ok and "Only trainers" in reply.text
    assert chat.platform.uploads_to("T1") == [] and chat.platform.uploads_to("L1") == []


async def test_notes_show_in_the_report_and_in_indicator_32(chat: Chat) -> None:
    short = chat.short
    first = "Groups of 4 were too large for pairs work; try size=3."
    assert (await chat.trainer.command(f'note {short} "{first}"')).ok
    reply = await chat.trainer.command(f'note {short} "Prep posted too late: prep_before=2d next time."')
    assert reply.ok and "2 note(s)" in reply.text, reply.text
    async with chat.app.db.transaction() as tx:
        notes = list((await tx.exec(select(SessionNote).order_by(SessionNote.id))).all())  # type: ignore[arg-type]
        session_id = (await tx.exec(select(PeerSession.id).where(PeerSession.short_id == short))).one()
    assert len(notes) == 2 and notes[0].text == first and {n.session_id for n in notes} == {session_id}

    report = await chat.trainer.command(f"report {short}")
    assert report.ok and first in report.text and "Trainer's notes" in report.text
    assert "The chart is in your DMs" in report.text
    chart = chat.platform.uploads[-1].upload
    assert chart.name == f"{short}-chart.png" and chart.content_type == "image/png"
    assert first in chart.comment and "Attendance:" in chart.comment
    image = Image.open(io.BytesIO(chart.data)).convert("RGB")
    assert image.size == (900, 750)
    assert len(image.getcolors(1 << 20) or []) > 10  # drawn, not blank

    assert (await chat.trainer.command("export python audit")).ok
    with zipfile.ZipFile(io.BytesIO(last_upload(chat, "python-audit-pack.zip"))) as archive:
        index = archive.read("index.html").decode()
        index_pdf = pdf_text(archive.read("index.pdf"))
        notes_csv = archive.read("notes.csv")
    assert "not yet recorded" not in index
    assert "2 note(s) on 1 session(s)" in index and first in index
    assert "Trainer's notes and what changed between sessions" in index_pdf and "try size=3" in index_pdf
    rows = list(csv.DictReader(io.StringIO(notes_csv.decode())))
    assert len(rows) == 2 and (rows[0]["session"], rows[0]["author"], rows[0]["note"]) == (
        short,
        "Camille (trainer)",
        first,
    )


async def test_note_refusals_record_nothing(chat: Chat) -> None:
    too_long = "x" * (MAX_NOTE + 1)
    for command, expected in (
        (f"note {chat.short}", "Say which session"),
        (f'note {chat.short} "{too_long}"', f"at most {MAX_NOTE}"),
        ('note s999 "Something"', "no session `s999`"),
    ):
        reply = await chat.trainer.command(command)
        assert not reply.ok and expected in reply.text, (command, reply.text)
    reply = await chat.learner.command(f'note {chat.short} "I liked it"')
    assert not reply.ok and "Only trainers" in reply.text
    async with chat.app.db.transaction() as tx:
        assert list((await tx.exec(select(SessionNote))).all()) == []


async def test_the_report_still_answers_when_the_chart_cannot_be_sent(chat: Chat) -> None:
    chat.platform.closed_dms.add("T1")
    reply = await chat.trainer.command(f"report {chat.short}")
    assert reply.ok and "Attendance:" in reply.text and "direct message" in reply.text, reply.text


async def test_notes_outlive_the_retention_purge_and_a_learners_erasure_rewrites_their_mention(chat: Chat) -> None:
    """Notes are the trainer's evidence for indicator 32: the purge of free text keeps them; an erased learner's
    mention in one becomes their pseudonym."""
    assert (await chat.trainer.command(f'note {chat.short} "<@L3> needs the slides in advance."')).ok
    ctx = chat.app.core.ctx
    ctx.settings = ctx.settings.model_copy(update={"retention_days": 30})
    assert isinstance(ctx.clock, FakeClock)
    ctx.clock.set(T0 + timedelta(days=400))
    purged = await chat.app.core.privacy.purge_expired()
    assert purged is not None and purged.answers > 0  # the learners' free text went
    erased = await chat.app.core.privacy.erase_member("local", "L3")
    assert erased is not None
    async with chat.app.db.transaction() as tx:
        [note] = (await tx.exec(select(SessionNote))).all()
    assert note.text == f"<@{erased.pseudonym}> needs the slides in advance."

"""Tamper evidence on SQLite and PostgreSQL: the chain follows every record peerbot writes, `verify` names the
first record changed behind its back, and the sheets print the chain head."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import text
from sqlmodel import select

from bot.documents.sheet import attendance_sheet, sheet_pdf
from bot.documents.verify import check
from storage import chain
from storage.models import Attendance, EvidenceLink, Member, PeerSession, PrepAck
from tests.conftest import World
from tests.integration.test_session_flow import plan, session_row


async def run_session(world: World) -> str:
    """Prep by two learners, an excused absence, four check-ins (one late), all through the core."""
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    await world.advance(start - timedelta(days=1))
    for learner in world.learners[:2]:
        assert (await learner.command(f"prep-done {short}")).ok
    assert (await world.learners[5].command(f'absent {short} "Sick"')).ok
    await world.check_in_at_start(short, 3)
    await world.advance(start)
    world.clock.set(start + timedelta(minutes=12))
    assert (await world.learners[3].click(f"checkin:in:{short}")).ok
    return short


async def test_the_chain_covers_every_record_and_verifies_clean(world: World) -> None:
    short = await run_session(world)
    session_id = (await session_row(world, short)).id
    async with world.app.db.transaction() as tx:
        records = len((await tx.exec(select(Attendance).where(Attendance.session_id == session_id))).all()) + len(
            (await tx.exec(select(PrepAck).where(PrepAck.session_id == session_id))).all()
        )
        links = (await tx.exec(select(EvidenceLink).where(EvidenceLink.session_id == session_id))).all()
    assert records == 2 + 5 and len(links) >= records  # 2 preps, 1 excused + 4 check-ins
    [result] = await check(world.app.db, [short])
    assert result.verdict.ok and result.verdict.links == len(links)
    assert result.verdict.head == max(links, key=lambda link: link.seq).hash


async def test_verify_names_the_record_altered_in_the_database(world: World) -> None:
    short = await run_session(world)
    [before] = await check(world.app.db, [short])
    async with world.app.db.transaction() as tx:
        late = (await tx.exec(select(Attendance).where(Attendance.status == "late"))).one()
        name = (await tx.exec(select(Member.display_name).where(Member.id == late.member_id))).one()
        await tx.exec(text("UPDATE attendance SET status = 'on_time' WHERE id = :id").bindparams(id=late.id))  # type: ignore[call-overload]
    [after] = await check(world.app.db, [short])
    assert not after.verdict.ok
    first = after.verdict.problems[0]
    assert (first.what, first.record, first.record_id) == ("record-altered", "attendance", late.id)
    assert f"attendance record #{late.id} ({name})" in after.first
    assert after.verdict.head == before.verdict.head  # the links are untouched: the record is what changed

    sheet = await attendance_sheet(world.app.db, world.app.settings, short)
    text_of_pdf = "".join(p.extract_text() or "" for p in PdfReader(BytesIO(sheet_pdf(sheet, "en"))).pages)
    assert sheet.fingerprint == before.verdict.head and before.verdict.head in text_of_pdf.replace("\n", "")


async def test_verify_detects_an_edited_link_and_a_record_added_behind_peerbot(world: World) -> None:
    short = await run_session(world)
    session_id = (await session_row(world, short)).id
    async with world.app.db.transaction() as tx:
        await tx.exec(  # type: ignore[call-overload]
            text("UPDATE evidence_link SET content_hash = :h WHERE session_id = :s AND seq = 2").bindparams(
                h="f" * 64, s=session_id
            )
        )
    [result] = await check(world.app.db, [short])
    assert [(p.what, p.seq) for p in result.verdict.problems][:1] == [("link-altered", 2)]

    async with world.app.db.transaction() as tx:
        await tx.exec(text("UPDATE evidence_link SET content_hash = :h").bindparams(h="0" * 64))  # type: ignore[call-overload]
        learner = (await tx.exec(select(Member).where(Member.user_id == "L11"))).one()
        await tx.exec(  # type: ignore[call-overload]
            text("INSERT INTO prep_ack (session_id, member_id, at, method) VALUES (:s, :m, :at, 'button')").bindparams(
                s=session_id, m=learner.id, at=world.clock.now().replace(tzinfo=None)
            )
        )
    [result] = await check(world.app.db, [short])
    assert "record-unlinked" in {p.what for p in result.verdict.problems}


async def test_peerbot_verify_command_exits_1_naming_the_record(world: World, tmp_path: Path) -> None:
    short = await run_session(world)
    env = {**os.environ, "DATABASE_URL": world.app.settings.database_url, "PEERBOT_TIMEZONE": "Europe/Paris"}

    def verify(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "verify", target],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
            check=False,
        )

    clean = verify("py")  # the cohort: all its sessions
    assert clean.returncode == 0, clean.stderr
    assert f"{short}: intact" in clean.stdout
    async with world.app.db.transaction() as tx:
        prep = (await tx.exec(select(PrepAck))).first()
        assert prep is not None
        await tx.exec(text("UPDATE prep_ack SET method = 'reaction' WHERE id = :id").bindparams(id=prep.id))  # type: ignore[call-overload]
    altered = verify(short)
    assert altered.returncode == 1
    assert f"{short}: ALTERED, first: prep_ack record #{prep.id}" in altered.stdout
    assert "changed outside peerbot" in altered.stdout
    unknown = verify("nothing-here")
    assert unknown.returncode == 2 and "nothing-here" in unknown.stderr


async def test_unchanged_session_gets_no_new_link_from_a_read(world: World) -> None:
    short = await run_session(world)
    async with world.app.db.transaction() as tx:
        before = len((await tx.exec(select(EvidenceLink))).all())
    await check(world.app.db, [short])
    await world.app.core.handle_command(world.trainer.actor, f"report {short}")
    async with world.app.db.transaction() as tx:
        after = len((await tx.exec(select(EvidenceLink))).all())
        session = (await tx.exec(select(PeerSession).where(PeerSession.short_id == short))).one()
    assert before == after
    assert (await check(world.app.db, [short]))[0].verdict.head != chain.GENESIS
    assert session.id is not None


async def test_upgrading_from_0005_chains_the_records_already_there(world: World) -> None:
    """A database that has records but no chain yet (revision 0005) gets one link per record, verifying clean."""
    from alembic import command
    from sqlalchemy import Connection

    from storage.db import alembic_config

    short = await run_session(world)
    session_id = (await session_row(world, short)).id

    def migrate(conn: Connection, revision: str) -> None:
        if revision == "0005":
            command.downgrade(alembic_config(conn), revision)
        else:
            command.upgrade(alembic_config(conn), revision)

    async with world.app.db.engine.begin() as conn:
        await conn.run_sync(migrate, "0005")
    async with world.app.db.engine.begin() as conn:
        await conn.run_sync(migrate, "head")
    async with world.app.db.transaction() as tx:
        links = (await tx.exec(select(EvidenceLink).where(EvidenceLink.session_id == session_id))).all()
        records = len((await tx.exec(select(Attendance).where(Attendance.session_id == session_id))).all()) + len(
            (await tx.exec(select(PrepAck).where(PrepAck.session_id == session_id))).all()
        )
    assert len(links) == records == 7  # one link per record: the backfill chains each current version once
    assert [link.record for link in sorted(links, key=lambda link: link.seq)][:5] == ["attendance"] * 5
    [result] = await check(world.app.db, [short])
    assert result.verdict.ok

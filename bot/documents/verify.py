"""`peerbot verify`: recompute the hash chains of sessions and name the first record that no longer matches."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection
from sqlmodel import col, select

from storage import chain
from storage.db import Database
from storage.models import (
    Answer,
    Attendance,
    Member,
    PeerSession,
    PrepAck,
    ReviewAssignment,
    Submission,
    TutoringAgreement,
    WorkSubmission,
)

WHAT = {
    "link-altered": "its chain link was edited",
    "record-altered": "changed outside peerbot",
    "record-deleted": "deleted outside peerbot",
    "record-unlinked": "added outside peerbot (no chain link)",
}


@dataclass(frozen=True)
class SessionCheck:
    session: str
    verdict: chain.Verdict
    first: str  # the first problem in words ("" when intact)


def _learner(conn: Connection, problem: chain.Problem) -> str:
    """Whose record it is, so the person reading the report knows which line of which sheet to look at."""
    model = {
        "attendance": Attendance,
        "prep_ack": PrepAck,
        "submission": Submission,
        "agreement": TutoringAgreement,
        "work": WorkSubmission,
    }.get(problem.record)
    if problem.record == "review":
        query = (
            select(Member.display_name)
            .join(ReviewAssignment, col(ReviewAssignment.reviewer_id) == col(Member.id))
            .where(col(ReviewAssignment.id) == problem.record_id)
        )
    elif model is not None:
        query = select(Member.display_name).join(model, col(model.member_id) == col(Member.id))  # type: ignore[attr-defined]
        query = query.where(col(model.id) == problem.record_id)  # type: ignore[attr-defined]
    else:
        query = (
            select(Member.display_name)
            .join(Submission, col(Submission.member_id) == col(Member.id))
            .join(Answer, col(Answer.submission_id) == col(Submission.id))
            .where(col(Answer.id) == problem.record_id)
        )
    found = conn.execute(query).scalar()
    return str(found) if found else "unknown learner, record gone"


def describe(conn: Connection, problem: chain.Problem) -> str:
    return (
        f"{problem.record} record #{problem.record_id} ({_learner(conn, problem)}), link {problem.seq}: "
        f"{WHAT[problem.what]}"
    )


async def check(db: Database, short_ids: list[str]) -> list[SessionCheck]:
    checks = []
    async with db.transaction() as tx:
        conn = await tx.connection()
        for short in short_ids:
            session_id = (await tx.exec(select(PeerSession.id).where(PeerSession.short_id == short))).one()
            assert session_id is not None

            def run(sync: Connection, session_id: int = session_id) -> tuple[chain.Verdict, str]:
                verdict = chain.verify(sync, session_id)
                return verdict, describe(sync, verdict.problems[0]) if verdict.problems else ""

            verdict, first = await conn.run_sync(run)
            checks.append(SessionCheck(short, verdict, first))
    return checks


async def heads(db: Database, short_ids: list[str]) -> dict[str, str]:
    """Each session's chain head, as the sheets and the audit pack print it."""
    found = {}
    async with db.transaction() as tx:
        conn = await tx.connection()
        for short in short_ids:
            session_id = (await tx.exec(select(PeerSession.id).where(PeerSession.short_id == short))).one()
            assert session_id is not None
            found[short] = await conn.run_sync(chain.head, session_id)
    return found

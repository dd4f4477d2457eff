"""Tamper evidence: the attendance, preparation and questionnaire records of a session form a hash chain.

Every time a transaction inserts, changes or deletes one of those records through the ORM, a link is appended
to the session's chain in the `evidence_link` table: the SHA-256 of the record's canonical serialisation
(every column, read back from the database, as sorted JSON) and the SHA-256 of that, the record's name and
id, and the previous link's hash. The last link's hash is the chain head that sheets and the audit pack print.

`verify` recomputes both: a link whose hash does not follow from the one before means the chain itself was
edited; a record whose current content no longer hashes to its latest link, that has no link, or that has
disappeared was changed outside peerbot (an UPDATE in a SQL console, a restored backup). A printed head that
differs from today's head means links were rewritten wholesale.

Links are appended in `before_commit`, at the very end of a transaction, under a per-session PostgreSQL
advisory lock (SQLite has a single writer already), so concurrent check-ins queue only for the few inserts of
their links, and hold no other lock while waiting: no deadlock with the row locks of the rest of the work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, event, func, insert, inspect, select, text
from sqlmodel import Session, SQLModel

from storage.models import (
    Answer,
    Attendance,
    EvidenceLink,
    PrepAck,
    ReviewAssignment,
    Submission,
    TutoringAgreement,
    WorkSubmission,
)

GENESIS = "0" * 64
RECORDS: dict[str, type[SQLModel]] = {
    "attendance": Attendance,
    "prep_ack": PrepAck,
    "submission": Submission,
    "answer": Answer,
    "agreement": TutoringAgreement,  # tutoring: who accepted which objectives (text hash), met and how long
    "work": WorkSubmission,  # peer review: the work handed in
    "review": ReviewAssignment,  # peer review: who reviews it, and their scores and comment
}
NAMES = {model: name for name, model in RECORDS.items()}
DELETED = hashlib.sha256(b"deleted").hexdigest()
LOCK_CLASS = 0x65766964  # "evid": the advisory-lock key space of the evidence chains (second key: session id)
_TOUCHED = "evidence_touched"


def table(name: str) -> Table:
    found = RECORDS[name].__table__  # type: ignore[attr-defined]
    assert isinstance(found, Table)
    return found


LINKS: Table = EvidenceLink.__table__  # type: ignore[attr-defined,assignment]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def canonical(name: str, row: Any) -> bytes:
    """The record as sorted JSON of every column, values as the database gives them back (times in UTC)."""
    values = {column.name: _plain(row[column.name]) for column in table(name).columns}
    return json.dumps({"record": name, **values}, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_hash(name: str, row: Any) -> str:
    return hashlib.sha256(canonical(name, row)).hexdigest()


def link_hash(prev_hash: str, name: str, record_id: int, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{name}|{record_id}|{content}".encode()).hexdigest()


def _remember(session: Session, _context: Any) -> None:
    """after_flush: note which chained records this flush wrote (their ids are known now). One query finds
    the sessions of all the answers written (an answer knows only its submission)."""
    touched: set[tuple[str, int, int]] = session.info.setdefault(_TOUCHED, set())
    candidates = [*session.new, *(o for o in session.dirty if session.is_modified(o)), *session.deleted]
    answers: list[Any] = []
    for obj in candidates:
        name = NAMES.get(type(obj))
        if name is None or obj.id is None:
            continue
        if name == "answer":
            answers.append(obj)
        else:
            touched.add((name, int(obj.id), int(obj.session_id)))
    if answers:
        submissions = table("submission")
        wanted = {int(a.submission_id) for a in answers}
        query = select(submissions.c.id, submissions.c.session_id).where(submissions.c.id.in_(wanted))
        session_of = {int(i): int(s) for i, s in session.connection().execute(query)}
        touched.update(
            ("answer", int(a.id), session_of[int(a.submission_id)])
            for a in answers
            if int(a.submission_id) in session_of
        )


def touch(session: Session, name: str, records: Iterable[tuple[int, int]]) -> None:
    """Chain records written outside the ORM's unit of work (a bulk insert): (record id, session id) pairs,
    linked at the commit like the ones a flush wrote."""
    session.info.setdefault(_TOUCHED, set()).update((name, record_id, session_id) for record_id, session_id in records)


def _append(session: Session) -> None:
    """before_commit: flush what is left, then append one link per record written in this transaction."""
    session.flush()
    touched: set[tuple[str, int, int]] = session.info.pop(_TOUCHED, set())
    if not touched:
        return
    conn = session.connection()
    order = list(RECORDS)
    by_session: dict[int, list[tuple[str, int]]] = {}
    for name, record_id, session_id in touched:
        by_session.setdefault(session_id, []).append((name, record_id))
    for session_id in sorted(by_session):
        append_links(conn, session_id, sorted(by_session[session_id], key=lambda r: (order.index(r[0]), r[1])))


def append_links(conn: Connection, session_id: int, records: list[tuple[str, int]]) -> None:
    """Append the current content of `records` to the session's chain (also used by the migration backfill)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": LOCK_CLASS, "b": session_id})
    last = conn.execute(
        select(LINKS.c.seq, LINKS.c.hash).where(LINKS.c.session_id == session_id).order_by(LINKS.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    current: dict[tuple[str, int], Any] = {}
    for name in dict.fromkeys(name for name, _id in records):  # one read per kind of record, in batches
        ids = [record_id for kind, record_id in records if kind == name]
        for start in range(0, len(ids), 500):
            query = select(table(name)).where(table(name).c.id.in_(ids[start : start + 500]))
            current.update(((name, int(row["id"])), row) for row in conn.execute(query).mappings())
    links: list[dict[str, Any]] = []
    for name, record_id in records:
        row = current.get((name, record_id))
        content = DELETED if row is None else content_hash(name, row)
        seq += 1
        digest = link_hash(prev, name, record_id, content)
        links.append(
            {
                "session_id": session_id,
                "seq": seq,
                "record": name,
                "record_id": record_id,
                "content_hash": content,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    if links:
        conn.execute(insert(LINKS), links)  # one executemany: a class checking in at once is one statement


def install(session_class: type[Session]) -> None:
    """Chain every transaction opened with `session_class` (the sync class behind `Database.transaction`)."""
    if not event.contains(session_class, "after_flush", _remember):
        event.listen(session_class, "after_flush", _remember)
        event.listen(session_class, "before_commit", _append)


class ChainedSession(Session):
    """The ORM session whose commits extend the evidence chains."""


install(ChainedSession)


@dataclass(frozen=True)
class Problem:
    """One thing that does not match: `what` is a short code, `detail` names the record."""

    seq: int  # the link where it shows (the record's latest link; links count + 1 for a record without one)
    what: str  # link-altered | record-altered | record-deleted | record-unlinked
    record: str
    record_id: int


@dataclass(frozen=True)
class Verdict:
    session_id: int
    links: int
    head: str
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def current_records(conn: Connection, session_id: int) -> dict[tuple[str, int], str]:
    """(record, id) → content hash, for every chained record of the session as the database holds it now."""
    found: dict[tuple[str, int], str] = {}
    present = set(inspect(conn).get_table_names())  # the 0006 backfill runs before later migrations' tables exist
    for name in ("attendance", "prep_ack", "submission", "agreement", "work", "review"):
        if table(name).name not in present:
            continue
        for row in conn.execute(select(table(name)).where(table(name).c.session_id == session_id)).mappings():
            found[(name, int(row["id"]))] = content_hash(name, row)
    answers = table("answer")
    submissions = table("submission")
    query = (
        select(answers)
        .join(submissions, submissions.c.id == answers.c.submission_id)
        .where(submissions.c.session_id == session_id)
    )
    for row in conn.execute(query).mappings():
        found[("answer", int(row["id"]))] = content_hash("answer", row)
    return found


def verify(conn: Connection, session_id: int) -> Verdict:
    """Recompute the session's chain and compare each record with its latest link; problems in chain order."""
    problems: list[Problem] = []
    prev = GENESIS
    latest: dict[tuple[str, int], tuple[int, str]] = {}
    rows = conn.execute(select(LINKS).where(LINKS.c.session_id == session_id).order_by(LINKS.c.seq)).mappings().all()
    for link in rows:
        expected = link_hash(prev, link["record"], int(link["record_id"]), link["content_hash"])
        if link["prev_hash"] != prev or link["hash"] != expected:
            problems.append(Problem(int(link["seq"]), "link-altered", link["record"], int(link["record_id"])))
        prev = link["hash"]
        latest[(link["record"], int(link["record_id"]))] = (int(link["seq"]), link["content_hash"])
    now = current_records(conn, session_id)
    for key, (seq, content) in latest.items():
        if key not in now:
            if content != DELETED:
                problems.append(Problem(seq, "record-deleted", *key))
        elif now[key] != content:
            problems.append(Problem(seq, "record-altered", *key))
    unlinked = sorted(set(now) - set(latest), key=lambda k: (list(RECORDS).index(k[0]), k[1]))
    problems += [Problem(len(rows) + 1, "record-unlinked", *key) for key in unlinked]
    problems.sort(key=lambda p: p.seq)
    return Verdict(session_id, len(rows), prev, problems)


def head(conn: Connection, session_id: int) -> str:
    """The chain head printed on documents (GENESIS for a session with no record yet)."""
    found = conn.execute(
        select(LINKS.c.hash).where(LINKS.c.session_id == session_id).order_by(LINKS.c.seq.desc()).limit(1)
    ).scalar()
    return str(found) if found else GENESIS


def count_links(conn: Connection, session_id: int) -> int:
    query = select(func.count()).select_from(LINKS).where(LINKS.c.session_id == session_id)
    return int(conn.execute(query).scalar_one())

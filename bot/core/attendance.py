"""Attendance evidence: preparation marked done, check-in (on time or late, by button, ✅ or command) and a
reasoned absence. These rows are what a quality audit reads, so every path to them lives here; a
check-in after the start also places the learner in a group, hence `Groups` in the constructor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.core import queries, rules
from bot.core.context import Context, log
from bot.core.groups import Arrivals, Groups
from bot.core.rules import AttendanceStatus, Role, SessionState
from bot.errors import Forbidden, Invalid, PeerError
from bot.grouping import size_bounds
from bot.i18n import SESSION_STATES, Text, _, t
from bot.inbound import Actor
from bot.messages import Reply
from bot.port import PlatformError
from bot.refs import ChannelRef
from storage import chain, models
from storage.db import insert_rows
from storage.models import Enrollment, Member, PeerSession, PrepAck


class Attendance:
    """Prep done, check-in and absence, with the learner commands that lead to them."""

    def __init__(self, ctx: Context, groups: Groups) -> None:
        self.ctx, self.groups = ctx, groups
        self._pending: list[_CheckIn] = []
        self._writer: asyncio.Task[None] | None = None

    async def checkin(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.learner_session(tx, actor, command.session)
        return await self.check_in(actor, peer_session.short_id, method="command")

    async def prep_done_command(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.learner_session(tx, actor, command.session)
        return await self.prep_done(actor, peer_session.short_id, method="command")

    async def absent(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        reason = command.texts[0].strip()
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            member = await queries.actor_member(tx, actor)
            await queries.enrollment(tx, peer_session, member)
            if rules.is_over(peer_session, self.ctx.clock.now()):
                raise Invalid(
                    _(
                        "Session `{session}` is over; an absence reason must be sent before the end.",
                        session=peer_session.short_id,
                    )
                )
            assert peer_session.id is not None and member.id is not None
            attendance = (
                await tx.exec(
                    select(models.Attendance).where(
                        models.Attendance.session_id == peer_session.id, models.Attendance.member_id == member.id
                    )
                )
            ).first()
            if attendance is None:
                tx.add(
                    models.Attendance(
                        session_id=peer_session.id,
                        member_id=member.id,
                        status=AttendanceStatus.EXCUSED,
                        absence_reason=reason,
                    )
                )
            elif attendance.status in rules.PRESENT:
                raise Invalid(_("You have already checked in to this session."))
            else:
                attendance.absence_reason = reason
            self.ctx.audit(tx, actor.user.key, "absence", peer_session.id, reason=reason)
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Thank you, your absence from `{session}` is recorded with your reason.",
                session=peer_session.short_id,
            )
        )

    async def prep_done(self, actor: Actor, short_id: str, *, method: str) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, short_id)
            member = await queries.actor_member(tx, actor)
            await queries.enrollment(tx, peer_session, member)
            assert peer_session.id is not None and member.id is not None
            if not rules.accepts_prep(peer_session.state):
                raise Invalid(
                    _(
                        "Session `{session}` is {state}.",
                        session=peer_session.short_id,
                        state=Text(SESSION_STATES[peer_session.state]),
                    )
                )
            found = (
                await tx.exec(
                    select(PrepAck).where(PrepAck.session_id == peer_session.id, PrepAck.member_id == member.id)
                )
            ).first()
            if found is not None:
                return Reply(
                    t(self.ctx.reply_locale(actor), "Your preparation was already recorded. See you at the session!")
                )
            tx.add(PrepAck(session_id=peer_session.id, member_id=member.id, at=self.ctx.clock.now(), method=method))
            self.ctx.audit(tx, actor.user.key, "prep.done", peer_session.id, method=method)
        return Reply(t(self.ctx.reply_locale(actor), "Preparation recorded, thank you!"))

    async def check_in(self, actor: Actor, short_id: str, *, method: str) -> Reply:
        """Record attendance; after the start the learner is placed at once (`Groups.place_arrivals`): in a
        group, in a new group with others who wait, or waiting, and told which.

        Check-ins that arrive together (a whole class at 9:00) are written by one task in one transaction
        (group commit): a few set-based statements for the batch instead of six round trips and a commit each.
        A refusal is computed from lookups only, so it writes nothing."""
        loop = asyncio.get_running_loop()
        request = _CheckIn(actor, short_id, method, self.ctx.clock.now(), loop.create_future())
        self._pending.append(request)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_check_ins())
        return await request.future

    async def _write_check_ins(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:CHECKIN_BATCH], self._pending[CHECKIN_BATCH:]
            try:
                await self._check_in_batch(batch)
            except Exception as exc:  # e.g. a row another process wrote first: each caller retries or answers
                log.warning("a batch of %d check-ins failed; each caller gets the error: %s", len(batch), exc)
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)

    async def _check_in_batch(self, batch: list[_CheckIn]) -> None:
        outcomes: list[tuple[_CheckIn, PeerSession, int, str] | None] = []
        refusals: dict[int, PeerError] = {}
        placed: dict[int, Arrivals] = {}
        async with self.ctx.db.transaction() as tx:
            found = await self._lookups(tx, batch)
            for index, request in enumerate(batch):
                try:
                    outcomes.append(self._record(tx, request, found))
                except AlreadyCheckedIn:
                    outcomes.append(None)  # a repeat is no error: answered kindly below
                except PeerError as exc:
                    refusals[index] = exc
                    outcomes.append(None)
            await self._write_new(tx, found)
            running = {o[1].id: o[1] for o in outcomes if o is not None and o[1].state == SessionState.RUNNING}
            if running:
                await tx.flush()
                for session_id, peer_session in running.items():
                    placed[session_id or 0] = await self.groups.place_arrivals(tx, peer_session)
        for peer_session in {o[1].id: o[1] for o in outcomes if o is not None and rules.can_start(o[1].state)}.values():
            self.groups.prepare_soon(peer_session)  # refine the draft with who has checked in so far
        for session_id, arrivals in placed.items():  # before the replies: a learner told "group 2" finds its breakout
            if arrivals.joined or arrivals.blocked:
                told = {o[0].actor.user.id for o in outcomes if o is not None and o[1].id == session_id}
                try:
                    await self.groups.announce_arrivals(running[session_id], arrivals, skip=told)
                except PlatformError as exc:
                    log.warning("session %s: could not announce placements: %s", running[session_id].short_id, exc)
        for index, (request, outcome) in enumerate(zip(batch, outcomes, strict=True)):
            if request.future.done():  # the caller gave up (a cancelled request): nothing to answer
                continue
            if outcome is None and index in refusals:
                request.future.set_exception(refusals[index])
            elif outcome is None:
                request.future.set_result(Reply(t(self.ctx.reply_locale(request.actor), "You are already checked in.")))
            else:
                _request, peer_session, member_id, status = outcome
                arrivals = placed.get(peer_session.id or 0, Arrivals())
                request.future.set_result(self._checked_in(request.actor, peer_session, member_id, status, arrivals))

    async def _lookups(self, tx: AsyncSession, batch: list[_CheckIn]) -> _Found:
        """Everything the batch reads, in a few queries: sessions, members, enrollments, attendance rows."""
        found = _Found()
        for request in batch:
            key = (request.actor.user.platform, request.actor.workspace, request.short_id.lower())
            if key not in found.sessions:
                try:
                    found.sessions[key] = await queries.peer_session(tx, request.actor, request.short_id)
                except PeerError as exc:
                    found.sessions[key] = exc
        for platform in {r.actor.user.platform for r in batch}:
            users = {r.actor.user.id for r in batch if r.actor.user.platform == platform}
            rows = await tx.exec(select(Member).where(Member.platform == platform, col(Member.user_id).in_(users)))
            found.members.update({(platform, m.user_id): m for m in rows.all()})
        member_ids = [m.id for m in found.members.values()]
        session_ids = [p.id for p in found.sessions.values() if isinstance(p, PeerSession)]
        cohort_ids = {p.cohort_id for p in found.sessions.values() if isinstance(p, PeerSession)}
        if member_ids and session_ids:
            enrolled = await tx.exec(
                select(Enrollment.cohort_id, Enrollment.member_id).where(
                    col(Enrollment.cohort_id).in_(cohort_ids),
                    col(Enrollment.member_id).in_(member_ids),
                    Enrollment.role == Role.LEARNER,
                )
            )
            found.enrolled = set(enrolled.all())
            rows_ = await tx.exec(
                select(models.Attendance).where(
                    col(models.Attendance.session_id).in_(session_ids),
                    col(models.Attendance.member_id).in_(member_ids),
                )
            )
            found.attendance = {(a.session_id, a.member_id): a for a in rows_.all()}
        return found

    def _record(self, tx: AsyncSession, request: _CheckIn, found: _Found) -> tuple[_CheckIn, PeerSession, int, str]:
        """One check-in of the batch: the same refusals, in the same order, as a check-in on its own."""
        actor = request.actor
        peer_session = found.sessions[(actor.user.platform, actor.workspace, request.short_id.lower())]
        if isinstance(peer_session, PeerError):
            raise peer_session
        member = found.members.get((actor.user.platform, actor.user.id))
        if member is None or (peer_session.cohort_id, member.id) not in found.enrolled:
            raise Forbidden(
                _("You are not enrolled as a learner in session `{session}`.", session=peer_session.short_id),
                _("If you should be, ask your trainer to add you to the cohort."),
            )
        assert peer_session.id is not None and member.id is not None
        refusal = rules.checkin_refusal(peer_session, request.now)
        if refusal == "closed":
            raise Invalid(_("Check-in for `{session}` is closed.", session=peer_session.short_id))
        if refusal == "not_open":
            opens, _closes = rules.checkin_window(peer_session)
            raise Invalid(
                _(
                    "Check-in for `{session}` opens {minutes} minutes before the start ({opens}).",
                    session=peer_session.short_id,
                    minutes=rules.minutes(rules.CHECKIN_OPENS),
                    opens=self.ctx.fallback(opens),
                )
            )
        key = (peer_session.id, member.id)
        attendance = found.attendance.get(key)
        if key in found.new or (attendance is not None and attendance.status in rules.PRESENT):
            raise AlreadyCheckedIn()
        status = rules.attendance_status(peer_session, request.now)
        if attendance is None:  # written with the batch's other new rows by `_write_new`
            found.new[key] = {
                "session_id": peer_session.id,
                "member_id": member.id,
                "status": status,
                "checked_in_at": request.now,
                "method": request.method,
                "absence_reason": "",
            }
        else:
            attendance.status, attendance.checked_in_at, attendance.method = status, request.now, request.method
        queries.refresh(member, actor.display_name, actor.locale)
        found.audit.append(
            self.ctx.audit_row(actor.user.key, "checkin", peer_session.id, method=request.method, status=status)
        )
        return request, peer_session, member.id, status

    async def _write_new(self, tx: AsyncSession, found: _Found) -> None:
        """The batch's new attendance rows and audit lines, one statement each, and their evidence links.

        A row another replica wrote meanwhile (the same learner's second click, there) is kept as it is: the
        learner is checked in either way."""
        await insert_rows(tx, models.Attendance, list(found.new.values()), skip_taken=("session_id", "member_id"))
        await insert_rows(tx, models.AuditEvent, found.audit)
        if found.new:
            table = models.Attendance
            written = await tx.exec(
                select(table.id, table.session_id, table.member_id).where(
                    col(table.session_id).in_({session_id for session_id, _member in found.new}),
                    col(table.member_id).in_({member_id for _session, member_id in found.new}),
                )
            )
            ids = [(int(i), s) for i, s, m in written.all() if i is not None and (s, m) in found.new]
            chain.touch(tx.sync_session, "attendance", ids)

    def _checked_in(
        self, actor: Actor, peer_session: PeerSession, member_id: int, status: str, arrivals: Arrivals
    ) -> Reply:
        locale = self.ctx.reply_locale(actor)
        text = (
            t(locale, "Checked in to “{title}” (marked late).", title=peer_session.title)
            if status == AttendanceStatus.LATE
            else t(locale, "Checked in to “{title}”.", title=peer_session.title)
        )
        group = arrivals.group_of(member_id)
        if group is not None:
            text += t(locale, " You joined group {number}.", number=group.number)
        elif member_id in arrivals.waiting:
            low, _high = size_bounds(peer_session.format, peer_session.group_size)
            text += t(
                locale,
                " Your group forms as soon as {count} learners are here to start one, or in {minutes} minutes you "
                "join the smallest group; I will tell you.",
                count=low,
                minutes=rules.minutes(rules.WAIT_ALONE),
            )
        return Reply(text)


CHECKIN_BATCH = 256  # check-ins written in one transaction at most: a class of 500 at 9:00 is two commits


@dataclass
class _CheckIn:
    actor: Actor
    short_id: str
    method: str
    now: datetime
    future: asyncio.Future[Reply]


@dataclass
class _Found:
    sessions: dict[tuple[str, str, str], PeerSession | PeerError] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    enrolled: set[tuple[int, int]] = field(default_factory=set)
    attendance: dict[tuple[int, int], models.Attendance] = field(default_factory=dict)
    new: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)  # attendance rows to insert
    audit: list[dict[str, Any]] = field(default_factory=list)  # audit lines to insert


class AlreadyCheckedIn(Exception):
    """A second check-in: answered kindly (not as an error), and nothing changes."""

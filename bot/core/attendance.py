"""Attendance evidence: preparation marked done, check-in (on time or late, by button, ✅ or command) and a
reasoned absence. These rows are what a quality audit reads, so every path to them lives here; a
check-in after the start also places the learner in a group, hence the base on `GroupsMixin`.
"""

from __future__ import annotations

from sqlmodel import select

from bot import grammar
from bot.core import queries, rules
from bot.core.context import Context
from bot.core.groups import Arrivals, Groups
from bot.core.rules import AttendanceStatus, SessionState
from bot.errors import Invalid
from bot.grouping import size_bounds
from bot.i18n import SESSION_STATES, Text, _, t
from bot.inbound import Actor
from bot.messages import Reply
from bot.refs import ChannelRef
from storage import models
from storage.models import PrepAck


class Attendance:
    """Prep done, check-in and absence, with the learner commands that lead to them."""

    def __init__(self, ctx: Context, groups: Groups) -> None:
        self.ctx, self.groups = ctx, groups

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
        group, in a new group with others who wait, or waiting, and told which."""
        now = self.ctx.clock.now()
        arrivals = Arrivals()
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, short_id)
            member = await queries.actor_member(tx, actor)
            await queries.enrollment(tx, peer_session, member)
            assert peer_session.id is not None and member.id is not None
            refusal = rules.checkin_refusal(peer_session, now)
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
            attendance = (
                await tx.exec(
                    select(models.Attendance).where(
                        models.Attendance.session_id == peer_session.id, models.Attendance.member_id == member.id
                    )
                )
            ).first()
            if attendance is not None and attendance.status in rules.PRESENT:
                return Reply(t(self.ctx.reply_locale(actor), "You are already checked in."))
            status = rules.attendance_status(peer_session, now)
            if attendance is None:
                tx.add(
                    models.Attendance(
                        session_id=peer_session.id, member_id=member.id, status=status, checked_in_at=now, method=method
                    )
                )
            else:
                attendance.status, attendance.checked_in_at, attendance.method = status, now, method
            self.ctx.audit(tx, actor.user.key, "checkin", peer_session.id, method=method, status=status)
            if peer_session.state == SessionState.RUNNING:
                await tx.flush()
                arrivals = await self.groups.place_arrivals(tx, peer_session)
        if arrivals.joined or arrivals.blocked:
            await self.groups.announce_arrivals(peer_session, arrivals, skip=actor.user.id)
        locale = self.ctx.reply_locale(actor)
        text = (
            t(locale, "Checked in to “{title}” (marked late).", title=peer_session.title)
            if status == AttendanceStatus.LATE
            else t(locale, "Checked in to “{title}”.", title=peer_session.title)
        )
        group = arrivals.group_of(member.id)
        if group is not None:
            text += t(locale, " You joined group {number}.", number=group.number)
        elif member.id in arrivals.waiting:
            low, _high = size_bounds(peer_session.format, peer_session.group_size)
            text += t(
                locale,
                " Your group forms as soon as {count} learners are here to start one, or in {minutes} minutes you "
                "join the smallest group; I will tell you.",
                count=low,
                minutes=rules.minutes(rules.WAIT_ALONE),
            )
        return Reply(text)

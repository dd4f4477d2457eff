"""Attendance evidence: preparation marked done, check-in (on time or late, by button, ✅ or command) and a
reasoned absence. These rows are what a quality audit reads, so every path to them lives here; a
check-in after the start also places the learner in a group, hence the base on `GroupsMixin`.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.core.base import ACTIVE_STATES, CHECKIN_OPENS, LATE_AFTER
from bot.core.groups import GroupsMixin
from bot.errors import Forbidden, Invalid, NotFound
from bot.i18n import SESSION_STATES, Text, _, t
from bot.inbound import Actor
from bot.messages import Reply
from bot.refs import ChannelRef
from storage.models import Attendance, Enrollment, Member, PeerSession, PrepAck


class AttendanceMixin(GroupsMixin):
    """Prep done, check-in and absence, with the learner commands that lead to them."""

    async def _learner_session(self, s: AsyncSession, actor: Actor, short_id: str) -> PeerSession:
        """The named session, or the learner's nearest active one when no id is given."""
        if short_id:
            return await self._session(s, actor, short_id)
        member = await self._actor_member(s, actor)
        rows = await s.exec(
            select(PeerSession)
            .join(Enrollment, col(Enrollment.cohort_id) == col(PeerSession.cohort_id))
            .where(Enrollment.member_id == member.id, col(PeerSession.state).in_(ACTIVE_STATES[:3]))
            .order_by(col(PeerSession.starts_at))
        )
        session = rows.first()
        if session is None:
            raise NotFound(_("You have no upcoming session."), _("If you expected one, ask your trainer."))
        return session

    async def _enrollment(self, s: AsyncSession, session: PeerSession, member: Member) -> Enrollment:
        found = await s.exec(
            select(Enrollment).where(
                Enrollment.cohort_id == session.cohort_id,
                Enrollment.member_id == member.id,
                Enrollment.role == "learner",
            )
        )
        enrollment = found.first()
        if enrollment is None:
            raise Forbidden(
                _("You are not enrolled as a learner in session `{session}`.", session=session.short_id),
                _("If you should be, ask your trainer to add you to the cohort."),
            )
        return enrollment

    async def _cmd_checkin(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._learner_session(s, actor, command.session)
        return await self.check_in(actor, session.short_id, method="command")

    async def _cmd_prep_done(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._learner_session(s, actor, command.session)
        return await self.prep_done(actor, session.short_id, method="command")

    async def _cmd_absent(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        reason = command.texts[0].strip()
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            member = await self._actor_member(s, actor)
            await self._enrollment(s, session, member)
            if self.clock.now() >= self.end_of(session) or session.state in {"ended", "closed", "cancelled"}:
                raise Invalid(
                    _(
                        "Session `{session}` is over; an absence reason must be sent before the end.",
                        session=session.short_id,
                    )
                )
            assert session.id is not None and member.id is not None
            attendance = (
                await s.exec(
                    select(Attendance).where(Attendance.session_id == session.id, Attendance.member_id == member.id)
                )
            ).first()
            if attendance is None:
                s.add(Attendance(session_id=session.id, member_id=member.id, status="excused", absence_reason=reason))
            elif attendance.status in {"on_time", "late"}:
                raise Invalid(_("You have already checked in to this session."))
            else:
                attendance.absence_reason = reason
            await self._audit(s, actor.user.key, "absence", session.id, reason=reason)
        return Reply(
            t(
                self.reply_locale(actor),
                "Thank you, your absence from `{session}` is recorded with your reason.",
                session=session.short_id,
            )
        )

    async def prep_done(self, actor: Actor, short_id: str, *, method: str) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, short_id)
            member = await self._actor_member(s, actor)
            await self._enrollment(s, session, member)
            assert session.id is not None and member.id is not None
            if session.state in {"ended", "closed", "cancelled"}:
                raise Invalid(
                    _(
                        "Session `{session}` is {state}.",
                        session=session.short_id,
                        state=Text(SESSION_STATES[session.state]),
                    )
                )
            found = (
                await s.exec(select(PrepAck).where(PrepAck.session_id == session.id, PrepAck.member_id == member.id))
            ).first()
            if found is not None:
                return Reply(
                    t(self.reply_locale(actor), "Your preparation was already recorded. See you at the session!")
                )
            s.add(PrepAck(session_id=session.id, member_id=member.id, at=self.clock.now(), method=method))
            await self._audit(s, actor.user.key, "prep.done", session.id, method=method)
        return Reply(t(self.reply_locale(actor), "Preparation recorded, thank you!"))

    async def check_in(self, actor: Actor, short_id: str, *, method: str) -> Reply:
        """Record attendance; a learner arriving after the groups exist joins the smallest group."""
        now = self.clock.now()
        joined: tuple[str, str] | None = None
        async with self.db.session() as s:
            session = await self._session(s, actor, short_id)
            member = await self._actor_member(s, actor)
            enrollment = await self._enrollment(s, session, member)
            assert session.id is not None and member.id is not None
            opens, closes = session.starts_at - CHECKIN_OPENS, self.end_of(session)
            if session.state in {"cancelled", "ended", "closed"} or now > closes:
                raise Invalid(_("Check-in for `{session}` is closed.", session=session.short_id))
            if now < opens:
                raise Invalid(
                    _(
                        "Check-in for `{session}` opens 15 minutes before the start ({opens}).",
                        session=session.short_id,
                        opens=self._fallback(opens),
                    )
                )
            attendance = (
                await s.exec(
                    select(Attendance).where(Attendance.session_id == session.id, Attendance.member_id == member.id)
                )
            ).first()
            if attendance is not None and attendance.status in {"on_time", "late"}:
                return Reply(t(self.reply_locale(actor), "You are already checked in."))
            status = "late" if now > session.starts_at + LATE_AFTER else "on_time"
            if attendance is None:
                s.add(
                    Attendance(
                        session_id=session.id, member_id=member.id, status=status, checked_in_at=now, method=method
                    )
                )
            else:
                attendance.status, attendance.checked_in_at, attendance.method = status, now, method
            if session.state == "running":
                joined = await self._join_smallest_group(s, session, member, enrollment)
            await self._audit(s, actor.user.key, "checkin", session.id, method=method, status=status)
        if joined is not None and joined[1]:
            platform = self.platform_for(actor.user.platform)
            await platform.add_members(ChannelRef(platform.name, joined[1]), [actor.user])
        locale = self.reply_locale(actor)
        text = (
            t(locale, "Checked in to “{title}” (marked late).", title=session.title)
            if status == "late"
            else t(locale, "Checked in to “{title}”.", title=session.title)
        )
        if joined:
            text += t(locale, " You joined group {number}.", number=joined[0])
        return Reply(text)

"""Behavioural follow-up, the method's third level of evaluation: `/peer followup plan <session> <weeks>
[observer=@user]`. N weeks after the session each learner who attended is asked how they apply what they
learned (two open questions and a 1–5 self-rating), and the observer (a tutor or manager) the same about each
of them. The DMs are outbox rows queued once (at the end, or at planning when the session has ended), so a
restart neither loses nor repeats one; a plan can change until its first DM has gone out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.core import queries, rules
from bot.core.context import Context
from bot.core.outbox import Outbox
from bot.core.rules import DeliveryKind, DeliveryState, SessionState
from bot.errors import Invalid
from bot.i18n import _, t, translations
from bot.inbound import Actor
from bot.localtime import same_wall_time_later
from bot.messages import Reply
from bot.questionnaires import FOLLOWUP_ITEMS, OBSERVATION_ITEMS
from bot.refs import ChannelRef, UserRef
from storage.models import Attendance, Delivery, Member, PeerSession, QuestionnaireItem

KINDS = (DeliveryKind.FOLLOWUP, DeliveryKind.OBSERVATION)


class FollowUps:
    """Plan and queue the follow-up DMs."""

    def __init__(self, ctx: Context, outbox: Outbox) -> None:
        self.ctx, self.outbox = ctx, outbox

    async def plan(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        assert command.weeks is not None
        locale = self.ctx.reply_locale(actor)
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            assert peer_session.id is not None
            if peer_session.state == SessionState.CANCELLED:
                raise Invalid(
                    _(
                        "Session `{session}` was cancelled: there is nothing to follow up.",
                        session=peer_session.short_id,
                    )
                )
            observer = (
                await queries.member(tx, UserRef(actor.user.platform, command.users[0][0])) if command.users else None
            )
            sent = await queries.count(
                tx,
                Delivery,
                Delivery.session_id == peer_session.id,
                col(Delivery.kind).in_(KINDS),
                col(Delivery.state).not_in((DeliveryState.PENDING, DeliveryState.SKIPPED)),
            )
            if sent:
                raise Invalid(
                    _(
                        "The follow-up of `{session}` has already been sent; it cannot change now.",
                        session=peer_session.short_id,
                    )
                )
            await tx.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(
                    col(Delivery.session_id) == peer_session.id,
                    col(Delivery.kind).in_(KINDS),
                    col(Delivery.state) == DeliveryState.PENDING,
                )
                .values(state=DeliveryState.SKIPPED, last_error="replanned")
            )
            peer_session.followup_weeks = command.weeks
            peer_session.followup_observer_id = observer.id if observer else None
            due = None
            if peer_session.ended_at is not None:
                attendees = await self._attendees(tx, peer_session)
                due = await self.queue(tx, peer_session, attendees, peer_session.ended_at)
            self.ctx.audit(
                tx,
                actor.user.key,
                "followup.plan",
                peer_session.id,
                weeks=command.weeks,
                observer=observer.user_id if observer else "",
            )
        when = due or same_wall_time_later(rules.end_of(peer_session), command.weeks, self.ctx.settings.zone)
        lines = [
            t(
                locale,
                "Follow-up of `{session}` planned {weeks} week(s) after the session (about {date}): each learner who "
                "attended gets three questions on how they apply what they learned.",
                session=peer_session.short_id,
                weeks=command.weeks,
                date=self.ctx.fallback(max(when, now)),
            )
        ]
        if observer is not None:
            lines.append(t(locale, "<@{user}> gets the same questions about each learner.", user=observer.user_id))
        return Reply("\n".join(lines))

    async def _attendees(self, tx: AsyncSession, peer_session: PeerSession) -> list[Member]:
        rows = await tx.exec(
            select(Member)
            .join(Attendance, col(Attendance.member_id) == col(Member.id))
            .where(Attendance.session_id == peer_session.id, col(Attendance.status).in_(rules.PRESENT))
            .order_by(col(Member.id))
        )
        return list(rows.all())

    async def queue(
        self, tx: AsyncSession, peer_session: PeerSession, attendees: list[Member], ended_at: datetime
    ) -> datetime:
        """Queue the follow-up DMs of a session that has ended (in the caller's transaction, once per plan:
        each plan's keys carry its number); returns when they are due (now, if that is already past)."""
        assert peer_session.id is not None
        await self._ensure_items(tx, peer_session)
        due = max(
            same_wall_time_later(ended_at, peer_session.followup_weeks, self.ctx.settings.zone), self.ctx.clock.now()
        )
        plan = await queries.count(tx, Delivery, Delivery.session_id == peer_session.id, col(Delivery.kind).in_(KINDS))
        observer = (
            await tx.get(Member, peer_session.followup_observer_id) if peer_session.followup_observer_id else None
        )
        for learner in attendees:
            if observer is not None and learner.id == observer.id:
                continue  # nobody observes themselves
            key = f"followup:{peer_session.short_id}:{learner.id}:p{plan}"
            await self.outbox.enqueue(tx, DeliveryKind.FOLLOWUP, peer_session, learner, due, key=key)
            if observer is not None:
                key = f"observation:{peer_session.short_id}:{observer.id}:{learner.id}:p{plan}"
                await self.outbox.enqueue(
                    tx, DeliveryKind.OBSERVATION, peer_session, observer, due, key=key, subject=learner
                )
        peer_session.followup_queued_at = self.ctx.clock.now()
        if self.ctx.scheduler is not None:
            self.ctx.scheduler.outbox_due(due)
        return due

    @staticmethod
    async def _ensure_items(tx: AsyncSession, peer_session: PeerSession) -> None:
        """The follow-up's questions, stored with the session once (what was asked stays with the answers)."""
        assert peer_session.id is not None
        for kind, items in ((DeliveryKind.FOLLOWUP, FOLLOWUP_ITEMS), (DeliveryKind.OBSERVATION, OBSERVATION_ITEMS)):
            present = await queries.count(
                tx, QuestionnaireItem, QuestionnaireItem.session_id == peer_session.id, QuestionnaireItem.kind == kind
            )
            if present:
                continue
            for position, (key, item_type, text) in enumerate(items, start=1):
                tx.add(
                    QuestionnaireItem(
                        session_id=peer_session.id,
                        kind=kind,
                        position=position,
                        item_key=key,
                        item_type=item_type,
                        text=text,
                        text_fr=translations("fr").gettext(text),
                    )
                )

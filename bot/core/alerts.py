"""Dropout alerts: `/peer alerts <cohort>` on demand, one DM a week to each trainer, and the friendly
check-in DM a trainer reviews and edits before it goes (the method asks trainers to notice learners who
drift away and to reach out early)."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions, grammar
from bot.core import dropout, queries
from bot.core.context import Context
from bot.core.outbox import Outbox
from bot.core.rules import DeliveryKind, SessionState
from bot.errors import Forbidden, Invalid, NotFound
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import Form, Message, Reply, TextField
from bot.refs import ChannelRef
from storage.models import AuditEvent, Cohort, Enrollment, Member, PeerSession


class Alerts:
    """Learners at risk, for their cohort's trainers."""

    def __init__(self, ctx: Context, outbox: Outbox) -> None:
        self.ctx, self.outbox = ctx, outbox

    async def command(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            found = await dropout.at_risk(tx, cohort, self.ctx.clock.now())
        message = dropout.alert_message(cohort, found, locale)
        text = "\n".join([message.text, *(s.text for s in message.sections)])
        return Reply(text, message=message)

    async def nudge_form(self, actor: Actor, cohort_id: int, member_id: int) -> Form:
        """The friendly check-in, prefilled in the learner's language, for the trainer to edit."""
        async with self.ctx.db.transaction() as tx:
            cohort, learner = await self._target(tx, actor, cohort_id, member_id)
        text = t(
            self.ctx.locale_of(learner),
            "Hi {name}, we have missed you in the last sessions of {cohort}. How are things going? If something "
            "gets in the way, tell me: we can find a solution together.",
            name=learner.display_name,
            cohort=cohort.name,
        )
        locale = self.ctx.reply_locale(actor)
        field = TextField("message", t(locale, "Your message (edit it as you like)"), required=True, initial=text)
        return Form(str(actions.SendNudge(cohort_id, member_id)), t(locale, "Friendly check-in"), (field,))

    async def send_nudge(self, actor: Actor, cohort_id: int, member_id: int, text: str) -> Reply:
        text = text.strip()
        if not text:
            raise Invalid(
                _("The message is empty."), _("Write a few words for the learner, then send."), field="message"
            )
        async with self.ctx.db.transaction() as tx:
            _cohort, learner = await self._target(tx, actor, cohort_id, member_id)
            self.ctx.audit(tx, actor.user.key, "alerts.nudge", None, cohort=cohort_id, user=learner.user_id)
        platform = self.ctx.platform(learner.platform)
        await platform.send_dm(queries.ref(learner), Message(text[:3000]))
        return Reply(t(self.ctx.reply_locale(actor), "Sent to <@{user}>.", user=learner.user_id))

    async def _target(self, tx: AsyncSession, actor: Actor, cohort_id: int, member_id: int) -> tuple[Cohort, Member]:
        """The cohort (in the actor's workspace, which they train) and one of its learners."""
        cohort = await tx.get(Cohort, cohort_id)
        home = await queries.workspace(tx, actor)
        if cohort is None or cohort.workspace_id != home.id:
            raise NotFound(_("This cohort no longer exists."))
        await queries.require_trainer(tx, actor, cohort)
        enrolled = (
            await tx.exec(
                select(Enrollment).where(
                    Enrollment.cohort_id == cohort_id, Enrollment.member_id == member_id, Enrollment.role == "learner"
                )
            )
        ).first()
        learner = await tx.get(Member, member_id)
        if enrolled is None or learner is None:
            raise Forbidden(_("This person is not a learner of cohort `{cohort}`.", cohort=cohort.name))
        return cohort, learner

    async def weekly(self) -> int:
        """Queue this week's alert for each trainer of each cohort with learners at risk (once per ISO week,
        whenever the sweep first runs in it); returns how many were queued."""
        now = self.ctx.clock.now()
        year, week, _day = now.astimezone(self.ctx.settings.zone).isocalendar()
        queued = 0
        async with self.ctx.db.transaction() as tx:
            cohorts = (await tx.exec(select(Cohort))).all()
            for cohort in cohorts:
                marker = f"dropout-alert:{cohort.id}:{year}-W{week:02d}"
                if await queries.count(tx, AuditEvent, AuditEvent.action == marker):
                    continue
                self.ctx.audit(tx, "scheduler", marker, None, cohort=cohort.name)
                latest = (
                    await tx.exec(
                        select(PeerSession)
                        .where(PeerSession.cohort_id == cohort.id, PeerSession.state != SessionState.CANCELLED)
                        .order_by(col(PeerSession.starts_at).desc())
                    )
                ).first()
                if latest is None or not await dropout.at_risk(tx, cohort, self.ctx.clock.now()):
                    continue
                for trainer in await queries.cohort_trainers(tx, cohort.id or 0):
                    key = f"{marker}:{trainer.id}"
                    if await self.outbox.enqueue(tx, DeliveryKind.ALERTS, latest, trainer, now, key=key):
                        queued += 1
        return queued

"""The delivery outbox: every DM that matters (prep reminder, feedback questionnaire and its reminder,
retention quiz) is a row queued with an idempotency key, then claimed, sent and recorded in separate
transactions, with a lease so a crashed worker's claims come back. Kept apart from the timeline because
the scheduler's outbox worker runs it on its own clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import queries, rules
from bot.core.context import Context
from bot.core.rules import DeliveryKind, DeliveryState
from bot.errors import PeerError
from bot.i18n import N_, Text, _, t
from bot.messages import Button, ButtonStyle, Message
from bot.port import PlatformError, Undeliverable
from storage.models import Delivery, Member, PeerSession, PrepAck, Submission

PREP_REMINDER = N_("⏰ “{title}” starts {0}. You have not marked the preparation done yet:\n{material}")


class Outbox:
    """Queue, send and recover the DMs; tell the trainers about the learners they cannot reach."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def enqueue(
        self, tx: AsyncSession, kind: str, peer_session: PeerSession, member: Member, due: datetime
    ) -> None:
        key = f"{kind}:{peer_session.short_id}:{member.id}"
        exists = (await tx.exec(select(Delivery.id).where(Delivery.idempotency_key == key))).first()
        if exists is None:
            assert peer_session.id is not None and member.id is not None
            tx.add(
                Delivery(idempotency_key=key, kind=kind, session_id=peer_session.id, member_id=member.id, due_at=due)
            )

    async def recover_deliveries(self) -> int:
        """Claims older than the lease belong to a crashed worker: make them due again (same key)."""
        stale = rules.lease_expired_before(self.ctx.clock.now())
        async with self.ctx.db.transaction() as tx:
            result = await tx.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(col(Delivery.state) == DeliveryState.SENDING, col(Delivery.claimed_at) < stale)
                .values(state="pending")
            )
            return int(result.rowcount)

    async def deliver_due(self, limit: int = 500) -> int:
        """Send due DMs: claim (one transaction), send, record (another). A crash in between is
        recovered by `recover_deliveries` and the platform's idempotency key, so none is lost or doubled."""
        await self.recover_deliveries()
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            rows = await tx.exec(
                select(Delivery.id)
                .where(Delivery.state == DeliveryState.PENDING, col(Delivery.due_at) <= now)
                .order_by(col(Delivery.due_at))
                .limit(limit)
            )
            ids = list(rows.all())
        sent = 0
        unreachable: dict[int, list[str]] = {}
        for delivery_id in ids:
            assert delivery_id is not None
            outcome = await self._deliver_one(delivery_id, now)
            if outcome == "sent":
                sent += 1
            elif outcome and outcome.startswith("undeliverable:"):
                _outcome, raw_session, user = outcome.split(":", 2)
                unreachable.setdefault(int(raw_session), []).append(user)
        for session_id, users in unreachable.items():
            await self._tell_trainers_unreachable(session_id, users)
        return sent

    async def _deliver_one(self, delivery_id: int, now: datetime) -> str:
        async with self.ctx.db.transaction() as tx:
            claimed = await tx.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(col(Delivery.id) == delivery_id, col(Delivery.state) == DeliveryState.PENDING)
                .values(state="sending", claimed_at=now, attempts=col(Delivery.attempts) + 1)
            )
            if claimed.rowcount != 1:
                return ""
            delivery = await tx.get(Delivery, delivery_id)
            assert delivery is not None
            member = await tx.get(Member, delivery.member_id)
            peer_session = await tx.get(PeerSession, delivery.session_id)
            assert member is not None and peer_session is not None
            message = await self._delivery_message(tx, delivery, peer_session, member)
        if message is None:
            await self._mark(delivery_id, "skipped")
            return "skipped"
        platform = await self.ctx.platform_of(peer_session)
        try:
            ref = await platform.send_dm(queries.ref(member), message)
        except Undeliverable as exc:
            await self._mark(delivery_id, "undeliverable", error=exc.code)
            return f"undeliverable:{peer_session.id}:{member.user_id}"
        except PlatformError as exc:
            retry_at = rules.delivery_retry_due(delivery.attempts, now)
            state = DeliveryState.PENDING if retry_at is not None else DeliveryState.FAILED
            await self._mark(delivery_id, state, error=exc.code, due=retry_at)
            return "failed"
        await self._mark(delivery_id, "sent", message_id=ref.id, sent_at=now)
        return "sent"

    async def _mark(
        self,
        delivery_id: int,
        state: str,
        *,
        error: str = "",
        due: datetime | None = None,
        message_id: str = "",
        sent_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state}
        if error:
            values["last_error"] = error[:500]
        if due is not None:
            values["due_at"] = due
        if message_id:
            values["message_id"] = message_id
        if sent_at is not None:
            values["sent_at"] = sent_at
        async with self.ctx.db.transaction() as tx:
            await tx.exec(update(Delivery).where(col(Delivery.id) == delivery_id).values(**values))  # type: ignore[call-overload]

    async def _delivery_message(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member
    ) -> Message | None:
        locale = self.ctx.locale_of(member)
        key, retry = delivery.idempotency_key, delivery.attempts > 1
        if delivery.kind == DeliveryKind.PREP_REMINDER:
            acked = (
                await tx.exec(
                    select(PrepAck).where(PrepAck.session_id == peer_session.id, PrepAck.member_id == member.id)
                )
            ).first()
            if acked is not None or rules.delivery_outdated(delivery.kind, peer_session.state):
                return None
            stamp = self.ctx.stamp(peer_session.starts_at)
            return Message(
                t(locale, PREP_REMINDER, stamp, title=peer_session.title, material=peer_session.prep_material),
                sections=(),
                key=key,
                retry=retry,
                buttons=(Button(str(actions.PrepDone(peer_session.short_id)), t(locale, "Done")),),
            )
        if delivery.kind in {"feedback", "feedback_reminder"}:
            done = (
                await tx.exec(
                    select(Submission).where(
                        Submission.session_id == peer_session.id,
                        Submission.member_id == member.id,
                        Submission.kind == DeliveryKind.FEEDBACK,
                        Submission.completed,
                    )
                )
            ).first()
            if done is not None or rules.delivery_outdated(delivery.kind, peer_session.state):
                return None
            text = (
                t(
                    locale,
                    "📝 Thank you for taking part in “{title}”. Two minutes for 6 questions? Your answers improve the "
                    "next sessions.",
                    title=peer_session.title,
                )
                if delivery.kind == DeliveryKind.FEEDBACK
                else t(
                    locale,
                    "📝 A gentle reminder: your feedback on “{title}” is still open for a few days.",
                    title=peer_session.title,
                )
            )
            return Message(
                text,
                key=key,
                retry=retry,
                buttons=(
                    Button(
                        str(actions.OpenQuestionnaire(actions.Questionnaire.SURVEY, delivery.id or 0)),
                        t(locale, "Answer"),
                        ButtonStyle.PRIMARY,
                    ),
                ),
            )
        if delivery.kind == DeliveryKind.RETENTION:
            count = await queries.quiz_size(tx, peer_session)
            if count == 0 or rules.delivery_outdated(delivery.kind, peer_session.state):
                return None
            return Message(
                t(
                    locale,
                    "🧠 {weeks} weeks after “{title}”: a short quiz to see what stuck ({count} questions).",
                    weeks=peer_session.retention_days // 7,
                    title=peer_session.title,
                    count=count,
                ),
                key=key,
                retry=retry,
                buttons=(
                    Button(
                        str(actions.OpenQuestionnaire(actions.Questionnaire.QUIZ, delivery.id or 0)),
                        t(locale, "Answer"),
                        ButtonStyle.PRIMARY,
                    ),
                ),
            )
        raise ValueError(f"unknown delivery kind {delivery.kind}")

    async def _tell_trainers_unreachable(self, session_id: int, users: list[str]) -> None:
        async with self.ctx.db.transaction() as tx:
            peer_session = await tx.get(PeerSession, session_id)
            assert peer_session is not None
        names = ", ".join(f"<@{u}>" for u in users)
        await self.tell_trainers(
            peer_session,
            _(
                "I could not reach {users} by DM for `{session}` (their DMs are closed).",
                users=names,
                session=peer_session.short_id,
            ),
        )

    async def tell_trainers(self, peer_session: PeerSession, news: Text | PeerError) -> None:
        """DM each trainer of the session, each in their own language."""
        async with self.ctx.db.transaction() as tx:
            trainers = await queries.trainers(tx, peer_session)
        platform = await self.ctx.platform_of(peer_session)
        for trainer in trainers:
            locale = self.ctx.locale_of(trainer)
            text = news.text(locale) if isinstance(news, PeerError) else news.render(locale)
            await self.ctx.safe_dm(platform, trainer, Message(text))

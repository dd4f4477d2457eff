"""The delivery outbox: every DM that matters (prep reminder, feedback questionnaire and its reminder,
retention quiz) is a row queued with an idempotency key, then claimed, sent and recorded in separate
transactions, with a lease so a crashed worker's claims come back. Kept apart from the timeline because
the scheduler's outbox worker runs it on its own clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.base import DELIVERY_LEASE, MAX_ATTEMPTS, CoreBase
from bot.errors import PeerError
from bot.i18n import N_, Text, _, t
from bot.messages import Button, ButtonStyle, Message
from bot.port import PlatformError, Undeliverable
from storage.models import Delivery, Member, PeerSession, PrepAck, Submission

PREP_REMINDER = N_("⏰ “{title}” starts {0}. You have not marked the preparation done yet:\n{material}")


class OutboxMixin(CoreBase):
    """Queue, send and recover the DMs; tell the trainers about the learners they cannot reach."""

    async def _enqueue(self, s: AsyncSession, kind: str, session: PeerSession, member: Member, due: datetime) -> None:
        key = f"{kind}:{session.short_id}:{member.id}"
        exists = (await s.exec(select(Delivery.id).where(Delivery.idempotency_key == key))).first()
        if exists is None:
            assert session.id is not None and member.id is not None
            s.add(Delivery(idempotency_key=key, kind=kind, session_id=session.id, member_id=member.id, due_at=due))

    async def recover_deliveries(self) -> int:
        """Claims older than the lease belong to a crashed worker: make them due again (same key)."""
        stale = self.clock.now() - DELIVERY_LEASE
        async with self.db.session() as s:
            result = await s.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(col(Delivery.state) == "sending", col(Delivery.claimed_at) < stale)
                .values(state="pending")
            )
            return int(result.rowcount)

    async def deliver_due(self, limit: int = 500) -> int:
        """Send due DMs: claim (one transaction), send, record (another). A crash in between is
        recovered by `recover_deliveries` and the platform's idempotency key, so none is lost or doubled."""
        await self.recover_deliveries()
        now = self.clock.now()
        async with self.db.session() as s:
            rows = await s.exec(
                select(Delivery.id)
                .where(Delivery.state == "pending", col(Delivery.due_at) <= now)
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
        async with self.db.session() as s:
            claimed = await s.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(col(Delivery.id) == delivery_id, col(Delivery.state) == "pending")
                .values(state="sending", claimed_at=now, attempts=col(Delivery.attempts) + 1)
            )
            if claimed.rowcount != 1:
                return ""
            delivery = await s.get(Delivery, delivery_id)
            assert delivery is not None
            member = await s.get(Member, delivery.member_id)
            session = await s.get(PeerSession, delivery.session_id)
            assert member is not None and session is not None
            message = await self._delivery_message(s, delivery, session, member)
        if message is None:
            await self._mark(delivery_id, "skipped")
            return "skipped"
        platform = await self._platform_of(session)
        try:
            ref = await platform.send_dm(self._ref(member), message)
        except Undeliverable as exc:
            await self._mark(delivery_id, "undeliverable", error=exc.code)
            return f"undeliverable:{session.id}:{member.user_id}"
        except PlatformError as exc:
            retry = delivery.attempts < MAX_ATTEMPTS
            await self._mark(
                delivery_id,
                "pending" if retry else "failed",
                error=exc.code,
                due=now + timedelta(minutes=2**delivery.attempts) if retry else None,
            )
            return "failed"
        if self.crash_after_send:
            raise RuntimeError("simulated crash between the DM and its bookkeeping")
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
        async with self.db.session() as s:
            await s.exec(update(Delivery).where(col(Delivery.id) == delivery_id).values(**values))  # type: ignore[call-overload]

    async def _delivery_message(
        self, s: AsyncSession, delivery: Delivery, session: PeerSession, member: Member
    ) -> Message | None:
        locale = self._locale(member)
        key, retry = delivery.idempotency_key, delivery.attempts > 1
        if delivery.kind == "prep_reminder":
            acked = (
                await s.exec(select(PrepAck).where(PrepAck.session_id == session.id, PrepAck.member_id == member.id))
            ).first()
            if acked is not None or session.state not in {"planned", "prep_sent"}:
                return None
            stamp = self._stamp(session.starts_at)
            return Message(
                t(locale, PREP_REMINDER, stamp, title=session.title, material=session.prep_material),
                sections=(),
                key=key,
                retry=retry,
                buttons=(Button(f"prep:done:{session.short_id}", t(locale, "Done")),),
            )
        if delivery.kind in {"feedback", "feedback_reminder"}:
            done = (
                await s.exec(
                    select(Submission).where(
                        Submission.session_id == session.id,
                        Submission.member_id == member.id,
                        Submission.kind == "feedback",
                        Submission.completed,
                    )
                )
            ).first()
            if done is not None or session.state == "closed":
                return None
            text = (
                t(
                    locale,
                    "📝 Thank you for taking part in “{title}”. Two minutes for 6 questions? Your answers improve the "
                    "next sessions.",
                    title=session.title,
                )
                if delivery.kind == "feedback"
                else t(
                    locale,
                    "📝 A gentle reminder: your feedback on “{title}” is still open for a few days.",
                    title=session.title,
                )
            )
            return Message(
                text,
                key=key,
                retry=retry,
                buttons=(Button(f"survey:open:{delivery.id}", t(locale, "Answer"), ButtonStyle.PRIMARY),),
            )
        if delivery.kind == "retention":
            count = await self._quiz_size(s, session)
            if count == 0 or session.state == "cancelled":
                return None
            return Message(
                t(
                    locale,
                    "🧠 {weeks} weeks after “{title}”: a short quiz to see what stuck ({count} questions).",
                    weeks=session.retention_days // 7,
                    title=session.title,
                    count=count,
                ),
                key=key,
                retry=retry,
                buttons=(Button(f"quiz:open:{delivery.id}", t(locale, "Answer"), ButtonStyle.PRIMARY),),
            )
        raise ValueError(f"unknown delivery kind {delivery.kind}")

    async def _tell_trainers_unreachable(self, session_id: int, users: list[str]) -> None:
        async with self.db.session() as s:
            session = await s.get(PeerSession, session_id)
            assert session is not None
        names = ", ".join(f"<@{u}>" for u in users)
        await self._tell_trainers(
            session,
            _(
                "I could not reach {users} by DM for `{session}` (their DMs are closed).",
                users=names,
                session=session.short_id,
            ),
        )

    async def _tell_trainers(self, session: PeerSession, news: Text | PeerError) -> None:
        """DM each trainer of the session, each in their own language."""
        async with self.db.session() as s:
            trainers = await self._trainers(s, session)
        platform = await self._platform_of(session)
        for trainer in trainers:
            locale = self._locale(trainer)
            text = news.text(locale) if isinstance(news, PeerError) else news.render(locale)
            await self._safe_dm(platform, trainer, Message(text))

"""The delivery outbox: every DM that matters (prep reminder, feedback questionnaire and its reminder,
retention quiz) is a row queued with an idempotency key, then claimed, sent and recorded in separate
transactions, with a lease so a crashed worker's claims come back. Kept apart from the timeline because
the scheduler's outbox worker runs it on its own clock.

Several replicas may drain one PostgreSQL outbox at once: a worker claims the next due row in one statement
whose sub-select skips the rows another worker is claiming (`FOR UPDATE SKIP LOCKED`), so two workers never
hold the same claim and never wait for each other; SQLite has one writer and renders no locking clause. The
claim's `attempts` value is its token: the outcome is recorded only while that claim is still the row's, so a
worker whose lease ran out (and whose row another worker took over) cannot overwrite the newer record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import dropout, queries, rules
from bot.core.context import Context, log
from bot.core.rules import DeliveryKind, DeliveryState
from bot.core.views import Views
from bot.errors import PeerError
from bot.i18n import N_, Text, t
from bot.logs import session_context
from bot.messages import Button, ButtonStyle, Message, Section
from bot.port import PlatformError, Undeliverable
from storage.models import Cohort, Delivery, Member, PeerSession, PrepAck, QuestionnaireItem, Submission

Composer = Callable[[AsyncSession, Delivery, PeerSession, Member], Awaitable[Message | None]]
"""Builds the DM of one delivery kind when it is sent (None: skip it); a format's service registers its own."""

PREP_REMINDER = N_("⏰ “{title}” starts {0}. You have not marked the preparation done yet:\n{material}")


class Outbox:
    """Queue, send and recover the DMs; tell the trainers about the learners they cannot reach."""

    def __init__(self, ctx: Context, views: Views) -> None:
        self.ctx, self.views = ctx, views
        self.composers: dict[str, Composer] = {}  # kinds other services compose (the formats' DMs)

    async def enqueue(
        self,
        tx: AsyncSession,
        kind: str,
        peer_session: PeerSession,
        member: Member,
        due: datetime,
        *,
        key: str = "",
        subject: Member | None = None,
    ) -> int | None:
        """Queue a DM once: a second call with the same key does nothing. Returns the new row's id. `subject`:
        the learner an observer's DM is about."""
        key = key or f"{kind}:{peer_session.short_id}:{member.id}"
        exists = (await tx.exec(select(Delivery.id).where(Delivery.idempotency_key == key))).first()
        if exists is not None:
            return None
        assert peer_session.id is not None and member.id is not None
        row = Delivery(
            idempotency_key=key,
            kind=kind,
            session_id=peer_session.id,
            member_id=member.id,
            due_at=due,
            subject_id=subject.id if subject is not None else None,
        )
        tx.add(row)
        await tx.flush()
        return row.id

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
        recovered by `recover_deliveries` and the platform's idempotency key, so none is lost or doubled.
        The trainers' "could not reach" notices queued by this pass go out with it."""
        await self.recover_deliveries()
        now = self.ctx.clock.now()
        sent = await self._drain(now, limit)
        return sent + await self._drain(now, limit, kind=DeliveryKind.UNREACHABLE)

    async def _drain(self, now: datetime, limit: int, *, kind: str = "") -> int:
        """Claim and send the due rows one at a time until none is left (or `limit` were claimed): a row
        another replica claims meanwhile is skipped, never waited for nor sent twice."""
        sent = 0
        for _ in range(limit):
            claim = await self._claim_next(now, kind)
            if claim is None:
                break
            sent += await self._send_claimed(*claim, now) == "sent"
        return sent

    async def _claim_next(self, now: datetime, kind: str) -> tuple[int, int] | None:
        """Claim the oldest row due at `now` (the pass's start) in one statement; returns (id, attempts), the
        claim and its token. The lease runs from the claim itself: a long pass (a paced fan-out) claims its last
        rows minutes after it began, and a pass running beside it must not take them for abandoned."""
        due = select(Delivery.id).where(Delivery.state == DeliveryState.PENDING, col(Delivery.due_at) <= now)
        if kind:
            due = due.where(Delivery.kind == kind)
        oldest = (
            due.order_by(col(Delivery.due_at), col(Delivery.id)).limit(1).with_for_update(skip_locked=True)
        ).scalar_subquery()
        async with self.ctx.db.transaction() as tx:
            row = (
                await tx.exec(
                    update(Delivery)  # type: ignore[call-overload]
                    .where(col(Delivery.id) == oldest, col(Delivery.state) == DeliveryState.PENDING)
                    .values(state="sending", claimed_at=self.ctx.clock.now(), attempts=col(Delivery.attempts) + 1)
                    .returning(col(Delivery.id), col(Delivery.attempts))
                )
            ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    async def deliver(self, ids: list[int], now: datetime | None = None) -> int:
        """Send these deliveries now if they are still pending (the end sends the trainers' summary at once);
        returns how many were sent."""
        moment = now or self.ctx.clock.now()
        return sum([await self._deliver_one(delivery_id, moment) == "sent" for delivery_id in ids])

    async def _deliver_one(self, delivery_id: int, now: datetime) -> str:
        """Claim one given row if it is still pending (a single conditional update: atomic on both databases)."""
        async with self.ctx.db.transaction() as tx:
            row = (
                await tx.exec(
                    update(Delivery)  # type: ignore[call-overload]
                    .where(col(Delivery.id) == delivery_id, col(Delivery.state) == DeliveryState.PENDING)
                    .values(state="sending", claimed_at=self.ctx.clock.now(), attempts=col(Delivery.attempts) + 1)
                    .returning(col(Delivery.attempts))
                )
            ).first()
        if row is None:
            return ""
        return await self._send_claimed(delivery_id, int(row[0]), now)

    async def _send_claimed(self, delivery_id: int, token: int, now: datetime) -> str:
        """Build, send and record a row this worker has claimed (with claim token `token`); counted by outcome.

        A row that cannot even be tried here (its platform is not running in this process) is retried later
        like a failed send, and the pass goes on with the next rows."""
        try:
            kind, outcome = await self._send_claimed_row(delivery_id, token, now)
        except PeerError as exc:
            log.warning("delivery %d could not be tried (%s); retried later", delivery_id, exc.message)
            kind, outcome = "unknown", "failed"
            await self._retry_later(delivery_id, token, now, exc.message)
        self.ctx.metrics.delivery(kind, outcome)
        log.debug("delivery %d (%s): %s", delivery_id, kind, outcome)
        return outcome

    async def _send_claimed_row(self, delivery_id: int, token: int, now: datetime) -> tuple[str, str]:
        async with self.ctx.db.transaction() as tx:
            delivery = await tx.get(Delivery, delivery_id)
            assert delivery is not None
            member = await tx.get(Member, delivery.member_id)
            peer_session = await tx.get(PeerSession, delivery.session_id)
            assert member is not None and peer_session is not None
            message = await self._delivery_message(tx, delivery, peer_session, member)
        with session_context(peer_session.short_id):
            return await self._send(delivery_id, token, now, delivery, peer_session, member, message)

    async def _send(
        self,
        delivery_id: int,
        token: int,
        now: datetime,
        delivery: Delivery,
        peer_session: PeerSession,
        member: Member,
        message: Message | None,
    ) -> tuple[str, str]:
        if message is None:
            await self._mark(delivery_id, token, "skipped")
            return delivery.kind, "skipped"
        platform = await self.ctx.platform_of(peer_session)
        try:
            ref = await platform.send_dm(queries.ref(member), message)
        except Undeliverable as exc:
            await self._mark(
                delivery_id, token, DeliveryState.UNDELIVERABLE, error=exc.code, notify=(peer_session, delivery)
            )
            return delivery.kind, "undeliverable"
        except PlatformError as exc:
            await self._retry_later(delivery_id, token, now, exc.code)
            return delivery.kind, "failed"
        if not await self._mark(delivery_id, token, "sent", message_id=ref.id, sent_at=self.ctx.clock.now()):
            return delivery.kind, "superseded"
        return delivery.kind, "sent"

    async def _retry_later(self, delivery_id: int, token: int, now: datetime, error: str) -> None:
        """A failed try: pending again at the next retry time, or failed after the last. The claim token is
        the row's attempt count (each claim increments it)."""
        retry_at = rules.delivery_retry_due(token, now)
        state = DeliveryState.PENDING if retry_at is not None else DeliveryState.FAILED
        await self._mark(delivery_id, token, state, error=error, due=retry_at)

    async def _mark(
        self,
        delivery_id: int,
        token: int,
        state: str,
        *,
        error: str = "",
        due: datetime | None = None,
        message_id: str = "",
        sent_at: datetime | None = None,
        notify: tuple[PeerSession, Delivery] | None = None,
    ) -> bool:
        """Record a delivery's outcome while this worker's claim (`token`) is still the row's; an undeliverable
        learner DM also queues, in the same transaction, one notice per trainer and kind of DM (so a crash can
        neither lose nor repeat it). False when another worker took the row over after the lease ran out: its
        record wins (the platform's dedupe made the second send of the same key a no-op)."""
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
            mine = await tx.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(
                    col(Delivery.id) == delivery_id,
                    col(Delivery.state) == DeliveryState.SENDING,
                    col(Delivery.attempts) == token,
                )
                .values(**values)
            )
            if mine.rowcount != 1:
                log.warning("delivery %d: claim %d was taken over after its lease; not recorded", delivery_id, token)
                return False
            if notify is not None and notify[1].kind not in (
                DeliveryKind.SUMMARY,
                DeliveryKind.UNREACHABLE,
                DeliveryKind.ALERTS,
            ):
                peer_session, failed = notify
                family = rules.dm_family(failed.kind)
                for trainer in await queries.trainers(tx, peer_session):
                    key = f"unreachable:{peer_session.short_id}:{trainer.id}:{family}"
                    await self.enqueue(
                        tx, DeliveryKind.UNREACHABLE, peer_session, trainer, self.ctx.clock.now(), key=key
                    )
        return True

    async def _delivery_message(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member
    ) -> Message | None:
        locale = self.ctx.locale_of(member)
        key, retry = delivery.idempotency_key, delivery.attempts > 1
        composer = self.composers.get(delivery.kind)
        if composer is not None:
            if rules.delivery_outdated(delivery.kind, peer_session.state):
                return None
            return await composer(tx, delivery, peer_session, member)
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
            done = await _answered(tx, peer_session, member, DeliveryKind.FEEDBACK)
            if done or rules.delivery_outdated(delivery.kind, peer_session.state):
                return None
            text = (
                t(
                    locale,
                    "📝 Thank you for taking part in “{title}”. Two minutes for {count} questions? Your answers "
                    "improve the next sessions.",
                    title=peer_session.title,
                    count=await queries.count(
                        tx,
                        QuestionnaireItem,
                        QuestionnaireItem.session_id == peer_session.id,
                        QuestionnaireItem.kind == DeliveryKind.FEEDBACK,
                    ),
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
                buttons=(answer_button(delivery, locale),),
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
                buttons=(answer_button(delivery, locale),),
            )
        if delivery.kind == DeliveryKind.RETENTION2:
            if rules.delivery_outdated(delivery.kind, peer_session.state):
                return None
            count = len(await queries.missed_items(tx, peer_session, member.id or 0))
            if count == 0:
                return None  # every answer was right (or the quiz had no question): nothing to practise
            return Message(
                t(
                    locale,
                    "🧠 {weeks} weeks after “{title}”: {count} question(s) to practise again, those you missed or "
                    "left unanswered in the first quiz.",
                    weeks=peer_session.retention2_days // 7,
                    title=peer_session.title,
                    count=count,
                ),
                key=key,
                retry=retry,
                buttons=(answer_button(delivery, locale),),
            )
        if delivery.kind in (DeliveryKind.FOLLOWUP, DeliveryKind.OBSERVATION):
            return await self._followup(tx, delivery, peer_session, member, locale)
        if delivery.kind == DeliveryKind.SUMMARY:
            return await self._summary(tx, peer_session, locale, key)
        if delivery.kind == DeliveryKind.ALERTS:
            cohort = await tx.get(Cohort, peer_session.cohort_id)
            assert cohort is not None
            found = await dropout.at_risk(tx, cohort, self.ctx.clock.now())
            return dropout.alert_message(cohort, found, locale, key=key) if found else None
        if delivery.kind == DeliveryKind.UNREACHABLE:
            return await self._unreachable(tx, delivery, peer_session, locale, key)
        raise ValueError(f"unknown delivery kind {delivery.kind}")

    async def _followup(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member, locale: str
    ) -> Message | None:
        """The follow-up DM, to the learner or to their observer; none once answered or cancelled."""
        subject = await tx.get(Member, delivery.subject_id) if delivery.subject_id else member
        assert subject is not None
        done = await _answered(tx, peer_session, subject, delivery.kind)
        if done or rules.delivery_outdated(delivery.kind, peer_session.state):
            return None
        text = (
            t(
                locale,
                "🔁 {weeks} week(s) after “{title}”: three questions on how you apply what you learned.",
                weeks=peer_session.followup_weeks,
                title=peer_session.title,
            )
            if delivery.kind == DeliveryKind.FOLLOWUP
            else t(
                locale,
                "🔁 {weeks} week(s) after “{title}”: as {name}'s observer, three questions on how they apply what "
                "they learned.",
                weeks=peer_session.followup_weeks,
                title=peer_session.title,
                name=subject.display_name,
            )
        )
        retry = delivery.attempts > 1
        return Message(text, key=delivery.idempotency_key, retry=retry, buttons=(answer_button(delivery, locale),))

    async def _summary(self, tx: AsyncSession, peer_session: PeerSession, locale: str, key: str) -> Message:
        """The trainer's end-of-session summary, built when it is sent (so a restart sends the same one)."""
        assert peer_session.id is not None
        takeaways = [
            t(locale, "*Group {number} takeaways*: {takeaways}", number=g.number, takeaways=g.takeaways)
            for g, _members in await queries.groups(tx, peer_session.id)
            if g.takeaways
        ]
        summary = await self.views.describe(tx, peer_session, locale)
        return Message(
            t(locale, "Summary of `{session}`", session=peer_session.short_id),
            sections=tuple(Section(x) for x in [summary, *takeaways]),
            key=key,
        )

    async def _unreachable(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, locale: str, key: str
    ) -> Message | None:
        family = delivery.idempotency_key.rsplit(":", 1)[-1]
        kinds = [k for k in DeliveryKind if rules.dm_family(k) == family]
        rows = await tx.exec(
            select(Member.user_id)
            .join(Delivery, col(Delivery.member_id) == col(Member.id))
            .where(
                Delivery.session_id == peer_session.id,
                col(Delivery.kind).in_(kinds),
                Delivery.state == DeliveryState.UNDELIVERABLE,
            )
            .distinct()
            .order_by(col(Member.user_id))
        )
        users = list(rows.all())
        if not users:
            return None
        text = t(
            locale,
            "I could not reach {users} by DM for `{session}` (their DMs are closed).",
            users=", ".join(f"<@{u}>" for u in users),
            session=peer_session.short_id,
        )
        return Message(text, key=key)

    async def tell_trainers(self, peer_session: PeerSession, news: Text | PeerError) -> None:
        """DM each trainer of the session, each in their own language."""
        async with self.ctx.db.transaction() as tx:
            trainers = await queries.trainers(tx, peer_session)
        platform = await self.ctx.platform_of(peer_session)
        for trainer in trainers:
            locale = self.ctx.locale_of(trainer)
            text = news.text(locale) if isinstance(news, PeerError) else news.render(locale)
            await self.ctx.safe_dm(platform, trainer, Message(text))


def answer_button(delivery: Delivery, locale: str) -> Button:
    """ "Answer" under a questionnaire DM: it opens the survey or the quiz this delivery carries."""
    action = actions.OpenQuestionnaire(actions.Questionnaire.of_kind(delivery.kind), delivery.id or 0)
    return Button(str(action), t(locale, "Answer"), ButtonStyle.PRIMARY)


async def _answered(tx: AsyncSession, peer_session: PeerSession, member: Member, kind: str) -> bool:
    """`member` completed the `kind` submission of the session: its DM (or reminder) is no longer needed."""
    found = await tx.exec(
        select(Submission.id).where(
            Submission.session_id == peer_session.id,
            Submission.member_id == member.id,
            Submission.kind == kind,
            Submission.completed,
        )
    )
    return found.first() is not None

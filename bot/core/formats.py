"""What the sharing and tutoring formats add to a running session, beyond forming groups.

- **Experience sharing**: each breakout gets one message with its speaking order and a timer, edited in place
  (never a second one) as the turns go by, until the wrap-up's takeaways prompt.
- **Tutoring agreements**: each pair's breakout gets the pair's objectives with an *I agree* button; each
  acceptance keeps who, when, the text shown and its SHA-256 (a chained evidence record). At the end each
  member is asked by DM whether the pair met and for how long.

`tick` is idempotent and runs on every scheduler pass over a running session (and at the wrap-up), so a restart
simply continues: the stored message id and the stored timer state say what is already shown.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import queries, rules
from bot.core.context import Context, log
from bot.core.outbox import Outbox
from bot.core.review import Reviews
from bot.core.rules import DeliveryKind, SessionState
from bot.errors import Invalid, NotFound
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import Button, ButtonStyle, Message, Reply, Section
from bot.port import PlatformError
from bot.refs import ChannelRef, MessageRef
from storage.models import Delivery, GroupMembership, Member, PeerGroup, PeerSession, TutoringAgreement

TIMER_STEP = timedelta(minutes=2)  # the timer shows minutes left rounded to this: one edit per step at most
CLAIMED = "claimed"  # format_message_id while its message is being posted (a crash then leaves none, not two)
FORMATS = ("sharing", "tutoring", "review")  # the formats that do more than form groups
MEETING_MINUTES = (0, 15, 30, 45, 60, 90, 120)  # the answers to "did you meet, how long" (0: we did not meet)


# ---------------------------------------------------------------------------------------------- pure rules


def speaking_order(member_ids: list[int], seed: int) -> list[int]:
    """A fair, reproducible order: shuffled with the group's id as seed, so a restart recomputes the same one."""
    order = sorted(member_ids)
    random.Random(seed).shuffle(order)
    return order


@dataclass(frozen=True, slots=True)
class Turn:
    """Where a sharing group stands: `index` is the speaker now (== the number of speakers once time is up),
    `left` the minutes left for them (rounded up to TIMER_STEP), `slot` the minutes each speaker has."""

    index: int
    left: int
    slot: int

    @property
    def state(self) -> str:
        return f"{self.index}:{self.left}:{self.slot}"


def turn_at(started: datetime, until: datetime, speakers: int, now: datetime) -> Turn:
    """The turn at `now` when `speakers` share the time from `started` to `until` equally."""
    if speakers <= 0 or until <= started:
        return Turn(max(speakers, 0), 0, 0)
    slot = (until - started) / speakers
    slot_minutes = max(1, round(slot.total_seconds() / 60))
    if now >= until:
        return Turn(speakers, 0, slot_minutes)
    elapsed = max(now - started, timedelta(0))
    index = min(int(elapsed / slot), speakers - 1)
    remaining = started + slot * (index + 1) - now
    steps = max(1, round(remaining / TIMER_STEP))  # "about": the nearest step, so the text changes once a step
    return Turn(index, int(steps * TIMER_STEP.total_seconds() // 60), slot_minutes)


def sharing_until(peer_session: PeerSession) -> datetime:
    """Sharing lasts until the wrap-up asks for the takeaways."""
    return rules.step_times(peer_session)[rules.Step.WRAPUP]


def fingerprint(text: str) -> str:
    """The SHA-256 of the agreement text exactly as shown, kept with each acceptance."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def agreement_text(peer_session: PeerSession, locale: str) -> str:
    """The objectives a tutoring pair accepts: the session's own, or a default when the trainer gave none."""
    objectives = peer_session.objectives.strip() or t(
        locale, "Work through the session's material together; the tutor guides, the tutee explains out loud."
    )
    return t(locale, "Our objectives for “{title}”: {objectives}", title=peer_session.title, objectives=objectives)


# ---------------------------------------------------------------------------------------------- the service


class Formats:
    """The sharing timer and the tutoring agreements; built with the outbox for the end-of-session DMs."""

    def __init__(self, ctx: Context, outbox: Outbox) -> None:
        self.ctx, self.outbox = ctx, outbox
        self.reviews = Reviews(ctx, outbox)
        outbox.composers[DeliveryKind.TUTORING_CHECK] = self._meeting_question

    async def tick_all(self) -> None:
        """Every running sharing or tutoring session (the scheduler's periodic pass)."""
        async with self.ctx.db.transaction() as tx:
            rows = await tx.exec(
                select(PeerSession.short_id).where(
                    PeerSession.state == SessionState.RUNNING,
                    col(PeerSession.format).in_(("sharing", "tutoring")),
                )
            )
            shorts = list(rows.all())
        for short_id in shorts:
            try:
                await self.tick(short_id)
            except Exception:  # one session's fault must not stop the others' timers
                log.exception("session %s: the format's tick failed", short_id)

    async def tick(self, short_id: str, *, final: bool = False) -> None:
        """Post what is missing in each breakout, move the sharing timers on, assign the reviewers of a peer
        review (once); a no-op for the other formats."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            if peer_session.state != SessionState.RUNNING or peer_session.format not in FORMATS:
                return
            if peer_session.format == "review":
                if await self.reviews.assign(tx, peer_session) and self.ctx.scheduler is not None:
                    self.ctx.scheduler.outbox_due(self.ctx.clock.now())
                return
            assert peer_session.id is not None
            groups = [
                (g, ms) for g, ms in await queries.groups(tx, peer_session.id) if g.channel_id and g.closed_at is None
            ]
        for group, members in groups:
            if peer_session.format == "sharing":
                await self._sharing(peer_session, group, [m for m, _role in members], final=final)
            elif not group.format_message_id:
                await self._post_agreement(peer_session, group, [m for m, _role in members])

    async def _claim(self, group: PeerGroup, **values: object) -> bool:
        """Take the right to post the group's format message (one process, once)."""
        async with self.ctx.db.transaction() as tx:
            result = await tx.exec(
                update(PeerGroup)  # type: ignore[call-overload]
                .where(col(PeerGroup.id) == group.id, col(PeerGroup.format_message_id) == "")
                .values(format_message_id=CLAIMED, **values)
            )
            return bool(result.rowcount == 1)

    async def _store(self, group: PeerGroup, message_id: str, state: str = "") -> None:
        async with self.ctx.db.transaction() as tx:
            await tx.exec(
                update(PeerGroup)  # type: ignore[call-overload]
                .where(col(PeerGroup.id) == group.id)
                .values(format_message_id=message_id, format_state=state)
            )

    # ------------------------------------------------------------------ sharing

    async def _sharing(
        self, peer_session: PeerSession, group: PeerGroup, members: list[Member], *, final: bool = False
    ) -> None:
        """`final`: the wrap-up has come (even early, a session ended by hand): the timer shows that time is up."""
        now = max(self.ctx.clock.now(), sharing_until(peer_session)) if final else self.ctx.clock.now()
        present = [m.id for m in members if m.id is not None]
        by_id = {m.id: m for m in members}
        if not group.format_message_id:
            order = speaking_order(present, group.id or 0)
            started = max(now, peer_session.started_at or now)
            if not await self._claim(group, speaking_order=",".join(map(str, order)), timer_started_at=started):
                return
            group.speaking_order, group.timer_started_at = ",".join(map(str, order)), started
            turn = turn_at(started, sharing_until(peer_session), len(order), now)
            platform = await self.ctx.platform_of(peer_session)
            channel = ChannelRef(platform.name, group.channel_id)
            ref = await platform.post(channel, self._timer_message(peer_session, order, by_id, turn))
            await self._store(group, ref.id, turn.state)
            return
        if group.format_message_id == CLAIMED:
            log.warning("group %s: its timer was being posted when the process stopped; not posting another", group.id)
            return
        stored = [int(x) for x in group.speaking_order.split(",") if x]
        order = stored + [m for m in sorted(present) if m not in stored]  # latecomers speak last
        assert group.timer_started_at is not None
        turn = turn_at(group.timer_started_at, sharing_until(peer_session), len(order), now)
        if turn.state == group.format_state and order == stored:
            return
        platform = await self.ctx.platform_of(peer_session)
        if not set(by_id) >= set(order):  # someone moved away: still named in the order they had
            async with self.ctx.db.transaction() as tx:
                for member_id in set(order) - set(by_id):
                    found = await tx.get(Member, member_id)
                    if found is not None:
                        by_id[member_id] = found
        try:
            await platform.update(
                MessageRef(ChannelRef(platform.name, group.channel_id), group.format_message_id),
                self._timer_message(peer_session, order, by_id, turn),
            )
        except PlatformError as exc:  # the breakout is gone: nothing to show the timer to
            log.warning("could not update the timer of group %s: %s", group.id, exc)
            return
        async with self.ctx.db.transaction() as tx:
            await tx.exec(
                update(PeerGroup)  # type: ignore[call-overload]
                .where(col(PeerGroup.id) == group.id)
                .values(format_state=turn.state, speaking_order=",".join(map(str, order)))
            )

    def _timer_message(
        self, peer_session: PeerSession, order: list[int], by_id: dict[int | None, Member], turn: Turn
    ) -> Message:
        locale = self.ctx.settings.locale
        lines = []
        for position, member_id in enumerate(order):
            member = by_id.get(member_id)
            who = f"<@{member.user_id}>" if member else "?"
            if position < turn.index:
                lines.append(t(locale, "{position}. {who} — done", position=position + 1, who=who))
            elif position == turn.index:
                lines.append(
                    t(
                        locale,
                        "{position}. {who} — speaking now, about {minutes} min left",
                        position=position + 1,
                        who=who,
                        minutes=turn.left,
                    )
                )
            else:
                lines.append(f"{position + 1}. {who}")
        if turn.index >= len(order):
            status = t(locale, "⏱ Time is up: agree on the practice your group adopts, then share your takeaways.")
        else:
            status = t(
                locale,
                "Each of you has about {minutes} min to share a practice or a case; this message moves on by itself.",
                minutes=turn.slot,
            )
        return Message(
            t(locale, "🎙️ Speaking order"),
            sections=(Section("\n".join(lines)), Section(status)),
        )

    # ------------------------------------------------------------------ tutoring

    async def _post_agreement(self, peer_session: PeerSession, group: PeerGroup, members: list[Member]) -> None:
        if not await self._claim(group):
            return
        locale = self.ctx.settings.locale
        text = agreement_text(peer_session, locale)
        platform = await self.ctx.platform_of(peer_session)
        message = Message(
            t(
                locale,
                "🤝 {members}: read your pair's objectives and accept them with *I agree*.",
                members=", ".join(f"<@{m.user_id}>" for m in members),
            ),
            sections=(
                Section(text),
                Section(t(locale, "Fingerprint (SHA-256) of this text: `{hash}`", hash=fingerprint(text)[:16])),
            ),
            buttons=(Button(str(actions.AcceptAgreement(group.id or 0)), t(locale, "I agree"), ButtonStyle.PRIMARY),),
        )
        ref = await platform.post(ChannelRef(platform.name, group.channel_id), message)
        await self._store(group, ref.id)

    async def _pair_of(self, tx: AsyncSession, actor: Actor, group_id: int) -> tuple[PeerSession, PeerGroup, Member]:
        """The tutoring group a button names, if the actor is in it (in the actor's workspace)."""
        group = await tx.get(PeerGroup, group_id)
        peer_session = await tx.get(PeerSession, group.session_id) if group is not None else None
        if group is None or peer_session is None or peer_session.format != "tutoring":
            raise NotFound(_("This pair no longer exists."))
        try:
            await queries.peer_session(tx, actor, peer_session.short_id)
        except NotFound:
            raise NotFound(_("This pair no longer exists.")) from None
        member = await queries.actor_member(tx, actor)
        mine = (
            await tx.exec(
                select(GroupMembership).where(
                    GroupMembership.group_id == group_id, GroupMembership.member_id == member.id
                )
            )
        ).first()
        if mine is None:
            raise Invalid(
                _("Only the members of this pair can answer here."),
                _("Your own pair's messages are in your breakout and your DMs."),
            )
        return peer_session, group, member

    async def _agreement(
        self, tx: AsyncSession, peer_session: PeerSession, group: PeerGroup, member: Member
    ) -> TutoringAgreement:
        row = (
            await tx.exec(
                select(TutoringAgreement).where(
                    TutoringAgreement.session_id == peer_session.id, TutoringAgreement.member_id == member.id
                )
            )
        ).first()
        if row is None:
            assert peer_session.id is not None and group.id is not None and member.id is not None
            row = TutoringAgreement(session_id=peer_session.id, group_id=group.id, member_id=member.id)
            tx.add(row)
        return row

    async def accept(self, actor: Actor, group_id: int) -> Reply:
        """Record the actor's acceptance of their pair's objectives, with the text shown and its hash."""
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            peer_session, group, member = await self._pair_of(tx, actor, group_id)
            if peer_session.state != SessionState.RUNNING:
                raise Invalid(
                    _(
                        "Session `{session}` is over: the agreement can no longer be accepted.",
                        session=peer_session.short_id,
                    )
                )
            row = await self._agreement(tx, peer_session, group, member)
            if row.accepted_at is not None:
                return Reply(t(locale, "You have already accepted your pair's objectives."))
            text = agreement_text(peer_session, self.ctx.settings.locale)
            row.text, row.text_sha256, row.accepted_at = text, fingerprint(text), self.ctx.clock.now()
            row.group_id = group.id or row.group_id
            self.ctx.audit(tx, actor.user.key, "tutoring.accept", peer_session.id, group=group.number)
            await tx.flush()
            accepted = await queries.count(
                tx,
                TutoringAgreement,
                TutoringAgreement.group_id == group.id,
                col(TutoringAgreement.accepted_at).is_not(None),
            )
            size = await queries.count(tx, GroupMembership, GroupMembership.group_id == group.id)
            digest = row.text_sha256
        if accepted == size:
            platform = await self.ctx.platform_of(peer_session)
            await platform.post(
                ChannelRef(platform.name, group.channel_id),
                Message(t(self.ctx.settings.locale, "✅ Everyone in this pair has accepted the objectives.")),
            )
        return Reply(t(locale, "Accepted: your agreement is recorded (fingerprint `{hash}`).", hash=digest[:16]))

    async def wrap_up(self, short_id: str) -> None:
        """At the wrap-up: the sharing timers show that time is up; late reviewers are reminded."""
        await self.tick(short_id, final=True)
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            await self.reviews.remind(tx, peer_session)

    async def at_end(self, tx: AsyncSession, peer_session: PeerSession) -> None:
        """At the end, in its transaction: the tutoring meeting questions and the review feedback are queued."""
        await self.reviews.queue_feedback(tx, peer_session)
        await self._queue_meeting_questions(tx, peer_session)

    async def _queue_meeting_questions(self, tx: AsyncSession, peer_session: PeerSession) -> None:
        """Every member of a tutoring pair is asked by DM whether the pair met, and how long."""
        if peer_session.format != "tutoring":
            return
        assert peer_session.id is not None
        now = self.ctx.clock.now()
        for _group, members in await queries.groups(tx, peer_session.id):
            for member, _role in members:
                await self.outbox.enqueue(tx, DeliveryKind.TUTORING_CHECK, peer_session, member, now)

    async def _meeting_question(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member
    ) -> Message | None:
        membership = (
            await tx.exec(
                select(GroupMembership).where(
                    GroupMembership.session_id == peer_session.id, GroupMembership.member_id == member.id
                )
            )
        ).first()
        if membership is None:
            return None
        locale = self.ctx.locale_of(member)
        labels = {0: t(locale, "We did not meet"), 120: t(locale, "2 h or more")}
        return Message(
            t(
                locale,
                "🤝 “{title}” is over. Did you and your pair meet, and for how long? Tap one answer "
                "(you can change it).",
                title=peer_session.title,
            ),
            buttons=tuple(
                Button(
                    str(actions.ReportMeeting(membership.group_id, minutes)),
                    labels.get(minutes) or t(locale, "{minutes} min", minutes=minutes),
                )
                for minutes in MEETING_MINUTES
            ),
            key=delivery.idempotency_key,
            retry=delivery.attempts > 1,
        )

    async def report_meeting(self, actor: Actor, group_id: int, minutes: int) -> Reply:
        """Record whether the actor's pair met and for how long (a later tap replaces the answer)."""
        locale = self.ctx.reply_locale(actor)
        if minutes not in MEETING_MINUTES:
            raise Invalid(_("This button is not one of mine any more."))
        async with self.ctx.db.transaction() as tx:
            peer_session, group, member = await self._pair_of(tx, actor, group_id)
            if peer_session.state in rules.NOT_STARTED or peer_session.state == SessionState.CANCELLED:
                raise Invalid(_("Session `{session}` has not taken place.", session=peer_session.short_id))
            row = await self._agreement(tx, peer_session, group, member)
            row.met, row.met_minutes, row.reported_at = minutes > 0, minutes, self.ctx.clock.now()
            self.ctx.audit(tx, actor.user.key, "tutoring.met", peer_session.id, group=group.number, minutes=minutes)
        if minutes == 0:
            return Reply(t(locale, "Noted: your pair did not meet. Thank you for saying so."))
        return Reply(t(locale, "Noted: your pair met for {minutes} min. Thank you!", minutes=minutes))

    async def report_lines(self, tx: AsyncSession, peer_session: PeerSession, locale: str) -> list[str]:
        """The trainer's view of a tutoring session: per pair, who accepted when (and the text's hash), and what
        each said about meeting."""
        if peer_session.format == "review":
            return await self.reviews.report_lines(tx, peer_session, locale)
        if peer_session.format != "tutoring" or peer_session.id is None:
            return []
        rows = {
            r.member_id: r
            for r in (
                await tx.exec(select(TutoringAgreement).where(TutoringAgreement.session_id == peer_session.id))
            ).all()
        }
        lines = [t(locale, "*Tutoring agreements*")]
        for group, members in await queries.groups(tx, peer_session.id):
            parts = []
            for member, _role in members:
                row = rows.get(member.id or 0)
                accepted = (
                    t(
                        locale,
                        "accepted {at} (sha256 {hash})",
                        at=self.ctx.fallback(row.accepted_at),
                        hash=row.text_sha256[:12],
                    )
                    if row is not None and row.accepted_at is not None
                    else t(locale, "not accepted")
                )
                if row is None or row.met is None:
                    met = t(locale, "meeting not reported")
                elif row.met:
                    met = t(locale, "met {minutes} min", minutes=row.met_minutes or 0)
                else:
                    met = t(locale, "did not meet")
                parts.append(f"<@{member.user_id}>: {accepted}, {met}")
            lines.append(t(locale, "Pair {number}: {parts}", number=group.number, parts="; ".join(parts)))
        return lines

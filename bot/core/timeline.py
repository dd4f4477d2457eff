"""The session's timeline as a state machine (planned → prep_sent → running → ended → closed): `advance`
runs whatever step is due, and each step (prep post, prep reminder, check-in opening, start, wrap-up,
end, close) checks the stored state first, so a job that fires twice or late does no harm. It builds on
groups (the start forms them), the outbox (the end queues the questionnaires) and the views (the
trainer's summary).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import queries, rules
from bot.core.context import Context, log
from bot.core.followups import FollowUps
from bot.core.formats import Formats
from bot.core.groups import Arrivals, Groups, check_in_button
from bot.core.outbox import Outbox
from bot.core.rules import DeliveryKind, SessionState, Step
from bot.core.templates import items_for
from bot.core.views import Views
from bot.errors import Invalid, PeerError
from bot.grouping import Notice, size_bounds
from bot.i18n import N_, Text, _, t
from bot.localtime import same_wall_time_later
from bot.logs import session_context
from bot.messages import Button, ButtonStyle, Message, Section
from bot.port import ChecksCapacity, EventSpec, PlatformError
from bot.refs import ChannelRef
from storage.models import (
    Attendance,
    AuditEvent,
    GroupMembership,
    Member,
    PeerGroup,
    PeerSession,
    PrepAck,
    QuestionnaireItem,
)

PREP_POST = N_(
    "📚 *Prepare for “{title}”* — starts {0}.\n{material}\nMark it done when you have prepared (button or ✅)."
)
CHECKIN_ANNOUNCE = N_(
    "🟢 *Check-in is open for “{title}”* — starts {0}. Click *Check in* (or react ✅) when you are here."
)


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step the scheduler ran, and what it did (for the log and the demo's transcript)."""

    step: str
    detail: str = ""


class Timeline:
    """The steps of a session, each idempotent, in the order they happen."""

    def __init__(
        self, ctx: Context, groups: Groups, outbox: Outbox, views: Views, followups: FollowUps, formats: Formats
    ) -> None:
        self.ctx, self.groups, self.outbox, self.views = ctx, groups, outbox, views
        self.followups, self.formats = followups, formats

    async def advance(self) -> list[StepResult]:
        """Run every step that is due for every active session, then deliver due DMs (catch-up on start)."""
        async with self.ctx.db.transaction() as tx:
            rows = await tx.exec(select(PeerSession.short_id).where(col(PeerSession.state).in_(rules.ACTIVE)))
            shorts = list(rows.all())
        done: list[StepResult] = []
        for short in shorts:
            done += await self.advance_session(short)
        await self.place_waiting()
        await self.outbox.deliver_due()
        return done

    async def place_waiting(self) -> int:
        """Place the learners of running sessions who still wait for a group (the wait-alone rule needs a
        clock, not a click); returns how many were placed."""
        async with self.ctx.db.transaction() as tx:
            rows = await tx.exec(
                select(PeerSession.short_id)
                .join(Attendance, col(Attendance.session_id) == col(PeerSession.id))
                .join(
                    GroupMembership,
                    (col(GroupMembership.session_id) == col(PeerSession.id))
                    & (col(GroupMembership.member_id) == col(Attendance.member_id)),
                    isouter=True,
                )
                .where(
                    PeerSession.state == SessionState.RUNNING,
                    col(Attendance.status).in_(rules.PRESENT),
                    col(GroupMembership.id).is_(None),
                )
                .distinct()
            )
            shorts = list(rows.all())
        placed = 0
        for short_id in shorts:
            async with self.ctx.db.transaction() as tx:
                peer_session = await queries.peer_session(tx, None, short_id)
                arrivals = await self.groups.place_arrivals(tx, peer_session)
            if arrivals.joined or arrivals.blocked:
                await self.groups.announce_arrivals(peer_session, arrivals)
            placed += len(arrivals.joined)
        return placed

    async def advance_session(self, short_id: str) -> list[StepResult]:
        """Run the session's due steps; a fault in them is logged, retried later and told to the trainers once,
        and never stops the other sessions' steps."""
        with session_context(short_id):
            try:
                return await self._advance_session(short_id)
            except Exception as exc:  # one session's fault (a platform outage, a bug, bad data) must not stop the rest
                await self._step_failed(short_id, exc)
                return []

    async def _step_failed(self, short_id: str, exc: Exception) -> None:
        reference = secrets.token_hex(4)
        log.exception("session %s: a step failed (ref %s)", short_id, reference, exc_info=exc)
        try:
            async with self.ctx.db.transaction() as tx:
                peer_session = await queries.peer_session(tx, None, short_id)
                failures = await queries.count(
                    tx, AuditEvent, AuditEvent.session_id == peer_session.id, AuditEvent.action == "step.failed"
                )
                self.ctx.audit(tx, "scheduler", "step.failed", peer_session.id, error=repr(exc)[:300], ref=reference)
            if self.ctx.scheduler is not None:
                self.ctx.scheduler.session_retry(short_id, self.ctx.clock.now() + rules.step_retry_after(failures))
            if failures == 0:
                await self.outbox.tell_trainers(
                    peer_session,
                    _(
                        "Something went wrong with session `{session}` (reference {reference}); I will keep retrying "
                        "its next step. If it does not recover, give the reference to your peerbot admin.",
                        session=short_id,
                        reference=reference,
                    ),
                )
        except Exception:  # the database or the platform itself is down: the log is all we can do
            log.exception("session %s: could not record the failure (ref %s)", short_id, reference)

    async def _advance_session(self, short_id: str) -> list[StepResult]:
        """Run the due steps one at a time, re-reading the row after each (`rules.next_due_step`): every step
        re-checks the stored state itself, so a job that fires twice or late does no harm."""
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
        if peer_session.state == rules.SessionState.RUNNING:
            await self.groups.ensure_breakouts(short_id)  # resumes a start that crashed or hit a rate limit
            await self.formats.tick(short_id)  # the sharing timer, the tutoring agreements
        elif peer_session.state == rules.SessionState.ENDED:
            await self.finish_end(short_id)  # resumes an end that crashed before its breakouts were closed
        results: list[StepResult] = []
        done: set[Step] = set()
        while (step := rules.next_due_step(peer_session, now, done=done)) is not None:
            done.add(step)
            try:
                results.append(StepResult(step, await self._run(step, short_id)))
            except PeerError as exc:  # a start the platform refused: the trainers are told, the pass stops
                await self.outbox.tell_trainers(peer_session, exc)
                break
            async with self.ctx.db.transaction() as tx:
                peer_session = await queries.peer_session(tx, None, short_id)
        return [r for r in results if r.detail]

    async def _run(self, step: Step, short_id: str) -> str:
        match step:
            case Step.PREP:
                return await self.post_prep(short_id)
            case Step.PREP_REMINDER:
                return await self.remind_prep(short_id)
            case Step.CHECKIN:
                return await self.open_checkin(short_id)
            case Step.START:
                return await self.start(short_id, by="scheduler")
            case Step.WRAPUP:
                return await self.wrap_up(short_id)
            case Step.END:
                return await self.end(short_id, by="scheduler")
            case Step.CLOSE:
                return await self.close(short_id)

    async def _announce(
        self, peer_session: PeerSession, compose: Callable[[str], Message], learners: list[Member]
    ) -> str:
        """Post to the cohort's channel (in the instance's language), or DM each learner in theirs when the
        cohort has no channel."""
        platform = await self.ctx.platform_of(peer_session)
        if peer_session.channel_id:
            ref = await platform.post(
                ChannelRef(platform.name, peer_session.channel_id), compose(self.ctx.settings.locale)
            )
            return ref.id
        for member in learners:
            try:
                await platform.send_dm(queries.ref(member), compose(self.ctx.locale_of(member)))
            except PlatformError as exc:
                log.warning("could not DM %s: %s", member.user_id, exc)
        return ""

    async def post_prep(self, short_id: str) -> str:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            if peer_session.state != SessionState.PLANNED:
                return ""
            peer_session.state = SessionState.PREP_SENT
            learners = [m for _, m in await queries.learners(tx, peer_session.cohort_id)]
            self.ctx.audit(tx, "scheduler", "prep.post", peer_session.id)
        stamp = self.ctx.stamp(peer_session.starts_at)

        def compose(locale: str) -> Message:
            text = t(locale, PREP_POST, stamp, title=peer_session.title, material=peer_session.prep_material)
            return Message(
                text.split("\n")[0],
                sections=(Section(text, (stamp,)),),
                buttons=(
                    Button(str(actions.PrepDone(peer_session.short_id)), t(locale, "Done"), ButtonStyle.PRIMARY),
                    *work_button(peer_session, locale),
                ),
            )

        message_id = await self._announce(peer_session, compose, learners)
        async with self.ctx.db.transaction() as tx:
            await tx.exec(
                update(PeerSession)
                .where(col(PeerSession.id) == peer_session.id)  # type: ignore[call-overload]
                .values(prep_message_id=message_id)
            )
        return t(self.ctx.settings.locale, "prep material posted for {count} learner(s)", count=len(learners))

    async def remind_prep(self, short_id: str) -> str:
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            if peer_session.prep_reminded_at is not None:
                return ""
            peer_session.prep_reminded_at = now
            assert peer_session.id is not None
            acked = {
                p.member_id for p in (await tx.exec(select(PrepAck).where(PrepAck.session_id == peer_session.id))).all()
            }
            pending = [m for _, m in await queries.learners(tx, peer_session.cohort_id) if m.id not in acked]
            for member in pending:
                await self.outbox.enqueue(tx, "prep_reminder", peer_session, member, now)
        return t(self.ctx.settings.locale, "prep reminder queued for {count} learner(s)", count=len(pending))

    async def open_checkin(self, short_id: str) -> str:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            if peer_session.checkin_opened_at is not None or not rules.can_start(peer_session.state):
                return ""  # open already, or too late: a cancelled or finished session gets no announcement
            peer_session.checkin_opened_at = self.ctx.clock.now()
            learners = [m for _, m in await queries.learners(tx, peer_session.cohort_id)]
            self.ctx.audit(tx, "scheduler", "checkin.open", peer_session.id)
        stamp = self.ctx.stamp(peer_session.starts_at)

        def compose(locale: str) -> Message:
            text = t(locale, CHECKIN_ANNOUNCE, stamp, title=peer_session.title)
            return Message(
                text.split("—")[0].strip(),
                sections=(Section(text, (stamp,)),),
                buttons=(check_in_button(peer_session.short_id, locale), *work_button(peer_session, locale)),
            )

        message_id = await self._announce(peer_session, compose, learners)
        async with self.ctx.db.transaction() as tx:
            await tx.exec(
                update(PeerSession)
                .where(col(PeerSession.id) == peer_session.id)  # type: ignore[call-overload]
                .values(announce_message_id=message_id)
            )
        await self.ensure_event(short_id)  # made at planning; again here if the platform refused it then
        self.groups.prepare_soon(peer_session)  # a draft from now on, so the start only adjusts it
        return t(self.ctx.settings.locale, "check-in open")

    async def ensure_event(self, short_id: str) -> None:
        """The session's calendar entry (a Discord scheduled event), made as soon as the session is planned so
        that learners see it in advance; a no-op once it exists, for a cancelled session, or once the session
        has started (an event cannot start in the past). A refusal is logged and retried at check-in."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
        if peer_session.event_id or peer_session.state == SessionState.CANCELLED:
            return
        if peer_session.starts_at <= self.ctx.clock.now():
            return
        platform = await self.ctx.platform_of(peer_session)
        try:
            event_id = await platform.create_event(
                EventSpec(
                    peer_session.title[:100],
                    peer_session.objectives or peer_session.title,
                    peer_session.starts_at,
                    rules.end_of(peer_session),
                    t(self.ctx.settings.locale, "peerbot breakouts"),
                )
            )
        except PlatformError as exc:
            log.warning("could not create the event of %s: %s", short_id, exc)
            return
        async with self.ctx.db.transaction() as tx:
            await tx.exec(
                update(PeerSession)
                .where(col(PeerSession.id) == peer_session.id, col(PeerSession.event_id) == "")  # type: ignore[call-overload]
                .values(event_id=event_id or "")
            )

    async def start(self, short_id: str, *, by: str, locale: str = "") -> str:
        """Form the groups (one transaction), then create the breakouts outside it; returns what was done,
        in `locale` (the instance's by default)."""
        await self.open_checkin(short_id)  # a start always opens check-in (a no-op once it is open)
        now = self.ctx.clock.now()
        warnings: list[Text | str] = []
        arrivals = Arrivals()
        async with self.ctx.db.transaction() as tx:
            # Locked, then read again: a trainer's start and the scheduler's, at the same instant on PostgreSQL,
            # would otherwise both see a session not yet started and both form groups.
            peer_session = await queries.peer_session(tx, None, short_id, lock=True)
            if not rules.can_start(peer_session.state):
                return ""
            assert peer_session.id is not None
            learners = await self.groups.pool(tx, peer_session)
            members_by_id = {str(m.id): m for _, m in await queries.learners(tx, peer_session.cohort_id)}
            has_draft = bool(await queries.groups(tx, peer_session.id))
            left_out: tuple[tuple[str, str], ...] = ()
            if has_draft and learners:
                warnings = await self.groups.apply_draft(tx, peer_session, learners)
            else:
                await self.groups.clear(tx, peer_session.id)
                if learners:  # nobody yet: groups form as learners arrive (`Groups.place_arrivals`)
                    grouping = await self.groups.form(tx, peer_session, learners, seed=peer_session.id)
                    left_out = grouping.left_out
                    warnings = [notice_text(n, members_by_id) for n in grouping.warnings]
            peer_session.state, peer_session.started_at = SessionState.RUNNING, now
            self.groups.drafts.pop(peer_session.id, None)
            if has_draft and learners:
                await tx.flush()
                arrivals = await self.groups.place_arrivals(tx, peer_session)  # newcomers the draft could not take
            groups = await queries.groups(tx, peer_session.id)
            platform = await self.ctx.platform_of(peer_session, tx)
            if isinstance(platform, ChecksCapacity):
                try:
                    capacity = await platform.ensure_capacity(peer_session.short_id, len(groups))
                    if capacity is not None and capacity.nearly_full:
                        warnings.append(
                            _(
                                "Only {free} of the server's {total} channels will be free after this start: "
                                "delete old channels before the next one.",
                                free=capacity.free_after,
                                total=capacity.total,
                            )
                        )
                except PlatformError as exc:  # rolls the whole start back: nothing created, nothing changed
                    raise Invalid(
                        _(
                            "I cannot start `{session}`: the server has no room for {count} breakouts ({reason}).",
                            session=peer_session.short_id,
                            count=len(groups),
                            reason=exc.detail or exc.code,
                        ),
                        _("Delete or archive old channels, then `/peer session start` again."),
                    ) from None
            self.ctx.audit(
                tx,
                by,
                "session.start",
                peer_session.id,
                groups=len(groups),
                warnings=[str(w) for w in warnings],
                left_out=list(left_out),
                from_draft=has_draft,
            )
            trainers = await queries.trainers(tx, peer_session)
        for member_id, reason in left_out:
            member = members_by_id.get(member_id)
            if member is not None:
                text = t(
                    self.ctx.locale_of(member),
                    "You are not in a group for “{title}”: {reason}",
                    title=peer_session.title,
                    reason=reason,
                )
                await self.ctx.safe_dm(platform, member, Message(text))
        for trainer in trainers:
            if warnings:
                trainer_locale = self.ctx.locale_of(trainer)
                text = t(
                    trainer_locale,
                    "Groups for `{session}`: {warnings}",
                    session=peer_session.short_id,
                    warnings=" ".join(w.render(trainer_locale) if isinstance(w, Text) else w for w in warnings),
                )
                await self.ctx.safe_dm(platform, trainer, Message(text))
        created = await self.groups.ensure_breakouts(short_id)
        if arrivals.joined or arrivals.blocked:
            await self.groups.announce_arrivals(peer_session, arrivals)
        await self.formats.tick(short_id)
        self.ctx.notify_scheduler(peer_session)
        if not learners:
            low, _high = size_bounds(peer_session.format, peer_session.group_size)
            return t(
                locale or self.ctx.settings.locale,
                "nobody has checked in yet: check-in is open, and groups form as learners arrive (a group starts "
                "with {count} learners; anyone waiting alone for {minutes} minutes joins the smallest group)",
                count=low,
                minutes=rules.minutes(rules.WAIT_ALONE),
            )
        return t(
            locale or self.ctx.settings.locale,
            "{groups} group(s) formed from {learners} learner(s), {created} breakout(s) created",
            groups=len(groups),
            learners=len(learners),
            created=created,
        )

    async def wrap_up(self, short_id: str) -> str:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id, lock=True)  # vs a trainer's end
            assert peer_session.id is not None
            if peer_session.state != SessionState.RUNNING:
                return ""
            already = (
                await tx.exec(
                    select(AuditEvent).where(AuditEvent.session_id == peer_session.id, AuditEvent.action == "wrapup")
                )
            ).first()
            if already is not None:
                return ""
            self.ctx.audit(tx, "scheduler", "wrapup", peer_session.id)
            groups = await queries.groups(tx, peer_session.id)
        await self.formats.wrap_up(short_id)  # the sharing timers show that time is up; late reviewers reminded
        platform = await self.ctx.platform_of(peer_session)
        locale = self.ctx.settings.locale
        for group, _members in groups:
            if group.channel_id:
                await platform.post(
                    ChannelRef(platform.name, group.channel_id),
                    Message(
                        t(locale, "⏳ Time to wrap up: share your group's three key takeaways with *Share takeaways*."),
                        buttons=(
                            Button(
                                str(actions.OpenTakeaways(group.id or 0)),
                                t(locale, "Share takeaways"),
                                ButtonStyle.PRIMARY,
                            ),
                        ),
                    ),
                )
        return t(locale, "wrap-up asked in {count} group(s)", count=len(groups))

    async def end(self, short_id: str, *, by: str) -> str:
        """Summary to the trainers, breakouts closed, questionnaires queued (due now, reminder at +24 h)."""
        await self.wrap_up(short_id)
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id, lock=True)  # a trainer's and the scheduler's
            if peer_session.state != SessionState.RUNNING:
                return ""
            assert peer_session.id is not None
            peer_session.state, peer_session.ended_at = SessionState.ENDED, now
            attendees = (
                await tx.exec(
                    select(Member)
                    .join(Attendance, col(Attendance.member_id) == col(Member.id))
                    .where(Attendance.session_id == peer_session.id, col(Attendance.status).in_(rules.PRESENT))
                    .order_by(col(Member.id))
                )
            ).all()
            await self._copy_feedback_items(tx, peer_session)
            # "Two weeks later" at the same local wall time, across a DST change (the 24 h reminder stays 24 h).
            retention_due = same_wall_time_later(now, peer_session.retention_days // 7, self.ctx.settings.zone)
            second_due = same_wall_time_later(now, peer_session.retention2_days // 7, self.ctx.settings.zone)
            for member in attendees:
                await self.outbox.enqueue(tx, "feedback", peer_session, member, now)
                await self.outbox.enqueue(
                    tx, "feedback_reminder", peer_session, member, now + rules.SURVEY_REMINDER_AFTER
                )
                await self.outbox.enqueue(tx, "retention", peer_session, member, retention_due)
                if peer_session.retention2_days:
                    await self.outbox.enqueue(tx, DeliveryKind.RETENTION2, peer_session, member, second_due)
            peer_session.retention_queued_at = now
            if peer_session.followup_weeks:
                await self.followups.queue(tx, peer_session, list(attendees), now)
            await self.formats.at_end(tx, peer_session)
            self.ctx.audit(tx, by, "session.end", peer_session.id, attendees=len(attendees))
            groups = await queries.groups(tx, peer_session.id)
            summaries = [
                delivery_id
                for trainer in await queries.trainers(tx, peer_session)
                if (delivery_id := await self.outbox.enqueue(tx, DeliveryKind.SUMMARY, peer_session, trainer, now))
            ]
        await self.outbox.deliver(summaries)  # the summary now; after a crash, the outbox sends it once
        await self.finish_end(short_id)
        self.ctx.notify_scheduler(peer_session)
        if self.ctx.scheduler is not None:
            self.ctx.scheduler.outbox_due(now)
        return t(
            self.ctx.settings.locale,
            "ended: {count} questionnaire(s) queued, {groups} breakout(s) closed",
            count=len(attendees),
            groups=len(groups),
        )

    async def finish_end(self, short_id: str) -> int:
        """Close the breakouts and end the platform's event, each once: resumed by every pass over an ended
        session, so a crash right after the end loses none of it. Returns how many breakouts it closed."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            assert peer_session.id is not None
            groups = (
                await tx.exec(
                    select(PeerGroup).where(
                        PeerGroup.session_id == peer_session.id,
                        PeerGroup.channel_id != "",
                        col(PeerGroup.closed_at).is_(None),
                    )
                )
            ).all()
            event = peer_session.event_id if peer_session.event_closed_at is None else ""
        if not groups and not event:
            return 0
        platform = await self.ctx.platform_of(peer_session)
        for group in groups:
            try:
                await platform.archive_channel(ChannelRef(platform.name, group.channel_id))
            except PlatformError as exc:  # gone or refused: retrying each pass would not help
                log.warning("could not close breakout %s: %s", group.channel_id, exc)
            await self._stamp(PeerGroup, group.id, "closed_at")
        if event:
            try:
                await platform.end_event(event)
            except PlatformError as exc:
                log.warning("could not end event %s: %s", event, exc)
            await self._stamp(PeerSession, peer_session.id, "event_closed_at")
        return len(groups)

    async def _stamp(self, model: type[PeerGroup] | type[PeerSession], row_id: int | None, column: str) -> None:
        async with self.ctx.db.transaction() as tx:
            await tx.exec(
                update(model).where(col(model.id) == row_id).values({column: self.ctx.clock.now()})  # type: ignore[call-overload]
            )

    async def close(self, short_id: str) -> str:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            if peer_session.state != SessionState.ENDED:
                return ""
            peer_session.state, peer_session.closed_at = SessionState.CLOSED, self.ctx.clock.now()
            self.ctx.audit(tx, "scheduler", "session.close", peer_session.id)
        self.ctx.notify_scheduler(peer_session)
        return t(self.ctx.settings.locale, "feedback closed")

    async def _copy_feedback_items(self, tx: AsyncSession, peer_session: PeerSession) -> None:
        """The cohort's questionnaire as it stands at the end, in both languages: what this session asks for
        good, whatever later edits of the template."""
        assert peer_session.id is not None
        for position, item in enumerate(await items_for(tx, peer_session.cohort_id), start=1):
            tx.add(
                QuestionnaireItem(
                    session_id=peer_session.id,
                    kind="feedback",
                    position=position,
                    item_key=item.key,
                    item_type=item.item_type,
                    text=item.en,
                    text_fr=item.fr,
                    options_json=json.dumps(list(item.options), ensure_ascii=False),
                    options_fr_json=json.dumps(list(item.options_fr), ensure_ascii=False),
                )
            )


def work_button(peer_session: PeerSession, locale: str) -> tuple[Button, ...]:
    """ "Submit my work" beside the prep and check-in buttons of a peer review session (work is due by the start)."""
    if peer_session.format != "review":
        return ()
    return (Button(str(actions.OpenWork(peer_session.short_id)), t(locale, "Submit my work")),)


NOTICES = {
    "no_learners": N_("No learners to group."),
    "too_few": N_("Only {count} learner(s): one group, smaller than the {minimum} this format needs."),
    "apart": N_("I could not keep {a} and {b} apart: no split of this cohort allows it."),
    "together": N_("I could not keep {a} and {b} together."),
    "repeats": N_("{count} pair(s) of learners have already worked together."),
    "level_spread": N_("{count} group(s) of {total} miss the target level spread of {low}–{high}."),
    "level_gap": N_("{count} group(s) of {total} miss the target tutor–tutee level gap of {low}–{high}."),
}


def notice_text(notice: Notice, members: dict[str, Member]) -> Text | str:
    """The engine's warning in the trainer's words: learners as mentions, the sentence translated."""
    template = NOTICES.get(notice.code)
    if template is None:
        return str(notice)
    values = dict(notice.values)
    for key in ("a", "b"):
        if key in values:
            member = members.get(str(values[key]))
            values[key] = f"<@{member.user_id}>" if member else str(values[key])
    return _(template, **values)

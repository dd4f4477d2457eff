"""The session's timeline as a state machine (planned → prep_sent → running → ended → closed): `advance`
runs whatever step is due, and each step (prep post, prep reminder, check-in opening, start, wrap-up,
end, close) checks the stored state first, so a job that fires twice or late does no harm. It builds on
groups (the start forms them), the outbox (the end queues the questionnaires) and the views (the
trainer's summary).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.base import ACTIVE_STATES, SURVEY_REMINDER_AFTER, StepResult, log
from bot.core.groups import GroupsMixin
from bot.core.outbox import OutboxMixin
from bot.core.views import ViewsMixin
from bot.errors import Invalid, PeerError
from bot.grouping import Notice
from bot.i18n import N_, Text, _, t
from bot.messages import Button, ButtonStyle, Message, Section
from bot.port import ChecksCapacity, EventSpec, PlatformError
from bot.questionnaires import FEEDBACK_ITEMS
from bot.refs import ChannelRef
from storage.models import Attendance, AuditEvent, Member, PeerSession, PrepAck, QuestionnaireItem

PREP_POST = N_(
    "📚 *Prepare for “{title}”* — starts {0}.\n{material}\nMark it done when you have prepared (button or ✅)."
)
CHECKIN_ANNOUNCE = N_(
    "🟢 *Check-in is open for “{title}”* — starts {0}. Click *Check in* (or react ✅) when you are here."
)


class TimelineMixin(GroupsMixin, OutboxMixin, ViewsMixin):
    """The steps of a session, each idempotent, in the order they happen."""

    async def advance(self) -> list[StepResult]:
        """Run every step that is due for every active session, then deliver due DMs (catch-up on start)."""
        async with self.db.session() as s:
            rows = await s.exec(select(PeerSession.short_id).where(col(PeerSession.state).in_(ACTIVE_STATES)))
            shorts = list(rows.all())
        done: list[StepResult] = []
        for short in shorts:
            done += await self.advance_session(short)
        await self.deliver_due()
        return done

    async def advance_session(self, short_id: str) -> list[StepResult]:
        """Idempotent: each step checks the stored state, so a job firing twice or late does no harm."""
        results: list[StepResult] = []
        now = self.clock.now()
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
        steps = self._steps(session)
        if session.state in {"planned"} and "prep" in steps and now >= steps["prep"] and now < session.starts_at:
            results.append(StepResult("prep", await self.post_prep(short_id)))
        if (
            "prep_reminder" in steps
            and now >= steps["prep_reminder"]
            and now < session.starts_at
            and session.prep_reminded_at is None
            and session.state in {"planned", "prep_sent"}
        ):
            results.append(StepResult("prep_reminder", await self.remind_prep(short_id)))
        if now >= steps["checkin"] and session.checkin_opened_at is None and session.state in {"planned", "prep_sent"}:
            results.append(StepResult("checkin", await self.open_checkin(short_id)))
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
        if now >= steps["start"] and session.state in {"planned", "prep_sent"}:
            try:
                results.append(StepResult("start", await self.start(short_id, by="scheduler")))
            except PeerError as exc:
                await self._tell_trainers(session, exc)
                return results
        elif session.state == "running":
            await self._ensure_breakouts(short_id)
        if now >= steps["wrapup"] and now < steps["end"]:
            results.append(StepResult("wrapup", await self.wrap_up(short_id)))
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
        if now >= steps["end"] and session.state == "running":
            results.append(StepResult("end", await self.end(short_id, by="scheduler")))
        if now >= steps["close"] and session.state == "ended":
            results.append(StepResult("close", await self.close(short_id)))
        return [r for r in results if r.detail]

    async def _announce(self, session: PeerSession, compose: Callable[[str], Message], learners: list[Member]) -> str:
        """Post to the cohort's channel (in the instance's language), or DM each learner in theirs when the
        cohort has no channel."""
        platform = await self._platform_of(session)
        if session.channel_id:
            ref = await platform.post(ChannelRef(platform.name, session.channel_id), compose(self.settings.locale))
            return ref.id
        for member in learners:
            try:
                await platform.send_dm(self._ref(member), compose(self._locale(member)))
            except PlatformError as exc:
                log.warning("could not DM %s: %s", member.user_id, exc)
        return ""

    async def post_prep(self, short_id: str) -> str:
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.state != "planned":
                return ""
            session.state = "prep_sent"
            learners = [m for _, m in await self._learners(s, session.cohort_id)]
            await self._audit(s, "scheduler", "prep.post", session.id)
        stamp = self._stamp(session.starts_at)

        def compose(locale: str) -> Message:
            text = t(locale, PREP_POST, stamp, title=session.title, material=session.prep_material)
            return Message(
                text.split("\n")[0],
                sections=(Section(text, (stamp,)),),
                buttons=(Button(f"prep:done:{session.short_id}", t(locale, "Done"), ButtonStyle.PRIMARY),),
            )

        message_id = await self._announce(session, compose, learners)
        async with self.db.session() as s:
            await s.exec(
                update(PeerSession)
                .where(col(PeerSession.id) == session.id)  # type: ignore[call-overload]
                .values(prep_message_id=message_id)
            )
        return t(self.settings.locale, "prep material posted for {count} learner(s)", count=len(learners))

    async def remind_prep(self, short_id: str) -> str:
        now = self.clock.now()
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.prep_reminded_at is not None:
                return ""
            session.prep_reminded_at = now
            assert session.id is not None
            acked = {p.member_id for p in (await s.exec(select(PrepAck).where(PrepAck.session_id == session.id))).all()}
            pending = [m for _, m in await self._learners(s, session.cohort_id) if m.id not in acked]
            for member in pending:
                await self._enqueue(s, "prep_reminder", session, member, now)
        return t(self.settings.locale, "prep reminder queued for {count} learner(s)", count=len(pending))

    async def open_checkin(self, short_id: str) -> str:
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.checkin_opened_at is not None:
                return ""
            session.checkin_opened_at = self.clock.now()
            learners = [m for _, m in await self._learners(s, session.cohort_id)]
            await self._audit(s, "scheduler", "checkin.open", session.id)
        stamp = self._stamp(session.starts_at)

        def compose(locale: str) -> Message:
            text = t(locale, CHECKIN_ANNOUNCE, stamp, title=session.title)
            return Message(
                text.split("—")[0].strip(),
                sections=(Section(text, (stamp,)),),
                buttons=(Button(f"checkin:in:{session.short_id}", t(locale, "Check in"), ButtonStyle.PRIMARY),),
            )

        message_id = await self._announce(session, compose, learners)
        event_id = ""
        platform = await self._platform_of(session)
        try:
            event_id = (
                await platform.create_event(
                    EventSpec(
                        session.title[:100],
                        session.objectives or session.title,
                        session.starts_at,
                        self.end_of(session),
                        t(self.settings.locale, "peerbot breakouts"),
                    )
                )
                or ""
            )
        except PlatformError as exc:
            log.warning("could not create the event of %s: %s", short_id, exc)
        async with self.db.session() as s:
            await s.exec(
                update(PeerSession)
                .where(col(PeerSession.id) == session.id)  # type: ignore[call-overload]
                .values(announce_message_id=message_id, event_id=event_id)
            )
        return t(self.settings.locale, "check-in open")

    async def start(self, short_id: str, *, by: str, locale: str = "") -> str:
        """Form the groups (one transaction), then create the breakouts outside it; returns what was done,
        in `locale` (the instance's by default)."""
        now = self.clock.now()
        warnings: list[Text | str]
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.state not in {"planned", "prep_sent"}:
                return ""
            assert session.id is not None
            learners = await self._pool(s, session)
            members_by_id = {str(m.id): m for _, m in await self._learners(s, session.cohort_id)}
            has_draft = bool(await self._groups(s, session.id))
            left_out: tuple[tuple[str, str], ...] = ()
            if has_draft and learners:
                warnings = await self._apply_draft(s, session, learners)
            else:
                await self._clear_groups(s, session.id)
                grouping = await self._form(s, session, learners, seed=session.id)
                left_out = grouping.left_out
                warnings = [notice_text(n, members_by_id) for n in grouping.warnings]
            groups = await self._groups(s, session.id)
            platform = await self._platform_of(session, s)
            if isinstance(platform, ChecksCapacity):
                try:
                    await platform.ensure_capacity(session.short_id, len(groups))
                except PlatformError as exc:  # rolls the whole start back: nothing created, nothing changed
                    raise Invalid(
                        _(
                            "I cannot start `{session}`: the server has no room for {count} breakouts ({reason}).",
                            session=session.short_id,
                            count=len(groups),
                            reason=exc.detail or exc.code,
                        ),
                        _("Delete or archive old channels, then `/peer session start` again."),
                    ) from None
            session.state, session.started_at = "running", now
            await self._audit(
                s,
                by,
                "session.start",
                session.id,
                groups=len(groups),
                warnings=[str(w) for w in warnings],
                left_out=list(left_out),
                from_draft=has_draft,
            )
            trainers = await self._trainers(s, session)
        for member_id, reason in left_out:
            member = members_by_id.get(member_id)
            if member is not None:
                text = t(
                    self._locale(member),
                    "You are not in a group for “{title}”: {reason}",
                    title=session.title,
                    reason=reason,
                )
                await self._safe_dm(platform, member, Message(text))
        for trainer in trainers:
            if warnings:
                trainer_locale = self._locale(trainer)
                text = t(
                    trainer_locale,
                    "Groups for `{session}`: {warnings}",
                    session=session.short_id,
                    warnings=" ".join(w.render(trainer_locale) if isinstance(w, Text) else w for w in warnings),
                )
                await self._safe_dm(platform, trainer, Message(text))
        created = await self._ensure_breakouts(short_id)
        self._notify_scheduler(session)
        return t(
            locale or self.settings.locale,
            "{groups} group(s) formed from {learners} learner(s), {created} breakout(s) created",
            groups=len(groups),
            learners=len(learners),
            created=created,
        )

    async def wrap_up(self, short_id: str) -> str:
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            assert session.id is not None
            if session.state != "running":
                return ""
            already = (
                await s.exec(
                    select(AuditEvent).where(AuditEvent.session_id == session.id, AuditEvent.action == "wrapup")
                )
            ).first()
            if already is not None:
                return ""
            await self._audit(s, "scheduler", "wrapup", session.id)
            groups = await self._groups(s, session.id)
        platform = await self._platform_of(session)
        locale = self.settings.locale
        for group, _members in groups:
            if group.channel_id:
                await platform.post(
                    ChannelRef(platform.name, group.channel_id),
                    Message(
                        t(locale, "⏳ Time to wrap up: share your group's three key takeaways with *Share takeaways*."),
                        buttons=(
                            Button(f"takeaways:open:{group.id}", t(locale, "Share takeaways"), ButtonStyle.PRIMARY),
                        ),
                    ),
                )
        return t(locale, "wrap-up asked in {count} group(s)", count=len(groups))

    async def end(self, short_id: str, *, by: str) -> str:
        """Summary to the trainers, breakouts closed, questionnaires queued (due now, reminder at +24 h)."""
        await self.wrap_up(short_id)
        now = self.clock.now()
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.state != "running":
                return ""
            assert session.id is not None
            session.state, session.ended_at = "ended", now
            attendees = (
                await s.exec(
                    select(Member)
                    .join(Attendance, col(Attendance.member_id) == col(Member.id))
                    .where(Attendance.session_id == session.id, col(Attendance.status).in_(("on_time", "late")))
                    .order_by(col(Member.id))
                )
            ).all()
            self._copy_feedback_items(s, session)
            for member in attendees:
                await self._enqueue(s, "feedback", session, member, now)
                await self._enqueue(s, "feedback_reminder", session, member, now + SURVEY_REMINDER_AFTER)
                await self._enqueue(s, "retention", session, member, now + timedelta(days=session.retention_days))
            session.retention_queued_at = now
            await self._audit(s, by, "session.end", session.id, attendees=len(attendees))
            groups = await self._groups(s, session.id)
            trainers = await self._trainers(s, session)
        summaries: dict[str, str] = {}
        platform = await self._platform_of(session)
        for trainer in trainers:
            locale = self._locale(trainer)
            if locale not in summaries:
                summaries[locale] = await self.describe_session(None, short_id, locale)
            takeaways = [
                t(locale, "*Group {number} takeaways*: {takeaways}", number=g.number, takeaways=g.takeaways)
                for g, _members in groups
                if g.takeaways
            ]
            await self._safe_dm(
                platform,
                trainer,
                Message(
                    t(locale, "Summary of `{session}`", session=session.short_id),
                    sections=tuple(Section(x) for x in [summaries[locale], *takeaways]),
                ),
            )
        for group, _members in groups:
            if group.channel_id:
                try:
                    await platform.archive_channel(ChannelRef(platform.name, group.channel_id))
                except PlatformError as exc:
                    log.warning("could not close breakout %s: %s", group.channel_id, exc)
        if session.event_id:
            try:
                await platform.end_event(session.event_id)
            except PlatformError as exc:
                log.warning("could not end event %s: %s", session.event_id, exc)
        self._notify_scheduler(session)
        if self.scheduler is not None:
            self.scheduler.outbox_due(now)
        return t(
            self.settings.locale,
            "ended: {count} questionnaire(s) queued, {groups} breakout(s) closed",
            count=len(attendees),
            groups=len(groups),
        )

    async def close(self, short_id: str) -> str:
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.state != "ended":
                return ""
            session.state, session.closed_at = "closed", self.clock.now()
            await self._audit(s, "scheduler", "session.close", session.id)
        self._notify_scheduler(session)
        return t(self.settings.locale, "feedback closed")

    def _copy_feedback_items(self, s: AsyncSession, session: PeerSession) -> None:
        assert session.id is not None
        for position, (key, item_type, text) in enumerate(FEEDBACK_ITEMS, start=1):
            s.add(
                QuestionnaireItem(
                    session_id=session.id,
                    kind="feedback",
                    position=position,
                    item_key=key,
                    item_type=item_type,
                    text=t(self.settings.locale, text),
                )
            )


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

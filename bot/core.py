"""The service layer: every use case of a peer-learning session, platform-neutral.

Adapters call the `Core` facade with an `Actor` and get a neutral `Reply` back. Each use case is one
transaction; platform calls happen outside the transaction (they can take seconds under rate limits) and
are written back in small transactions, so check-ins are never blocked behind channel creation.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.clock import Clock
from bot.errors import Forbidden, Invalid, NotFound, PeerError
from bot.grouping import Constraints, Grouping, Learner, Meeting, form_groups, size_bounds
from bot.i18n import GROUP_ROLES, N_, SESSION_STATES, Text, _, label, supported, t
from bot.messages import ActionId, Button, ButtonStyle, Form, Message, Reply, Section, Timestamp
from bot.port import ChecksCapacity, EventSpec, Platform, PlatformError, Undeliverable
from bot.questionnaires import FEEDBACK_ITEMS, feedback_form, item_label, quiz_form
from bot.refs import ChannelRef, MessageRef, UserRef
from bot.settings import Settings
from storage.db import Database
from storage.models import (
    Answer,
    Attendance,
    AuditEvent,
    Cohort,
    Delivery,
    Enrollment,
    GroupMembership,
    Member,
    PeerGroup,
    PeerSession,
    PrepAck,
    QuestionnaireItem,
    Submission,
    Workspace,
)

log = logging.getLogger(__name__)

CHECKIN_OPENS = timedelta(minutes=15)
LATE_AFTER = timedelta(minutes=10)
PREP_REMINDER_BEFORE = timedelta(hours=2)
WRAPUP_BEFORE_END = timedelta(minutes=10)
SURVEY_REMINDER_AFTER = timedelta(hours=24)
SURVEY_OPEN_FOR = timedelta(days=7)
DELIVERY_LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
CHECK_EMOJI = frozenset({"white_check_mark", "✅", "heavy_check_mark", "ballot_box_with_check"})
ACTIVE_STATES = ("planned", "prep_sent", "running", "ended")

# What the learners read; `{0}` is the session's start, rendered in each reader's time zone.
PREP_POST = N_(
    "📚 *Prepare for “{title}”* — starts {0}.\n{material}\nMark it done when you have prepared (button or ✅)."
)
PREP_REMINDER = N_("⏰ “{title}” starts {0}. You have not marked the preparation done yet:\n{material}")
CHECKIN_ANNOUNCE = N_(
    "🟢 *Check-in is open for “{title}”* — starts {0}. Click *Check in* (or react ✅) when you are here."
)
FORMAT_TEXTS = {
    "groups": N_(
        "*How to work*: each of you shares what you prepared (3 min each), then solve the exercise together; one of "
        "you notes the group's takeaways."
    ),
    "tutoring": N_("*How to work*: {tutor} guides, the others explain their reasoning out loud; swap roles halfway."),
    "review": N_(
        "*How to work*: review each other's work in turn: one thing that works, one question, one suggestion."
    ),
    "sharing": N_(
        "*How to work*: each of you shares a practice or a case from your work; the group picks one to adopt."
    ),
}
GROUND_RULES = N_(
    "*Ground rules*: every question is welcome · speak in turn and listen fully · critique ideas, never people · "
    "what is said here stays here · ask the trainer any time with `/peer raise`."
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the adapter decides `is_trainer` (Slack trainer ids/group, Discord trainer role) and
    `locale` (`en`/`fr` when the platform tells the person's language, e.g. a Discord interaction)."""

    user: UserRef
    display_name: str = ""
    is_trainer: bool = False
    workspace: str = ""
    locale: str = ""


class SchedulerPort(Protocol):
    """What the core tells the scheduler; the scheduler only wakes the core up at those times."""

    def session_changed(self, short_id: str, steps: dict[str, datetime]) -> None: ...

    def session_removed(self, short_id: str) -> None: ...

    def outbox_due(self, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class StepResult:
    step: str
    detail: str = ""


class Core:
    """One instance per process; the composition root builds it with storage, platforms and a clock."""

    def __init__(
        self,
        db: Database,
        platforms: dict[str, Platform],
        settings: Settings,
        clock: Clock,
        scheduler: SchedulerPort | None = None,
        grouping_budget: float = 0.2,
    ) -> None:
        self.db = db
        self.platforms = platforms
        self.settings = settings
        self.clock = clock
        self.scheduler = scheduler
        self.grouping_budget = grouping_budget
        self.crash_after_send: bool = False  # test hook: simulates a crash between DM and bookkeeping

    # ------------------------------------------------------------------ entry points for adapters

    async def handle_command(self, actor: Actor, text: str, channel: ChannelRef | None = None) -> Reply:
        """Run `/peer <text>`; every refusal comes back as a polite, ephemeral error reply."""
        try:
            command = grammar.parse(text)
            return await self.execute(actor, command, channel)
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False)

    async def execute(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if command.name in grammar.TRAINER_COMMANDS and not actor.is_trainer:
            raise Forbidden(
                _("Only trainers can use `/peer {command}`.", command=command.name),
                _("Ask your trainer, or type `/peer help` to see your commands."),
            )
        handler = _COMMANDS[command.name]
        result: Reply = await handler(self, actor, command, channel)
        return result

    async def handle_action(self, actor: Actor, action_id: str, channel: ChannelRef | None = None) -> Reply:
        """A button click (Slack `action_id`, Discord `custom_id`)."""
        try:
            action = ActionId.parse(action_id)
        except ValueError:
            return Reply(t(self.reply_locale(actor), "This button is not one of mine any more."), ok=False)
        try:
            return await self._dispatch_action(actor, action)
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False)

    async def form_for(self, actor: Actor, action_id: str) -> Form | Reply:
        """The form a button opens (Answer, Share takeaways), or an error reply."""
        reply = await self.handle_action(actor, action_id)
        return reply.form if reply.form is not None else reply

    async def handle_form(self, actor: Actor, form_id: str, values: dict[str, str]) -> Reply:
        """A submitted form: all its answers are recorded, or none (with a clear error)."""
        try:
            action = ActionId.parse(form_id)
            if action.feature in {"survey", "quiz"} and action.verb == "submit":
                return await self.answer(actor, int(action.entity), values)
            if action.feature == "takeaways" and action.verb == "submit":
                return await self.record_takeaways(actor, int(action.entity), values.get("takeaways", ""))
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False, extra={"field": exc.field} if exc.field else {})
        except ValueError:
            pass
        return Reply(t(self.reply_locale(actor), "This form is not one of mine any more."), ok=False)

    async def handle_reaction(self, actor: Actor, message: MessageRef, emoji: str) -> Reply | None:
        """✅ on the prep post marks prep done; ✅ on the check-in announcement checks in."""
        if emoji not in CHECK_EMOJI:
            return None
        async with self.db.session() as s:
            prep = await s.exec(select(PeerSession).where(PeerSession.prep_message_id == message.id))
            session = prep.first()
            kind = "prep"
            if session is None:
                announce = await s.exec(select(PeerSession).where(PeerSession.announce_message_id == message.id))
                session, kind = announce.first(), "checkin"
        if session is None:
            return None
        try:
            if kind == "prep":
                return await self.prep_done(actor, session.short_id, method="reaction")
            return await self.check_in(actor, session.short_id, method="reaction")
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False)

    async def _dispatch_action(self, actor: Actor, action: ActionId) -> Reply:
        key = (action.feature, action.verb)
        if key == ("prep", "done"):
            return await self.prep_done(actor, action.entity, method="button")
        if key == ("checkin", "in"):
            return await self.check_in(actor, action.entity, method="button")
        if key in {("survey", "open"), ("quiz", "open")}:
            return Reply("", form=await self.questionnaire_form(actor, int(action.entity)))
        if key in {("survey", "rate"), ("quiz", "pick")}:
            delivery, item, value = action.entity.split(".", 2)
            return await self.answer(actor, int(delivery), {item: value})
        if key in {("survey", "text"), ("quiz", "text")}:
            delivery, item = action.entity.split(".", 1)
            form = await self.questionnaire_form(actor, int(delivery), open_only=True)
            fields = tuple(f for f in form.fields if f.field_id == item)
            return Reply("", form=Form(form.form_id, form.title, fields, form.submit_label))
        if key == ("takeaways", "open"):
            return Reply("", form=await self.takeaways_form(actor, int(action.entity)))
        raise Invalid(_("This button is not one of mine any more."))

    async def home(self, actor: Actor) -> Message:
        """A person's overview (Slack App Home): upcoming sessions in their own time, attendance and pending
        questionnaires; a trainer also sees their cohorts and sessions."""
        now = self.clock.now()
        sections: list[Section] = []
        buttons: list[Button] = []
        locale = self.reply_locale(actor)
        async with self.db.session() as s:
            member = await self._actor_member(s, actor)
            workspace = await self._workspace(s, actor)
            rows = await s.exec(
                select(PeerSession, Enrollment)
                .join(Enrollment, col(Enrollment.cohort_id) == col(PeerSession.cohort_id))
                .join(Cohort, col(Cohort.id) == col(PeerSession.cohort_id))
                .where(Enrollment.member_id == member.id, Cohort.workspace_id == workspace.id)
                .order_by(col(PeerSession.starts_at))
            )
            mine = list(rows.all())
            attendance = {
                a.session_id: a
                for a in (await s.exec(select(Attendance).where(Attendance.member_id == member.id))).all()
            }
            pending = (
                await s.exec(
                    select(Delivery, PeerSession)
                    .join(PeerSession, col(PeerSession.id) == col(Delivery.session_id))
                    .where(
                        Delivery.member_id == member.id,
                        col(Delivery.kind).in_(("feedback", "retention")),
                        Delivery.state == "sent",
                    )
                )
            ).all()
            answered = {
                (sub.session_id, sub.kind)
                for sub in (
                    await s.exec(
                        select(Submission).where(Submission.member_id == member.id, Submission.completed == True)  # noqa: E712
                    )
                ).all()
            }
        upcoming = [(p, e) for p, e in mine if p.state in {"planned", "prep_sent", "running"} and self.end_of(p) > now]
        if upcoming:
            sections.append(Section(t(locale, "*Your next sessions*")))
            for p, e in upcoming[:10]:
                stamp = self._stamp(p.starts_at)
                text = (
                    t(locale, "`{session}` {title} (trainer) — {0}", stamp, session=p.short_id, title=p.title)
                    if e.role == "trainer"
                    else t(locale, "`{session}` {title} — {0}", stamp, session=p.short_id, title=p.title)
                )
                sections.append(Section(text, (stamp,)))
        else:
            sections.append(Section(t(locale, "No upcoming session.")))
        past = [(p, attendance.get(p.id or 0)) for p, e in mine if e.role == "learner" and p.started_at is not None]
        if past:
            present = sum(1 for _p, a in past if a is not None and a.status in {"on_time", "late"})
            sections.append(
                Section(
                    t(
                        locale,
                        "*Your attendance*: {present}/{total} session(s) attended",
                        present=present,
                        total=len(past),
                    )
                )
            )
        todo = [
            (d, p) for d, p in pending if (p.id, "retention" if d.kind == "retention" else "feedback") not in answered
        ]
        todo = [(d, p) for d, p in todo if d.kind == "retention" or p.state != "closed"]
        if todo:
            sections.append(Section(t(locale, "*Questionnaires waiting for you*")))
            for delivery, p in todo[:10]:
                feature = "quiz" if delivery.kind == "retention" else "survey"
                text = (
                    t(locale, "Retention quiz: {title}", title=p.title)
                    if feature == "quiz"
                    else t(locale, "Feedback: {title}", title=p.title)
                )
                sections.append(Section(text))
                buttons.append(Button(f"{feature}:open:{delivery.id}", text[:75], ButtonStyle.PRIMARY))
        if actor.is_trainer:
            trained = [(p, e) for p, e in mine if e.role == "trainer"]
            cohorts = sorted({p.cohort_id for p, _e in trained})
            sections.append(
                Section(
                    t(
                        locale,
                        "*Trainer*: {cohorts} cohort(s), {sessions} session(s)",
                        cohorts=len(cohorts),
                        sessions=len(trained),
                    )
                )
            )
            for p, _e in trained[-10:]:
                stamp = self._stamp(p.starts_at)
                text = t(
                    locale,
                    "`{session}` {title} — {state}, {0}",
                    stamp,
                    session=p.short_id,
                    title=p.title,
                    state=label(locale, SESSION_STATES, p.state),
                )
                sections.append(Section(text, (stamp,)))
            sections.append(Section(t(locale, "Type `/peer help` for the commands.")))
        return Message("peerbot", sections=tuple(sections), buttons=tuple(buttons))

    async def suggest(self, actor: Actor, kind: str, prefix: str) -> list[str]:
        """Names for autocomplete (Discord): the actor's cohorts, or their workspace's open sessions."""
        prefix = prefix.strip().lower()
        async with self.db.session() as s:
            workspace = await self._workspace(s, actor)
            if kind == "cohort":
                names = (await s.exec(select(Cohort.name).where(Cohort.workspace_id == workspace.id))).all()
            else:
                names = (
                    await s.exec(
                        select(PeerSession.short_id)
                        .join(Cohort, col(Cohort.id) == col(PeerSession.cohort_id))
                        .where(Cohort.workspace_id == workspace.id, col(PeerSession.state).in_(ACTIVE_STATES))
                        .order_by(col(PeerSession.starts_at))
                    )
                ).all()
        return [n for n in names if n.startswith(prefix)][:25]

    # ------------------------------------------------------------------ helpers

    def platform_for(self, name: str) -> Platform:
        try:
            return self.platforms[name]
        except KeyError:
            raise PeerError(_("The {platform} platform is not running in this process.", platform=name)) from None

    async def _member(self, s: AsyncSession, user: UserRef, display_name: str = "", locale: str = "") -> Member:
        """The person's row (created on first sight); a known locale is kept for the DMs sent to them."""
        found = await s.exec(select(Member).where(Member.platform == user.platform, Member.user_id == user.id))
        member = found.first()
        locale = supported(locale)
        if member is None:
            member = Member(
                platform=user.platform, user_id=user.id, display_name=display_name or user.id, locale=locale
            )
            s.add(member)
            await s.flush()
            return member
        if display_name and member.display_name != display_name:
            member.display_name = display_name
        if locale and member.locale != locale:
            member.locale = locale
        return member

    async def _actor_member(self, s: AsyncSession, actor: Actor) -> Member:
        return await self._member(s, actor.user, actor.display_name, actor.locale)

    async def _workspace(self, s: AsyncSession, actor: Actor) -> Workspace:
        found = await s.exec(
            select(Workspace).where(Workspace.platform == actor.user.platform, Workspace.external_id == actor.workspace)
        )
        workspace = found.first()
        if workspace is None:
            workspace = Workspace(platform=actor.user.platform, external_id=actor.workspace)
            s.add(workspace)
            await s.flush()
        return workspace

    async def _cohort(self, s: AsyncSession, actor: Actor, name: str) -> Cohort:
        workspace = await self._workspace(s, actor)
        found = await s.exec(select(Cohort).where(Cohort.workspace_id == workspace.id, Cohort.name == name))
        cohort = found.first()
        if cohort is None:
            raise NotFound(
                _("There is no cohort named `{cohort}` here.", cohort=name),
                _(
                    "Create it with `/peer cohort create {cohort}`, or check the name with `/peer cohort show`.",
                    cohort=name,
                ),
            )
        return cohort

    async def _session(self, s: AsyncSession, actor: Actor | None, short_id: str) -> PeerSession:
        """The session by short id, only if it belongs to the actor's workspace (one query)."""
        query = select(PeerSession).where(PeerSession.short_id == short_id.lower())
        if actor is not None:
            query = (
                query.join(Cohort, col(Cohort.id) == col(PeerSession.cohort_id))
                .join(Workspace, col(Workspace.id) == col(Cohort.workspace_id))
                .where(Workspace.platform == actor.user.platform, Workspace.external_id == actor.workspace)
            )
        session = (await s.exec(query)).first()
        if session is None:
            raise NotFound(
                _("There is no session `{session}` here.", session=short_id),
                _("Session ids are shown when a session is planned, and in `/peer session show`."),
            )
        return session

    async def _audit(self, s: AsyncSession, actor: str, action: str, session_id: int | None, **detail: Any) -> None:
        s.add(
            AuditEvent(
                at=self.clock.now(),
                actor=actor,
                action=action,
                session_id=session_id,
                detail=json.dumps(detail, default=str, ensure_ascii=False),
            )
        )

    def _locale(self, member: Member | None = None) -> str:
        """The language of a DM to `member`: theirs when known, else the instance's."""
        return supported(member.locale if member is not None else "") or self.settings.locale

    def reply_locale(self, actor: Actor | None) -> str:
        """The language of a reply: the actor's own when the platform tells it (Discord), else the instance's."""
        return supported(actor.locale if actor else "") or self.settings.locale

    def _fallback(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M %Z")

    def _stamp(self, moment: datetime) -> Timestamp:
        return Timestamp(moment, self._fallback(moment))

    @staticmethod
    def end_of(session: PeerSession) -> datetime:
        return session.starts_at + timedelta(minutes=session.duration_minutes)

    async def _learners(self, s: AsyncSession, cohort_id: int) -> list[tuple[Enrollment, Member]]:
        rows = await s.exec(
            select(Enrollment, Member)
            .join(Member, col(Member.id) == col(Enrollment.member_id))
            .where(Enrollment.cohort_id == cohort_id, Enrollment.role == "learner")
            .order_by(col(Member.id))
        )
        return list(rows.all())

    async def _trainers(self, s: AsyncSession, session: PeerSession) -> list[Member]:
        rows = await s.exec(
            select(Member)
            .join(Enrollment, col(Member.id) == col(Enrollment.member_id))
            .where(Enrollment.cohort_id == session.cohort_id, Enrollment.role == "trainer")
            .order_by(col(Member.id))
        )
        trainers = list(rows.all())
        creator = await s.get(Member, session.created_by)
        if creator is not None and all(m.id != creator.id for m in trainers):
            trainers.insert(0, creator)
        return trainers

    @staticmethod
    async def _count(s: AsyncSession, model: type[SQLModel], *conditions: Any) -> int:
        return int((await s.exec(select(func.count()).select_from(model).where(*conditions))).one())

    async def _quiz_size(self, s: AsyncSession, session: PeerSession) -> int:
        return await self._count(
            s, QuestionnaireItem, QuestionnaireItem.session_id == session.id, QuestionnaireItem.kind == "retention"
        )

    @staticmethod
    def _ref(member: Member) -> UserRef:
        return UserRef(member.platform, member.user_id)

    def _steps(self, session: PeerSession) -> dict[str, datetime]:
        end = self.end_of(session)
        steps = {
            "checkin": session.starts_at - CHECKIN_OPENS,
            "start": session.starts_at,
            "wrapup": max(session.starts_at, end - WRAPUP_BEFORE_END),
            "end": end,
            "close": end + SURVEY_OPEN_FOR,
        }
        if session.prep_material:
            steps["prep"] = session.starts_at - timedelta(minutes=session.prep_lead_minutes)
            if timedelta(minutes=session.prep_lead_minutes) > PREP_REMINDER_BEFORE:
                steps["prep_reminder"] = session.starts_at - PREP_REMINDER_BEFORE
        return steps

    def _notify_scheduler(self, session: PeerSession) -> None:
        if self.scheduler is None:
            return
        if session.state in {"closed", "cancelled"}:
            self.scheduler.session_removed(session.short_id)
            return
        self.scheduler.session_changed(session.short_id, self._steps(session))

    # ------------------------------------------------------------------ cohort commands

    async def _cmd_help(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(grammar.help_text(actor.is_trainer, self.reply_locale(actor)))

    async def _cmd_cohort_create(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        channel_id = command.channel or (channel.id if channel else "")
        async with self.db.session() as s:
            workspace = await self._workspace(s, actor)
            exists = await s.exec(
                select(Cohort).where(Cohort.workspace_id == workspace.id, Cohort.name == command.cohort)
            )
            if exists.first() is not None:
                raise Invalid(
                    _("A cohort named `{cohort}` already exists.", cohort=command.cohort),
                    _(
                        "Add people with `/peer cohort add {cohort} @someone`, or pick another name.",
                        cohort=command.cohort,
                    ),
                )
            assert workspace.id is not None
            cohort = Cohort(
                workspace_id=workspace.id, name=command.cohort, channel_id=channel_id, created_at=self.clock.now()
            )
            s.add(cohort)
            await s.flush()
            trainer = await self._actor_member(s, actor)
            assert cohort.id is not None and trainer.id is not None
            s.add(Enrollment(cohort_id=cohort.id, member_id=trainer.id, role="trainer", level=3))
            await self._audit(s, actor.user.key, "cohort.create", None, cohort=command.cohort)
        locale = self.reply_locale(actor)
        text = (
            t(
                locale,
                "Cohort `{cohort}` created; you are its trainer. Announcements go to <#{channel}>.",
                cohort=command.cohort,
                channel=channel_id,
            )
            if channel_id
            else t(
                locale,
                "Cohort `{cohort}` created; you are its trainer. Announcements will be sent by DM.",
                cohort=command.cohort,
            )
        )
        return Reply(text + "\n" + t(locale, "Next: `/peer cohort add {cohort} @learner=3 ...`", cohort=command.cohort))

    async def enroll(
        self,
        actor: Actor,
        cohort_name: str,
        users: Sequence[tuple[str, int | None]],
        *,
        default_level: int = 3,
        names: dict[str, str] | None = None,
    ) -> tuple[int, int]:
        """Enroll learners (levels updated for those already in); returns (added, updated)."""
        added = updated = 0
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, cohort_name)
            assert cohort.id is not None
            for user_id, level in users:
                member = await self._member(s, UserRef(actor.user.platform, user_id), (names or {}).get(user_id, ""))
                assert member.id is not None
                found = await s.exec(
                    select(Enrollment).where(Enrollment.cohort_id == cohort.id, Enrollment.member_id == member.id)
                )
                enrollment = found.first()
                if enrollment is None:
                    s.add(Enrollment(cohort_id=cohort.id, member_id=member.id, level=level or default_level))
                    added += 1
                elif level is not None and enrollment.level != level:
                    enrollment.level = level
                    updated += 1
            await self._audit(s, actor.user.key, "cohort.add", None, cohort=cohort_name, users=list(users))
        return added, updated

    async def _cmd_cohort_add(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        added, updated = await self.enroll(actor, command.cohort, command.users)
        return Reply(
            t(
                self.reply_locale(actor),
                "Cohort `{cohort}`: {added} added, {updated} level(s) updated.",
                cohort=command.cohort,
                added=added,
                updated=updated,
            )
        )

    async def _cmd_cohort_import(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            await self._cohort(s, actor, command.cohort)
        platform = self.platform_for(actor.user.platform)
        try:
            members = await platform.members_of(ChannelRef(actor.user.platform, command.channel))
        except PlatformError as exc:
            raise Invalid(
                _(
                    "I could not read the members of <#{channel}>: {reason}.",
                    channel=command.channel,
                    reason=exc.detail or exc.code,
                ),
                _("Check that I can see that channel (invite me to it), then try again."),
            ) from None
        users = [(m.id, command.level) for m in members if m.id != actor.user.id]
        added, _updated = await self.enroll(actor, command.cohort, users, default_level=command.level or 3)
        return Reply(
            t(
                self.reply_locale(actor),
                "Cohort `{cohort}`: imported {added} new learner(s) from <#{channel}>.",
                cohort=command.cohort,
                added=added,
                channel=command.channel,
            )
        )

    async def _cmd_cohort_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, command.cohort)
            assert cohort.id is not None
            learners = await self._learners(s, cohort.id)
            sessions = await s.exec(
                select(PeerSession).where(PeerSession.cohort_id == cohort.id).order_by(col(PeerSession.starts_at))
            )
            session_rows = list(sessions.all())
        locale = self.reply_locale(actor)
        lines = [t(locale, "*Cohort `{cohort}`* — {count} learner(s)", cohort=cohort.name, count=len(learners))]
        lines += [t(locale, "• <@{user}> level {level}", user=m.user_id, level=e.level) for e, m in learners]
        if session_rows:
            lines.append(t(locale, "*Sessions*"))
            lines += [
                t(
                    locale,
                    "• `{session}` {title} — {start} ({state})",
                    session=p.short_id,
                    title=p.title,
                    start=self._fallback(p.starts_at),
                    state=label(locale, SESSION_STATES, p.state),
                )
                for p in session_rows
            ]
        return Reply("\n".join(lines))

    # ------------------------------------------------------------------ session commands

    async def _cmd_session_plan(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        assert command.day and command.at and command.duration
        local = datetime.combine(command.day, command.at, tzinfo=self.settings.zone)
        starts = local.astimezone(self.clock.now().tzinfo)
        if starts <= self.clock.now():
            raise Invalid(
                _("{moment} ({zone}) is in the past.", moment=f"{local:%Y-%m-%d %H:%M}", zone=self.settings.timezone),
                _("Plan the session for a later date. Usage: `{usage}`", usage=grammar.usage("session plan")),
            )
        opts = command.options
        fmt = opts.get("format", "groups")
        size = int(opts.get("size", "2" if fmt == "tutoring" else "4"))
        lead = grammar.parse_duration_arg(opts.get("prep_before", "1d"), "session plan")
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, command.cohort)
            creator = await self._actor_member(s, actor)
            assert cohort.id is not None and creator.id is not None
            session = PeerSession(
                short_id=f"tmp{random.getrandbits(40):x}",
                cohort_id=cohort.id,
                title=command.title,
                objectives=opts.get("objectives", ""),
                format=fmt,
                group_size=size,
                starts_at=starts,
                duration_minutes=int(command.duration.total_seconds() // 60),
                prep_material=opts.get("prep", ""),
                prep_lead_minutes=int(lead.total_seconds() // 60),
                retention_days=28 if opts.get("retention") == "4w" else 14,
                groups_from=opts.get("groups_from", "checked_in"),
                channel_id=cohort.channel_id,
                created_by=creator.id,
                created_at=self.clock.now(),
            )
            s.add(session)
            await s.flush()
            session.short_id = f"s{session.id}"
            await self._audit(
                s,
                actor.user.key,
                "session.plan",
                session.id,
                title=command.title,
                start=starts,
            )
        self._notify_scheduler(session)
        locale = self.reply_locale(actor)
        planned = t(
            locale,
            "Planned session `{session}`: “{title}” for cohort `{cohort}`, {start}, {minutes} min, format {format}, "
            "groups of {size}.",
            session=session.short_id,
            title=session.title,
            cohort=cohort.name,
            start=self._fallback(starts),
            minutes=f"{command.duration.total_seconds() / 60:.0f}",
            format=fmt,
            size=size,
        )
        quiz = t(
            locale,
            'Add quiz items with `/peer quiz add {session} "question" "right" "wrong"`.',
            session=session.short_id,
        )
        return Reply(planned + "\n" + quiz, extra={"session": session.short_id})

    async def _cmd_session_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(await self.describe_session(actor, command.session, self.reply_locale(actor)))

    async def describe_session(self, actor: Actor | None, short_id: str, locale: str = "") -> str:
        locale = locale or self.settings.locale
        async with self.db.session() as s:
            session = await self._session(s, actor, short_id)
            assert session.id is not None
            learners = await self._learners(s, session.cohort_id)
            attendance = {
                a.member_id: a
                for a in (await s.exec(select(Attendance).where(Attendance.session_id == session.id))).all()
            }
            prepped = {
                p.member_id for p in (await s.exec(select(PrepAck).where(PrepAck.session_id == session.id))).all()
            }
            groups = await self._groups(s, session.id)
        lines = [
            t(
                locale,
                "*`{session}` {title}* — {start}, {minutes} min, {format}, state *{state}*",
                session=session.short_id,
                title=session.title,
                start=self._fallback(session.starts_at),
                minutes=session.duration_minutes,
                format=session.format,
                state=label(locale, SESSION_STATES, session.state),
            )
        ]
        if session.objectives:
            lines.append(t(locale, "Objectives: {objectives}", objectives=session.objectives))
        present = [m for _e, m in learners if m.id in attendance and attendance[m.id].status in {"on_time", "late"}]
        lines.append(
            t(
                locale,
                "Enrolled {enrolled} · prepared {prepared} · checked in {present} (late {late}) · excused {excused}",
                enrolled=len(learners),
                prepared=len(prepped),
                present=len(present),
                late=sum(1 for a in attendance.values() if a.status == "late"),
                excused=sum(1 for a in attendance.values() if a.status == "excused"),
            )
        )
        for group, members in groups:
            lines.append(
                t(
                    locale,
                    "Group {number}: {names} (level spread {spread}, repeated pairs {repeated})",
                    number=group.number,
                    names=", ".join(f"<@{m.user_id}>" for m, _role in members),
                    spread=group.level_spread,
                    repeated=group.repeated_pairs,
                )
            )
        return "\n".join(lines)

    async def _groups(self, s: AsyncSession, session_id: int) -> list[tuple[PeerGroup, list[tuple[Member, str]]]]:
        groups = list(
            (
                await s.exec(
                    select(PeerGroup).where(PeerGroup.session_id == session_id).order_by(col(PeerGroup.number))
                )
            ).all()
        )
        rows = await s.exec(
            select(GroupMembership, Member)
            .join(Member, col(Member.id) == col(GroupMembership.member_id))
            .where(GroupMembership.session_id == session_id)
            .order_by(col(GroupMembership.id))
        )
        by_group: dict[int, list[tuple[Member, str]]] = {}
        for membership, member in rows.all():
            by_group.setdefault(membership.group_id, []).append((member, membership.role))
        return [(g, by_group.get(g.id or 0, [])) for g in groups]

    async def _cmd_session_start(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        locale = self.reply_locale(actor)
        if session.state not in {"planned", "prep_sent"}:
            raise Invalid(
                _(
                    "Session `{session}` is {state}; only a planned session can start.",
                    session=session.short_id,
                    state=Text(SESSION_STATES[session.state]),
                )
            )
        detail = await self.start(session.short_id, by=actor.user.key, locale=locale)
        return Reply(t(locale, "Session `{session}` started. {detail}", session=session.short_id, detail=detail))

    async def _cmd_session_end(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        if session.state != "running":
            raise Invalid(
                _(
                    "Session `{session}` is {state}; only a running session can end.",
                    session=session.short_id,
                    state=Text(SESSION_STATES[session.state]),
                ),
                _("Start it first with `/peer session start {session}`.", session=session.short_id),
            )
        await self.end(session.short_id, by=actor.user.key)
        return Reply(
            t(
                self.reply_locale(actor),
                "Session `{session}` ended; questionnaires are on their way.",
                session=session.short_id,
            )
        )

    async def _cmd_session_cancel(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            if session.state not in {"planned", "prep_sent"}:
                raise Invalid(
                    _(
                        "Session `{session}` is {state}; only a session that has not started can be cancelled.",
                        session=session.short_id,
                        state=Text(SESSION_STATES[session.state]),
                    )
                )
            session.state = "cancelled"
            await self._audit(s, actor.user.key, "session.cancel", session.id)
        if session.event_id:
            cohort_platform = await self._platform_of(session)
            try:
                await cohort_platform.end_event(session.event_id, cancelled=True)
            except PlatformError as exc:
                log.warning("could not cancel event of %s: %s", session.short_id, exc)
        self._notify_scheduler(session)
        return Reply(t(self.reply_locale(actor), "Session `{session}` cancelled.", session=session.short_id))

    async def _platform_of(self, session: PeerSession, s: AsyncSession | None = None) -> Platform:
        """The platform of the session's workspace (inside `s` when a transaction is already open)."""
        if s is None:
            async with self.db.session() as own:
                return await self._platform_of(session, own)
        cohort = await s.get(Cohort, session.cohort_id)
        assert cohort is not None
        workspace = await s.get(Workspace, cohort.workspace_id)
        assert workspace is not None
        return self.platform_for(workspace.platform)

    async def _cmd_quiz_add(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        question, correct, *wrong = command.texts
        options = [correct, *wrong]
        if any(not o.strip() for o in [question, *options]) or len(set(options)) != len(options):
            raise Invalid(
                _("The question and answers must be non-empty and the answers all different."),
                grammar.usage_hint("quiz add"),
            )
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            if session.state in {"closed", "cancelled"} or session.retention_queued_at is not None:
                raise Invalid(_("The retention quiz of `{session}` has already been sent.", session=session.short_id))
            assert session.id is not None
            count = await self._quiz_size(s, session)
            if count >= 10:
                raise Invalid(_("A retention quiz holds at most 10 questions."))
            s.add(
                QuestionnaireItem(
                    session_id=session.id,
                    kind="retention",
                    position=count + 1,
                    item_key=f"q{count + 1}",
                    item_type="choice",
                    text=question,
                    options_json=json.dumps(options, ensure_ascii=False),
                    correct="0",
                )
            )
            await self._audit(s, actor.user.key, "quiz.add", session.id, question=question)
        return Reply(
            t(
                self.reply_locale(actor),
                "Quiz question {number} added to `{session}`.",
                number=count + 1,
                session=session.short_id,
            )
        )

    async def _cmd_report(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import session_report

        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        return Reply(await session_report(self, session.short_id, self.reply_locale(actor)))

    # ------------------------------------------------------------------ group commands (trainer control)

    async def _cmd_group_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            assert session.id is not None
            groups = await self._groups(s, session.id)
            draft = session.state in {"planned", "prep_sent"}
            if not groups and draft:
                await self._form(s, session, await self._pool(s, session, preview=True), seed=session.id)
                groups = await self._groups(s, session.id)
        locale = self.reply_locale(actor)
        if not groups:
            return Reply(t(locale, "Session `{session}` has no groups (nobody to group).", session=session.short_id))
        lines = [
            t(locale, "*Draft groups of `{session}`*", session=session.short_id)
            if draft
            else t(locale, "*Groups of `{session}`*", session=session.short_id)
        ]
        for group, members in groups:
            names = ", ".join(
                f"<@{m.user_id}>" + (f" ({label(locale, GROUP_ROLES, role)})" if role != "member" else "")
                for m, role in members
            )
            lines.append(
                t(
                    locale,
                    "{number}. {names} — level spread {spread}, repeated pairs {repeated}",
                    number=group.number,
                    names=names,
                    spread=group.level_spread,
                    repeated=group.repeated_pairs,
                )
            )
        if draft:
            lines.append(
                t(
                    locale,
                    "At start, learners who have not checked in leave their group and late check-ins join the "
                    "smallest. Adjust with `/peer group move|swap|reshuffle {session}`.",
                    session=session.short_id,
                )
            )
        return Reply("\n".join(lines))

    async def _cmd_group_reshuffle(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            assert session.id is not None
            if session.state not in {"planned", "prep_sent"}:
                raise Invalid(
                    _(
                        "Session `{session}` has started: its groups can only be adjusted with `/peer group move` or "
                        "`/peer group swap`.",
                        session=session.short_id,
                    )
                )
            rounds = await self._count(
                s, AuditEvent, AuditEvent.session_id == session.id, AuditEvent.action == "group.reshuffle"
            )
            await self._clear_groups(s, session.id)
            await self._form(
                s, session, await self._pool(s, session, preview=True), seed=session.id * 1000 + rounds + 1
            )
            await self._audit(s, actor.user.key, "group.reshuffle", session.id)
        return await self._cmd_group_show(actor, command, channel)

    async def _membership_of(
        self, s: AsyncSession, session: PeerSession, platform: str, user_id: str
    ) -> GroupMembership:
        row = (
            await s.exec(
                select(GroupMembership)
                .join(Member, col(Member.id) == col(GroupMembership.member_id))
                .where(GroupMembership.session_id == session.id, Member.platform == platform, Member.user_id == user_id)
            )
        ).first()
        if row is None:
            raise NotFound(
                _("<@{user}> is in no group of `{session}`.", user=user_id, session=session.short_id),
                _("See the groups with `/peer group show {session}`.", session=session.short_id),
            )
        return row

    async def _editable_groups(self, s: AsyncSession, actor: Actor, short_id: str) -> PeerSession:
        session = await self._session(s, actor, short_id)
        if session.state not in {"planned", "prep_sent", "running"}:
            raise Invalid(
                _(
                    "Session `{session}` is {state}; its groups can no longer change.",
                    session=session.short_id,
                    state=Text(SESSION_STATES[session.state]),
                )
            )
        assert session.id is not None
        if not await self._groups(s, session.id):
            raise Invalid(
                _("Session `{session}` has no groups yet.", session=session.short_id),
                _("See the draft with `/peer group show {session}` first.", session=session.short_id),
            )
        return session

    async def _cmd_group_move(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        user_id = command.users[0][0]
        locale = self.reply_locale(actor)
        async with self.db.session() as s:
            session = await self._editable_groups(s, actor, command.session)
            target = (
                await s.exec(
                    select(PeerGroup).where(PeerGroup.session_id == session.id, PeerGroup.number == command.group)
                )
            ).first()
            if target is None:
                raise NotFound(
                    _("Session `{session}` has no group {number}.", session=session.short_id, number=command.group),
                    _("See the groups with `/peer group show {session}`.", session=session.short_id),
                )
            membership = await self._membership_of(s, session, actor.user.platform, user_id)
            old = await s.get(PeerGroup, membership.group_id)
            assert old is not None and target.id is not None
            if old.id == target.id:
                return Reply(t(locale, "<@{user}> is already in group {number}.", user=user_id, number=target.number))
            membership.group_id, membership.role = target.id, "member"
            await self._audit(s, actor.user.key, "group.move", session.id, user=user_id, to=target.number)
        await self._follow_breakout(actor.user.platform, user_id, old, target)
        return Reply(
            t(
                locale,
                "<@{user}> moved from group {old} to group {new}.",
                user=user_id,
                old=old.number,
                new=target.number,
            )
        )

    async def _cmd_group_swap(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        (a, _level_a), (b, _level_b) = command.users
        locale = self.reply_locale(actor)
        if a == b:
            raise Invalid(_("Mention two different people to swap."), grammar.usage_hint("group swap"))
        async with self.db.session() as s:
            session = await self._editable_groups(s, actor, command.session)
            first = await self._membership_of(s, session, actor.user.platform, a)
            second = await self._membership_of(s, session, actor.user.platform, b)
            group_a, group_b = await s.get(PeerGroup, first.group_id), await s.get(PeerGroup, second.group_id)
            assert group_a is not None and group_b is not None
            if group_a.id == group_b.id:
                return Reply(t(locale, "<@{first}> and <@{second}> are already in the same group.", first=a, second=b))
            first.group_id, second.group_id = second.group_id, first.group_id
            first.role, second.role = second.role, first.role
            await self._audit(s, actor.user.key, "group.swap", session.id, users=[a, b])
        await self._follow_breakout(actor.user.platform, a, group_a, group_b)
        await self._follow_breakout(actor.user.platform, b, group_b, group_a)
        return Reply(
            t(
                locale,
                "<@{first}> (now group {first_group}) and <@{second}> (now group {second_group}) swapped.",
                first=a,
                first_group=group_b.number,
                second=b,
                second_group=group_a.number,
            )
        )

    async def _follow_breakout(self, platform_name: str, user_id: str, old: PeerGroup, new: PeerGroup) -> None:
        """During a session the breakout membership follows the group."""
        platform = self.platform_for(platform_name)
        ref = UserRef(platform_name, user_id)
        if old.channel_id:
            await platform.remove_member(ChannelRef(platform_name, old.channel_id), ref)
        if new.channel_id:
            await platform.add_members(ChannelRef(platform_name, new.channel_id), [ref])

    # ------------------------------------------------------------------ learner commands

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

    async def _cmd_raise(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if channel is None:
            raise Invalid(_("`/peer raise` works from your group's breakout channel."))
        async with self.db.session() as s:
            group = (await s.exec(select(PeerGroup).where(PeerGroup.channel_id == channel.id))).first()
            if group is None:
                raise Invalid(
                    _("`/peer raise` works from your group's breakout channel."),
                    _("Go to your group's channel and type it there."),
                )
            session = await s.get(PeerSession, group.session_id)
            assert session is not None
            trainers = await self._trainers(s, session)
            await self._audit(s, actor.user.key, "raise", session.id, group=group.number)
        platform = self.platform_for(channel.platform)
        mentions = " ".join(f"<@{m.user_id}>" for m in trainers)
        call = t(
            self.settings.locale,
            "✋ {trainers}: <@{user}> asks for the trainer in group {number}.",
            trainers=mentions,
            user=actor.user.id,
            number=group.number,
        )
        await platform.post(channel, Message(call))
        return Reply(t(self.reply_locale(actor), "The trainer has been called to your group."))

    async def _cmd_mydata(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import my_data

        locale = self.reply_locale(actor)
        text = await my_data(self, actor.user, locale)
        try:
            await self.platform_for(actor.user.platform).send_dm(actor.user, Message(text))
        except PlatformError:
            return Reply(text)
        return Reply(t(locale, "I have sent you by DM everything I store about you."))

    # ------------------------------------------------------------------ prep and check-in

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

    async def _join_smallest_group(
        self, s: AsyncSession, session: PeerSession, member: Member, enrollment: Enrollment
    ) -> tuple[str, str] | None:
        assert session.id is not None and member.id is not None
        existing = (
            await s.exec(
                select(GroupMembership).where(
                    GroupMembership.session_id == session.id, GroupMembership.member_id == member.id
                )
            )
        ).first()
        if existing is not None:
            return None
        sizes = await s.exec(
            select(PeerGroup, func.count(col(GroupMembership.id)))
            .join(GroupMembership, col(GroupMembership.group_id) == col(PeerGroup.id), isouter=True)
            .where(PeerGroup.session_id == session.id)
            .group_by(col(PeerGroup.id))
            .order_by(func.count(col(GroupMembership.id)), col(PeerGroup.number))
        )
        smallest = sizes.first()
        if smallest is None:
            return None
        group = smallest[0]
        assert group.id is not None
        s.add(
            GroupMembership(session_id=session.id, group_id=group.id, member_id=member.id, joined_at=self.clock.now())
        )
        return str(group.number), group.channel_id

    # ------------------------------------------------------------------ the session's timeline

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

    async def _history(self, s: AsyncSession, session: PeerSession) -> list[Meeting]:
        rows = await s.exec(
            select(GroupMembership.group_id, GroupMembership.member_id, PeerSession.starts_at)
            .join(PeerSession, col(PeerSession.id) == col(GroupMembership.session_id))
            .where(PeerSession.cohort_id == session.cohort_id, PeerSession.id != session.id)
        )
        by_group: dict[int, tuple[datetime, list[int]]] = {}
        for group_id, member_id, when in rows.all():
            by_group.setdefault(group_id, (when, []))[1].append(member_id)
        meetings: list[Meeting] = []
        for when, members in by_group.values():
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    meetings.append(Meeting(str(a), str(b), when))
        return meetings

    async def _pool(self, s: AsyncSession, session: PeerSession, *, preview: bool = False) -> list[Learner]:
        """Who is grouped: the learners checked in (or all enrolled, per session); a preview before anyone
        has checked in uses all enrolled learners."""
        enrolled = await self._learners(s, session.cohort_id)
        present = {
            a.member_id
            for a in (
                await s.exec(
                    select(Attendance).where(
                        Attendance.session_id == session.id, col(Attendance.status).in_(("on_time", "late"))
                    )
                )
            ).all()
        }
        everyone = session.groups_from == "enrolled" or (preview and not present)
        return [Learner(str(m.id), e.level) for e, m in enrolled if everyone or m.id in present]

    async def _form(self, s: AsyncSession, session: PeerSession, learners: list[Learner], seed: int) -> Grouping:
        """Run the grouping engine and store its groups (draft or final) in the open transaction."""
        assert session.id is not None
        now = self.clock.now()
        grouping = form_groups(
            learners,
            session.format,
            session.group_size,
            await self._history(s, session),
            Constraints(),
            seed=seed,
            now=now,
            time_budget=self.grouping_budget,
        )
        for number, group in enumerate(grouping.groups, start=1):
            row = PeerGroup(
                session_id=session.id,
                number=number,
                level_spread=group.level_spread,
                repeated_pairs=group.repeated_pairs,
            )
            s.add(row)
            await s.flush()
            assert row.id is not None
            for member_id in group.members:
                role = "tutor" if member_id == group.tutor else "tutee" if member_id == group.tutee else "member"
                s.add(
                    GroupMembership(
                        session_id=session.id, group_id=row.id, member_id=int(member_id), role=role, joined_at=now
                    )
                )
        return grouping

    async def _clear_groups(self, s: AsyncSession, session_id: int) -> None:
        for membership in (await s.exec(select(GroupMembership).where(GroupMembership.session_id == session_id))).all():
            await s.delete(membership)
        await s.flush()
        for group in (await s.exec(select(PeerGroup).where(PeerGroup.session_id == session_id))).all():
            await s.delete(group)
        await s.flush()

    async def _apply_draft(self, s: AsyncSession, session: PeerSession, learners: list[Learner]) -> list[Text | str]:
        """Keep the trainer's draft at start: absentees leave it, newcomers join the smallest groups."""
        assert session.id is not None
        wanted = {int(learner.id) for learner in learners}
        groups = await self._groups(s, session.id)
        memberships = (await s.exec(select(GroupMembership).where(GroupMembership.session_id == session.id))).all()
        placed = set()
        for membership in memberships:
            if membership.member_id in wanted:
                placed.add(membership.member_id)
            else:
                await s.delete(membership)
        await s.flush()
        sizes = {g.id: sum(1 for m, _ in ms if m.id in wanted) for g, ms in groups}
        for member_id in sorted(wanted - placed):
            group_id = min(sizes, key=lambda gid: (sizes[gid], gid or 0))
            assert group_id is not None
            s.add(
                GroupMembership(
                    session_id=session.id, group_id=group_id, member_id=member_id, joined_at=self.clock.now()
                )
            )
            sizes[group_id] += 1
        low, high = size_bounds(session.format, session.group_size)
        return [
            _(
                "Group {number} has {count} learner(s), outside {low}–{high}.",
                number=g.number,
                count=sizes[g.id],
                low=low,
                high=high,
            )
            for g, _members in groups
            if not low <= sizes[g.id] <= high
        ]

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
            has_draft = bool(await self._groups(s, session.id))
            left_out: tuple[tuple[str, str], ...] = ()
            if has_draft and learners:
                warnings = await self._apply_draft(s, session, learners)
            else:
                await self._clear_groups(s, session.id)
                grouping = await self._form(s, session, learners, seed=session.id)
                warnings, left_out = [*grouping.warnings], grouping.left_out
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
            members_by_id = {str(m.id): m for _, m in await self._learners(s, session.cohort_id)}
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

    async def _safe_dm(self, platform: Platform, member: Member, message: Message) -> None:
        try:
            await platform.send_dm(self._ref(member), message)
        except PlatformError as exc:
            log.warning("could not DM %s: %s", member.user_id, exc)

    async def _ensure_breakouts(self, short_id: str) -> int:
        """Create the missing breakout channels; resumable after a crash or a rate-limit failure."""
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            assert session.id is not None
            groups = [(g, ms) for g, ms in await self._groups(s, session.id) if not g.channel_id]
            trainers = await self._trainers(s, session)
        if not groups:
            return 0
        platform = await self._platform_of(session)
        locale = self.settings.locale
        created = 0
        for group, members in groups:
            name = f"peer-{session.short_id}-g{group.number}"
            refs = [self._ref(m) for m, _ in members] + [self._ref(t_) for t_ in trainers]
            channel = await platform.create_private_channel(
                name, refs, session.title[:250], group_key=f"{session.short_id}:{group.number}"
            )
            async with self.db.session() as s:
                await s.exec(
                    update(PeerGroup)
                    .where(col(PeerGroup.id) == group.id)  # type: ignore[call-overload]
                    .values(channel_id=channel.id)
                )
            created += 1
            tutor = next((m for m, role in members if role == "tutor"), None)
            sections = [
                Section(
                    t(
                        locale,
                        FORMAT_TEXTS[session.format],
                        tutor=f"<@{tutor.user_id}>" if tutor else t(locale, "the most experienced of you"),
                    )
                )
            ]
            if session.objectives:
                sections.insert(0, Section(t(locale, "*Objectives*: {objectives}", objectives=session.objectives)))
            sections.append(Section(t(locale, GROUND_RULES)))
            if self.settings.video_url_template:
                url = self.settings.video_url_template.replace("{room}", name)
                sections.append(Section(t(locale, "Video room: {url}", url=url)))
            await platform.post(
                channel,
                Message(
                    t(
                        locale,
                        "👋 Welcome to group {number} of “{title}”: {members}.",
                        number=group.number,
                        title=session.title,
                        members=", ".join(f"<@{m.user_id}>" for m, _role in members),
                    ),
                    sections=tuple(sections),
                    buttons=(Button(f"checkin:in:{session.short_id}", t(locale, "Check in"), ButtonStyle.PRIMARY),),
                ),
            )
        return created

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

    async def record_takeaways(self, actor: Actor, group_id: int, text: str) -> Reply:
        if not text.strip():
            raise Invalid(_("The takeaways are empty."), _("Write the group's key points, then submit."))
        async with self.db.session() as s:
            group = await s.get(PeerGroup, group_id)
            member = await self._actor_member(s, actor)
            if group is None:
                raise NotFound(_("This group no longer exists."))
            in_group = (
                await s.exec(
                    select(GroupMembership).where(
                        GroupMembership.group_id == group_id, GroupMembership.member_id == member.id
                    )
                )
            ).first()
            if in_group is None and not actor.is_trainer:
                raise Forbidden(_("Only the members of this group can share its takeaways."))
            group.takeaways = (group.takeaways + "\n" if group.takeaways else "") + text.strip()
            await self._audit(s, actor.user.key, "takeaways", group.session_id, group=group.number)
        return Reply(t(self.settings.locale, "Takeaways recorded, thank you!"), public=True)

    async def takeaways_form(self, actor: Actor, group_id: int) -> Form:
        from bot.messages import TextField

        locale = self.reply_locale(actor)
        return Form(
            f"takeaways:submit:{group_id}",
            t(locale, "Group takeaways"),
            (TextField("takeaways", t(locale, "Your group's three key takeaways"), multiline=True, required=True),),
            submit_label=t(locale, "Submit"),
        )

    # ------------------------------------------------------------------ the outbox

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

    # ------------------------------------------------------------------ questionnaires

    async def _delivery_for(
        self, s: AsyncSession, actor: Actor, delivery_id: int
    ) -> tuple[Delivery, PeerSession, Member]:
        delivery = await s.get(Delivery, delivery_id)
        member = await self._actor_member(s, actor)
        if delivery is None or delivery.member_id != member.id:
            raise NotFound(_("This questionnaire is not addressed to you."))
        session = await s.get(PeerSession, delivery.session_id)
        assert session is not None
        return delivery, session, member

    @staticmethod
    def _questionnaire_kind(delivery: Delivery) -> str:
        return "retention" if delivery.kind == "retention" else "feedback"

    async def _items(self, s: AsyncSession, session_id: int, kind: str) -> list[QuestionnaireItem]:
        rows = await s.exec(
            select(QuestionnaireItem)
            .where(QuestionnaireItem.session_id == session_id, QuestionnaireItem.kind == kind)
            .order_by(col(QuestionnaireItem.position))
        )
        return list(rows.all())

    async def questionnaire_form(self, actor: Actor, delivery_id: int, *, open_only: bool = False) -> Form:
        async with self.db.session() as s:
            delivery, session, member = await self._delivery_for(s, actor, delivery_id)
            kind = self._questionnaire_kind(delivery)
            assert session.id is not None
            items = await self._items(s, session.id, kind)
            await self._refuse_if_closed(s, session, member, kind, open_only=open_only)
        locale = self.reply_locale(actor)
        if kind == "feedback":
            return feedback_form(delivery_id, session.title, items, locale)
        return quiz_form(delivery_id, session.title, items, locale)

    async def _refuse_if_closed(
        self, s: AsyncSession, session: PeerSession, member: Member, kind: str, *, open_only: bool = False
    ) -> Submission | None:
        """Refuse a closed questionnaire, or a completed one unless only its optional open question is coming
        (one item at a time, the open question may come after the last rating)."""
        if kind == "feedback" and (
            session.state == "closed"
            or (session.ended_at is not None and self.clock.now() > session.ended_at + SURVEY_OPEN_FOR)
        ):
            raise Invalid(_("This questionnaire closed 7 days after the session. Thank you all the same!"))
        found = (
            await s.exec(
                select(Submission).where(
                    Submission.session_id == session.id, Submission.member_id == member.id, Submission.kind == kind
                )
            )
        ).first()
        if found is not None and found.completed and not open_only:
            raise Invalid(_("You have already answered this questionnaire; your first answers are kept."))
        return found

    async def answer(self, actor: Actor, delivery_id: int, values: dict[str, str]) -> Reply:
        """Record answers (a whole form, or one item at a time). All-or-nothing; first answers are kept."""
        async with self.db.session() as s:
            delivery, session, member = await self._delivery_for(s, actor, delivery_id)
            kind = self._questionnaire_kind(delivery)
            locale = self.reply_locale(actor)
            assert session.id is not None and member.id is not None
            items = {item.item_key: item for item in await self._items(s, session.id, kind)}
            open_only = bool(values) and all(k in items and items[k].item_type == "open" for k in values)
            submission = await self._refuse_if_closed(s, session, member, kind, open_only=open_only)
            parsed = self._validate_answers(items, values, locale)
            if submission is None:
                submission = Submission(
                    session_id=session.id, member_id=member.id, kind=kind, submitted_at=self.clock.now()
                )
                s.add(submission)
                await s.flush()
            assert submission.id is not None
            answered = {
                a.item_id for a in (await s.exec(select(Answer).where(Answer.submission_id == submission.id))).all()
            }
            for key, (value_int, value_text, correct) in parsed.items():
                item = items[key]
                if item.id in answered:
                    raise Invalid(
                        _(
                            "You already answered “{question}”; your first answer is kept.",
                            question=item_label(item, locale),
                        ),
                        field=key,
                    )
                s.add(
                    Answer(
                        submission_id=submission.id,
                        item_id=item.id or 0,
                        value_int=value_int,
                        value_text=value_text,
                        correct=correct,
                    )
                )
                answered.add(item.id or 0)
            required = {i.id for i in items.values() if i.item_type in {"likert", "choice"}}
            whole_form = len(values) > 1 or len(items) == 1
            if whole_form:
                missing = [
                    item_label(i, locale)
                    for i in items.values()
                    if i.item_type in {"likert", "choice"} and i.id not in answered
                ]
                if missing:
                    raise Invalid(_("Please answer every rated question; missing: “{question}”.", question=missing[0]))
            if required <= answered and not submission.completed:
                submission.completed = True
                submission.submitted_at = self.clock.now()
                if kind == "retention":
                    answers = (await s.exec(select(Answer).where(Answer.submission_id == submission.id))).all()
                    submission.score = sum(1 for a in answers if a.correct)
                    submission.max_score = len(items)
            await self._audit(s, actor.user.key, f"{kind}.answer", session.id, items=sorted(parsed))
            completed, score, total = submission.completed, submission.score, submission.max_score
        if completed and kind == "retention":
            return Reply(
                t(locale, "Your score: {score}/{total}.", score=score, total=total), extra={"score": str(score)}
            )
        if completed:
            return Reply(t(locale, "Thank you, your answers are recorded."))
        return Reply(t(locale, "Answer recorded."))

    @staticmethod
    def _validate_answers(
        items: dict[str, QuestionnaireItem], values: dict[str, str], locale: str
    ) -> dict[str, tuple[int | None, str, bool | None]]:
        if not values:
            raise Invalid(_("The form was empty; please answer the questions."))
        parsed: dict[str, tuple[int | None, str, bool | None]] = {}
        for key, raw in values.items():
            item = items.get(key)
            if item is None:
                raise Invalid(_("`{key}` is not a question of this questionnaire.", key=key))
            raw = (raw or "").strip()
            if item.item_type == "likert":
                if not raw.isdigit() or not 1 <= int(raw) <= 5:
                    raise Invalid(
                        _(
                            "“{question}” takes a rating from 1 to 5, not `{raw}`.",
                            question=item_label(item, locale),
                            raw=raw,
                        ),
                        field=key,
                    )
                parsed[key] = (int(raw), "", None)
            elif item.item_type == "choice":
                options = json.loads(item.options_json)
                if not raw.isdigit() or not 0 <= int(raw) < len(options):
                    raise Invalid(
                        _(
                            "`{raw}` is not one of the answers to “{question}”.",
                            raw=raw,
                            question=item_label(item, locale),
                        ),
                        field=key,
                    )
                parsed[key] = (int(raw), options[int(raw)], raw == item.correct)
            elif raw:
                parsed[key] = (None, raw[:3000], None)
        return parsed


_COMMANDS: dict[str, Any] = {
    "help": Core._cmd_help,
    "cohort create": Core._cmd_cohort_create,
    "cohort add": Core._cmd_cohort_add,
    "cohort import": Core._cmd_cohort_import,
    "cohort show": Core._cmd_cohort_show,
    "session plan": Core._cmd_session_plan,
    "session show": Core._cmd_session_show,
    "session start": Core._cmd_session_start,
    "session end": Core._cmd_session_end,
    "session cancel": Core._cmd_session_cancel,
    "quiz add": Core._cmd_quiz_add,
    "report": Core._cmd_report,
    "group show": Core._cmd_group_show,
    "group move": Core._cmd_group_move,
    "group swap": Core._cmd_group_swap,
    "group reshuffle": Core._cmd_group_reshuffle,
    "checkin": Core._cmd_checkin,
    "prep-done": Core._cmd_prep_done,
    "absent": Core._cmd_absent,
    "raise": Core._cmd_raise,
    "mydata": Core._cmd_mydata,
}

"""The service layer: every use case of a peer-learning session, platform-neutral.

Adapters call the `Core` facade with an `Actor` and get a neutral `Reply` back. Each use case is one
transaction; platform calls happen outside the transaction (they can take seconds under rate limits) and
are written back in small transactions, so check-ins are never blocked behind channel creation.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
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
from bot.i18n import t
from bot.messages import ActionId, Button, ButtonStyle, Form, Message, Reply, Section, Timestamp
from bot.port import ChecksCapacity, EventSpec, Platform, PlatformError, Undeliverable
from bot.questionnaires import FEEDBACK_ITEMS, feedback_form, quiz_form
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


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the adapter decides `is_trainer` (Slack trainer ids/group, Discord trainer role)."""

    user: UserRef
    display_name: str = ""
    is_trainer: bool = False
    workspace: str = ""


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
            return Reply(exc.text(), ok=False)

    async def execute(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if command.name in grammar.TRAINER_COMMANDS and not actor.is_trainer:
            raise Forbidden(
                f"Only trainers can use `/peer {command.name}`.",
                "Ask your trainer, or type `/peer help` to see your commands.",
            )
        handler = _COMMANDS[command.name]
        result: Reply = await handler(self, actor, command, channel)
        return result

    async def handle_action(self, actor: Actor, action_id: str, channel: ChannelRef | None = None) -> Reply:
        """A button click (Slack `action_id`, Discord `custom_id`)."""
        try:
            action = ActionId.parse(action_id)
        except ValueError:
            return Reply("This button is not one of mine any more.", ok=False)
        try:
            return await self._dispatch_action(actor, action)
        except PeerError as exc:
            return Reply(exc.text(), ok=False)

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
            return Reply(exc.text(), ok=False, extra={"field": exc.field} if exc.field else {})
        except ValueError:
            pass
        return Reply("This form is not one of mine any more.", ok=False)

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
            return Reply(exc.text(), ok=False)

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
        raise Invalid("This button is not one of mine any more.")

    async def home(self, actor: Actor) -> Message:
        """A person's overview (Slack App Home): upcoming sessions in their own time, attendance and pending
        questionnaires; a trainer also sees their cohorts and sessions."""
        now = self.clock.now()
        sections: list[Section] = []
        buttons: list[Button] = []
        async with self.db.session() as s:
            member = await self._member(s, actor.user, actor.display_name)
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
            sections.append(Section("*Your next sessions*"))
            for p, e in upcoming[:10]:
                role = " (trainer)" if e.role == "trainer" else ""
                sections.append(Section(f"`{p.short_id}` {p.title}{role} — {{0}}", (self._stamp(p.starts_at),)))
        else:
            sections.append(Section("No upcoming session."))
        past = [(p, attendance.get(p.id or 0)) for p, e in mine if e.role == "learner" and p.started_at is not None]
        if past:
            present = sum(1 for _, a in past if a is not None and a.status in {"on_time", "late"})
            sections.append(Section(f"*Your attendance*: {present}/{len(past)} session(s) attended"))
        todo = [
            (d, p) for d, p in pending if (p.id, "retention" if d.kind == "retention" else "feedback") not in answered
        ]
        todo = [(d, p) for d, p in todo if d.kind == "retention" or p.state != "closed"]
        if todo:
            sections.append(Section("*Questionnaires waiting for you*"))
            for delivery, p in todo[:10]:
                feature = "quiz" if delivery.kind == "retention" else "survey"
                label = "Retention quiz" if feature == "quiz" else "Feedback"
                sections.append(Section(f"{label}: {p.title}"))
                buttons.append(Button(f"{feature}:open:{delivery.id}", f"{label}: {p.title}"[:75], ButtonStyle.PRIMARY))
        if actor.is_trainer:
            trained = [(p, e) for p, e in mine if e.role == "trainer"]
            cohorts = sorted({p.cohort_id for p, _ in trained})
            sections.append(Section(f"*Trainer*: {len(cohorts)} cohort(s), {len(trained)} session(s)"))
            for p, _ in trained[-10:]:
                sections.append(Section(f"`{p.short_id}` {p.title} — {p.state}, {{0}}", (self._stamp(p.starts_at),)))
            sections.append(Section("Type `/peer help` for the commands."))
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
            raise PeerError(f"The {name} platform is not running in this process.") from None

    async def _member(self, s: AsyncSession, user: UserRef, display_name: str = "") -> Member:
        found = await s.exec(select(Member).where(Member.platform == user.platform, Member.user_id == user.id))
        member = found.first()
        if member is None:
            member = Member(platform=user.platform, user_id=user.id, display_name=display_name or user.id)
            s.add(member)
            await s.flush()
        elif display_name and member.display_name != display_name:
            member.display_name = display_name
        return member

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
                f"There is no cohort named `{name}` here.",
                f"Create it with `/peer cohort create {name}`, or check the name with `/peer cohort show`.",
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
                f"There is no session `{short_id}` here.",
                "Session ids are shown when a session is planned, and in `/peer session show`.",
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
        if member is not None and member.locale in {"en", "fr"}:
            return member.locale
        return self.settings.locale

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
        return Reply(grammar.help_text(actor.is_trainer))

    async def _cmd_cohort_create(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        channel_id = command.channel or (channel.id if channel else "")
        async with self.db.session() as s:
            workspace = await self._workspace(s, actor)
            exists = await s.exec(
                select(Cohort).where(Cohort.workspace_id == workspace.id, Cohort.name == command.cohort)
            )
            if exists.first() is not None:
                raise Invalid(
                    f"A cohort named `{command.cohort}` already exists.",
                    f"Add people with `/peer cohort add {command.cohort} @someone`, or pick another name.",
                )
            assert workspace.id is not None
            cohort = Cohort(
                workspace_id=workspace.id, name=command.cohort, channel_id=channel_id, created_at=self.clock.now()
            )
            s.add(cohort)
            await s.flush()
            trainer = await self._member(s, actor.user, actor.display_name)
            assert cohort.id is not None and trainer.id is not None
            s.add(Enrollment(cohort_id=cohort.id, member_id=trainer.id, role="trainer", level=3))
            await self._audit(s, actor.user.key, "cohort.create", None, cohort=command.cohort)
        where = f" Announcements go to <#{channel_id}>." if channel_id else " Announcements will be sent by DM."
        return Reply(
            f"Cohort `{command.cohort}` created; you are its trainer.{where}\n"
            f"Next: `/peer cohort add {command.cohort} @learner=3 ...`"
        )

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
        return Reply(f"Cohort `{command.cohort}`: {added} added, {updated} level(s) updated.")

    async def _cmd_cohort_import(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            await self._cohort(s, actor, command.cohort)
        platform = self.platform_for(actor.user.platform)
        try:
            members = await platform.members_of(ChannelRef(actor.user.platform, command.channel))
        except PlatformError as exc:
            raise Invalid(
                f"I could not read the members of <#{command.channel}>: {exc.detail or exc.code}.",
                "Check that I can see that channel (invite me to it), then try again.",
            ) from None
        users = [(m.id, command.level) for m in members if m.id != actor.user.id]
        added, _updated = await self.enroll(actor, command.cohort, users, default_level=command.level or 3)
        return Reply(f"Cohort `{command.cohort}`: imported {added} new learner(s) from <#{command.channel}>.")

    async def _cmd_cohort_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, command.cohort)
            assert cohort.id is not None
            learners = await self._learners(s, cohort.id)
            sessions = await s.exec(
                select(PeerSession).where(PeerSession.cohort_id == cohort.id).order_by(col(PeerSession.starts_at))
            )
            session_rows = list(sessions.all())
        lines = [f"*Cohort `{cohort.name}`* — {len(learners)} learner(s)"]
        lines += [f"• <@{m.user_id}> level {e.level}" for e, m in learners]
        if session_rows:
            lines.append("*Sessions*")
            lines += [f"• `{p.short_id}` {p.title} — {self._fallback(p.starts_at)} ({p.state})" for p in session_rows]
        return Reply("\n".join(lines))

    # ------------------------------------------------------------------ session commands

    async def _cmd_session_plan(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        assert command.day and command.at and command.duration
        local = datetime.combine(command.day, command.at, tzinfo=self.settings.zone)
        starts = local.astimezone(self.clock.now().tzinfo)
        if starts <= self.clock.now():
            raise Invalid(
                f"{local:%Y-%m-%d %H:%M} ({self.settings.timezone}) is in the past.",
                f"Plan the session for a later date. Usage: `{grammar.USAGE['session plan']}`",
            )
        opts = command.options
        fmt = opts.get("format", "groups")
        size = int(opts.get("size", "2" if fmt == "tutoring" else "4"))
        lead = grammar.parse_duration_arg(opts.get("prep_before", "1d"), "session plan")
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, command.cohort)
            creator = await self._member(s, actor.user, actor.display_name)
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
        return Reply(
            f"Planned session `{session.short_id}`: “{session.title}” for cohort `{cohort.name}`, "
            f"{self._fallback(starts)}, "
            f"{command.duration.total_seconds() / 60:.0f} min, format {fmt}, groups of {size}."
            f'\nAdd quiz items with `/peer quiz add {session.short_id} "question" "right" "wrong"`.',
            extra={"session": session.short_id},
        )

    async def _cmd_session_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(await self.describe_session(actor, command.session))

    async def describe_session(self, actor: Actor | None, short_id: str) -> str:
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
            f"*`{session.short_id}` {session.title}* — {self._fallback(session.starts_at)}, "
            f"{session.duration_minutes} min, {session.format}, state *{session.state}*",
        ]
        if session.objectives:
            lines.append(f"Objectives: {session.objectives}")
        present = [m for _, m in learners if m.id in attendance and attendance[m.id].status in {"on_time", "late"}]
        lines.append(
            f"Enrolled {len(learners)} · prepared {len(prepped)} · checked in {len(present)} "
            f"(late {sum(1 for a in attendance.values() if a.status == 'late')}) · "
            f"excused {sum(1 for a in attendance.values() if a.status == 'excused')}"
        )
        for group, members in groups:
            names = ", ".join(f"<@{m.user_id}>" for m, _ in members)
            lines.append(
                f"Group {group.number}: {names} (level spread {group.level_spread}, "
                f"repeated pairs {group.repeated_pairs})"
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
        if session.state not in {"planned", "prep_sent"}:
            raise Invalid(f"Session `{session.short_id}` is {session.state}; only a planned session can start.")
        detail = await self.start(session.short_id, by=actor.user.key)
        return Reply(f"Session `{session.short_id}` started. {detail}")

    async def _cmd_session_end(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        if session.state != "running":
            raise Invalid(
                f"Session `{session.short_id}` is {session.state}; only a running session can end.",
                f"Start it first with `/peer session start {session.short_id}`.",
            )
        await self.end(session.short_id, by=actor.user.key)
        return Reply(f"Session `{session.short_id}` ended; questionnaires are on their way.")

    async def _cmd_session_cancel(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            if session.state not in {"planned", "prep_sent"}:
                raise Invalid(
                    f"Session `{session.short_id}` is {session.state}; only a session that has not "
                    "started can be cancelled."
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
        return Reply(f"Session `{session.short_id}` cancelled.")

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
                "The question and answers must be non-empty and the answers all different.",
                f"Usage: `{grammar.USAGE['quiz add']}`",
            )
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            if session.state in {"closed", "cancelled"} or session.retention_queued_at is not None:
                raise Invalid(f"The retention quiz of `{session.short_id}` has already been sent.")
            assert session.id is not None
            count = await self._quiz_size(s, session)
            if count >= 10:
                raise Invalid("A retention quiz holds at most 10 questions.")
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
        return Reply(f"Quiz question {count + 1} added to `{session.short_id}`.")

    async def _cmd_report(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import session_report

        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        return Reply(await session_report(self, session.short_id))

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
        if not groups:
            return Reply(f"Session `{session.short_id}` has no groups (nobody to group).")
        title = "Draft groups" if draft else "Groups"
        lines = [f"*{title} of `{session.short_id}`*"]
        for group, members in groups:
            names = ", ".join(f"<@{m.user_id}>" + (f" ({role})" if role != "member" else "") for m, role in members)
            lines.append(
                f"{group.number}. {names} — level spread {group.level_spread}, repeated pairs {group.repeated_pairs}"
            )
        if draft:
            lines.append(
                "At start, learners who have not checked in leave their group and late check-ins join the smallest. "
                f"Adjust with `/peer group move|swap|reshuffle {session.short_id}`."
            )
        return Reply("\n".join(lines))

    async def _cmd_group_reshuffle(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            assert session.id is not None
            if session.state not in {"planned", "prep_sent"}:
                raise Invalid(
                    f"Session `{session.short_id}` has started: its groups can only be adjusted with "
                    f"`/peer group move` or `/peer group swap`."
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
                f"<@{user_id}> is in no group of `{session.short_id}`.",
                f"See the groups with `/peer group show {session.short_id}`.",
            )
        return row

    async def _editable_groups(self, s: AsyncSession, actor: Actor, short_id: str) -> PeerSession:
        session = await self._session(s, actor, short_id)
        if session.state not in {"planned", "prep_sent", "running"}:
            raise Invalid(f"Session `{session.short_id}` is {session.state}; its groups can no longer change.")
        assert session.id is not None
        if not await self._groups(s, session.id):
            raise Invalid(
                f"Session `{session.short_id}` has no groups yet.",
                f"See the draft with `/peer group show {session.short_id}` first.",
            )
        return session

    async def _cmd_group_move(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        user_id = command.users[0][0]
        async with self.db.session() as s:
            session = await self._editable_groups(s, actor, command.session)
            target = (
                await s.exec(
                    select(PeerGroup).where(PeerGroup.session_id == session.id, PeerGroup.number == command.group)
                )
            ).first()
            if target is None:
                raise NotFound(
                    f"Session `{session.short_id}` has no group {command.group}.",
                    f"See the groups with `/peer group show {session.short_id}`.",
                )
            membership = await self._membership_of(s, session, actor.user.platform, user_id)
            old = await s.get(PeerGroup, membership.group_id)
            assert old is not None and target.id is not None
            if old.id == target.id:
                return Reply(f"<@{user_id}> is already in group {target.number}.")
            membership.group_id, membership.role = target.id, "member"
            await self._audit(s, actor.user.key, "group.move", session.id, user=user_id, to=target.number)
        await self._follow_breakout(actor.user.platform, user_id, old, target)
        return Reply(f"<@{user_id}> moved from group {old.number} to group {target.number}.")

    async def _cmd_group_swap(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        (a, _), (b, _) = command.users
        if a == b:
            raise Invalid("Mention two different people to swap.", f"Usage: `{grammar.USAGE['group swap']}`")
        async with self.db.session() as s:
            session = await self._editable_groups(s, actor, command.session)
            first = await self._membership_of(s, session, actor.user.platform, a)
            second = await self._membership_of(s, session, actor.user.platform, b)
            group_a, group_b = await s.get(PeerGroup, first.group_id), await s.get(PeerGroup, second.group_id)
            assert group_a is not None and group_b is not None
            if group_a.id == group_b.id:
                return Reply(f"<@{a}> and <@{b}> are already in the same group.")
            first.group_id, second.group_id = second.group_id, first.group_id
            first.role, second.role = second.role, first.role
            await self._audit(s, actor.user.key, "group.swap", session.id, users=[a, b])
        await self._follow_breakout(actor.user.platform, a, group_a, group_b)
        await self._follow_breakout(actor.user.platform, b, group_b, group_a)
        return Reply(f"<@{a}> (now group {group_b.number}) and <@{b}> (now group {group_a.number}) swapped.")

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
        member = await self._member(s, actor.user, actor.display_name)
        rows = await s.exec(
            select(PeerSession)
            .join(Enrollment, col(Enrollment.cohort_id) == col(PeerSession.cohort_id))
            .where(Enrollment.member_id == member.id, col(PeerSession.state).in_(ACTIVE_STATES[:3]))
            .order_by(col(PeerSession.starts_at))
        )
        session = rows.first()
        if session is None:
            raise NotFound("You have no upcoming session.", "If you expected one, ask your trainer.")
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
                f"You are not enrolled as a learner in session `{session.short_id}`.",
                "If you should be, ask your trainer to add you to the cohort.",
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
            member = await self._member(s, actor.user, actor.display_name)
            await self._enrollment(s, session, member)
            if self.clock.now() >= self.end_of(session) or session.state in {"ended", "closed", "cancelled"}:
                raise Invalid(f"Session `{session.short_id}` is over; an absence reason must be sent before the end.")
            assert session.id is not None and member.id is not None
            attendance = (
                await s.exec(
                    select(Attendance).where(Attendance.session_id == session.id, Attendance.member_id == member.id)
                )
            ).first()
            if attendance is None:
                s.add(Attendance(session_id=session.id, member_id=member.id, status="excused", absence_reason=reason))
            elif attendance.status in {"on_time", "late"}:
                raise Invalid("You have already checked in to this session.")
            else:
                attendance.absence_reason = reason
            await self._audit(s, actor.user.key, "absence", session.id, reason=reason)
        return Reply(f"Thank you, your absence from `{session.short_id}` is recorded with your reason.")

    async def _cmd_raise(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if channel is None:
            raise Invalid("`/peer raise` works from your group's breakout channel.")
        async with self.db.session() as s:
            group = (await s.exec(select(PeerGroup).where(PeerGroup.channel_id == channel.id))).first()
            if group is None:
                raise Invalid(
                    "`/peer raise` works from your group's breakout channel.",
                    "Go to your group's channel and type it there.",
                )
            session = await s.get(PeerSession, group.session_id)
            assert session is not None
            trainers = await self._trainers(s, session)
            await self._audit(s, actor.user.key, "raise", session.id, group=group.number)
        platform = self.platform_for(channel.platform)
        mentions = " ".join(f"<@{m.user_id}>" for m in trainers)
        await platform.post(
            channel, Message(f"✋ {mentions}: <@{actor.user.id}> asks for the trainer in group {group.number}.")
        )
        return Reply("The trainer has been called to your group.")

    async def _cmd_mydata(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import my_data

        text = await my_data(self, actor.user)
        try:
            await self.platform_for(actor.user.platform).send_dm(actor.user, Message(text))
        except PlatformError:
            return Reply(text)
        return Reply("I have sent you by DM everything I store about you.")

    # ------------------------------------------------------------------ prep and check-in

    async def prep_done(self, actor: Actor, short_id: str, *, method: str) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, short_id)
            member = await self._member(s, actor.user, actor.display_name)
            await self._enrollment(s, session, member)
            assert session.id is not None and member.id is not None
            if session.state in {"ended", "closed", "cancelled"}:
                raise Invalid(f"Session `{session.short_id}` is {session.state}.")
            found = (
                await s.exec(select(PrepAck).where(PrepAck.session_id == session.id, PrepAck.member_id == member.id))
            ).first()
            if found is not None:
                return Reply("Your preparation was already recorded. See you at the session!")
            s.add(PrepAck(session_id=session.id, member_id=member.id, at=self.clock.now(), method=method))
            await self._audit(s, actor.user.key, "prep.done", session.id, method=method)
        return Reply("Preparation recorded, thank you!")

    async def check_in(self, actor: Actor, short_id: str, *, method: str) -> Reply:
        """Record attendance; a learner arriving after the groups exist joins the smallest group."""
        now = self.clock.now()
        joined: tuple[str, str] | None = None
        async with self.db.session() as s:
            session = await self._session(s, actor, short_id)
            member = await self._member(s, actor.user, actor.display_name)
            enrollment = await self._enrollment(s, session, member)
            assert session.id is not None and member.id is not None
            opens, closes = session.starts_at - CHECKIN_OPENS, self.end_of(session)
            if session.state in {"cancelled", "ended", "closed"} or now > closes:
                raise Invalid(f"Check-in for `{session.short_id}` is closed.")
            if now < opens:
                raise Invalid(
                    f"Check-in for `{session.short_id}` opens 15 minutes before the start ({self._fallback(opens)})."
                )
            attendance = (
                await s.exec(
                    select(Attendance).where(Attendance.session_id == session.id, Attendance.member_id == member.id)
                )
            ).first()
            if attendance is not None and attendance.status in {"on_time", "late"}:
                return Reply("You are already checked in.")
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
        late = " (marked late)" if status == "late" else ""
        group = f" You joined group {joined[0]}." if joined else ""
        return Reply(f"Checked in to “{session.title}”{late}.{group}")

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
                await self._tell_trainers(session, exc.text())
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

    async def _announce(self, session: PeerSession, message: Message, learners: list[Member]) -> str:
        """Post to the cohort's channel, or DM each learner when the cohort has none."""
        platform = await self._platform_of(session)
        if session.channel_id:
            ref = await platform.post(ChannelRef(platform.name, session.channel_id), message)
            return ref.id
        for member in learners:
            try:
                await platform.send_dm(self._ref(member), message)
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
        locale = self.settings.locale
        message = Message(
            t(locale, "prep.post", "start", title=session.title, material=session.prep_material).split("\n")[0],
            sections=(
                Section(
                    t(
                        locale,
                        "prep.post",
                        self._stamp(session.starts_at),
                        title=session.title,
                        material=session.prep_material,
                    ),
                    (self._stamp(session.starts_at),),
                ),
            ),
            buttons=(Button(f"prep:done:{session.short_id}", t(locale, "prep.done_button"), ButtonStyle.PRIMARY),),
        )
        message_id = await self._announce(session, message, learners)
        async with self.db.session() as s:
            await s.exec(
                update(PeerSession)
                .where(col(PeerSession.id) == session.id)  # type: ignore[call-overload]
                .values(prep_message_id=message_id)
            )
        return f"prep material posted for {len(learners)} learner(s)"

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
        return f"prep reminder queued for {len(pending)} learner(s)"

    async def open_checkin(self, short_id: str) -> str:
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.checkin_opened_at is not None:
                return ""
            session.checkin_opened_at = self.clock.now()
            learners = [m for _, m in await self._learners(s, session.cohort_id)]
            await self._audit(s, "scheduler", "checkin.open", session.id)
        locale = self.settings.locale
        stamp = self._stamp(session.starts_at)
        message = Message(
            t(locale, "checkin.announce", "start", title=session.title).split("—")[0].strip(),
            sections=(Section(t(locale, "checkin.announce", stamp, title=session.title), (stamp,)),),
            buttons=(Button(f"checkin:in:{session.short_id}", t(locale, "checkin.button"), ButtonStyle.PRIMARY),),
        )
        message_id = await self._announce(session, message, learners)
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
                        "peerbot breakouts",
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
        return "check-in open"

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

    async def _apply_draft(self, s: AsyncSession, session: PeerSession, learners: list[Learner]) -> list[str]:
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
            f"Group {g.number} has {sizes[g.id]} learner(s), outside {low}–{high}."
            for g, _ in groups
            if not low <= sizes[g.id] <= high
        ]

    async def start(self, short_id: str, *, by: str) -> str:
        """Form the groups (one transaction), then create the breakouts outside it."""
        now = self.clock.now()
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
                warnings, left_out = list(grouping.warnings), grouping.left_out
            groups = await self._groups(s, session.id)
            platform = await self._platform_of(session, s)
            if isinstance(platform, ChecksCapacity):
                try:
                    await platform.ensure_capacity(session.short_id, len(groups))
                except PlatformError as exc:  # rolls the whole start back: nothing created, nothing changed
                    raise Invalid(
                        f"I cannot start `{session.short_id}`: the server has no room for {len(groups)} breakouts "
                        f"({exc.detail or exc.code}).",
                        "Delete or archive old channels, then `/peer session start` again.",
                    ) from None
            session.state, session.started_at = "running", now
            await self._audit(
                s,
                by,
                "session.start",
                session.id,
                groups=len(groups),
                warnings=warnings,
                left_out=list(left_out),
                from_draft=has_draft,
            )
            trainers = await self._trainers(s, session)
            members_by_id = {str(m.id): m for _, m in await self._learners(s, session.cohort_id)}
        for member_id, reason in left_out:
            member = members_by_id.get(member_id)
            if member is not None:
                await self._safe_dm(
                    platform, member, Message(f"You are not in a group for “{session.title}”: {reason}")
                )
        for trainer in trainers:
            if warnings:
                await self._safe_dm(
                    platform, trainer, Message(f"Groups for `{session.short_id}`: " + " ".join(warnings))
                )
        created = await self._ensure_breakouts(short_id)
        self._notify_scheduler(session)
        return f"{len(groups)} group(s) formed from {len(learners)} learner(s), {created} breakout(s) created"

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
                        "format." + session.format,
                        tutor=f"<@{tutor.user_id}>" if tutor else "the most experienced of you",
                    )
                )
            ]
            if session.objectives:
                sections.insert(0, Section(t(locale, "breakout.objectives", objectives=session.objectives)))
            sections.append(Section(t(locale, "ground_rules")))
            if self.settings.video_url_template:
                url = self.settings.video_url_template.replace("{room}", name)
                sections.append(Section(t(locale, "breakout.video", url=url)))
            await platform.post(
                channel,
                Message(
                    t(
                        locale,
                        "breakout.intro",
                        number=group.number,
                        title=session.title,
                        members=", ".join(f"<@{m.user_id}>" for m, _ in members),
                    ),
                    sections=tuple(sections),
                    buttons=(
                        Button(f"checkin:in:{session.short_id}", t(locale, "checkin.button"), ButtonStyle.PRIMARY),
                    ),
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
        for group, _ in groups:
            if group.channel_id:
                await platform.post(
                    ChannelRef(platform.name, group.channel_id),
                    Message(
                        t(locale, "wrapup.prompt"),
                        buttons=(
                            Button(f"takeaways:open:{group.id}", t(locale, "wrapup.button"), ButtonStyle.PRIMARY),
                        ),
                    ),
                )
        return f"wrap-up asked in {len(groups)} group(s)"

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
        summary = await self.describe_session(None, short_id)
        takeaways = [f"*Group {g.number} takeaways*: {g.takeaways}" for g, _ in groups if g.takeaways]
        platform = await self._platform_of(session)
        for trainer in trainers:
            await self._safe_dm(
                platform,
                trainer,
                Message(f"Summary of `{session.short_id}`", sections=tuple(Section(x) for x in [summary, *takeaways])),
            )
        for group, _ in groups:
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
        return f"ended: {len(attendees)} questionnaire(s) queued, {len(groups)} breakout(s) closed"

    async def close(self, short_id: str) -> str:
        async with self.db.session() as s:
            session = await self._session(s, None, short_id)
            if session.state != "ended":
                return ""
            session.state, session.closed_at = "closed", self.clock.now()
            await self._audit(s, "scheduler", "session.close", session.id)
        self._notify_scheduler(session)
        return "feedback closed"

    def _copy_feedback_items(self, s: AsyncSession, session: PeerSession) -> None:
        assert session.id is not None
        for position, (key, item_type) in enumerate(FEEDBACK_ITEMS, start=1):
            s.add(
                QuestionnaireItem(
                    session_id=session.id,
                    kind="feedback",
                    position=position,
                    item_key=key,
                    item_type=item_type,
                    text=t(self.settings.locale, f"q.{key}"),
                )
            )

    async def record_takeaways(self, actor: Actor, group_id: int, text: str) -> Reply:
        if not text.strip():
            raise Invalid("The takeaways are empty.", "Write the group's key points, then submit.")
        async with self.db.session() as s:
            group = await s.get(PeerGroup, group_id)
            member = await self._member(s, actor.user, actor.display_name)
            if group is None:
                raise NotFound("This group no longer exists.")
            in_group = (
                await s.exec(
                    select(GroupMembership).where(
                        GroupMembership.group_id == group_id, GroupMembership.member_id == member.id
                    )
                )
            ).first()
            if in_group is None and not actor.is_trainer:
                raise Forbidden("Only the members of this group can share its takeaways.")
            group.takeaways = (group.takeaways + "\n" if group.takeaways else "") + text.strip()
            await self._audit(s, actor.user.key, "takeaways", group.session_id, group=group.number)
        return Reply("Takeaways recorded, thank you!", public=True)

    async def takeaways_form(self, actor: Actor, group_id: int) -> Form:
        from bot.messages import TextField

        return Form(
            f"takeaways:submit:{group_id}",
            "Group takeaways",
            (TextField("takeaways", "Your group's three key takeaways", multiline=True, required=True),),
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
                _, raw_session, user = outcome.split(":", 2)
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
                t(locale, "prep.reminder", stamp, title=session.title, material=session.prep_material),
                sections=(),
                key=key,
                retry=retry,
                buttons=(Button(f"prep:done:{session.short_id}", t(locale, "prep.done_button")),),
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
            text_key = "survey.invite" if delivery.kind == "feedback" else "survey.reminder"
            return Message(
                t(locale, text_key, title=session.title),
                key=key,
                retry=retry,
                buttons=(Button(f"survey:open:{delivery.id}", t(locale, "survey.button"), ButtonStyle.PRIMARY),),
            )
        if delivery.kind == "retention":
            count = await self._quiz_size(s, session)
            if count == 0 or session.state == "cancelled":
                return None
            return Message(
                t(locale, "quiz.invite", weeks=session.retention_days // 7, title=session.title, count=count),
                key=key,
                retry=retry,
                buttons=(Button(f"quiz:open:{delivery.id}", t(locale, "survey.button"), ButtonStyle.PRIMARY),),
            )
        raise ValueError(f"unknown delivery kind {delivery.kind}")

    async def _tell_trainers_unreachable(self, session_id: int, users: list[str]) -> None:
        async with self.db.session() as s:
            session = await s.get(PeerSession, session_id)
            assert session is not None
        names = ", ".join(f"<@{u}>" for u in users)
        await self._tell_trainers(
            session, f"I could not reach {names} by DM for `{session.short_id}` (their DMs are closed)."
        )

    async def _tell_trainers(self, session: PeerSession, text: str) -> None:
        async with self.db.session() as s:
            trainers = await self._trainers(s, session)
        platform = await self._platform_of(session)
        for trainer in trainers:
            await self._safe_dm(platform, trainer, Message(text))

    # ------------------------------------------------------------------ questionnaires

    async def _delivery_for(
        self, s: AsyncSession, actor: Actor, delivery_id: int
    ) -> tuple[Delivery, PeerSession, Member]:
        delivery = await s.get(Delivery, delivery_id)
        member = await self._member(s, actor.user, actor.display_name)
        if delivery is None or delivery.member_id != member.id:
            raise NotFound("This questionnaire is not addressed to you.")
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
        locale = self._locale(member)
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
            raise Invalid("This questionnaire closed 7 days after the session. Thank you all the same!")
        found = (
            await s.exec(
                select(Submission).where(
                    Submission.session_id == session.id, Submission.member_id == member.id, Submission.kind == kind
                )
            )
        ).first()
        if found is not None and found.completed and not open_only:
            raise Invalid("You have already answered this questionnaire; your first answers are kept.")
        return found

    async def answer(self, actor: Actor, delivery_id: int, values: dict[str, str]) -> Reply:
        """Record answers (a whole form, or one item at a time). All-or-nothing; first answers are kept."""
        async with self.db.session() as s:
            delivery, session, member = await self._delivery_for(s, actor, delivery_id)
            kind = self._questionnaire_kind(delivery)
            assert session.id is not None and member.id is not None
            items = {item.item_key: item for item in await self._items(s, session.id, kind)}
            open_only = bool(values) and all(k in items and items[k].item_type == "open" for k in values)
            submission = await self._refuse_if_closed(s, session, member, kind, open_only=open_only)
            parsed = self._validate_answers(items, values)
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
                    raise Invalid(f"You already answered “{item.text}”; your first answer is kept.", field=key)
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
                    i.text for i in items.values() if i.item_type in {"likert", "choice"} and i.id not in answered
                ]
                if missing:
                    raise Invalid(f"Please answer every rated question; missing: “{missing[0]}”.")
            if required <= answered and not submission.completed:
                submission.completed = True
                submission.submitted_at = self.clock.now()
                if kind == "retention":
                    answers = (await s.exec(select(Answer).where(Answer.submission_id == submission.id))).all()
                    submission.score = sum(1 for a in answers if a.correct)
                    submission.max_score = len(items)
            await self._audit(s, actor.user.key, f"{kind}.answer", session.id, items=sorted(parsed))
            completed, score, total = submission.completed, submission.score, submission.max_score
        locale = self._locale(member)
        if completed and kind == "retention":
            return Reply(t(locale, "quiz.score", score=score, total=total), extra={"score": str(score)})
        if completed:
            return Reply(t(locale, "survey.thanks"))
        return Reply("Answer recorded.")

    @staticmethod
    def _validate_answers(
        items: dict[str, QuestionnaireItem], values: dict[str, str]
    ) -> dict[str, tuple[int | None, str, bool | None]]:
        if not values:
            raise Invalid("The form was empty; please answer the questions.")
        parsed: dict[str, tuple[int | None, str, bool | None]] = {}
        for key, raw in values.items():
            item = items.get(key)
            if item is None:
                raise Invalid(f"`{key}` is not a question of this questionnaire.")
            raw = (raw or "").strip()
            if item.item_type == "likert":
                if not raw.isdigit() or not 1 <= int(raw) <= 5:
                    raise Invalid(f"“{item.text}” takes a rating from 1 to 5, not `{raw}`.", field=key)
                parsed[key] = (int(raw), "", None)
            elif item.item_type == "choice":
                options = json.loads(item.options_json)
                if not raw.isdigit() or not 0 <= int(raw) < len(options):
                    raise Invalid(f"`{raw}` is not one of the answers to “{item.text}”.", field=key)
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

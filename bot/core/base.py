"""What every part of the service layer shares: the `Actor`, the scheduler port, the timing constants and
`CoreBase`, which holds the collaborators (database, platforms, settings, clock, scheduler) and the
lookups every use case starts with (`_session`, `_cohort`, `_member`, `_platform_of`, `_groups`, ...).
Each concern of `Core` is a mixin over `CoreBase`, so a use case reads the same `self` as before the split
and `mypy --strict` sees every attribute it touches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.errors import NotFound, PeerError
from bot.i18n import _, supported
from bot.inbound import Actor
from bot.messages import Message, Timestamp
from bot.port import Platform, PlatformError
from bot.refs import UserRef
from bot.settings import Settings
from storage.db import Database
from storage.models import (
    AuditEvent,
    Cohort,
    Enrollment,
    GroupMembership,
    Member,
    PeerGroup,
    PeerSession,
    QuestionnaireItem,
    Workspace,
)

log = logging.getLogger("bot.core")  # one logger for the whole package, named as before the split

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


class SchedulerPort(Protocol):
    """What the core tells the scheduler; the scheduler only wakes the core up at those times."""

    def session_changed(self, short_id: str, steps: dict[str, datetime]) -> None: ...

    def session_removed(self, short_id: str) -> None: ...

    def outbox_due(self, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class StepResult:
    step: str
    detail: str = ""


class CoreBase:
    """The collaborators and the shared lookups; `Core` composes the concern mixins over it."""

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

    async def _safe_dm(self, platform: Platform, member: Member, message: Message) -> None:
        try:
            await platform.send_dm(self._ref(member), message)
        except PlatformError as exc:
            log.warning("could not DM %s: %s", member.user_id, exc)

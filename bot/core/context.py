"""What every service is built with: the database, the platforms, the settings, the clock, the scheduler and the
metrics,
plus the small helpers that need only those (the audit trail, languages, time stamps, a DM that may fail).

One object instead of five constructor arguments per service; anything richer than these helpers is a
service of its own, named in the constructor of the services that call it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.core import rules
from bot.errors import PeerError
from bot.grouping.live import AHEAD_BUDGET, AHEAD_QUIET, COURSE_BUDGET, LIVE_BUDGET
from bot.i18n import _, supported
from bot.inbound import Actor
from bot.messages import Message, Timestamp
from bot.metrics import Metrics
from bot.port import Platform, PlatformError
from bot.refs import UserRef
from bot.settings import Settings
from storage.db import Database
from storage.models import AuditEvent, Cohort, Member, PeerSession, Workspace

log = logging.getLogger("bot.core")  # one logger for the whole service layer


class SchedulerPort(Protocol):
    """What the core tells the scheduler; the scheduler only wakes the core up at those times."""

    def session_changed(self, short_id: str, steps: dict[str, datetime]) -> None: ...

    def session_removed(self, short_id: str) -> None: ...

    def session_retry(self, short_id: str, at: datetime) -> None:
        """Run the session's due steps again at `at` (after a failure)."""
        ...

    def outbox_due(self, at: datetime) -> None: ...


@dataclass
class Context:
    """The collaborators every service shares; `platforms` grows as adapters attach."""

    db: Database
    settings: Settings
    clock: Clock
    scheduler: SchedulerPort | None = None
    platforms: dict[str, Platform] = field(default_factory=dict)
    grouping_budget: float = LIVE_BUDGET
    ahead_budget: float = AHEAD_BUDGET
    course_budget: float = COURSE_BUDGET
    ahead_quiet: float = AHEAD_QUIET  # work ahead waits for check-ins to pause this long (seconds)
    metrics: Metrics = field(default_factory=lambda: Metrics(enabled=False))

    def platform(self, name: str) -> Platform:
        try:
            return self.platforms[name]
        except KeyError:
            raise PeerError(_("The {platform} platform is not running in this process.", platform=name)) from None

    async def platform_of(self, peer_session: PeerSession, tx: AsyncSession | None = None) -> Platform:
        """The platform of the session's workspace (inside `tx` when a transaction is already open)."""
        if tx is None:
            async with self.db.transaction() as own:
                return await self.platform_of(peer_session, own)
        cohort = await tx.get(Cohort, peer_session.cohort_id)
        assert cohort is not None
        workspace = await tx.get(Workspace, cohort.workspace_id)
        assert workspace is not None
        return self.platform(workspace.platform)

    def audit(self, tx: AsyncSession, actor: str, action: str, session_id: int | None, **detail: Any) -> None:
        """One line of the audit trail, in the caller's transaction (it commits or rolls back with it)."""
        tx.add(AuditEvent(**self.audit_row(actor, action, session_id, **detail)))

    def audit_row(self, actor: str, action: str, session_id: int | None, **detail: Any) -> dict[str, Any]:
        """The same line as a row, for a batch written in one statement (`storage.db.insert_rows`)."""
        detail_json = json.dumps(detail, default=str, ensure_ascii=False)
        return {
            "at": self.clock.now(),
            "actor": actor,
            "action": action,
            "session_id": session_id,
            "detail": detail_json,
        }

    def locale_of(self, member: Member | None = None) -> str:
        """The language of a DM to `member`: theirs when known, else the instance's."""
        return supported(member.locale if member is not None else "") or self.settings.locale

    def reply_locale(self, actor: Actor | None) -> str:
        """The language of a reply: the actor's own when the platform tells it (Discord), else the instance's."""
        return supported(actor.locale if actor else "") or self.settings.locale

    def fallback(self, moment: datetime) -> str:
        """A moment as plain text in the organisation's zone, for places that cannot render per reader."""
        return moment.astimezone(self.settings.zone).strftime("%Y-%m-%d %H:%M %Z")

    def stamp(self, moment: datetime) -> Timestamp:
        return Timestamp(moment, self.fallback(moment))

    def notify_scheduler(self, peer_session: PeerSession) -> None:
        """Tell the scheduler the session's step times (or that it is gone) after each change."""
        if self.scheduler is None:
            return
        if peer_session.state in rules.GONE:
            self.scheduler.session_removed(peer_session.short_id)
            return
        steps = rules.step_times(peer_session)
        self.scheduler.session_changed(peer_session.short_id, {str(step): at for step, at in steps.items()})

    async def safe_dm(self, platform: Platform, member: Member, message: Message) -> None:
        """A courtesy DM: a closed DM is logged, never fatal to the use case that sends it."""
        try:
            await platform.send_dm(UserRef(member.platform, member.user_id), message)
        except PlatformError as exc:
            log.warning("could not DM %s: %s", member.user_id, exc)

"""APScheduler 3.11 wiring: an AsyncIOScheduler whose jobs live in the project's database.

The database stays the source of truth; jobs only wake the core at the right moments, and every step they
call is idempotent, so a job that fires twice, late, or after a restart does no harm.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from bot.clock import WarpClock
from scheduler import jobs
from storage.db import sync_url

STEP_NAMES = ("prep", "prep_reminder", "checkin", "start", "wrapup", "end", "close")


class JobScheduler:
    """Implements the core's SchedulerPort with persistent date jobs and an outbox sweep."""

    def __init__(
        self, database_url: str, zone: ZoneInfo, outbox_interval: float = 15.0, *, warp: WarpClock | None = None
    ) -> None:
        """`warp`: the core runs on a warped clock (rehearsals): APScheduler sleeps in wall time, so each
        instant the core names is mapped to the wall instant at which the warped clock reads it."""
        store = SQLAlchemyJobStore(
            url=sync_url(database_url).render_as_string(hide_password=False), tablename="apscheduler_jobs"
        )
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": store},
            timezone=zone,
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        self.outbox_interval = outbox_interval
        self.warp = warp

    def start(self, *, paused: bool = False) -> None:
        """Start; `paused` on a replica that is not (yet) the leader: its `add_job` calls still write to the
        shared job store (a session planned through any replica gets its jobs), but it runs none of them."""
        self.scheduler.start(paused=paused)
        self.scheduler.add_job(
            jobs.drain_outbox, "interval", seconds=self.outbox_interval, id="outbox:drain", replace_existing=True
        )

    @property
    def running_jobs(self) -> bool:
        """True while this process runs the jobs (started and not paused)."""
        return bool(self.scheduler.state == STATE_RUNNING)

    def resume(self) -> None:
        """This replica became the leader: run the due jobs, and from now on the others at their time."""
        self.scheduler.resume()

    def pause(self) -> None:
        """This replica is no longer the leader: run no more jobs (one already running finishes)."""
        if self.scheduler.running:
            self.scheduler.pause()

    def poll(self) -> None:
        """Look at the job store again now: another replica may have added a job due before the next one this
        scheduler knew of (APScheduler only re-reads the store when it wakes up)."""
        self.scheduler.wakeup()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def session_changed(self, short_id: str, steps: dict[str, datetime]) -> None:
        """A job per future step; steps already due (a session planned at short notice, or changed late) run
        at once in one pass, whoever planned or changed the session."""
        now = self.warp.now() if self.warp is not None else datetime.now(UTC)
        if any(at <= now for at in steps.values()):
            self._run_at(short_id, "due", now)
        for step, at in steps.items():
            if at > now:
                self._run_at(short_id, step, at)

    def session_retry(self, short_id: str, at: datetime) -> None:
        self._run_at(short_id, "retry", at)

    def _run_at(self, short_id: str, name: str, at: datetime) -> None:
        """One persistent job per session and step name (a later call replaces it): it runs the due steps."""
        self.scheduler.add_job(
            jobs.run_session_step,
            "date",
            run_date=self._wall(at),
            args=[short_id, name],
            id=f"session:{short_id}:{name}",
            replace_existing=True,
        )

    def session_removed(self, short_id: str) -> None:
        for step in (*STEP_NAMES, "due", "retry"):
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(f"session:{short_id}:{step}")

    def outbox_due(self, at: datetime) -> None:
        self.scheduler.add_job(
            jobs.drain_outbox,
            "date",
            run_date=self._wall(at),
            id=f"outbox:at:{at.timestamp():.0f}",
            replace_existing=True,
        )

    def _wall(self, at: datetime) -> datetime:
        return self.warp.wall(at) if self.warp is not None else at

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

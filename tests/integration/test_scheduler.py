"""APScheduler with its persistent job store: jobs survive a restart and call the core's steps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text

from adapters.local.platform import LocalPlatform
from bot.app import build
from bot.clock import FakeClock, SystemClock
from scheduler import jobs
from storage.db import sync_url
from tests.conftest import make_settings


async def test_jobs_persist_across_restart_and_fire(database_url: str) -> None:
    platform = LocalPlatform()
    settings = make_settings(database_url, PEERBOT_TIMEZONE="UTC")
    app = await build(settings, {"local": platform}, clock=SystemClock())
    assert app.scheduler is not None
    app.scheduler.start()
    from adapters.local.driver import LocalUser

    trainer = LocalUser(app.core, platform, "T1", "T", trainer=True)
    learners = [LocalUser(app.core, platform, f"L{i}", f"L{i}") for i in range(1, 5)]
    assert (await trainer.command("cohort create sched")).ok
    assert (await trainer.command("cohort add sched " + " ".join(f"<@{u.user_id}>" for u in learners))).ok
    start = (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    reply = await trainer.command(f'session plan sched "Sched" {start:%Y-%m-%d} {start:%H:%M} 1h groups_from=enrolled')
    assert reply.ok, reply.text
    short = reply.extra["session"]
    expected = {f"session:{short}:{step}" for step in ("start", "wrapup", "end", "close")}
    assert expected <= set(app.scheduler.job_ids())
    await app.close()  # the process stops

    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        stored = {row[0] for row in conn.execute(text("SELECT id FROM apscheduler_jobs"))}
    engine.dispose()
    assert expected <= stored

    # The restarted process's clock reads the start time: the job must call the core, which decides.
    restarted = await build(settings, {"local": platform}, clock=FakeClock(start.replace(tzinfo=UTC)))
    assert restarted.scheduler is not None
    jobs.bind(restarted.core)
    restarted.scheduler.start()
    try:
        assert expected <= set(restarted.scheduler.job_ids())
        # Bring the start job forward to now: the restored job calls the core, which starts the session.
        restarted.scheduler.scheduler.modify_job(f"session:{short}:start", next_run_time=datetime.now(UTC))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if platform.breakouts():
                break
        assert len(platform.breakouts()) == 1  # 4 enrolled learners → one group
        async with restarted.db.transaction() as tx:
            from sqlmodel import select

            from storage.models import PeerSession

            state = (await tx.exec(select(PeerSession.state).where(PeerSession.short_id == short))).one()
        assert state == "running"
    finally:
        await restarted.close()

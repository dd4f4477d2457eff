"""A seeded dashboard for the integration and browser tests: the demo's cohort `python` (trainer T1) copied to a
fresh database, a second cohort `other` trained by T2 only, the dashboard on, and a fake clock after the demo."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.app import App, HttpServer, build
from bot.clock import FakeClock
from bot.demo import DEMO_START, DemoResult, run_demo
from bot.settings import Settings

NOW = DEMO_START + timedelta(days=30)  # after the demo's quiz: every figure is final
ORGANISATION = "Acme Formation"
LINK = re.compile(r"(https?://\S+/dashboard/login\?token=[A-Za-z0-9_.-]+)")


def seed_demo(folder: Path) -> DemoResult:
    """One demo cycle (12 learners, one session) written under `folder`."""
    return asyncio.run(run_demo(folder, learners=12, seed=7, echo=None, second_week=False))


@dataclass
class DashboardWorld:
    app: App
    http: HttpServer
    platform: LocalPlatform
    clock: FakeClock
    trainer: LocalUser  # T1, trains `python`
    other: LocalUser  # T2, trains `other` only
    learner: LocalUser
    admin: LocalUser
    demo: DemoResult
    other_session: str

    async def link(self, user: LocalUser | None = None) -> str:
        """`/peer dashboard` as `user` (the trainer by default); the link read back from their DMs."""
        user = user or self.trainer
        reply = await user.command("dashboard")
        assert reply.ok, reply.text
        found = LINK.search(self.platform.dms_to(user.user_id)[-1].message.text)
        assert found is not None
        return found.group(1)

    def user_in(self, user_id: str, *, trainer: bool = True) -> LocalUser:
        return LocalUser(self.app.core, self.platform, user_id, user_id, trainer=trainer)

    async def close(self) -> None:
        await self.http.stop()
        await self.app.close()


async def dashboard_world(demo: DemoResult, folder: Path, **settings: str) -> DashboardWorld:
    """A copy of the demo's database with the dashboard on; `settings` adds or overrides variables."""
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "dashboard.db"
    shutil.copyfile(demo.out_dir / "peerbot-demo.db", db_file)
    values = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_file}",
        "PEERBOT_TIMEZONE": "Europe/Paris",
        "PEERBOT_ORGANISATION": ORGANISATION,
        "PEERBOT_DASHBOARD": "on",
        **settings,
    }
    platform = LocalPlatform()
    clock = FakeClock(NOW)
    app = await build(Settings(_env_file=None, **values), {"local": platform}, clock=clock, with_scheduler=False)  # type: ignore[call-arg]
    core = app.core
    trainer = LocalUser(core, platform, "T1", "Camille (trainer)", trainer=True)
    other = LocalUser(core, platform, "T2", "Dominique", trainer=True)
    learner = LocalUser(core, platform, "L1", "Alice")
    admin = LocalUser(core, platform, "AD", "Admin", admin=True)
    assert (await other.command("cohort create other")).ok
    assert (await other.command("cohort add other <@L20> <@L21>")).ok
    plan = await other.command('session plan other "Secret plans of T2" 2026-04-10 10:00 1h')
    assert plan.ok, plan.text
    http = HttpServer(app)
    world = DashboardWorld(app, http, platform, clock, trainer, other, learner, admin, demo, plan.extra["session"])
    return world

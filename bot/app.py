"""The composition root: settings → storage → core → scheduler → adapters, built inside functions."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from bot.clock import Clock, SystemClock, WarpClock, clock_from_environment
from bot.core import Core
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.metrics import Metrics
from bot.port import Platform
from bot.settings import ConfigError, Settings
from scheduler import jobs
from scheduler.leader import LeaderElector
from scheduler.service import JobScheduler
from storage.db import Database, DatabaseUnavailable

log = logging.getLogger("peerbot")


class Runner(Protocol):
    """A started platform adapter (Slack app, Discord client): it owns its connections."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> bool:
        """Connected to its platform (for /readyz)."""
        ...


@dataclass(frozen=True)
class LeaderOnly:
    """An adapter only the scheduler leader runs (Discord's gateway): built afresh at each election, stopped on
    demotion, so exactly one replica holds the connection."""

    name: str
    build: Callable[[], tuple[Runner, Platform]]


@dataclass
class App:
    settings: Settings
    db: Database
    core: Core
    scheduler: JobScheduler | None
    runners: list[Runner] = field(default_factory=list)
    leader_only: list[LeaderOnly] = field(default_factory=list)
    elector: LeaderElector | None = None
    http: HttpServer | None = None
    _catch_up: asyncio.Task[None] | None = None

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: the database answers, every platform is connected, the scheduler election has
        decided (leader or standby). Each check is bounded, so a hung database makes the probe fail, not hang."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self.db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # whatever the driver raises, the answer is "not ready", never a 500
            checks["database"] = f"unreachable ({type(exc).__name__})"
        for runner in self.runners:
            checks[runner.name] = "connected" if await runner.ready() else "not connected"
        leader = self.elector is not None and self.elector.is_leader
        for adapter in self.leader_only:  # not running: a standby leaves it to the leader, a leader is connecting
            checks.setdefault(adapter.name, "not connected" if leader else "standby")
        checks["scheduler"] = self.elector.role.value if self.elector is not None else "not started"
        return checks

    async def lead(self) -> None:
        """Start the scheduler paused and take part in the leader election: the replica holding the lock runs the
        jobs and, each time it is elected, catches up on the steps that fell due while no one (or a replica that
        died) was leading. On SQLite this process is the leader at once."""
        scheduler = self.scheduler
        assert scheduler is not None
        scheduler.start(paused=True)

        async def elected() -> None:
            scheduler.resume()
            await self._start_leader_only()
            self._catch_up = asyncio.create_task(self._caught_up(), name="peerbot-catch-up")

        async def demoted() -> None:
            scheduler.pause()
            await self._stop_leader_only()

        async def leading() -> None:
            scheduler.poll()
            await self._start_leader_only()  # one that failed to start is tried again at each check

        self.elector = LeaderElector(
            self.settings.database_url, on_elected=elected, on_demoted=demoted, while_leading=leading
        )
        await self.elector.start()

    async def _start_leader_only(self) -> None:
        """Connect the adapters only the leader runs (Discord sends each event to every gateway session of the
        guild's shard, so a second session would handle every interaction twice)."""
        running = {runner.name for runner in self.runners}
        for adapter in self.leader_only:
            if adapter.name in running:
                continue
            runner, platform = adapter.build()
            self.core.attach(platform)  # first: the interactions it hears once connected need it at once
            try:
                await runner.start()
            except Exception:  # retried at the next check; the scheduler meanwhile runs
                log.exception("leader: could not connect %s; retrying", runner.name)
                with contextlib.suppress(Exception):
                    await runner.stop()
                continue
            self.runners.append(runner)
            log.info("leader: %s connected", runner.name)

    async def _stop_leader_only(self) -> None:
        names = {adapter.name for adapter in self.leader_only}
        for runner in [r for r in self.runners if r.name in names]:
            self.runners.remove(runner)
            await runner.stop()
            log.info("no longer leader: %s disconnected", runner.name)

    async def _caught_up(self) -> None:
        try:
            done = await self.core.advance()
        except Exception:  # the scheduler's own jobs retry; a failed catch-up must not end the process
            log.exception("catch-up after the election failed")
            return
        log.info("scheduler leader: %d overdue step(s) caught up", len(done))

    async def close(self) -> None:
        if self.elector is not None:
            await self.elector.stop()  # first: a standby takes over while this process winds down
        if self.http is not None:
            await self.http.stop()
        if self._catch_up is not None:
            self._catch_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catch_up
        for runner in self.runners:
            await runner.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        await self.core.groups.close()
        jobs.bind(None)
        await self.db.dispose()


async def build(
    settings: Settings,
    platforms: dict[str, Platform] | None = None,
    *,
    clock: Clock | None = None,
    with_scheduler: bool = True,
) -> App:
    """The same graph for production, the demo and the tests; migrations run first."""
    db = Database(settings.database_url)
    await db.upgrade()
    warp = clock if isinstance(clock, WarpClock) else None
    scheduler = (
        JobScheduler(settings.database_url, settings.zone, settings.outbox_interval_seconds, warp=warp)
        if with_scheduler
        else None
    )
    metrics = Metrics(enabled=settings.metrics == "on")
    core = Core(db, dict(platforms or {}), settings, clock or SystemClock(), scheduler, metrics=metrics)
    return App(settings, db, core, scheduler)


def enabled_platforms(settings: Settings) -> list[str]:
    return [name for name, on in (("slack", settings.slack_enabled), ("discord", settings.discord_enabled)) if on]


READY = frozenset({"ok", "connected", "leader", "standby"})
READY_TIMEOUT = 3.0  # seconds for the database check of /readyz


class HttpServer:
    """The process's one HTTP server, for every platform set-up (Socket Mode and Discord-only included):
    GET /healthz (the process answers), GET /readyz (it can do its work: 503 with the failing checks otherwise),
    GET /metrics (Prometheus text format, unless PEERBOT_METRICS=off), the trainers' web dashboard under
    /dashboard (PEERBOT_DASHBOARD=on), and in Slack HTTP mode the adapter's POST /slack/events, mounted before
    `start`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.web = web.Application()
        self.web.router.add_get("/healthz", self._healthz)
        self.web.router.add_get("/readyz", self._readyz)
        if app.core.ctx.metrics.enabled:
            self.web.router.add_get("/metrics", self._metrics)
        if app.settings.dashboard_on:
            from adapters.web.dashboard import mount

            mount(self.web, app.core.dashboard, app.db, app.settings, app.core.ctx.clock)
        self.port = app.settings.http_port
        self._runner: web.AppRunner | None = None

    async def start(self, port: int | None = None) -> None:
        """Listen on PEERBOT_HTTP_HOST:PEERBOT_HTTP_PORT (`port=0`: any free port, for tests)."""
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.app.settings.http_host, self.port if port is None else port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("HTTP server on http://%s:%d (/healthz, /readyz, /metrics)", self.app.settings.http_host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        checks = await self.app.readiness()
        failing = sorted(name for name, value in checks.items() if value not in READY)
        body = {"ready": not failing, "checks": checks, "not_ready": failing}
        return web.json_response(body, status=503 if failing else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        metrics, elector = self.app.core.ctx.metrics, self.app.elector
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await metrics.refresh(
                    self.app.db, self.app.core.ctx.clock.now(), leader=bool(elector and elector.is_leader)
                )
        except Exception as exc:  # the counters are still worth serving; the database gauges keep their last value
            log.warning("metrics: could not read the database gauges (%s)", type(exc).__name__)
        return web.Response(body=metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _attach_adapters(app: App) -> None:
    """Build the configured adapters and the HTTP server; Slack's HTTP route is mounted on that server."""
    app.http = HttpServer(app)
    if app.settings.slack_enabled:
        from adapters.slack.runner import SlackRunner
        from storage.seen_events import SeenEventStore

        clock = app.core.ctx.clock
        # A rehearsal runs the whole world faster, the platform's rate limits included (its emulator's too).
        time_scale = 1 / clock.speed if isinstance(clock, WarpClock) else 1.0
        slack = SlackRunner(
            app.core,
            app.settings,
            time_scale=time_scale,
            metrics=app.core.ctx.metrics,
            seen=SeenEventStore(app.db, "slack"),
        )
        app.core.attach(slack.platform)
        app.runners.append(slack)
        if app.settings.slack_http_mode:
            slack.mount(app.http.web)
    if app.settings.discord_enabled:
        from adapters.discord.runner import DiscordRunner
        from storage.dm_channels import DmChannelStore

        dm_store = DmChannelStore(app.db, "discord", str(app.settings.discord_guild_id))

        def discord_runner() -> tuple[Runner, Platform]:
            runner = DiscordRunner(app.core, app.settings, dm_store=dm_store, metrics=app.core.ctx.metrics)
            return runner, runner.platform

        app.leader_only.append(LeaderOnly("discord", discord_runner))


# ------------------------------------------------------------------------------------------------- start-up checks


@contextlib.contextmanager
def startup_errors(settings: Settings) -> Iterator[None]:
    """The one place where a start-up failure becomes a one-line ConfigError naming the variable to fix.

    Anything else passes unchanged: an unexpected failure keeps its traceback.
    """
    try:
        yield
    except DatabaseUnavailable as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from None
    except OSError as exc:
        where = f"{settings.http_host}:{settings.http_port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"PEERBOT_HTTP_PORT: {where} is already in use (peerbot's HTTP server listens there: health, "
                "metrics, Slack HTTP mode); stop the program using it or choose another port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"PEERBOT_HTTP_PORT: listening on {where} is not permitted (ports below 1024 need privileges); "
                "choose a port above 1023"
            ) from None
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"PEERBOT_HTTP_HOST: {settings.http_host!r} is not an address of this machine; "
                "use 127.0.0.1, 0.0.0.0 or one of its own addresses"
            ) from None
        raise


async def check_database(settings: Settings) -> None:
    """Open DATABASE_URL and run a trivial query (SQLite: creating the file if needed)."""
    with startup_errors(settings):
        db = Database(settings.database_url)
        try:
            await db.ping()
        finally:
            await db.dispose()


async def check_http_port(settings: Settings) -> None:
    """Listen on the HTTP server's address and let go, the way aiohttp will bind it, to find a taken port early."""
    with startup_errors(settings):
        server = await asyncio.get_running_loop().create_server(
            asyncio.Protocol, settings.http_host, settings.http_port
        )
        server.close()
        await server.wait_closed()


async def preflight(settings: Settings) -> None:
    """What `peerbot run` needs, checked before anything starts: no migration, connection or bound port is left
    half-done when one of them is wrong."""
    await check_http_port(settings)  # every replica serves /healthz, /readyz and /metrics
    await check_database(settings)


async def run(settings: Settings) -> None:
    """`peerbot run`: start the configured adapters, then the scheduler: run by this process when it wins the
    leader election (always on SQLite), on standby otherwise; the leader catches up on anything missed."""
    await preflight(settings)
    clock = clock_from_environment()
    if isinstance(clock, WarpClock):
        log.warning("clock warped (PEERBOT_CLOCK_WARP=%s): a rehearsal, not production", clock)
    app = await build(settings, clock=clock)
    await _attach_adapters(app)
    jobs.bind(app.core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with startup_errors(settings):  # the port may still be taken between the check and the bind
            assert app.http is not None
            await app.http.start()  # first: /healthz answers, and /readyz says what is not ready yet
            for runner in app.runners:
                await runner.start()
        await app.lead()
        assert app.elector is not None
        log.info("peerbot running on %s; scheduler: %s", ", ".join(enabled_platforms(settings)), app.elector.role.value)
        await stop.wait()
    finally:
        await app.close()

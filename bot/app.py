"""The composition root: settings → storage → core → scheduler → adapters, built inside functions."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from bot.clock import Clock, SystemClock
from bot.core import Core
from bot.port import Platform
from bot.settings import ConfigError, Settings
from scheduler import jobs
from scheduler.service import JobScheduler
from storage.db import Database, DatabaseUnavailable

log = logging.getLogger("peerbot")


class Runner(Protocol):
    """A started platform adapter (Slack app, Discord client): it owns its connections."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class App:
    settings: Settings
    db: Database
    core: Core
    scheduler: JobScheduler | None
    runners: list[Runner] = field(default_factory=list)

    async def close(self) -> None:
        for runner in self.runners:
            await runner.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
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
    scheduler = (
        JobScheduler(settings.database_url, settings.zone, settings.outbox_interval_seconds) if with_scheduler else None
    )
    core = Core(db, dict(platforms or {}), settings, clock or SystemClock(), scheduler)
    return App(settings, db, core, scheduler)


def enabled_platforms(settings: Settings) -> list[str]:
    return [name for name, on in (("slack", settings.slack_enabled), ("discord", settings.discord_enabled)) if on]


async def _attach_adapters(app: App) -> None:
    if app.settings.slack_enabled:
        from adapters.slack.runner import SlackRunner

        slack = SlackRunner(app.core, app.settings)
        app.core.attach(slack.platform)
        app.runners.append(slack)
    if app.settings.discord_enabled:
        from adapters.discord.runner import DiscordRunner
        from storage.dm_channels import DmChannelStore

        dm_store = DmChannelStore(app.db, "discord", str(app.settings.discord_guild_id))
        discord_runner = DiscordRunner(app.core, app.settings, dm_store=dm_store)
        app.core.attach(discord_runner.platform)
        app.runners.append(discord_runner)


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
                f"PEERBOT_HTTP_PORT: {where} is already in use (Slack HTTP mode listens there); "
                "stop the program using it or choose another port"
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
    """Listen on the Slack HTTP address and let go, the way aiohttp will bind it, to find a taken port early."""
    with startup_errors(settings):
        server = await asyncio.get_running_loop().create_server(
            asyncio.Protocol, settings.http_host, settings.http_port
        )
        server.close()
        await server.wait_closed()


async def preflight(settings: Settings) -> None:
    """What `peerbot run` needs, checked before anything starts: no migration, connection or bound port is left
    half-done when one of them is wrong."""
    if settings.slack_http_mode:
        await check_http_port(settings)
    await check_database(settings)


async def run(settings: Settings) -> None:
    """`peerbot run`: start the configured adapters, the scheduler, and catch up on anything missed."""
    await preflight(settings)
    app = await build(settings)
    await _attach_adapters(app)
    jobs.bind(app.core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with startup_errors(settings):  # the port may still be taken between the check and the bind
            for runner in app.runners:
                await runner.start()
        assert app.scheduler is not None
        app.scheduler.start()
        caught_up = await app.core.advance()
        log.info(
            "peerbot running on %s; %d overdue step(s) caught up",
            ", ".join(enabled_platforms(settings)),
            len(caught_up),
        )
        await stop.wait()
    finally:
        await app.close()

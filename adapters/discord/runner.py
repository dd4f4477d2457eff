"""Starts and stops the Discord adapter inside the composition root (`bot.app`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.bot import PeerBot
from adapters.discord.calls import api_trace
from adapters.discord.platform import DiscordPlatform, DmStore
from bot.inbound import CoreAPI
from bot.metrics import Metrics
from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_API = "https://discord.com/api/v10"
PURGE_EVERY = 6 * 3600.0  # seconds between two passes over the archived breakouts


class DiscordRunner:
    """Owns the client and its gateway task; `platform` is usable by the core as soon as `start` returns."""

    name = "discord"

    def __init__(
        self,
        core: CoreAPI,
        settings: Settings,
        *,
        global_rate: float = 45.0,
        dm_store: DmStore | None = None,
        metrics: Metrics | None = None,
        **client_options: Any,
    ) -> None:
        """`metrics`: where REST calls, 429s and the ack latency of interactions are counted."""
        if settings.discord_token is None or settings.discord_guild_id is None:
            raise ValueError("DISCORD_TOKEN and DISCORD_GUILD_ID are required for the Discord adapter")
        self.settings = settings
        self.token = settings.discord_token.get_secret_value()
        self.metrics = metrics or Metrics(enabled=False)
        client_options.setdefault(
            "http_trace",
            api_trace(settings.discord_api_url, lambda route, status: self.metrics.api_call("discord", route, status)),
        )
        self.client = PeerBot(
            core,
            guild_id=settings.discord_guild_id,
            trainer_role=settings.discord_trainer_role,
            application_id=settings.discord_application_id,
            metrics=self.metrics,
            **client_options,
        )
        self.platform = DiscordPlatform(
            self.client.http,
            settings.discord_guild_id,
            trainer_role=settings.discord_trainer_role,
            cleanup=settings.discord_breakout_cleanup,
            global_rate=global_rate,
            live_channels=self._live_channels,
            dm_store=dm_store,
            archive_days=settings.discord_archive_days,
            locale=settings.locale,
        )
        self._task: asyncio.Task[None] | None = None
        self._purge: asyncio.Task[None] | None = None
        self.purge_every = PURGE_EVERY

    def _live_channels(self) -> int | None:
        """How many channels the guild has now, from the gateway's state (None before READY)."""
        guild = self.client.get_guild(self.settings.discord_guild_id or 0) if self.client.is_ready() else None
        return len(guild.channels) if guild is not None else None

    async def start(self) -> None:
        api = self.settings.discord_api_url.rstrip("/")
        if api != DEFAULT_API:  # a self-hosted proxy or the test emulator
            discord.http.Route.BASE = api
        await self.client.login(self.token)
        if api != DEFAULT_API:
            gateway = await self.client.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway[1])
        assert self.client.user is not None
        self.platform.bot_user_id = self.client.user.id
        self._task = asyncio.create_task(self.client.connect(reconnect=True))
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()
        self._purge = asyncio.create_task(self._purge_archives())

    async def _purge_archives(self) -> None:
        """Frees archived breakouts past their retention (DISCORD_ARCHIVE_DAYS) now and then: Discord-only
        housekeeping on channels the bot made, so it lives with the adapter rather than in the core's steps."""
        while True:
            try:
                removed = await self.platform.purge_archives()
                if removed:
                    log.info("deleted %d archived breakout(s) past their retention", removed)
            except Exception:
                log.exception("could not delete the archived breakouts past their retention")
            await asyncio.sleep(self.purge_every)

    async def ready(self) -> bool:
        """The gateway task runs and the client has received READY (discord.py reconnects by itself)."""
        running = self._task is not None and not self._task.done()
        return running and self.client.is_ready() and not self.client.is_closed()

    async def stop(self) -> None:
        if self._purge is not None:
            self._purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge
        await self.client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
                await self._task

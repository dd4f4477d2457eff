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
from adapters.discord.platform import DiscordPlatform
from bot.inbound import CoreAPI
from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_API = "https://discord.com/api/v10"


class DiscordRunner:
    """Owns the client and its gateway task; `platform` is usable by the core as soon as `start` returns."""

    name = "discord"

    def __init__(self, core: CoreAPI, settings: Settings, *, global_rate: float = 45.0, **client_options: Any) -> None:
        if settings.discord_token is None or settings.discord_guild_id is None:
            raise ValueError("DISCORD_TOKEN and DISCORD_GUILD_ID are required for the Discord adapter")
        self.settings = settings
        self.token = settings.discord_token.get_secret_value()
        self.client = PeerBot(
            core,
            guild_id=settings.discord_guild_id,
            trainer_role=settings.discord_trainer_role,
            application_id=settings.discord_application_id,
            **client_options,
        )
        self.platform = DiscordPlatform(
            self.client.http,
            settings.discord_guild_id,
            trainer_role=settings.discord_trainer_role,
            cleanup=settings.discord_breakout_cleanup,
            global_rate=global_rate,
        )
        self._task: asyncio.Task[None] | None = None

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

    async def ready(self) -> bool:
        """The gateway task runs and the client has received READY (discord.py reconnects by itself)."""
        running = self._task is not None and not self._task.done()
        return running and self.client.is_ready() and not self.client.is_closed()

    async def stop(self) -> None:
        await self.client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
                await self._task

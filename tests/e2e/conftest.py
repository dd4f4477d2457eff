"""Fixtures shared by the e2e modules that drive a platform adapter through the real HTTP client only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest

from tests.emulators.discord_emulator import DiscordEmulator


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    """A fast Discord emulator (no gateway client needed)."""
    async with DiscordEmulator(time_scale=0.002) as emulator:
        yield emulator


@pytest.fixture
async def http(emu: DiscordEmulator) -> AsyncIterator[discord.http.HTTPClient]:
    """discord.py's real HTTP client, logged in against `emu`."""
    client = discord.Client(intents=discord.Intents.none())
    await client.login(emu.token)
    yield client.http
    await client.close()

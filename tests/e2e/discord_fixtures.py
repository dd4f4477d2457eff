"""Discord e2e fixtures: a running emulator and a helper that runs any discord.py client on it.

Kept out of conftest.py (owned by others): test modules import what they need from here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest

from tests.emulators.discord_emulator import DiscordEmulator


@pytest.fixture
async def discord_emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(time_scale=0.01) as emu:
        yield emu


@contextlib.asynccontextmanager
async def running(client: discord.Client, emu: DiscordEmulator) -> AsyncIterator[discord.Client]:
    """Logs `client` in against the emulator, connects its gateway and waits for READY; closes on exit."""
    await client.login(emu.token)
    task = asyncio.create_task(client.connect(reconnect=True))
    try:
        async with asyncio.timeout(10):
            ready = asyncio.create_task(client.wait_until_ready())
            done, _ = await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                ready.cancel()
                task.result()  # re-raises why the gateway connection ended
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)

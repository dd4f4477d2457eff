"""`peerbot run` replicas as real processes for the system tests: start, SIGKILL, restart, ask who leads.

Each replica writes its log to a file, never to a pipe nobody reads (a full pipe would freeze it mid-run).
The replicas share one warped clock (`PEERBOT_CLOCK_WARP`): the same origin, anchor and speed in every process,
so a 20-minute session passes in 20 seconds and every replica agrees on the time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bot.clock import WARP_VARIABLE, WarpClock
from tests.e2e.test_run_process import SECRET, free_port, process_env
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.slack_driver import DriverResponse, SlackDriver

BOUND = 90.0  # seconds: a hang guard for waiting, never a speed assertion


@dataclass
class Replica:
    name: str
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts}\n".encode())
            out.flush()
            env = {**self.env, "PEERBOT_HTTP_PORT": str(self.port)}
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "run", cwd=self.workdir, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=out,
            )  # fmt: skip
        await self.wait_healthy()

    async def wait_healthy(self) -> None:
        async with aiohttp.ClientSession() as http, asyncio.timeout(BOUND):
            while True:
                if not self.alive:
                    raise AssertionError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
                try:
                    async with http.get(f"{self.base}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL: no goodbye, no lock released by hand; the database notices the dropped connection."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return int(self.proc.returncode or 0)

    async def role(self) -> str:
        """What /readyz says of the scheduler: leader, standby, or "" when the replica does not answer."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
                http.get(f"{self.base}/readyz") as resp,
            ):
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            return ""
        return str(body["checks"].get("scheduler", ""))


async def leader_of(replicas: list[Replica]) -> Replica | None:
    for replica in replicas:
        if replica.alive and await replica.role() == "leader":
            return replica
    return None


async def wait_for_leader(replicas: list[Replica], *, besides: Replica | None = None) -> Replica:
    """The replica that reports leading (other than `besides`, the one just killed)."""
    async with asyncio.timeout(BOUND):
        while True:
            found = await leader_of([r for r in replicas if r is not besides])
            if found is not None:
                return found
            await asyncio.sleep(0.05)


async def kill_and_time_takeover(replicas: list[Replica], victim: Replica) -> float:
    """SIGKILL `victim` (the leader) and return the seconds until another replica reports leading."""
    killed_at = time.monotonic()
    await victim.kill()
    await wait_for_leader(replicas, besides=victim)
    return time.monotonic() - killed_at


def warp_env(clock: WarpClock, emu: SlackEmulator, database_url: str, **extra: str) -> dict[str, str]:
    """The environment every replica gets: one database, the Slack emulator in HTTP mode, the shared clock."""
    return process_env(
        DATABASE_URL=database_url,
        PEERBOT_TIMEZONE="UTC",
        PEERBOT_OUTBOX_INTERVAL="0.5",
        SLACK_BOT_TOKEN=emu.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=emu.base_url,
        **{WARP_VARIABLE: str(clock)},
        **extra,
    )


class Ingress:
    """A load balancer in front of the replicas' Slack endpoints: each request goes to the next live replica,
    and to another one when that one dies under it (a learner's click is never lost to a crash)."""

    def __init__(self, emu: SlackEmulator, replicas: list[Replica]) -> None:
        self.emu, self.replicas, self.turn = emu, replicas, 0
        self.drivers = {r.name: SlackDriver(f"{r.base}/slack/events", SECRET, emulator=emu) for r in replicas}

    async def __aenter__(self) -> Ingress:
        for driver in self.drivers.values():
            await driver.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for driver in self.drivers.values():
            await driver.__aexit__(None, None, None)

    def _next(self) -> SlackDriver:
        for _ in range(len(self.replicas) * 2):
            replica = self.replicas[self.turn % len(self.replicas)]
            self.turn += 1
            if replica.alive:
                return self.drivers[replica.name]
        raise AssertionError("no live replica")

    async def slash(self, user: str, text: str, channel: str) -> Any:
        async with asyncio.timeout(BOUND):
            while True:
                try:
                    resp, _ = await self._next().slash_command(user, text, channel_id=channel)
                    return resp.json()
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)

    async def click(self, user: str, action_id: str, channel: str, ts: str) -> DriverResponse:
        async with asyncio.timeout(BOUND):
            while True:
                try:
                    return await self._next().block_action(user, action_id, channel_id=channel, message_ts=ts)
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)


def dm_keys(emu: SlackEmulator, prefix: str) -> Counter[str]:
    """How many times each delivery key (Slack message metadata) was posted in a DM: the learner's view."""
    seen: Counter[str] = Counter()
    for channel in emu.channels.values():
        if not channel.is_im:
            continue
        for message in emu.history(channel.id):
            key = str(((message.metadata or {}).get("event_payload") or {}).get("key", ""))
            if key.startswith(prefix):
                seen[key] += 1
    return seen


async def fetch(database_url: str, query: str, *args: object) -> list[Any]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def wait_until_sql(database_url: str, query: str, expected: object, *, within: float = BOUND) -> None:
    async with asyncio.timeout(within):
        while True:
            rows = await fetch(database_url, query)
            if rows and rows[0][0] == expected:
                return
            await asyncio.sleep(0.2)


def at(day: datetime, hour: int, minute: int) -> datetime:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)

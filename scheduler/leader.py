"""Which replica runs the scheduler: the one holding a PostgreSQL advisory lock on a dedicated connection.

Several `peerbot run` processes may share one PostgreSQL database; if each ran the APScheduler jobs, every
timed step would be attempted N times. The lock is session-level and lives with one connection kept outside
the pool, so it goes away exactly when that connection does: a leader that is SIGKILLed, loses its network
(the server's TCP keep-alives, set short below, notice) or is terminated by an admin releases it, and a standby,
retrying every `retry` seconds, takes it over. The leader checks its connection as often; when the check fails
it steps down before anyone else can be elected on a connection it no longer has. SQLite is one process: it is
always the leader.

The callbacks are told of each change (and `while_leading` after each good check, so the leader can look
for jobs a standby added to the shared job store); steps are idempotent, so the short overlap possible when a leader
notices its loss a moment after a standby took over does no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum

import asyncpg

from storage.db import async_url

log = logging.getLogger(__name__)

# The lock's 64-bit key: advisory locks are per database, so one key per peerbot database is enough.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"peerbot:scheduler-leader").digest()[:8], "big", signed=True)
RETRY_SECONDS = 2.0  # a standby's attempt and a leader's check, each this often: takeover well within 10 s
CHECK_TIMEOUT = 3.0  # a leader whose connection does not answer within this has lost it
# Server side: a peer that vanished without closing its socket (lost network) is dropped after ~ idle + n*interval.
KEEPALIVES = {"tcp_keepalives_idle": "3", "tcp_keepalives_interval": "1", "tcp_keepalives_count": "3"}

Callback = Callable[[], Awaitable[None]]


class Role(StrEnum):
    STARTING = "starting"
    LEADER = "leader"
    STANDBY = "standby"
    STOPPED = "stopped"


async def _nothing() -> None:
    return None


class LeaderElector:
    """Elects this process as the scheduler leader or keeps it on standby; `role` says which, for /readyz."""

    def __init__(
        self,
        database_url: str,
        *,
        on_elected: Callback = _nothing,
        on_demoted: Callback = _nothing,
        while_leading: Callback = _nothing,
        retry: float = RETRY_SECONDS,
        key: int = LOCK_KEY,
    ) -> None:
        url = async_url(database_url)
        self.postgres = url.get_backend_name() == "postgresql"
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_elected, self.on_demoted, self.while_leading = on_elected, on_demoted, while_leading
        self.retry, self.key = retry, key
        self.role = Role.STARTING
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.role == Role.LEADER

    @property
    def backend_pid(self) -> int | None:
        """The server process of the dedicated connection (what an admin would terminate)."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def start(self) -> None:
        """SQLite: become the leader now. PostgreSQL: make the first attempt now, then keep trying in the
        background (so `start` returns with the role decided)."""
        if not self.postgres:
            await self._become(Role.LEADER)
            return
        await self._step()
        self._task = asyncio.create_task(self._loop(), name="peerbot-leader-election")

    async def stop(self) -> None:
        """Give the lock up (by closing its connection) so a standby takes over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop()
        was_leader = self.is_leader
        self.role = Role.STOPPED
        if was_leader:
            await self.on_demoted()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.retry)
            try:
                await self._step()
            except Exception:  # a bug in a callback must not end the election: log it and go on
                log.exception("scheduler leader election: unexpected failure")

    async def _step(self) -> None:
        if self.is_leader:
            if not await self._still_connected():
                log.warning("scheduler leader: lost the database connection holding the lock; standing by")
                await self._drop()
                await self._become(Role.STANDBY)
            else:
                await self.while_leading()
            return
        try:
            conn = self._conn
            if conn is None or conn.is_closed():
                conn = self._conn = await asyncio.wait_for(
                    asyncpg.connect(self.dsn, server_settings=KEEPALIVES), timeout=CHECK_TIMEOUT * 3
                )
            assert conn is not None
            got = await asyncio.wait_for(
                conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key), timeout=CHECK_TIMEOUT
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("scheduler leader election: database unavailable (%s); retrying", type(exc).__name__)
            await self._drop()
            await self._become(Role.STANDBY)
            return
        await self._become(Role.LEADER if got else Role.STANDBY)

    async def _still_connected(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), timeout=CHECK_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # no goodbye round trip: the connection may be the thing that is broken

    async def _become(self, role: Role) -> None:
        before, self.role = self.role, role
        if role == before:
            return
        if role == Role.LEADER:
            log.info("scheduler leader: elected; this replica runs the scheduled jobs")
            await self.on_elected()
        elif before == Role.LEADER:
            await self.on_demoted()
        else:
            log.info("scheduler leader: another replica leads; standing by")

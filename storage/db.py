"""Engine and session factory; built by the composition root, never at import time."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.chain import ChainedSession

MIGRATIONS = Path(__file__).parent / "migrations"
_IN_UNIT_OF_WORK: ContextVar[bool] = ContextVar("peerbot_in_unit_of_work", default=False)
# The advisory lock key that serialises migrations between replicas (the scheduler leader's key is another one).
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"peerbot:migrations").digest()[:8], "big", signed=True)
PING_TIMEOUT = 10.0  # seconds; asyncpg alone waits 60 s for a host that drops packets


class DatabaseUnavailable(Exception):
    """The database cannot be opened; the message says why and what to change in one line (no driver traceback).

    Storage knows the drivers' failures; the composition root (`bot.app.startup_errors`) names the variable.
    """


def _opening_failure(exc: BaseException, url: URL) -> DatabaseUnavailable | None:
    """What a failure to open `url` means for the person who wrote it; None when it is not an opening failure."""
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").absolute()
        if isinstance(exc, DBAPIError):
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
            if "not a database" in reason:
                return DatabaseUnavailable(
                    f"{path} is not a SQLite database ({reason}); move that file away or use another path"
                )
            if path.is_dir():
                return DatabaseUnavailable(f"{path} is a folder; give the path of a file, e.g. {path / 'peerbot.db'}")
            return DatabaseUnavailable(
                f"cannot open the SQLite file {path} ({reason}); make its folder writable or use another path"
            )
        if isinstance(exc, OSError):  # creating the file's folder
            blocker = next((p for p in path.parents if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                return DatabaseUnavailable(
                    f"{blocker} is a file, not a folder; put the SQLite file elsewhere, "
                    f"e.g. {blocker.parent / 'peerbot.db'}"
                )
            return DatabaseUnavailable(
                f"cannot create the folder {path.parent} for the SQLite file ({exc.strerror or exc}); "
                "use a path whose folders exist or can be created"
            )
        return None
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    if isinstance(exc, socket.gaierror):
        return DatabaseUnavailable(f"cannot resolve the host {url.host!r} ({exc.strerror}); correct the host name")
    if isinstance(exc, ConnectionRefusedError):
        return DatabaseUnavailable(f"{where} refused the connection; start the server or correct the host and port")
    if isinstance(exc, TimeoutError):
        return DatabaseUnavailable(
            f"no answer from {where} within {PING_TIMEOUT:.0f} s; check the host, the port and any firewall"
        )
    if isinstance(exc, OSError):
        return DatabaseUnavailable(f"cannot reach {where} ({exc.strerror or exc}); check the host and port")
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        return DatabaseUnavailable(
            f"{where} refused to open database {url.database!r} for user {url.username!r} ({reason}); "
            "correct the user, password and database name"
        )
    return None


def async_url(raw: str) -> URL:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async drivers."""
    url = make_url(raw)
    if url.drivername in {"sqlite", "sqlite+pysqlite"}:
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}:
        url = url.set(drivername="postgresql+asyncpg")
    return url


def sync_url(raw: str) -> URL:
    """The same database for synchronous users (Alembic's offline bits, APScheduler's job store)."""
    url = async_url(raw)
    if url.drivername == "sqlite+aiosqlite":
        return url.set(drivername="sqlite+pysqlite")
    return url.set(drivername="postgresql+psycopg")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _ping_sqlite(raw_url: str) -> None:
    """Open the SQLite file with the synchronous driver, same pragmas, and run `SELECT 1`.

    Not through aiosqlite: when opening fails, its worker thread reports to an event loop that `asyncio.run` may
    already have closed and prints "Event loop is closed" tracebacks (omnilib/aiosqlite#241).
    """
    engine = create_engine(sync_url(raw_url), poolclass=NullPool)
    event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def make_engine(raw_url: str, **kwargs: Any) -> AsyncEngine:
    url = async_url(raw_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            try:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _opening_failure(exc, url) or exc from None
        # One connection: SQLite has one writer anyway, and queueing in the pool is FIFO and immediate,
        # where competing connections would meet SQLITE_BUSY and its sleeping back-off (tens of ms).
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(url, **kwargs)


class Database:
    """Owns the engine; `transaction()` is the unit of work: one transaction, committed on success."""

    def __init__(self, raw_url: str, **engine_kwargs: Any) -> None:
        self.raw_url = raw_url
        self.engine = make_engine(raw_url, **engine_kwargs)
        self._factory = async_sessionmaker(
            self.engine, class_=AsyncSession, sync_session_class=ChainedSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        # A unit of work opened inside another one (same task) would wait for a second connection, which
        # the one-connection SQLite pool never frees: fail at once instead of hanging.
        if _IN_UNIT_OF_WORK.get():
            raise RuntimeError("nested database transaction: pass the open transaction (`tx`) down instead")
        token = _IN_UNIT_OF_WORK.set(True)
        try:
            async with self._factory() as tx, tx.begin():
                yield tx
        finally:
            _IN_UNIT_OF_WORK.reset(token)

    async def ping(self) -> None:
        """Open a connection and run `SELECT 1`, so a wrong DATABASE_URL fails in one line, before anything starts.

        Raises DatabaseUnavailable for the failures the URL's owner can fix; other errors pass unchanged.
        """
        url = async_url(self.raw_url)
        try:
            if url.get_backend_name() == "sqlite":
                await asyncio.to_thread(_ping_sqlite, self.raw_url)
            else:
                async with asyncio.timeout(PING_TIMEOUT), self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except (OSError, TimeoutError, DBAPIError) as exc:
            raise _opening_failure(exc, url) or exc from None

    async def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision.

        Replicas started together (`docker compose up`) would otherwise race to create the same tables: on
        PostgreSQL the migration runs under a transaction-level advisory lock, so the second replica waits for
        the first one's commit and then finds the schema at head (SQLite's one writer serialises them anyway)."""
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.run_sync(_run_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _run_upgrade(connection: Any) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


async def insert_rows(
    tx: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]], skip_taken: tuple[str, ...] = ()
) -> None:
    """Insert `rows` in one executemany; with `skip_taken` (a unique constraint's columns), rows whose key is
    already taken are skipped instead of failing the statement.

    Not the ORM's unit of work: on SQLite it inserts one row per statement to read each id back (SQLite
    gives no order guarantee for a multi-row RETURNING), a thread hop each through aiosqlite; a class of
    500 checking in at once then waits for 1,000 of them. The caller reads the ids back if it needs them.
    """
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    insert = postgresql_insert if tx.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(skip_taken)) if skip_taken else insert(table)
    conn = await tx.connection()  # the transaction's connection, outside the ORM
    await conn.execute(statement, rows)

"""Engine and session factory; built by the composition root, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).parent / "migrations"
_IN_UNIT_OF_WORK: ContextVar[bool] = ContextVar("peerbot_in_unit_of_work", default=False)


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


def make_engine(raw_url: str, **kwargs: Any) -> AsyncEngine:
    url = async_url(raw_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
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
        self._factory = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

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

    async def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as conn:
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

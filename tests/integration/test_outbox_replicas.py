"""Replicas share one outbox: two `Core`s built on the same database drain it at once, and every delivery is
sent once; a row another worker holds is skipped, not waited for; a worker whose lease ran out cannot
overwrite the record of the one that took its row over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlmodel import select

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.app import App, build
from bot.clock import FakeClock
from bot.core.rules import DELIVERY_LEASE
from bot.messages import Message
from bot.refs import MessageRef, UserRef
from storage.models import Delivery
from tests.conftest import T0, World, make_settings, postgres_or_skip, reset_postgres


@dataclass
class SendLog:
    """Every `send_dm` call that reached the platform, with the worker that made it (before any dedupe)."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (worker, idempotency key)

    def per_key(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _worker, key in self.calls:
            out[key] = out.get(key, 0) + 1
        return out


class Worker:
    """The shared local platform as one replica sees it: each DM call is logged under the replica's name and
    yields to the event loop first, so the two replicas' passes interleave. `gate`, when set, holds this
    replica's sends until it is opened (a worker stuck behind a rate limit)."""

    def __init__(self, inner: LocalPlatform, name: str, log: SendLog) -> None:
        self.inner, self.worker, self.send_log = inner, name, log
        self.name = inner.name
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        await asyncio.sleep(0)
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        self.send_log.calls.append((self.worker, message.key))
        return await self.inner.send_dm(user, message)


@dataclass
class Replicas:
    world: World  # replica A, with the people who use it
    other: App  # replica B: same database, same platform
    workers: tuple[Worker, Worker]
    log: SendLog


async def two_replicas(database_url: str, learners: int) -> AsyncIterator[Replicas]:
    platform = LocalPlatform()
    log = SendLog()
    a, b = Worker(platform, "A", log), Worker(platform, "B", log)
    clock = FakeClock(T0)
    settings = make_settings(database_url)
    first = await build(settings, {"local": a}, clock=clock, with_scheduler=False)  # type: ignore[dict-item]
    second = await build(settings, {"local": b}, clock=clock, with_scheduler=False)  # type: ignore[dict-item]
    trainer = LocalUser(first.core, platform, "T1", "Trainer", trainer=True)
    people = [LocalUser(first.core, platform, f"L{i}", f"Learner {i}") for i in range(1, learners + 1)]
    channel = platform.add_channel("cohort", ["T1", *(u.user_id for u in people)])
    try:
        yield Replicas(World(first, platform, clock, trainer, people, channel.id), second, (a, b), log)
    finally:
        await second.close()
        await first.close()


@pytest.fixture
async def on_postgres() -> AsyncIterator[Replicas]:
    url = postgres_or_skip()
    await reset_postgres(url)
    async for replicas in two_replicas(url, 40):
        yield replicas


@pytest.fixture
async def on_either(database_url: str) -> AsyncIterator[Replicas]:
    async for replicas in two_replicas(database_url, 1):
        yield replicas


async def queue_questionnaires(world: World) -> list[str]:
    """Every learner attends; the session ends; their questionnaire DMs are queued, not yet sent."""
    assert (await world.trainer.command(f"cohort create py <#{world.channel_id}|cohort>")).ok
    mentions = " ".join(f"<@{u.user_id}>={1 + i % 5}" for i, u in enumerate(world.learners))
    assert (await world.trainer.command(f"cohort add py {mentions}")).ok
    reply = await world.trainer.command('session plan py "Replicas" 2026-03-09 10:00 1h groups_from=checked_in')
    assert reply.ok, reply.text
    short = str(reply.extra["session"])
    await world.check_in_at_start(short, len(world.learners))
    await world.core.timeline.start(short, by="test")
    world.clock.set(world.clock.now() + timedelta(minutes=90))
    await world.core.timeline.end(short, by="test")
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).all()
    assert rows and all(row.state == "pending" for row in rows)
    return sorted(row.idempotency_key for row in rows)


async def feedback_states(world: World) -> dict[str, str]:
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).all()
    return {row.idempotency_key: row.state for row in rows}


@pytest.mark.postgres
async def test_two_replicas_draining_at_once_send_every_delivery_exactly_once(on_postgres: Replicas) -> None:
    world, other = on_postgres.world, on_postgres.other
    keys = await queue_questionnaires(world)
    sent_a, sent_b = await asyncio.gather(world.core.deliver_due(), other.core.deliver_due())

    assert await feedback_states(world) == dict.fromkeys(keys, "sent")
    feedback_calls = {k: n for k, n in on_postgres.log.per_key().items() if k in keys}
    assert feedback_calls == dict.fromkeys(keys, 1)  # no delivery reached the platform twice, none was missed
    assert sent_a + sent_b == len(keys)  # each send counted by the one worker that claimed it
    workers = {worker for worker, key in on_postgres.log.calls if key in keys}
    assert workers == {"A", "B"}  # and the two replicas shared the work


@pytest.mark.postgres
async def test_a_row_another_worker_holds_is_skipped_not_waited_for(on_postgres: Replicas) -> None:
    world = on_postgres.world
    keys = await queue_questionnaires(world)
    held = keys[0]
    conn = await asyncpg.connect(world.app.settings.database_url.replace("+asyncpg", ""))
    try:
        async with conn.transaction():  # another worker in the middle of claiming this row
            await conn.execute("SELECT id FROM delivery WHERE idempotency_key = $1 FOR UPDATE", held)
            # Without SKIP LOCKED the pass would block on that row until the lock goes: the bound only turns
            # such a hang into a failure.
            await asyncio.wait_for(world.core.deliver_due(), timeout=120)
            states = await feedback_states(world)
            assert states.pop(held) == "pending"
            assert set(states.values()) == {"sent"}
        await world.core.deliver_due()
    finally:
        await conn.close()
    assert await feedback_states(world) == dict.fromkeys(keys, "sent")


async def test_a_worker_whose_lease_ran_out_does_not_overwrite_the_takeover(on_either: Replicas) -> None:
    world, other = on_either.world, on_either.other
    (key,) = await queue_questionnaires(world)
    slow, _fast = on_either.workers
    slow.gate = asyncio.Event()
    stuck = asyncio.create_task(world.core.deliver_due())  # replica A claims the row, then waits on the platform
    await slow.waiting.wait()
    world.clock.set(world.clock.now() + DELIVERY_LEASE + timedelta(seconds=1))
    assert await other.core.deliver_due() == 1  # replica B finds the lease expired and sends it
    async with world.app.db.transaction() as tx:
        taken_over = (await tx.exec(select(Delivery).where(Delivery.idempotency_key == key))).one()
    slow.gate.set()
    assert await stuck == 0  # A's send went through the platform's dedupe, and its late record is refused
    async with world.app.db.transaction() as tx:
        final = (await tx.exec(select(Delivery).where(Delivery.idempotency_key == key))).one()
    assert (final.state, final.attempts, final.message_id) == ("sent", 2, taken_over.message_id)
    assert [p.message.key for p in world.platform.dms_to("L1")].count(key) == 1  # one DM for the learner

"""The outbox is the truth: a crash at any point loses no due DM and sends none twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from adapters.local.platform import LocalPlatform
from bot.app import build
from bot.core.rules import DELIVERY_LEASE
from bot.messages import Message
from bot.port import MessageRef, UserRef
from storage.models import Delivery
from tests.conftest import World, make_settings
from tests.fakes import CrashAfterDm, SimulatedCrash
from tests.integration.test_session_flow import plan, session_row


async def ended_session(world: World, attendees: int) -> str:
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners[:attendees]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await world.core.timeline.start(short, by="test")
    world.clock.set(start + timedelta(minutes=90))
    return short


def survey_dms(platform: LocalPlatform, user_id: str) -> int:
    return sum(
        1 for p in platform.dms_to(user_id) if any(b.action_id.startswith("survey:open") for b in p.message.buttons)
    )


async def states(world: World) -> dict[str, int]:
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).all()
    out: dict[str, int] = {}
    for row in rows:
        out[row.state] = out.get(row.state, 0) + 1
    return out


async def test_crash_after_send_before_bookkeeping_neither_loses_nor_duplicates(world: World) -> None:
    short = await ended_session(world, 5)
    await world.core.timeline.end(short, by="test")  # queues 5 feedback DMs but delivery has not run yet
    world.core.attach(CrashAfterDm(world.platform))  # type: ignore[arg-type]  # a Platform by delegation
    with pytest.raises(SimulatedCrash):
        await world.core.deliver_due()
    # The process "dies": one DM went out, its row is stuck in `sending`.
    assert (await states(world)).get("sending") == 1
    sent_before = sum(survey_dms(world.platform, u.user_id) for u in world.learners)
    assert sent_before == 1

    # A new process on the same database and platform, after the claim's lease expired.
    settings = make_settings(world.app.settings.database_url)
    restarted = await build(settings, {"local": world.platform}, clock=world.clock, with_scheduler=False)
    try:
        world.clock.set(world.clock.now() + DELIVERY_LEASE + timedelta(seconds=1))
        await restarted.core.deliver_due()
        await restarted.core.deliver_due()  # and a second worker pass finds nothing left
    finally:
        await restarted.close()
    assert await states(world) == {"sent": 5}
    assert [survey_dms(world.platform, u.user_id) for u in world.learners[:5]] == [1, 1, 1, 1, 1]


async def test_claim_without_send_is_sent_after_the_lease(world: World) -> None:
    short = await ended_session(world, 3)
    await world.core.timeline.end(short, by="test")
    async with world.app.db.transaction() as tx:  # a worker claimed a row and died before sending
        row = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).first()
        assert row is not None
        row.state, row.claimed_at, row.attempts = "sending", world.clock.now(), 1
    await world.core.deliver_due()
    assert (await states(world)) == {"sending": 1, "sent": 2}  # still leased: not sent twice concurrently
    world.clock.set(world.clock.now() + DELIVERY_LEASE + timedelta(seconds=1))
    await world.core.deliver_due()
    assert await states(world) == {"sent": 3}
    assert [survey_dms(world.platform, u.user_id) for u in world.learners[:3]] == [1, 1, 1]


class SlowDms:
    """The local platform, except that each DM takes two minutes (rate limits on a large fan-out), and while the
    fourth is on its way another pass runs, as the scheduler's sweep does beside a session's end."""

    def __init__(self, world: World) -> None:
        self.world, self.inner, self.name = world, world.platform, world.platform.name
        self.sent = 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        self.world.clock.set(self.world.clock.now() + timedelta(minutes=2))
        self.sent += 1
        if self.sent == 4:
            await self.world.core.deliver_due()
        return await self.inner.send_dm(user, message)


async def test_a_long_pass_keeps_its_claims_from_a_concurrent_pass(world: World) -> None:
    """The lease runs from each row's claim, not from the start of the pass that claimed it: else the rows a
    12-minute fan-out claims last look abandoned to a pass running beside it, which sends them again."""
    short = await ended_session(world, 6)
    await world.core.timeline.end(short, by="test")
    slow = SlowDms(world)
    world.core.attach(slow)  # type: ignore[arg-type]  # a Platform by delegation
    began = world.clock.now()
    await world.core.deliver_due()
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).all()
    assert [(r.state, r.attempts) for r in rows] == [("sent", 1)] * 6  # none claimed twice
    assert slow.sent == 6
    assert [survey_dms(world.platform, u.user_id) for u in world.learners[:6]] == [1] * 6
    # Each DM's time on the record is when it went out, not when the pass began.
    assert min(r.sent_at for r in rows if r.sent_at) == began + timedelta(minutes=2)


async def test_rows_of_a_platform_not_running_here_are_retried_and_the_pass_goes_on(world: World) -> None:
    """A process started without the session's platform (a replica configured for another one) claims rows it
    cannot send: each goes back to pending with the reason, none stays claimed or stops the pass, and a
    process with the platform sends every one once."""
    short = await ended_session(world, 3)
    await world.core.timeline.end(short, by="test")
    settings = make_settings(world.app.settings.database_url)
    elsewhere = await build(settings, {"other": LocalPlatform()}, clock=world.clock, with_scheduler=False)
    try:
        await elsewhere.core.deliver_due()
    finally:
        await elsewhere.close()
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Delivery).where(Delivery.kind == "feedback"))).all()
    assert [(r.state, r.attempts) for r in rows] == [("pending", 1)] * 3
    assert all("not running in this process" in r.last_error for r in rows)
    world.clock.set(max(r.due_at for r in rows))
    await world.core.deliver_due()
    assert await states(world) == {"sent": 3}
    assert [survey_dms(world.platform, u.user_id) for u in world.learners[:3]] == [1, 1, 1]


async def test_reminder_goes_only_to_those_who_have_not_answered(world: World) -> None:
    short = await ended_session(world, 3)
    await world.core.advance()
    first = world.learners[0]
    form = await first.open_form(first.dm_button("survey:open:"))
    await first.submit(form, {f.field_id: "4" for f in form.fields if f.field_id != "open"})
    world.clock.set(world.clock.now() + timedelta(hours=24))
    await world.core.advance()
    assert [survey_dms(world.platform, u.user_id) for u in world.learners[:3]] == [1, 2, 2]
    async with world.app.db.transaction() as tx:
        reminders = {r.state for r in (await tx.exec(select(Delivery).where(Delivery.kind == "feedback_reminder")))}
    assert reminders == {"sent", "skipped"}
    assert short

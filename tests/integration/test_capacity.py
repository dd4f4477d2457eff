"""A platform with a channel limit refuses a start before anything is created, and nothing changes."""

from __future__ import annotations

from datetime import timedelta

from adapters.local.platform import LocalPlatform
from bot.port import PlatformError
from tests.conftest import World
from tests.integration.test_session_flow import plan, session_row


class SmallServer(LocalPlatform):
    """The local platform with a hard channel limit, like a Discord guild."""

    limit = 2

    async def ensure_capacity(self, session_key: str, groups: int) -> None:
        if len(self.breakouts()) + groups > self.limit:
            raise PlatformError("30013", f"{groups} breakouts need {groups} channels; {self.limit} free")


async def test_start_is_refused_before_creating_anything(world: World) -> None:
    small = SmallServer()
    small.channels, small.messages = world.platform.channels, world.platform.messages
    world.app.core.attach(small)
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners[:11]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    reply = await world.trainer.command(f"session start {short}")
    assert not reply.ok and "no room for 3 breakouts" in reply.text and "session start" in reply.text
    assert small.breakouts() == []
    row = await session_row(world, short)
    assert (row.state, row.started_at) == ("planned", None)
    assert (await world.trainer.command(f"group show {short}")).text.startswith("*Draft")  # still editable

    world.clock.set(start + timedelta(minutes=1))
    await world.advance(start + timedelta(minutes=1))  # the scheduler's attempt tells the trainer instead
    assert any("no room for 3 breakouts" in dm.message.text for dm in small.dms_to("T1"))
    small.limit = 10
    assert (await world.trainer.command(f"session start {short}")).ok
    assert len(small.breakouts()) == 3

"""A platform with a channel limit refuses a start before anything is created, and nothing changes."""

from __future__ import annotations

from datetime import timedelta

from adapters.local.platform import LocalPlatform
from bot.port import Capacity, PlatformError
from tests.conftest import World
from tests.integration.test_session_flow import plan, session_row


class SmallServer(LocalPlatform):
    """The local platform with a hard channel limit, like a Discord guild."""

    limit = 2
    taken = 0  # channels the server has besides the breakouts

    async def ensure_capacity(self, session_key: str, groups: int) -> Capacity:
        if self.taken + len(self.breakouts()) + groups > self.limit:
            raise PlatformError("30013", f"{groups} breakouts need {groups} channels; {self.limit} free")
        return Capacity(self.limit - self.taken - len(self.breakouts()) - groups, self.limit)


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


async def test_a_start_that_leaves_the_server_nearly_full_warns_the_trainer(world: World) -> None:
    """Under 10% free after a start, the trainers are told, so that the next start is not the refused one."""
    small = SmallServer()
    small.limit, small.taken = 32, 27  # 3 breakouts will leave 2 of 32 free: under 10%
    small.channels, small.messages = world.platform.channels, world.platform.messages
    world.app.core.attach(small)
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    for learner in world.learners[:11]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    assert (await world.trainer.command(f"session start {short}")).ok
    assert any("Only 2 of the server's 32 channels will be free" in dm.message.text for dm in small.dms_to("T1"))

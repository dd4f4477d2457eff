"""The shared "answer in the ack if quick, else defer and follow up" helper, on real asyncio: the work is
a coroutine the test releases, the platform callbacks only record what they were given."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from adapters.common import answer, guarded
from bot.messages import Reply


class Platform:
    """Records the calls an adapter's callbacks would turn into platform requests, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.deferred = asyncio.Event()

    async def ack_now(self, reply: Reply) -> None:
        self.calls.append(("ack_now", reply))

    async def defer(self) -> None:
        self.calls.append(("defer", None))
        self.deferred.set()

    async def follow_up(self, reply: Reply) -> None:
        self.calls.append(("follow_up", reply))

    async def progress(self, elapsed: float) -> None:
        self.calls.append(("progress", elapsed))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


async def test_a_quick_reply_goes_out_in_the_ack() -> None:
    platform = Platform()

    async def quick() -> Reply:
        await asyncio.sleep(0)
        return Reply("done")

    await answer(quick(), budget=5.0, ack_now=platform.ack_now, defer=platform.defer, follow_up=platform.follow_up)
    assert platform.calls == [("ack_now", Reply("done"))]


async def test_a_slow_reply_is_deferred_then_followed_up() -> None:
    platform = Platform()
    release = asyncio.Event()

    async def slow() -> Reply:
        await release.wait()
        return Reply("finally")

    running = asyncio.ensure_future(
        answer(slow(), budget=0.01, ack_now=platform.ack_now, defer=platform.defer, follow_up=platform.follow_up)
    )
    await asyncio.wait_for(platform.deferred.wait(), 5)
    assert platform.names() == ["defer"]  # acknowledged while the core is still working
    release.set()
    await asyncio.wait_for(running, 5)
    assert platform.calls == [("defer", None), ("follow_up", Reply("finally"))]


async def test_no_budget_always_defers_even_an_instant_reply() -> None:
    platform = Platform()

    async def instant() -> Reply:
        return Reply("instant")

    await answer(instant(), budget=0.0, ack_now=platform.ack_now, defer=platform.defer, follow_up=platform.follow_up)
    assert platform.calls == [("defer", None), ("follow_up", Reply("instant"))]


async def test_progress_is_reported_while_waiting() -> None:
    platform = Platform()
    twice = asyncio.Event()

    async def progress(elapsed: float) -> None:
        await platform.progress(elapsed)
        if platform.names().count("progress") == 2:
            twice.set()

    async def slow() -> Reply:
        await twice.wait()  # the core finishes only after two progress updates
        return Reply("late")

    await asyncio.wait_for(
        answer(
            slow(), budget=0.0, ack_now=platform.ack_now, defer=platform.defer, follow_up=platform.follow_up,
            progress=progress, progress_every=0.01,
        ),
        5,
    )  # fmt: skip
    names = platform.names()
    assert names[0] == "defer" and names[-1] == "follow_up" and set(names[1:-1]) == {"progress"}
    elapsed = [value for name, value in platform.calls if name == "progress"]
    assert len(elapsed) >= 2 and all(isinstance(e, float) for e in elapsed) and 0 < elapsed[0] < elapsed[1]


@pytest.mark.parametrize("budget", [5.0, 0.0])
async def test_an_exception_becomes_a_polite_reply_with_a_logged_reference(
    budget: float, caplog: pytest.LogCaptureFixture
) -> None:
    platform = Platform()

    async def broken() -> Reply:
        raise RuntimeError("database on fire")

    with caplog.at_level(logging.ERROR, logger="adapters.common"):
        await answer(broken(), budget=budget, ack_now=platform.ack_now, defer=platform.defer,
                     follow_up=platform.follow_up, what="command")  # fmt: skip
    (_, reply) = platform.calls[-1]
    assert isinstance(reply, Reply) and not reply.ok
    assert platform.names() == (["ack_now"] if budget else ["defer", "follow_up"])
    ref = reply.extra["ref"]
    assert re.fullmatch(r"[0-9a-f]{6}", ref) and f"`{ref}`" in reply.text
    assert "database on fire" not in reply.text  # the person gets no internals
    (record,) = [r for r in caplog.records if ref in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError  # the traceback is in the log
    assert "command failed" in record.getMessage()


async def test_each_failure_gets_its_own_reference() -> None:
    async def broken() -> Reply:
        raise ValueError("no")

    first, second = await guarded(broken()), await guarded(broken())
    assert first.extra["ref"] != second.extra["ref"]


async def test_a_failing_platform_callback_is_logged_and_the_work_still_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[str] = []
    release = asyncio.Event()

    async def slow() -> Reply:
        await release.wait()
        finished.append("core")
        return Reply("recorded")

    async def refused() -> None:
        release.set()  # the core goes on while the platform refuses the acknowledgement
        raise ConnectionError("interaction expired")

    async def never(reply: Reply) -> None:
        raise AssertionError("nothing is sent after a failed acknowledgement")

    with caplog.at_level(logging.ERROR, logger="adapters.common"):
        await asyncio.wait_for(answer(slow(), budget=0.0, ack_now=never, defer=refused, follow_up=never), 5)
    assert finished == ["core"]
    (record,) = caplog.records
    assert "could not deliver" in record.getMessage() and record.exc_info is not None
    assert record.exc_info[0] is ConnectionError

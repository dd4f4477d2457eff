"""Where and with what budget the bot forms groups: the one entry the core and `benchmarks/grouping.py` share.

The search is pure Python and holds the GIL while it runs, so it never runs on the event loop: each job
goes to a worker thread, and the interpreter hands the GIL to the loop's thread every switch interval
(5 ms) when the loop asks for it, which keeps the loop answering (tests/unit/test_grouping_live.py
measures a ticker's largest gap while 1,000 learners are grouped). A thread rather than a process: no
process to spawn or warm up, nothing to pickle, and the answer is the same for a seed either way.

Two threads, so a start never queues behind work done ahead:
- `form_at_start`: a start, with `LIVE_BUDGET`; it adjusts a draft (or a course plan's round) to who
  is there when one exists, else forms the groups from scratch;
- `form_ahead` / `plan_ahead`: the draft made when check-in opens and each refinement as check-ins
  arrive, with `AHEAD_BUDGET`; the whole-course plan, with `COURSE_BUDGET`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, TypeVar

from bot.grouping.course import Plan, plan_course
from bot.grouping.engine import form_groups
from bot.grouping.model import Constraints, Grouping, Learner, Meeting

LIVE_BUDGET: Final = 0.2
AHEAD_BUDGET: Final = 4.0
# A course is planned once, in the background, when its first check-in opens: it can afford more.
COURSE_BUDGET: Final = 20.0
# Work ahead competes with the event loop for the interpreter: it waits until check-ins pause this long
# (a class checking in at 9:00 is written at full speed first), or this long at most when they never pause.
AHEAD_QUIET: Final = 0.5
AHEAD_EVERY: Final = 5.0

SWITCH_INTERVAL: Final = 0.001

T = TypeVar("T")


_LOCKS: Final = {"start": threading.Lock(), "ahead": threading.Lock()}


async def _off_loop(kind: str, work: Callable[[], T]) -> T:
    """Run `work` in a daemon thread, one job of a kind at a time, and await its result on the loop.

    Daemon threads rather than an executor's: a process that stops (the demo's end, a deploy) must not
    wait for a search whose result nobody will read, and an abandoned search only costs its own budget.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    # The loop's thread waits up to one switch interval for the GIL each time it wakes; 5 ms (the default)
    # several times per wake-up added up to 70 ms gaps on a busy machine, 1 ms keeps them short.
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        with _LOCKS[kind]:
            try:
                result = work()
            except Exception as exc:  # handed to the awaiting coroutine, which raises it
                answer = functools.partial(settle, functools.partial(future.set_exception, exc))
            else:
                answer = functools.partial(settle, functools.partial(future.set_result, result))
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(answer)

    threading.Thread(target=run, name=f"peerbot-grouping-{kind}", daemon=True).start()
    return await future


async def form_at_start(
    learners: Sequence[Learner],
    format: str,
    size: int,
    history: Sequence[Meeting],
    constraints: Constraints,
    *,
    seed: int,
    now: datetime | None,
    plan: Sequence[Sequence[str]] = (),
    time_budget: float = LIVE_BUDGET,
) -> Grouping:
    """The groups a start forms, computed in the start thread (the event loop keeps running)."""
    return await _off_loop(
        "start",
        functools.partial(
            form_groups,
            learners,
            format,
            size,
            history,
            constraints,
            seed=seed,
            now=now,
            time_budget=time_budget,
            plan=plan,
        ),
    )


async def form_ahead(
    learners: Sequence[Learner],
    format: str,
    size: int,
    history: Sequence[Meeting],
    constraints: Constraints,
    *,
    seed: int,
    now: datetime | None,
    plan: Sequence[Sequence[str]] = (),
    time_budget: float = AHEAD_BUDGET,
) -> Grouping:
    """A draft (or a refinement of `plan`) computed before the start, in the ahead thread."""
    return await _off_loop(
        "ahead",
        functools.partial(
            form_groups,
            learners,
            format,
            size,
            history,
            constraints,
            seed=seed,
            now=now,
            time_budget=time_budget,
            plan=plan,
        ),
    )


async def plan_ahead(
    learners: Sequence[Learner],
    format: str,
    size: int,
    rounds: int,
    history: Sequence[Meeting],
    constraints: Constraints,
    *,
    seed: int,
    now: datetime | None,
    time_budget: float = COURSE_BUDGET,
) -> Plan:
    """The rounds of a cohort's coming sessions (`bot.grouping.course`), in the ahead thread."""
    return await _off_loop(
        "ahead",
        functools.partial(
            plan_course,
            learners,
            format,
            size,
            rounds,
            history,
            constraints,
            seed=seed,
            now=now,
            time_budget=time_budget,
        ),
    )

"""Time source: real in production, fake in tests and in the demo's accelerated cycle, warped (accelerated and
shared by several processes) in the system tests' rehearsals."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

WARP_VARIABLE = "PEERBOT_CLOCK_WARP"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


class WarpClock:
    """Wall time run `speed` times faster from `origin`, counted from the wall instant `anchor` (Unix seconds).

    Processes given the same three numbers agree on the time without talking to each other, which is what lets
    several `peerbot run` replicas rehearse a whole session cycle in a minute. `wall` maps an instant of this
    clock back to the wall clock, for the scheduler, which sleeps in wall time."""

    def __init__(self, origin: datetime, anchor: float, speed: float) -> None:
        if origin.tzinfo is None or speed <= 0:
            raise ValueError("WarpClock needs an aware origin and a positive speed")
        self.origin, self.anchor, self.speed = origin.astimezone(UTC), anchor, speed

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(time.time() - self.anchor) * self.speed)

    def wall(self, at: datetime) -> datetime:
        """The wall instant at which this clock reads `at` (rounded up, so a job woken then finds its step due)."""
        seconds = (at - self.origin).total_seconds() / self.speed
        return datetime.fromtimestamp(self.anchor + seconds, UTC) + timedelta(milliseconds=1)

    @classmethod
    def parse(cls, value: str) -> WarpClock:
        """`<origin ISO 8601>,<anchor Unix seconds>,<speed>`, e.g. `2026-03-09T08:40:00+00:00,1767000000.5,60`."""
        origin, anchor, speed = value.split(",")
        return cls(datetime.fromisoformat(origin), float(anchor), float(speed))

    def __str__(self) -> str:
        return f"{self.origin.isoformat()},{self.anchor},{self.speed}"


def clock_from_environment() -> SystemClock | WarpClock:
    """`PEERBOT_CLOCK_WARP` set (rehearsals and system tests only, never in production): a warped clock."""
    value = os.environ.get(WARP_VARIABLE, "").strip()
    return WarpClock.parse(value) if value else SystemClock()

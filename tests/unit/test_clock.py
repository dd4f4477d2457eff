"""The warped clock the system tests give every replica: processes with the same three numbers agree on the time,
and the scheduler's wall instants map back to the warped instants the core named."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import WARP_VARIABLE, SystemClock, WarpClock, clock_from_environment

ORIGIN = datetime(2026, 3, 9, 8, 25, tzinfo=UTC)


def test_two_warped_clocks_built_from_one_string_read_the_same_time() -> None:
    first = WarpClock(ORIGIN, time.time(), 60)
    second = WarpClock.parse(str(first))
    assert (first.origin, first.anchor, first.speed) == (second.origin, second.anchor, second.speed)
    assert abs((second.now() - first.now()).total_seconds()) < 60  # a minute of warped time is one wall second


def test_a_warped_instant_maps_to_the_wall_instant_when_the_clock_reads_it() -> None:
    anchor = 1_800_000_000.0
    clock = WarpClock(ORIGIN, anchor, 60)
    wall = clock.wall(ORIGIN + timedelta(minutes=20))
    assert wall - datetime.fromtimestamp(anchor, UTC) == timedelta(seconds=20, milliseconds=1)  # rounded up


def test_the_environment_decides_and_a_bad_speed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WARP_VARIABLE, raising=False)
    assert isinstance(clock_from_environment(), SystemClock)
    monkeypatch.setenv(WARP_VARIABLE, f"{ORIGIN.isoformat()},0,120")
    warped = clock_from_environment()
    assert isinstance(warped, WarpClock) and warped.speed == 120
    with pytest.raises(ValueError):
        WarpClock(ORIGIN, 0, 0)

"""Wall-clock times in a time zone, as pure functions (zoneinfo only: no clock, no I/O).

A wall time such as 2027-03-28 02:30 in Europe/Paris never happens (the clocks jump from 02:00 to 03:00),
and 2027-10-31 02:30 happens twice (once at +02:00, once at +01:00). `datetime` resolves both silently
(PEP 495's `fold`), so a session planned for them would start at a time nobody asked for. `resolve_local`
says which case a wall time is, so the caller can refuse a gap and say which occurrence it took.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum


class Kind(StrEnum):
    """What a wall time is in its zone."""

    NORMAL = "normal"  # it happens once
    AMBIGUOUS = "ambiguous"  # it happens twice (the clocks went back)
    GAP = "gap"  # it never happens (the clocks jumped over it)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A wall time resolved in `zone`.

    `instants` are aware UTC datetimes: one for a normal time, two for an ambiguous one (fold=0 then fold=1,
    which zoneinfo makes the earlier then the later), none in a gap. In a gap, `before` is the last valid
    minute before it and `after` the first valid time after it, both aware in `zone` (e.g. 01:59 and 03:00).
    """

    wall: datetime  # naive: the day and time as written
    zone: tzinfo
    kind: Kind
    instants: tuple[datetime, ...]
    before: datetime | None = None
    after: datetime | None = None

    @property
    def exists(self) -> bool:
        return self.kind is not Kind.GAP

    @property
    def first(self) -> datetime:
        """The instant to use by default: the only one, the first of two, or the first valid time after a gap
        (as UTC)."""
        if self.instants:
            return self.instants[0]
        assert self.after is not None  # a gap always has an end
        return self.after.astimezone(UTC)

    def offsets(self) -> tuple[timedelta, ...]:
        """The UTC offset of each instant, in the same order."""
        return tuple(offset_at(instant, self.zone) for instant in self.instants)

    def at_offset(self, offset: timedelta) -> datetime | None:
        """The instant showing this wall time at UTC `offset`, or None when the zone does not use that offset
        for it (a gap has none)."""
        return next((i for i, o in zip(self.instants, self.offsets(), strict=True) if o == offset), None)


def offset_at(instant: datetime, zone: tzinfo) -> timedelta:
    """The UTC offset `zone` uses at `instant` (aware)."""
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # astimezone to a tzinfo always yields an aware datetime
    return offset


def format_offset(offset: timedelta) -> str:
    """`+02:00`, `-09:30`, `+00:00`: the syntax people write after a time to pick an occurrence."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def resolve_local(day: date, at: time, zone: tzinfo) -> Resolved:
    """Resolve the wall time `day` `at` in `zone` (`at`'s own tzinfo is ignored).

    Raises OverflowError within a day of `datetime`'s limits (years 1 and 9999); callers bound dates first.
    """
    wall = datetime.combine(day, at.replace(tzinfo=None))
    instants: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        shows = instant.astimezone(zone).replace(tzinfo=None)
        if shows == wall and instant not in instants:
            instants.append(instant)
    if len(instants) == 2:
        return Resolved(wall, zone, Kind.AMBIGUOUS, tuple(instants))
    if instants:
        return Resolved(wall, zone, Kind.NORMAL, tuple(instants))
    change = _transition(wall, zone)
    before = (change - timedelta(seconds=1)).astimezone(zone).replace(second=0, microsecond=0)
    after = change.astimezone(zone)
    if after.second or after.microsecond:  # a historic change off the minute: the next whole minute is valid
        after = (after + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return Resolved(wall, zone, Kind.GAP, (), before, after)


def _transition(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC instant at which the clocks jumped over the non-existent `wall` (naive).

    In a gap, fold=1 reads `wall` with the offset after the change (an instant before it) and fold=0 with
    the offset before (an instant after it); the change lies between, found to the second by bisection
    (tz data changes on whole seconds).
    """
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).astimezone(UTC).timestamp())
    old = offset_at(datetime.fromtimestamp(low, UTC), zone)
    while high - low > 1:
        middle = (low + high) // 2
        if offset_at(datetime.fromtimestamp(middle, UTC), zone) == old:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def same_wall_time_later(instant: datetime, weeks: int, zone: tzinfo) -> datetime:
    """The instant `weeks` weeks after `instant` at the same wall time in `zone`, as aware UTC.

    Across a DST change this is not `instant + weeks`: a retention quiz sent "2 weeks later at 15:00" stays
    at 15:00 local. If that wall time does not exist, the first valid time after it; if it happens twice,
    the first occurrence.
    """
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    wall = instant.astimezone(zone).replace(tzinfo=None) + timedelta(weeks=weeks)
    return resolve_local(wall.date(), wall.time(), zone).first

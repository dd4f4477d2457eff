"""Wall times across DST changes: the 2027 changes of Europe/Paris and Australia/Sydney (dates checked
against zoneinfo here, not assumed), then properties over many zones and wall times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.localtime import Kind, format_offset, resolve_local, same_wall_time_later

PARIS = ZoneInfo("Europe/Paris")
SYDNEY = ZoneInfo("Australia/Sydney")
ZONES = [
    PARIS,
    SYDNEY,
    ZoneInfo("America/New_York"),
    ZoneInfo("America/Santiago"),
    ZoneInfo("Australia/Lord_Howe"),  # a 30-minute change
    ZoneInfo("Pacific/Apia"),  # skipped a whole day in 2011
    ZoneInfo("Asia/Tokyo"),  # no DST
    ZoneInfo("UTC"),
]


def changes(zone: tzinfo, year: int) -> dict[date, tuple[timedelta, timedelta]]:
    """The days on which `zone` changes its UTC offset in `year` (old, new), found hour by hour."""
    found: dict[date, tuple[timedelta, timedelta]] = {}
    moment = datetime(year, 1, 1, tzinfo=UTC)
    previous = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=1)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            assert previous is not None and offset is not None
            found[moment.astimezone(zone).date()] = (previous, offset)
        previous = offset
    return found


def hours(count: float) -> timedelta:
    return timedelta(hours=count)


def test_the_2027_changes_are_where_the_tests_expect_them() -> None:
    assert changes(PARIS, 2027) == {date(2027, 3, 28): (hours(1), hours(2)), date(2027, 10, 31): (hours(2), hours(1))}
    assert changes(SYDNEY, 2027) == {
        date(2027, 4, 4): (hours(11), hours(10)),
        date(2027, 10, 3): (hours(10), hours(11)),
    }


def test_paris_spring_gap_does_not_exist_and_names_the_nearest_valid_minutes() -> None:
    resolved = resolve_local(date(2027, 3, 28), time(2, 30), PARIS)
    assert (resolved.kind, resolved.exists, resolved.instants) == (Kind.GAP, False, ())
    assert resolved.before == datetime(2027, 3, 28, 1, 59, tzinfo=PARIS)
    assert resolved.after == datetime(2027, 3, 28, 3, 0, tzinfo=PARIS)
    assert resolved.before is not None and resolved.after is not None
    assert (resolved.before.utcoffset(), resolved.after.utcoffset()) == (hours(1), hours(2))
    assert resolved.first == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)  # the first valid time after: 03:00 CEST
    assert resolved.at_offset(hours(1)) is None and resolved.at_offset(hours(2)) is None
    for minute in (time(2, 0), time(2, 59)):
        assert resolve_local(date(2027, 3, 28), minute, PARIS).kind is Kind.GAP
    for minute in (time(1, 59), time(3, 0)):
        assert resolve_local(date(2027, 3, 28), minute, PARIS).kind is Kind.NORMAL


def test_paris_autumn_overlap_has_both_instants_fold_0_first() -> None:
    resolved = resolve_local(date(2027, 10, 31), time(2, 30), PARIS)
    assert resolved.kind is Kind.AMBIGUOUS and resolved.exists
    summer, winter = datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    assert resolved.instants == (summer, winter)
    # (PEP 495: an ambiguous local time never compares equal across zones, so convert before comparing)
    assert resolved.instants[0] == datetime(2027, 10, 31, 2, 30, fold=0, tzinfo=PARIS).astimezone(UTC)
    assert resolved.instants[1] == datetime(2027, 10, 31, 2, 30, fold=1, tzinfo=PARIS).astimezone(UTC)
    assert resolved.offsets() == (hours(2), hours(1))
    assert (resolved.first, resolved.at_offset(hours(1)), resolved.at_offset(hours(3))) == (summer, winter, None)
    for minute in (time(2, 0), time(2, 59)):
        assert resolve_local(date(2027, 10, 31), minute, PARIS).kind is Kind.AMBIGUOUS
    for minute in (time(1, 59), time(3, 0)):
        assert resolve_local(date(2027, 10, 31), minute, PARIS).kind is Kind.NORMAL


def test_sydney_overlap_in_april_and_gap_in_october() -> None:
    april = resolve_local(date(2027, 4, 4), time(2, 30), SYDNEY)
    assert april.kind is Kind.AMBIGUOUS
    assert april.instants == (datetime(2027, 4, 3, 15, 30, tzinfo=UTC), datetime(2027, 4, 3, 16, 30, tzinfo=UTC))
    assert april.offsets() == (hours(11), hours(10))
    october = resolve_local(date(2027, 10, 3), time(2, 30), SYDNEY)
    assert october.kind is Kind.GAP
    assert october.before == datetime(2027, 10, 3, 1, 59, tzinfo=SYDNEY)
    assert october.after == datetime(2027, 10, 3, 3, 0, tzinfo=SYDNEY)
    assert october.first == datetime(2027, 10, 2, 16, 0, tzinfo=UTC)


def test_normal_times_and_fixed_offsets() -> None:
    june = resolve_local(date(2027, 6, 1), time(14, 0), PARIS)
    assert (june.kind, june.instants, june.offsets()) == (
        Kind.NORMAL,
        (datetime(2027, 6, 1, 12, tzinfo=UTC),),
        (hours(2),),
    )
    fixed = resolve_local(date(2027, 3, 28), time(2, 30), timezone(hours(1)))
    assert fixed.instants == (datetime(2027, 3, 28, 1, 30, tzinfo=UTC),)
    assert resolve_local(date(2027, 3, 28), time(2, 30, tzinfo=UTC), PARIS).kind is Kind.GAP  # tzinfo ignored
    assert [format_offset(hours(h)) for h in (2, -9.5, 0, 14)] == ["+02:00", "-09:30", "+00:00", "+14:00"]


def test_a_whole_skipped_day() -> None:
    apia = ZoneInfo("Pacific/Apia")
    resolved = resolve_local(date(2011, 12, 30), time(12, 0), apia)
    assert resolved.kind is Kind.GAP
    assert resolved.before == datetime(2011, 12, 29, 23, 59, tzinfo=apia)
    assert resolved.after == datetime(2011, 12, 31, 0, 0, tzinfo=apia)


# ---------------------------------------------------------------------------------------------- same_wall_time_later


@pytest.mark.parametrize(
    ("zone", "instant", "weeks", "expected"),
    [
        # 15:00 in Paris stays 15:00 across the spring change: 14:00Z (CET) then 13:00Z (CEST)
        (PARIS, datetime(2027, 3, 18, 14, 0, tzinfo=UTC), 2, datetime(2027, 4, 1, 13, 0, tzinfo=UTC)),
        # and across the autumn change: 13:00Z (CEST) then 14:00Z (CET)
        (PARIS, datetime(2027, 10, 20, 13, 0, tzinfo=UTC), 2, datetime(2027, 11, 3, 14, 0, tzinfo=UTC)),
        # 02:30 lands in the spring gap: the first valid time after, 03:00 CEST
        (PARIS, datetime(2027, 3, 14, 1, 30, tzinfo=UTC), 2, datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
        # 02:30 lands in the autumn overlap: its first occurrence, 02:30 CEST
        (PARIS, datetime(2027, 10, 17, 0, 30, tzinfo=UTC), 2, datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),
        (PARIS, datetime(2027, 10, 3, 0, 30, tzinfo=UTC), 4, datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),
        # Sydney: 15:00 AEDT (04:00Z) then 15:00 AEST (05:00Z) in April, the reverse in October
        (SYDNEY, datetime(2027, 3, 25, 4, 0, tzinfo=UTC), 2, datetime(2027, 4, 8, 5, 0, tzinfo=UTC)),
        (SYDNEY, datetime(2027, 9, 23, 5, 0, tzinfo=UTC), 2, datetime(2027, 10, 7, 4, 0, tzinfo=UTC)),
        (SYDNEY, datetime(2027, 9, 18, 16, 30, tzinfo=UTC), 2, datetime(2027, 10, 2, 16, 0, tzinfo=UTC)),
        # no change in between: exactly N weeks
        (PARIS, datetime(2027, 6, 1, 13, 0, tzinfo=UTC), 4, datetime(2027, 6, 29, 13, 0, tzinfo=UTC)),
        (PARIS, datetime(2027, 6, 1, 13, 0, tzinfo=UTC), 0, datetime(2027, 6, 1, 13, 0, tzinfo=UTC)),
    ],
)
def test_same_wall_time_later(zone: ZoneInfo, instant: datetime, weeks: int, expected: datetime) -> None:
    later = same_wall_time_later(instant, weeks, zone)
    assert later == expected and later.tzinfo is UTC


def test_same_wall_time_later_takes_any_aware_instant_and_refuses_a_naive_one() -> None:
    local = datetime(2027, 3, 18, 15, 0, tzinfo=PARIS)
    assert same_wall_time_later(local, 2, PARIS) == datetime(2027, 4, 1, 13, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        same_wall_time_later(datetime(2027, 3, 18, 15, 0), 2, PARIS)


# ---------------------------------------------------------------------------------------------- properties

CHANGE_DAYS = sorted(
    {(zone, day) for zone in ZONES for year in (2011, 2026, 2027) for day in changes(zone, year)}, key=str
)
near_a_change = st.builds(
    lambda zone_day, minute: (zone_day[0], datetime.combine(zone_day[1], time()) + timedelta(minutes=minute)),
    st.sampled_from(CHANGE_DAYS),
    st.one_of(st.integers(0, 4 * 60), st.integers(0, 24 * 60 - 1)),  # most changes happen in the small hours
)
zone_walls = st.one_of(
    st.tuples(st.sampled_from(ZONES), st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 12, 30))),
    near_a_change,
)


@settings(max_examples=600, deadline=None)
@given(zone_wall=zone_walls)
def test_every_instant_shows_the_wall_time_and_a_gap_is_bounded_by_adjacent_valid_minutes(
    zone_wall: tuple[ZoneInfo, datetime],
) -> None:
    zone, wall = zone_wall
    resolved = resolve_local(wall.date(), wall.time(), zone)
    event(resolved.kind)
    for instant in resolved.instants:
        assert instant.tzinfo is UTC
        assert instant.astimezone(zone).replace(tzinfo=None) == wall
    if resolved.kind is Kind.NORMAL:
        assert len(resolved.instants) == 1
    elif resolved.kind is Kind.AMBIGUOUS:
        first, second = resolved.instants
        assert first < second and resolved.offsets()[0] > resolved.offsets()[1]
    else:
        before, after = resolved.before, resolved.after
        assert before is not None and after is not None
        naive_before, naive_after = before.replace(tzinfo=None), after.replace(tzinfo=None)
        assert naive_before < wall < naive_after
        assert (before.second, after.second) == (0, 0)
        for valid in (naive_before, naive_after):
            assert resolve_local(valid.date(), valid.time(), zone).exists
        for inside in (naive_before + timedelta(minutes=1), naive_after - timedelta(minutes=1)):
            if naive_before < inside < naive_after:
                assert not resolve_local(inside.date(), inside.time(), zone).exists
        assert after.astimezone(UTC) - before.astimezone(UTC) <= timedelta(minutes=1)  # nothing valid skipped


@settings(max_examples=400, deadline=None)
@given(zone_wall=zone_walls, weeks=st.integers(0, 8), back=st.booleans())
def test_same_wall_time_later_keeps_the_wall_time_or_takes_the_next_valid_one(
    zone_wall: tuple[ZoneInfo, datetime], weeks: int, back: bool
) -> None:
    zone, wall = zone_wall
    if back:  # start `weeks` before the drawn wall time, so the change (if any) is at the end
        wall -= timedelta(weeks=weeks)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    later = same_wall_time_later(instant, weeks, zone)
    target = instant.astimezone(zone).replace(tzinfo=None) + timedelta(weeks=weeks)
    resolved = resolve_local(target.date(), target.time(), zone)
    event(resolved.kind)
    assert later.tzinfo is UTC
    if resolved.exists:
        assert later.astimezone(zone).replace(tzinfo=None) == target
        assert later == resolved.instants[0]
    else:
        assert resolved.after is not None and later == resolved.after

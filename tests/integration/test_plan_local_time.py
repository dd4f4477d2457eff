"""`session plan` across the DST changes of Europe/Paris (the test instance's zone), through
`Core.handle_command` on the local platform: a skipped time is refused, a repeated one is taken at its
first occurrence and the reply says so, an explicit offset picks the other."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select

from bot.grammar import USAGE
from storage.models import PeerSession
from tests.conftest import World


async def setup(world: World) -> None:
    assert (await world.trainer.command(f"cohort create py <#{world.channel_id}>")).ok


async def starts(world: World) -> list[datetime]:
    async with world.app.db.transaction() as tx:
        return list((await tx.exec(select(PeerSession.starts_at).order_by(col(PeerSession.id)))).all())


async def test_a_time_the_clocks_skip_is_refused_with_the_nearest_valid_times(world: World) -> None:
    await setup(world)
    reply = await world.trainer.command('session plan py "Spring" 2027-03-28 02:30 1h')
    assert not reply.ok
    assert reply.text == (
        "2027-03-28 02:30 does not exist in Europe/Paris: the clocks jump forward over it.\n"
        f"The nearest valid times are 01:59 and 03:00. Usage: `{USAGE['session plan']}`"
    )
    assert (await world.trainer.command('session plan py "Spring" 2027-03-28 02:30+01:00 1h')).ok is False
    assert await starts(world) == []
    assert (await world.trainer.command('session plan py "Spring" 2027-03-28 03:00 1h')).ok
    assert await starts(world) == [datetime(2027, 3, 28, 1, 0, tzinfo=UTC)]


async def test_a_repeated_time_takes_the_first_and_says_how_to_pick_the_second(world: World) -> None:
    await setup(world)
    first = await world.trainer.command('session plan py "Autumn" 2027-10-31 02:30 1h')
    assert first.ok, first.text
    assert first.text.splitlines()[1] == (
        "2027-10-31 02:30 happens twice in Europe/Paris (the clocks go back); I took the first, at UTC+02:00. "
        "For the second, at UTC+01:00, plan it with the time `02:30+01:00`."
    )
    second = await world.trainer.command('session plan py "Autumn" 2027-10-31 02:30+01:00 1h')
    assert second.ok and "happens twice" not in second.text
    wrong = await world.trainer.command('session plan py "Autumn" 2027-10-31 02:30+05:00 1h')
    assert not wrong.ok
    assert wrong.text.startswith(
        "2027-10-31 02:30 in Europe/Paris is at UTC offset +02:00 / +01:00, not +05:00; write the time without "
        "an offset, or with +02:00 / +01:00.\nUsage: `/peer session plan"
    )
    assert await starts(world) == [datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC)]
    assert "2027-10-31 02:30 CET" in (await world.trainer.command("session show s2")).text


async def test_dates_beyond_two_years_or_at_the_end_of_the_calendar_are_refused(world: World) -> None:
    await setup(world)  # the test clock reads 2026-03-02
    for day in ("2028-03-03", "9999-12-28", "0001-01-01"):
        reply = await world.trainer.command(f'session plan py "Far" {day} 14:00 1h')
        assert not reply.ok and "is too far away: plan a session from today up to 2 years ahead." in reply.text
    assert (await world.trainer.command('session plan py "Near" 2028-03-02 14:00 1h')).ok
    past = await world.trainer.command('session plan py "Past" 2026-03-01 14:00 1h')
    assert (past.ok, past.text.splitlines()[0]) == (False, "2026-03-01 14:00 (Europe/Paris) is in the past.")
    assert await starts(world) == [datetime(2028, 3, 2, 13, 0, tzinfo=UTC)]

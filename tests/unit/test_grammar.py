from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from bot.durations import format_duration, parse_duration
from bot.errors import Invalid
from bot.grammar import TRAINER_COMMANDS, USAGE, parse, tokenize


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("1h30m", 5400), ("2w", 1209600), ("45s", 45), ("1d2h", 93600), ("1H", 3600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "90", "1.5h", "h", "1h 30m", "-1h", "1y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_tokenize_keeps_quotes_and_apostrophes() -> None:
    assert tokenize('plan "Intro à l\'API" prep=“read this”') == ["plan", "Intro à l'API", "prep=read this"]
    assert tokenize('a "" b') == ["a", "", "b"]
    with pytest.raises(Invalid, match="not closed"):
        tokenize('plan "oops')


def test_session_plan_full() -> None:
    command = parse(
        'session plan Py "Title = x" 2026-12-01 9:05 1h30m format=tutoring size=2 '
        'prep="https://x.y" prep_before=2d objectives="A, B" retention=4w groups_from=enrolled'
    )
    assert command.name == "session plan"
    assert (command.cohort, command.title, command.day, command.at) == (
        "py",
        "Title = x",
        date(2026, 12, 1),
        time(9, 5),
    )
    assert command.duration == timedelta(minutes=90)
    assert command.options == {
        "format": "tutoring",
        "size": "2",
        "prep": "https://x.y",
        "prep_before": "2d",
        "objectives": "A, B",
        "retention": "4w",
        "groups_from": "enrolled",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('session plan py "T" 2026-12-01 25:00 1h', "not a time"),
        ('session plan py "T" 2026-12-01 14:00', "needs a cohort, a title"),
        ('session plan py "T" 2026-12-01 14:00 1h colour=red', "Unknown option"),
        ('session plan py "T" 2026-12-01 14:00 1h retention=3w', "2w` or `4w"),
        ('session plan py "T" 2026-12-01 14:00 1h prep_before=5w', "at most 4w"),
        ("cohort create Bad!Name", "not a valid cohort name"),
        ("cohort import py general", "not a channel"),
        ('quiz add s1 "Q" "only right"', "at least one wrong answer"),
        ("group move s1 <@U1> two", "not a group number"),
        ("session fly s1", "not a session command"),
        ("cohort apart py <@U1>", "mention two people"),
        ("cohort together py <@U1> <@!U1>", "cannot be paired with themselves"),
        ("cohort unpair py <@U1> <@U2> <@U3>", "exactly two people"),
        ("cohort apart py U1 <@U2>", "not a user mention"),
    ],
)
def test_errors_name_the_problem_and_the_usage(text: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        parse(text)
    assert message in info.value.message
    assert "/peer" in info.value.text()


def test_mentions_from_slack_and_discord() -> None:
    command = parse("cohort add py <@U123|alice>=4 <@!4567> <@89>=1")
    assert command.users == (("U123", 4), ("4567", None), ("89", 1))
    assert parse("cohort import py <#C42|general> 2").channel == "C42"


def test_pair_rules_name_a_cohort_and_two_people_from_any_platform() -> None:
    for verb in ("apart", "together", "unpair"):
        command = parse(f"cohort {verb} PY <@U123|alice> <@!4567>")
        assert (command.name, command.cohort, command.users) == (
            f"cohort {verb}",
            "py",
            (("U123", None), ("4567", None)),
        )
        assert command.name in TRAINER_COMMANDS


def test_every_usage_is_parseable_help() -> None:
    assert parse("").name == "help"
    assert all(key in USAGE for key in ("checkin", "prep-done", "raise", "mydata"))
    assert parse("checkin S4").session == "s4"


def test_export_and_note_parse_with_their_defaults_and_limits() -> None:
    assert (parse("export py").cohort, parse("export py").texts) == ("py", ("pdf",))
    assert parse("export S1 XLSX").texts == ("xlsx",) and parse("export S1 XLSX").cohort == "s1"
    assert parse("export py audit").name in TRAINER_COMMANDS
    note = parse('note s1 "Pairs worked; fours were slow."')
    assert (note.name, note.session, note.texts) == ("note", "s1", ("Pairs worked; fours were slow.",))
    assert note.name in TRAINER_COMMANDS

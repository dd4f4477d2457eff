"""The grammar's limits: every value that would break a computation or a database column is refused with
one clear error carrying the command's usage, and anything generated either parses within the limits or
is refused that way (never another exception)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import grammar
from bot.durations import MAX_SECONDS, DurationTooLong, parse_duration
from bot.errors import Invalid
from bot.grammar import Command, command_name, parse, parse_tokens, plan_start, shown, tokenize, usage
from tests.unit.command_texts import command_texts, command_tokens

PLAN = 'session plan py "T" 2026-12-01 14:00 1h'
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def refusal(text: str | list[str]) -> Invalid:
    with pytest.raises(Invalid) as info:
        parse(text) if isinstance(text, str) else parse_tokens(text)
    return info.value


def usage_line(name: str) -> str:
    return f"Usage: `{usage(name)}`"


# ---------------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        # ASCII digits only: `str.isdigit` takes these, `int` then fails or reads them
        (f"{PLAN} size=²", "session plan", "Group size `²` must be a whole number from 2 to 6."),
        ("cohort add py <@U1>=³", "cohort add", "Level `³` is not a whole number from 1 to 5."),
        ("cohort add py <@U1>=²1", "cohort add", "Level `²1` is not a whole number from 1 to 5."),
        ("cohort add py <@U1>=٣", "cohort add", "Level `٣` is not a whole number from 1 to 5."),
        ("cohort import py <#C1> ³", "cohort import", "Level `³` is not a whole number"),
        ("group move s1 <@U1> ²", "group move", "`²` is not a group number from 1 to 999."),
        # numbers too big for `int()` (4,300 digits) or for a 32-bit column
        ("cohort add py <@U1>=" + "9" * 5000, "cohort add", "is not a whole number from 1 to 5."),
        ("group move s1 <@U1> 4294967296", "group move", "is not a group number from 1 to 999."),
        ("group move s1 <@U1> 1000", "group move", "is not a group number from 1 to 999."),
        ("group move s1 <@U1> 0", "group move", "is not a group number from 1 to 999."),
        (f"{PLAN} size=" + "9" * 5000, "session plan", "must be a whole number from 2 to 6."),
        # durations past `timedelta`, or past the command's range
        ('session plan py "T" 2026-12-01 14:00 99999999999999999999w', "session plan", "at most 12h"),
        ('session plan py "T" 2026-12-01 14:00 ' + "9" * 5000 + "s", "session plan", "at most 12h"),
        ('session plan py "T" 2026-12-01 14:00 12h1s', "session plan", "at most 12h"),
        ('session plan py "T" 2026-12-01 14:00 ٣h', "session plan", "is not a duration"),
        (f"{PLAN} prep_before=99999999999999999999w", "session plan", "prep_before must be more than 0 and at most 4w"),
        (f"{PLAN} prep_before=4w1s", "session plan", "at most 4w"),
        # dates: ISO day only, and years the start time and its steps can be computed in
        ('session plan py "T" 0001-01-01 00:00 1h', "session plan", "is too far away"),
        ('session plan py "T" 9999-12-28 14:00 1h', "session plan", "is too far away"),
        ('session plan py "T" 1999-12-31 14:00 1h', "session plan", "is too far away"),
        ('session plan py "T" 2200-01-01 14:00 1h', "session plan", "is too far away"),
        ('session plan py "T" 20261201 14:00 1h', "session plan", "is not a date"),
        ('session plan py "T" 2026-W49-2 14:00 1h', "session plan", "is not a date"),
        ('session plan py "T" ２０２６-12-01 14:00 1h', "session plan", "is not a date"),
        ('session plan py "T" 2026-02-30 14:00 1h', "session plan", "is not a date"),
        # times and their offsets
        ('session plan py "T" 2026-12-01 ²:00 1h', "session plan", "is not a time"),
        ('session plan py "T" 2026-12-01 14:00+14:01 1h', "session plan", "has an offset I cannot read"),
        ('session plan py "T" 2026-12-01 14:00-12:01 1h', "session plan", "has an offset I cannot read"),
        ('session plan py "T" 2026-12-01 14:00+01:60 1h', "session plan", "has an offset I cannot read"),
        ('session plan py "T" 2026-12-01 14:00+1:00 1h', "session plan", "is not a time"),
        ('session plan py "T" 2026-12-01 14:00Z 1h', "session plan", "is not a time"),
        # lengths of the storage columns and of what the platforms show whole
        ('session plan py "' + "x" * 201 + '" 2026-12-01 14:00 1h', "session plan", "201 characters long; at most 200"),
        (
            'session plan py "' + "x" * 7000 + '" 2026-12-01 14:00 1h',
            "session plan",
            "7000 characters long; at most 200",
        ),
        (f'{PLAN} prep="{"p" * 1001}"', "session plan", "`prep` is 1001 characters long; at most 1000."),
        (f'{PLAN} objectives="{"o" * 1001}"', "session plan", "`objectives` is 1001 characters long"),
        (f'quiz add s1 "{"q" * 301}" "A" "B"', "quiz add", "The question is 301 characters long; at most 300."),
        (f'quiz add s1 "Q" "A" "{"b" * 76}"', "quiz add", "is 76 characters long; at most 75."),
        (f'absent s1 "{"r" * 501}"', "absent", "The reason is 501 characters long; at most 500."),
        ('absent s1 ""', "absent", "why you cannot come"),
        ("cohort add py <@" + "U" * 65 + ">", "cohort add", "is not a user mention"),
        ("cohort add py <@U1|" + "a" * 201 + ">", "cohort add", "is not a user mention"),
        ("cohort create py <#" + "C" * 65 + ">", "cohort create", "is not a channel"),
        ("cohort create " + "a" * 41, "cohort create", "is not a valid cohort name"),
        ("session show " + "s" * 17, "session show", "is not a session id"),
        ("session show s1;", "session show", "is not a session id"),
        ("checkin s-1", "checkin", "is not a session id"),
        ("group swap S1! <@U1> <@U2>", "group swap", "is not a session id"),
        # control characters and line breaks
        ("cohort create py\x00", "cohort create", "control character (U+0000)"),
        ('session plan py "T\x00" 2026-12-01 14:00 1h', "session plan", "control character (U+0000)"),
        ("cohort create py\x85x", "cohort create", "control character (U+0085)"),
        ("cohort create py\x1fx", "cohort create", "control character (U+001F)"),
        ("absent s1 \ud800", "absent", "control character (U+D800)"),
        ('cohort create "abc\n"', "cohort create", "`abc\\n` is not a valid cohort name"),
        ('session plan py "a\nb" 2026-12-01 14:00 1h', "session plan", "The title must fit on one line."),
        ('session plan py "a\tb" 2026-12-01 14:00 1h', "session plan", "The title must fit on one line."),
        ('quiz add s1 "Q\n?" "A" "B"', "quiz add", "must fit on one line"),
        ('quiz add s1 "Q" "A" "B\u2028"', "quiz add", "must fit on one line"),
        ('absent s1 "ill\nreally"', "absent", "The reason must fit on one line."),
        ('cohort add py "<@U1>\n"', "cohort add", "is not a user mention"),
        ('session show "s1\n"', "session show", "is not a session id"),
        ("x" * 64_001, None, "This command is 64001 characters long; I read at most 64000."),
        ("cohort show " + "x" * 64_000, "cohort show", "characters long; I read at most 64000."),
    ],
)
def test_refusals_state_the_limit_and_the_usage(text: str, name: str | None, message: str) -> None:
    error = refusal(text)
    assert message in error.message
    if name is None:
        assert error.text().endswith("Type `/peer help` to see what I can do.")
    else:
        assert error.text().endswith(usage_line(name))
    assert len(error.text()) < 3000  # nothing echoed whole


@pytest.mark.parametrize(
    "text",
    [
        'session plan py "' + "x" * 200 + '" 2026-12-01 14:00 1h',
        f'{PLAN} prep="{"p" * 1000}" objectives="{"o" * 1000}"',
        f'quiz add s1 "{"q" * 300}" "{"a" * 75}" "{"b" * 75}"',
        f'absent s1 "{"r" * 500}"',
        "cohort add py <@" + "U" * 64 + ">=5 <@!1|" + "a" * 200 + ">=1",
        "cohort create " + "a" * 40 + " <#" + "C" * 64 + ">",
        "session show " + "s" * 16,
        "group move s1 <@U1> 999",
        'session plan py "T" 2026-12-01 14:00 12h prep_before=4w size=6',
        'session plan py "T" 2199-12-31 23:59 1h',
        'session plan py "T" 2000-01-01 00:00 1h',
        "cohort show " + "x" * 7988,  # 8,000 characters in all: read, then refused as a name, not as a length
    ],
)
def test_values_at_the_limit_pass_the_limit_checks(text: str) -> None:
    try:
        parse(text)
    except Invalid as error:
        assert "not a valid cohort name" in error.message
        assert text.startswith("cohort show")


def test_multi_line_texts_keep_their_line_breaks_and_one_line_fields_refuse_them() -> None:
    command = parse(f'{PLAN} objectives="1. read\n2. try\tit" prep="line one\r\nline two"')
    assert command.options["objectives"] == "1. read\n2. try\tit"
    assert command.options["prep"] == "line one\nline two"
    tokens = ["session", "plan", "py", "T", "2026-12-01", "14:00", "1h", "objectives=a\nb"]
    assert parse_tokens(tokens).options["objectives"] == "a\nb"
    assert "one line" in refusal(["session", "plan", "py", "a\nb", "2026-12-01", "14:00", "1h"]).message
    assert "one line" in refusal(["absent", "s1", "a\r\nb"]).message
    assert "U+0000" in refusal(["session", "plan", "py", "T", "2026-12-01", "14:00", "1h", "prep=a\x00"]).message


def test_superscripts_and_big_numbers_never_reach_int() -> None:
    assert parse("cohort add py <@U1>=5 <@U2>").users == (("U1", 5), ("U2", None))
    assert parse("cohort add py <@U1|a=b>=2").users == (("U1", 2),)  # the level follows the last `>=`
    assert parse("group move s1 <@U1> 007").group == 7
    assert parse(f"{PLAN} size=06").options["size"] == "06"


def test_a_cohort_name_with_a_trailing_newline_is_refused_not_stored() -> None:
    # `re.match` with `$` accepted "abc\n", so a cohort was created that no command could name again
    assert parse("cohort create abc").cohort == "abc"
    assert "not a valid cohort name" in refusal('cohort create "abc\n"').message
    assert "not a valid cohort name" in refusal(["cohort", "create", "abc\n"]).message


def test_an_unclosed_quote_shows_the_usage_of_the_command_it_interrupts() -> None:
    error = refusal('session plan py "Intro 2026-12-01 14:00 1h')
    assert error.message == "A quotation mark is not closed."
    assert error.text().endswith(usage_line("session plan"))
    assert refusal('quiz add s1 "Q" "A').text().endswith(usage_line("quiz add"))
    assert refusal('help "').text().endswith(usage_line("help"))
    assert refusal('"session plan').text().endswith("Type `/peer help` to see the commands.")
    assert refusal('frobnicate "x').text().endswith("Type `/peer help` to see the commands.")
    assert refusal('absent s1 "ill').text("fr") == (
        "Un guillemet n'est pas fermé.\n"
        'Mettez un texte qui contient des espaces entre guillemets : "…" ou « … ». '
        'Syntaxe : `/peer absent <session> "<motif>"`'
    )
    with pytest.raises(Invalid, match="not closed"):
        tokenize('plan "oops')


def test_time_offsets_are_read_and_kept() -> None:
    command = parse('session plan py "T" 2027-10-31 02:30+01:00 1h')
    assert command.at == time(2, 30, tzinfo=timezone(timedelta(hours=1)))
    assert parse('session plan py "T" 2027-10-31 9:05-09:30 1h').at == time(
        9, 5, tzinfo=timezone(-timedelta(hours=9, minutes=30))
    )
    assert parse('session plan py "T" 2027-10-31 02:30 1h').at == time(2, 30)  # naive: the zone decides
    assert parse('session plan py "T" 2027-10-31 00:00+14:00 1h').at is not None


def test_shown_escapes_line_breaks_and_cuts_long_tokens() -> None:
    assert shown("abc\n") == "abc\\n"
    assert shown("a\tb\u2028") == "a\\tb\\u2028"
    assert shown("x" * 100) == "x" * 39 + "…"


def test_durations_refuse_non_ascii_digits_and_overflow() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for text in ("٣h", "²m", "１h"):
        with pytest.raises(ValueError):
            parse_duration(text)
    for text in ("99999999999999999999w", "9" * 5000 + "s", f"{MAX_SECONDS + 1}s"):
        with pytest.raises(DurationTooLong):
            parse_duration(text)
    assert parse_duration(f"{MAX_SECONDS}s") == timedelta(seconds=MAX_SECONDS)


# ---------------------------------------------------------------------------------------------- plan_start


def test_plan_start_refuses_a_skipped_time_naming_the_nearest_valid_ones() -> None:
    with pytest.raises(Invalid) as info:
        plan_start(date(2027, 3, 28), time(2, 30), PARIS, NOW)
    assert info.value.message == "2027-03-28 02:30 does not exist in Europe/Paris: the clocks jump forward over it."
    assert info.value.text().endswith("The nearest valid times are 01:59 and 03:00. " + usage_line("session plan"))
    french = info.value.text("fr")
    assert "2027-03-28 02:30 n'existe pas dans le fuseau Europe/Paris" in french
    assert "Les heures valides les plus proches sont 01:59 et 03:00." in french
    with pytest.raises(Invalid, match="does not exist"):  # an offset does not make a skipped time exist
        plan_start(date(2027, 3, 28), time(2, 30, tzinfo=timezone(timedelta(hours=1))), PARIS, NOW)


def test_plan_start_takes_the_first_of_a_repeated_time_and_says_how_to_pick_the_second() -> None:
    starts, note = plan_start(date(2027, 10, 31), time(2, 30), PARIS, NOW)
    assert starts == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert note is not None
    assert str(note) == (
        "2027-10-31 02:30 happens twice in Europe/Paris (the clocks go back); I took the first, at UTC+02:00. "
        "For the second, at UTC+01:00, plan it with the time `02:30+01:00`."
    )
    assert "j'ai retenu la première, à UTC+02:00" in note.render("fr")
    second, none = plan_start(date(2027, 10, 31), time(2, 30, tzinfo=timezone(timedelta(hours=1))), PARIS, NOW)
    assert (second, none) == (datetime(2027, 10, 31, 1, 30, tzinfo=UTC), None)
    first, none = plan_start(date(2027, 10, 31), time(2, 30, tzinfo=timezone(timedelta(hours=2))), PARIS, NOW)
    assert (first, none) == (starts, None)


def test_plan_start_checks_an_explicit_offset_against_the_zone() -> None:
    summer = plan_start(date(2027, 6, 1), time(14, 0, tzinfo=timezone(timedelta(hours=2))), PARIS, NOW)
    assert summer == (datetime(2027, 6, 1, 12, 0, tzinfo=UTC), None)
    with pytest.raises(Invalid) as info:
        plan_start(date(2027, 6, 1), time(14, 0, tzinfo=timezone(timedelta(hours=5))), PARIS, NOW)
    assert info.value.message == (
        "2027-06-01 14:00 in Europe/Paris is at UTC offset +02:00, not +05:00; write the time without an offset, "
        "or with +02:00."
    )
    with pytest.raises(Invalid, match=re.escape("+02:00 / +01:00")):
        plan_start(date(2027, 10, 31), time(2, 30, tzinfo=UTC), PARIS, NOW)


def test_plan_start_allows_two_years_ahead_and_no_more() -> None:
    last = NOW.date() + grammar.PLAN_AHEAD
    assert plan_start(last, time(12, 0), PARIS, NOW)[0].date() == last
    with pytest.raises(Invalid) as info:
        plan_start(last + timedelta(days=1), time(12, 0), PARIS, NOW)
    assert "is too far away: plan a session from today up to 2 years ahead." in info.value.message
    assert info.value.text().endswith(usage_line("session plan"))
    assert plan_start(date(2026, 3, 9), time(14, 0), PARIS, NOW) == (datetime(2026, 3, 9, 13, 0, tzinfo=UTC), None)


# ---------------------------------------------------------------------------------------------- generated input


def check_within_limits(command: Command) -> None:
    """What a parsed command may carry: the limits the refusals above enforce."""
    multi_line = list(command.texts) if command.name == "note" else []  # a trainer's note may hold paragraphs
    one_line = [command.cohort, command.session, command.channel, command.title]
    one_line += [] if multi_line else list(command.texts)
    one_line += [user for user, _level in command.users]
    one_line += [value for key, value in command.options.items() if key not in {"prep", "objectives"}]
    for value in one_line:
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]", value), value
    for value in [*command.options.values(), *multi_line]:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", value), value
    assert len(command.cohort) <= 40 and len(command.session) <= 16 and len(command.channel) <= 64
    assert all(len(user) <= 64 and (level is None or 1 <= level <= 5) for user, level in command.users)
    assert len(command.title) <= 200
    assert all(len(command.options.get(key, "")) <= 1000 for key in ("prep", "objectives"))
    assert command.group is None or 1 <= command.group <= 999
    assert command.level is None or 1 <= command.level <= 5
    if command.name == "session plan":
        assert command.day is not None and command.duration is not None
        assert 2000 <= command.day.year <= 2199
        assert timedelta(0) < command.duration <= timedelta(hours=12)
        assert 2 <= int(command.options.get("size", "4")) <= 6
    if command.name == "quiz add":
        question, *answers = command.texts
        assert len(question) <= 300 and all(len(a) <= 75 for a in answers)
    if command.name == "absent":
        assert 0 < len(command.texts[0]) <= 500
    if command.name == "note":
        assert 0 < len(command.texts[0]) <= 1000


@settings(max_examples=1500, deadline=None)
@given(command_texts())
def test_generated_text_parses_within_the_limits_or_is_refused_with_a_usage(text: str) -> None:
    try:
        command = parse(text)
    except Invalid as error:
        assert error.message.strip() and "/peer" in error.text()
        assert error.text("fr").strip()
    else:
        check_within_limits(command)


@settings(max_examples=1500, deadline=None)
@given(command_tokens())
def test_generated_tokens_parse_within_the_limits_or_are_refused_with_their_usage(tokens: list[str]) -> None:
    name = command_name([t.replace("\r\n", "\n").replace("\r", "\n") for t in tokens])
    try:
        command = parse_tokens(tokens)
    except Invalid as error:
        assert error.message.strip()
        assert error.text().endswith(usage_line(name) if name else "/peer help`.") or (
            name is None and error.text().endswith("Type `/peer help` to see what I can do.")
        )
    else:
        assert command.name == name
        check_within_limits(command)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_at_all_is_parsed_or_refused(text: str) -> None:
    try:
        check_within_limits(parse(text))
    except Invalid as error:
        assert error.text().strip()

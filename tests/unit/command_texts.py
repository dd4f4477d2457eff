"""Hypothesis strategies for `/peer` input: the commands' own words mixed with what breaks parsers and
databases (NUL and other control characters, line breaks, lone surrogates, superscript and non-ASCII digits,
thousand-digit numbers, dates at `datetime`'s ends, times in DST gaps, over-long texts, stray quotes).

Shared by the grammar's fast property tests and the fuzzing of `Core.handle_command` on both databases.
"""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from bot.grammar import USAGE

CHANNEL = "CHANNEL"  # stands for the world's real channel id; the integration test substitutes it

NASTY = [
    "\x00",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x0b",
    "\x1f",
    "\x7f",
    "\x85",
    "\u2028",
    "\ud800",
    "²",
    "³",
    "٣",
    "１",
    "\u202e",
    "\u200d",
    "é",
    "🙂",
    '"',
    "“",
    "”",
    "«",
    "»",
    "'",
    "=",
    "<",
    ">",
    "@",
    "#",
    "|",
    "`",
    "\\",
    " ",
]
HUGE = ["9" * 20, "9" * 400, "9" * 5000, "4294967296", "2147483648", "99999999999999999999"]

_pieces = st.one_of(st.characters(codec="utf-8"), st.sampled_from(NASTY))  # `\r\n` is two characters


def _strings(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(_pieces, max_size=max_size).map("".join)


junk = _strings(12)
numbers = st.one_of(
    st.integers(-3, 1100).map(str),
    st.sampled_from(["²", "³", "1²", "²1", "٣", "１", "0", "00", "007", "+3", "3.0", *HUGE]),
)
user_ids = st.one_of(
    st.sampled_from(["L1", "L2", "L3", "L12", "T1", "U9"]),
    st.text("abcXYZ0189", min_size=1, max_size=70),
)
mentions = st.builds(
    lambda prefix, user, label, level: f"<@{prefix}{user}{label}>{level}",
    st.sampled_from(["", "!"]),
    user_ids,
    st.sampled_from(["", "|alice", "|a b", "|\x00", "|" + "x" * 250]),
    st.one_of(st.just(""), numbers.map(lambda n: f"={n}")),
)
channels = st.one_of(
    st.just(f"<#{CHANNEL}>"),
    st.just(f"<#{CHANNEL}|cohort>"),
    st.text("C0189", min_size=1, max_size=70).map(lambda c: f"<#{c}>"),
)
cohorts = st.one_of(
    st.sampled_from(["py", "PY", "other", "abc\n", "a" * 40, "a" * 41, "a-b_c", "-x", "ǅ", "\u212aurs"]), junk
)
sessions = st.one_of(st.sampled_from(["s1", "S1", "s2", "s3", "s99", "s1\x00", "tmp1", "s" * 17, ""]), junk)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.dates(min_value=date(2026, 3, 1), max_value=date(2028, 6, 1)).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2027-03-28",
            "2027-10-31",
            "2026-03-29",
            "2026-10-25",
            "0001-01-01",
            "9999-12-28",
            "9999-12-31",
            "20261201",
            "2026-W49-2",
            "2026-02-30",
            "２０２６-12-01",
            "2026-1-1",
        ]
    ),
)
times = st.one_of(
    st.sampled_from(
        [
            "02:30",
            "02:30+01:00",
            "02:30+02:00",
            "02:30-00:00",
            "14:00+05:00",
            "14:00",
            "25:00",
            "9:05",
            "²:00",
            "02:30+14:01",
            "23:59",
            "00:00-12:00",
        ]
    ),
    st.builds(
        lambda h, m, off: f"{h}:{m:02d}{off}",
        st.integers(0, 25),
        st.integers(0, 61),
        st.sampled_from(["", "+01:00", "+02:00", "-05:30", "+99:99", "+00:60"]),
    ),
)
durations = st.one_of(
    st.sampled_from(["1h", "90m", "0m", "12h", "12h1s", "13h", "1h30m", "2w", "4w", "5w", "1y", "-1h", "1h 30m"]),
    st.sampled_from(HUGE).map(lambda n: n + "w"),
    st.builds(lambda n, u: f"{n}{u}", numbers, st.sampled_from("smhdw")),
)
texts = st.one_of(
    _strings(40),
    st.sampled_from(["", " ", "Title", "Intro à l'API", "a\nb", "tab\there"]),
    st.integers(0, 1100).map(lambda n: "x" * n),
    st.sampled_from([199, 200, 201, 300, 301, 500, 501, 1000, 1001, 9000, 100_000]).map(lambda n: "y" * n),
)
option_keys = st.sampled_from(["format", "size", "prep", "prep_before", "objectives", "retention", "groups_from"])
option_values = st.one_of(
    st.sampled_from(["groups", "tutoring", "review", "sharing", "2w", "4w", "checked_in", "enrolled", "x"]),
    numbers,
    durations,
    texts,
)
options = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", option_keys, option_values),
    st.builds(lambda k, v: f"{k}={v}", junk, option_values),
)
any_token = st.one_of(
    junk, numbers, mentions, channels, cohorts, sessions, dates, times, durations, texts, options, st.just("")
)
heads = st.one_of(
    st.sampled_from(sorted(USAGE)),
    st.sampled_from(sorted(USAGE)).map(str.upper),
    st.sampled_from(["cohort", "session", "group", "quiz", "frobnicate", ""]),
    junk,
)


def usually(good: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Five times in six a value that passes, else anything: deep enough to reach the database."""
    return st.integers(0, 5).flatmap(lambda pick: bad if pick == 0 else good)


good_cohort = usually(st.sampled_from(["py", "PY", "other"]), cohorts)
good_session = usually(st.sampled_from(["s1", "s2", "s3", "S1"]), sessions)
good_mention = usually(
    st.builds(lambda n, level: f"<@L{n}>{level}", st.integers(1, 5), st.sampled_from(["", "=1", "=3", "=5"])), mentions
)
good_channel = usually(st.just(f"<#{CHANNEL}>"), channels)
good_text = usually(st.sampled_from(["Why?", "Yes", "No", "Maybe", "Intro à l'API", "Ill"]), texts)
good_number = usually(st.sampled_from(["1", "2", "3"]), numbers)
good_date = usually(st.dates(min_value=date(2026, 3, 3), max_value=date(2028, 3, 1)).map(date.isoformat), dates)
good_time = usually(st.sampled_from(["14:00", "9:05", "02:30", "23:59"]), times)
good_duration = usually(st.sampled_from(["1h", "90m", "12h", "30m"]), durations)
good_option = usually(
    st.sampled_from(
        [
            "format=tutoring",
            "format=review",
            "format=sharing",
            "size=3",
            "prep=Read",
            "prep_before=2d",
            "retention=4w",
            "objectives=A",
            "reviewers=3",
            "named=yes",
        ]
    ),
    options,
)

SLOTS: dict[str, list[st.SearchStrategy[str]]] = {
    "cohort create": [good_cohort, good_channel],
    "cohort add": [good_cohort, good_mention, good_mention, good_mention],
    "cohort import": [good_cohort, good_channel, good_number],
    "cohort show": [good_cohort],
    "cohort apart": [good_cohort, good_mention, good_mention],
    "cohort together": [good_cohort, good_mention, good_mention],
    "cohort unpair": [good_cohort, good_mention, good_mention],
    "session plan": [good_cohort, good_text, good_date, good_time, good_duration, good_option, good_option],
    "quiz add": [good_session, good_text, good_text, good_text, good_text],
    "review criteria": [good_session, good_text, good_text],
    "group move": [good_session, good_mention, good_number],
    "group swap": [good_session, good_mention, good_mention],
    "absent": [good_session, good_text],
}


@st.composite
def command_tokens(draw: st.DrawFn) -> list[str]:
    """Tokens as Discord hands them over: mostly a known command with its slots mostly right (a slot may be
    dropped, an argument added, a nasty character slipped in), else any words."""
    if draw(st.integers(0, 4)) == 0:
        return [*draw(heads).split(" "), *draw(st.lists(any_token, max_size=6))]
    name = draw(st.sampled_from(sorted(USAGE)))
    slots = SLOTS.get(name, [good_session])
    if draw(st.integers(0, 4)) == 0:
        slots = slots[: draw(st.integers(0, len(slots)))]
    tokens = [draw(slot) for slot in slots]
    if draw(st.integers(0, 4)) == 0:
        tokens.append(draw(any_token))
    if tokens and draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(tokens) - 1))
        token = tokens[at]
        cut = draw(st.integers(0, len(token)))
        tokens[at] = token[:cut] + draw(st.sampled_from(NASTY)) + token[cut:]
    return [*name.split(" "), *tokens]


def quote(token: str, style: str) -> str:
    """How a person would type the token: quoted when it holds spaces or is empty (or a quote left open)."""
    if style == "open":
        return '"' + token
    if style == "smart":
        return f"“{token}”"
    if not token or any(ch.isspace() for ch in token) or style == "always":
        return f'"{token}"'
    return token


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    """Text as Slack sends it: the tokens joined by spaces, quoted as typed (now and then a quote left open)."""
    tokens = draw(command_tokens())
    styles = st.sampled_from(["plain"] * 12 + ["always", "smart", "open"])
    return " ".join(quote(token, draw(styles)) for token in tokens)

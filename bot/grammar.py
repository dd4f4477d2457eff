"""The `/peer` command grammar, shared by every platform: text in, a typed command out.

Slack sends the text after `/peer`; Discord builds the same text from its typed options, so the grammar
(and its error messages) exists once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from bot.durations import DurationTooLong, parse_duration
from bot.errors import Invalid
from bot.i18n import N_, Text, _, t
from bot.localtime import Kind, format_offset, resolve_local

FORMATS = ("groups", "tutoring", "review", "sharing")
MAX_DURATION = timedelta(hours=12)
MAX_PREP_BEFORE = timedelta(days=28)

# Limits of what a command may carry: the storage columns' lengths (storage/models.py), what Slack and Discord
# show whole (an answer is a button or an option: 75 characters on Slack), and ranges that keep every
# computed time inside `datetime`. A refusal states the limit and the command's usage line.
MAX_INPUT = 64_000  # characters in one command: a class of 3,000 mentions (about 45,000) fits
MAX_TITLE = 200  # PeerSession.title
MAX_LONG_TEXT = 1000  # prep and objectives (TEXT columns; Discord's event description holds 1,000)
MAX_QUESTION = 300  # a quiz question, shown in a DM and a form label
MAX_ANSWER = 75  # a quiz answer: a Slack button or option text is at most 75 characters
MAX_REASON = 500  # an absence reason
MAX_CRITERION = 200  # ReviewCriterion.text
MAX_CRITERIA = 4  # a rubric form holds the criteria and a comment: Discord modals take 5 fields
MAX_NOTE = 1000  # a trainer's note: one Slack section (3,000) or Discord message (2,000) shows it whole
EXPORT_FORMATS = ("pdf", "xlsx", "csv", "audit")  # the first is the default, as for `peerbot export`
MAX_GROUP = 999  # group numbers (the column is a 32-bit integer)
MIN_YEAR, MAX_YEAR = 2000, 2199  # dates the grammar reads at all; `plan_start` then allows today up to PLAN_AHEAD
PLAN_AHEAD = timedelta(days=731)  # a session starts at most 2 years from today

# Usage lines are msgids: the command words stay, the <placeholders> are translated.
USAGE: dict[str, str] = {
    "help": "/peer help",
    "cohort create": N_("/peer cohort create <cohort> [#channel]"),
    "cohort add": N_("/peer cohort add <cohort> <@user>[=<level 1-5>] ..."),
    "cohort import": N_("/peer cohort import <cohort> <#channel> [level]"),
    "cohort show": N_("/peer cohort show <cohort>"),
    "cohort apart": N_("/peer cohort apart <cohort> <@user> <@user>"),
    "cohort together": N_("/peer cohort together <cohort> <@user> <@user>"),
    "cohort unpair": N_("/peer cohort unpair <cohort> <@user> <@user>"),
    "cohort trainers": N_("/peer cohort trainers add|remove <cohort> <@user>"),
    "session plan": N_(
        '/peer session plan <cohort> "<title, at most 200 characters>" <YYYY-MM-DD, within 2 years> '
        "<HH:MM>[±HH:MM] <duration, at most 12h> "
        '[format=groups|tutoring|review|sharing] [size=<2-6>] [prep="<text or url, at most 1000 characters>"] '
        '[prep_before=<duration, at most 4w>] [objectives="<text, at most 1000 characters>"] '
        "[retention=2w|4w[,<second quiz, in weeks, up to 26w>]] [groups_from=checked_in|enrolled] "
        "[reviewers=<1-5, peer review>] [named=yes|no, peer review]"
    ),
    "session show": N_("/peer session show <session>"),
    "session start": N_("/peer session start <session>"),
    "session end": N_("/peer session end <session>"),
    "session cancel": N_("/peer session cancel <session>"),
    "quiz add": N_(
        '/peer quiz add <session> "<question, at most 300 characters>" "<correct answer, at most 75 characters>" '
        '"<wrong answer>" ["<wrong answer>" ...] (at most 8 wrong answers)'
    ),
    "review criteria": N_(
        '/peer review criteria <session> "<criterion, at most 200 characters>" ["<criterion>" ...] '
        "(1 to 4 criteria, each scored 1-4)"
    ),
    "report": N_("/peer report <session>"),
    "questionnaire edit": N_("/peer questionnaire edit <cohort>"),
    "followup plan": N_("/peer followup plan <session> <weeks 1-52> [observer=@user]"),
    "export": N_("/peer export <cohort|session> [pdf|xlsx|csv|audit] (audit: a cohort's audit pack)"),
    "note": N_('/peer note <session> "<text, at most 1000 characters>"'),
    "alerts": N_("/peer alerts <cohort>"),
    "dashboard": "/peer dashboard",
    "group show": N_("/peer group show <session>"),
    "group move": N_("/peer group move <session> <@user> <group number 1-999>"),
    "group swap": N_("/peer group swap <session> <@user> <@user>"),
    "group reshuffle": N_("/peer group reshuffle <session>"),
    "checkin": N_("/peer checkin [session]"),
    "prep-done": N_("/peer prep-done [session]"),
    "absent": N_('/peer absent <session> "<reason>"'),
    "submit": N_("/peer submit [session]"),
    "raise": "/peer raise",
    "mydata": "/peer mydata",
    "forget-me": "/peer forget-me",
}
GROUPED = ("cohort", "session", "group", "quiz", "questionnaire", "followup", "review")  # first words + a verb
PAIR_COMMANDS = frozenset({"cohort apart", "cohort together", "cohort unpair"})
TRAINER_COMMANDS = frozenset(
    k
    for k in USAGE
    if k.split()[0]
    in {
        "cohort",
        "session",
        "quiz",
        "report",
        "export",
        "note",
        "group",
        "alerts",
        "questionnaire",
        "followup",
        "dashboard",
        "review",
    }
)

# `fullmatch` only: `$` also matches before a final newline, which let `cohort create "abc\n"` through.
_MENTION = re.compile(r"<@!?([A-Za-z0-9]{1,64})(?:\|[^>\x00-\x1f\x7f]{0,200})?>")  # Member.user_id: 64
_CHANNEL = re.compile(r"<#([A-Za-z0-9]{1,64})(?:\|[^>\x00-\x1f\x7f]{0,200})?>")  # channel_id: 64
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_SESSION = re.compile(r"[a-z0-9]{1,16}")  # PeerSession.short_id: 16
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # not `date.fromisoformat`'s other forms (20261201, 2026-W49-2)
_TIME = re.compile(r"([0-9]{1,2}:[0-9]{2})(?:([+-])([0-9]{2}):([0-9]{2}))?")
MIN_OFFSET, MAX_OFFSET = timedelta(hours=-12), timedelta(hours=14)  # the UTC offsets in use
# Control characters (C0, DEL, C1) and lone surrogates: PostgreSQL refuses NUL, UTF-8 cannot encode a
# surrogate, and none is meant in a command. Tabs and line breaks are allowed in multi-line texts only.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\t\n\r\u2028\u2029]")
_QUOTES = {"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'}
_SHOWN = 40  # characters of a faulty token echoed back in an error


@dataclass(frozen=True)
class Command:
    """A parsed command: `name` is a key of USAGE; the other fields depend on it."""

    name: str
    cohort: str = ""
    session: str = ""
    users: tuple[tuple[str, int | None], ...] = ()
    channel: str = ""
    level: int | None = None
    title: str = ""
    day: date | None = None
    at: time | None = None  # a wall time in the instance's zone; with a fixed UTC offset when one was written
    duration: timedelta | None = None
    options: dict[str, str] = field(default_factory=dict)
    texts: tuple[str, ...] = ()
    group: int | None = None
    weeks: int | None = None


def tokenize(text: str) -> list[str]:
    """Split on spaces, keeping "double-quoted" runs (smart quotes too); apostrophes are plain letters."""
    for smart, plain in _QUOTES.items():
        text = text.replace(smart, plain)
    tokens: list[str] = []
    current: list[str] = []
    in_quotes = False
    quoted = False
    for ch in text.strip():
        if ch == '"':
            in_quotes = not in_quotes
            quoted = True
        elif ch.isspace() and not in_quotes:
            if current or quoted:
                tokens.append("".join(current))
            current, quoted = [], False
        else:
            current.append(ch)
    if in_quotes:
        name = command_name(tokens) if tokens else None
        hint = (
            _('Put text with spaces between "double quotes". Usage: `{usage}`', usage=usage(name))
            if name
            else _('Put text with spaces between "double quotes". Type `/peer help` to see the commands.')
        )
        raise Invalid(_("A quotation mark is not closed."), hint)
    if current or quoted:
        tokens.append("".join(current))
    return tokens


def command_name(words: Sequence[str]) -> str | None:
    """The USAGE key the words start with (`help` for none), or None when they name no command."""
    if not words:
        return "help"
    head = words[0].lower()
    name = f"{head} {words[1].lower()}" if head in GROUPED and len(words) >= 2 else head
    return name if name in USAGE else None


def usage(name: str) -> Text:
    """The usage line of command `name`, in the reader's locale."""
    return Text(USAGE[name])


def usage_hint(name: str) -> Text:
    return _("Usage: `{usage}`", usage=usage(name))


def _hint(name: str | None) -> Text:
    """The usage of the command when known, else where to find the commands."""
    return usage_hint(name) if name else _("Type `/peer help` to see what I can do.")


def _usage_error(name: str, problem: Text) -> Invalid:
    return Invalid(problem, usage_hint(name))


def shown(raw: str) -> str:
    """A faulty token as echoed in an error: line breaks and tabs visible as escapes, and cut short."""
    visible = _LINE_BREAK.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), raw)
    return visible if len(visible) <= _SHOWN else visible[: _SHOWN - 1] + "…"


def _check_characters(words: Sequence[str], name: str | None) -> None:
    """No control character anywhere (tabs and line breaks are checked per field), and a bounded size."""
    size = sum(len(w) for w in words)
    if size > MAX_INPUT:
        raise Invalid(
            _("This command is {size} characters long; I read at most {limit}.", size=size, limit=MAX_INPUT),
            _hint(name),
        )
    for word in words:
        bad = _CONTROL.search(word)
        if bad:
            raise Invalid(
                _(
                    "The command contains a control character ({code}), which I cannot store; type it again "
                    "without it.",
                    code=f"U+{ord(bad.group()):04X}",
                ),
                _hint(name),
            )


def _one_line(value: str, name: str, problem: Text) -> str:
    """`value` unless it holds a tab or a line break (one-line fields: titles, answers, reasons)."""
    if _LINE_BREAK.search(value):
        raise _usage_error(name, problem)
    return value


def _at_most(value: str, limit: int, name: str, problem: Text) -> str:
    if len(value) > limit:
        raise _usage_error(name, problem)
    return value


def _whole(raw: str, low: int, high: int) -> int | None:
    """`raw` as a whole number in [low, high], ASCII digits only (`str.isdigit` also takes ² and ٣, which
    `int` refuses or reads), or None."""
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def parse_user(token: str, name: str) -> str:
    match = _MENTION.fullmatch(token)
    if not match:
        raise _usage_error(name, _("`{token}` is not a user mention; mention people with @.", token=shown(token)))
    return match.group(1)


def parse_channel(token: str, name: str) -> str:
    match = _CHANNEL.fullmatch(token)
    if not match:
        raise _usage_error(name, _("`{token}` is not a channel; mention it with #.", token=shown(token)))
    return match.group(1)


def parse_level(raw: str, name: str) -> int:
    level = _whole(raw, 1, 5)
    if level is None:
        raise _usage_error(name, _("Level `{raw}` is not a whole number from 1 to 5.", raw=shown(raw)))
    return level


def parse_cohort_name(token: str, name: str) -> str:
    cohort = token.lower()
    if not _NAME.fullmatch(cohort):
        raise _usage_error(
            name,
            _("`{token}` is not a valid cohort name: use letters, digits, - or _ (at most 40).", token=shown(token)),
        )
    return cohort


def parse_session_id(token: str, name: str) -> str:
    """A session's short id (`s12`): letters and digits, at most 16 (the column's length)."""
    session = token.lower()
    if not _SESSION.fullmatch(session):
        raise _usage_error(
            name,
            _(
                "`{token}` is not a session id: session ids are letters and digits, like `s12`.",
                token=shown(token),
            ),
        )
    return session


def _parse_day(raw: str, name: str) -> date:
    try:
        day = date.fromisoformat(raw) if _DATE.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None:
        raise _usage_error(name, _("`{raw}` is not a date; write it as YYYY-MM-DD.", raw=shown(raw)))
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise _usage_error(name, _too_far(raw))
    return day


def _too_far(raw: str) -> Text:
    return _("`{raw}` is too far away: plan a session from today up to 2 years ahead.", raw=shown(raw))


def _parse_time(raw: str, name: str) -> time:
    """`HH:MM` (24 h), or `HH:MM+HH:MM` / `HH:MM-HH:MM` with a UTC offset picking one occurrence of a time
    that happens twice; the offset is naive-checked here, against the zone by `plan_start`."""
    match = _TIME.fullmatch(raw)
    try:
        at = time.fromisoformat(match.group(1).zfill(5)) if match else None
    except ValueError:
        at = None
    if match is None or at is None:
        raise _usage_error(name, _("`{raw}` is not a time; write it as HH:MM (24 h).", raw=shown(raw)))
    if match.group(2) is None:
        return at
    hours, minutes = int(match.group(3)), int(match.group(4))
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if match.group(2) == "-" else 1)
    if minutes >= 60 or not MIN_OFFSET <= offset <= MAX_OFFSET:
        raise _usage_error(
            name,
            _(
                "`{raw}` has an offset I cannot read; write e.g. 02:30+01:00, with an offset from -12:00 to +14:00.",
                raw=shown(raw),
            ),
        )
    return at.replace(tzinfo=timezone(offset))


def _bounded_duration(raw: str, name: str, at_most: timedelta, problem: Text) -> timedelta:
    """A duration in (0, at_most]; `problem` states the range."""
    try:
        value = parse_duration(raw)
    except DurationTooLong:
        raise _usage_error(name, problem) from None
    except ValueError:
        raise _usage_error(name, _("`{raw}` is not a duration; write e.g. 90m, 1h30m or 2w.", raw=shown(raw))) from None
    if not timedelta(0) < value <= at_most:
        raise _usage_error(name, problem)
    return value


def _parse_session_plan(args: list[str]) -> Command:
    name = "session plan"
    positional, options_raw = args[:5], args[5:]
    if len(positional) != 5 or any("=" in a for a in positional[2:]):
        raise _usage_error(name, _("`session plan` needs a cohort, a title, a date, a time and a duration."))
    cohort, title_raw, day_raw, time_raw, duration_raw = positional
    title = title_raw.strip()
    if not title:
        raise _usage_error(name, _("The title is empty."))
    _one_line(title, name, _("The title must fit on one line."))
    _at_most(
        title,
        MAX_TITLE,
        name,
        _("The title is {length} characters long; at most {limit}.", length=len(title), limit=MAX_TITLE),
    )
    day = _parse_day(day_raw, name)
    at = _parse_time(time_raw, name)
    duration = _bounded_duration(
        duration_raw, name, MAX_DURATION, _("The duration must be more than 0 and at most 12h.")
    )
    options: dict[str, str] = {}
    for raw in options_raw:
        key, _eq, value = raw.partition("=")
        key = key.lower()
        if key not in {
            "format",
            "size",
            "prep",
            "prep_before",
            "objectives",
            "retention",
            "groups_from",
            "reviewers",
            "named",
        }:
            raise _usage_error(name, _("Unknown option `{key}`.", key=shown(key)))
        options[key] = value
    _check_plan_options(options, name)
    return Command(
        name,
        cohort=parse_cohort_name(cohort, name),
        title=title,
        day=day,
        at=at,
        duration=duration,
        options=options,
    )


def _parse_export(args: list[str]) -> Command:
    """`export <cohort|session> [format]`: the target stays a name here (a session id is also a valid cohort
    name); the core resolves it, a session first, as `peerbot export` does."""
    name = "export"
    if not 1 <= len(args) <= 2:
        raise _usage_error(name, _("Say which cohort or session, and optionally the format."))
    fmt = args[1].lower() if len(args) > 1 else EXPORT_FORMATS[0]
    if fmt not in EXPORT_FORMATS:
        raise _usage_error(
            name,
            _(
                "Unknown format `{format}`: use one of {formats}.",
                format=shown(args[1]),
                formats=", ".join(EXPORT_FORMATS),
            ),
        )
    return Command(name, cohort=parse_cohort_name(args[0], name), texts=(fmt,))


def _check_plan_options(options: dict[str, str], name: str) -> None:
    if "format" in options and options["format"] not in FORMATS:
        raise _usage_error(
            name,
            _(
                "Unknown format `{format}`: use one of {formats}.",
                format=shown(options["format"]),
                formats=", ".join(FORMATS),
            ),
        )
    if "size" in options and _whole(options["size"], 2, 6) is None:
        raise _usage_error(
            name, _("Group size `{size}` must be a whole number from 2 to 6.", size=shown(options["size"]))
        )
    if "retention" in options:
        retention_weeks(options["retention"], name)
    if "prep_before" in options:
        _bounded_duration(
            options["prep_before"], name, MAX_PREP_BEFORE, _("prep_before must be more than 0 and at most 4w.")
        )
    if "groups_from" in options and options["groups_from"] not in {"checked_in", "enrolled"}:
        raise _usage_error(name, _("groups_from must be `checked_in` or `enrolled`."))
    if "reviewers" in options and _whole(options["reviewers"], 1, 5) is None:
        raise _usage_error(
            name, _("reviewers=`{raw}` must be a whole number from 1 to 5.", raw=shown(options["reviewers"]))
        )
    if "named" in options:
        options["named"] = options["named"].lower()
        if options["named"] not in {"yes", "no"}:
            raise _usage_error(name, _("named must be `yes` or `no`."))
    if ("reviewers" in options or "named" in options) and options.get("format") != "review":
        raise _usage_error(name, _("reviewers and named are options of the peer review format: add `format=review`."))
    for key in ("prep", "objectives"):
        if len(options.get(key, "")) > MAX_LONG_TEXT:
            raise _usage_error(
                name,
                _(
                    "`{key}` is {length} characters long; at most {limit}.",
                    key=key,
                    length=len(options[key]),
                    limit=MAX_LONG_TEXT,
                ),
            )


MAX_SECOND_RETENTION = 26  # weeks: the second retention quiz comes at most half a year after the session


def retention_weeks(raw: str, name: str = "session plan") -> tuple[int, int]:
    """`retention=2w` or `2w,6w`: the first quiz at 2 or 4 weeks, an optional second one later, in whole weeks
    up to MAX_SECOND_RETENTION (0 when there is none). Whole weeks keep the quiz at the session's wall time."""
    first, comma, second = raw.partition(",")
    if first not in {"2w", "4w"}:
        raise _usage_error(name, _("Retention must be `2w` or `4w`."))
    if not comma:
        return int(first[0]), 0
    weeks = _whole(second[:-1], 1, MAX_SECOND_RETENTION) if second.endswith("w") else None
    if weeks is None or weeks <= int(first[0]):
        raise _usage_error(
            name,
            _(
                "The second retention quiz `{raw}` must come after the first, in whole weeks up to {limit}w "
                "(e.g. retention=2w,6w).",
                raw=shown(second),
                limit=MAX_SECOND_RETENTION,
            ),
        )
    return int(first[0]), weeks


def plan_start(day: date, at: time, zone: tzinfo, now: datetime) -> tuple[datetime, Text | None]:
    """When a session planned for `day` `at` (wall time in `zone`) starts, as UTC, with a note for the reply.

    Refuses a date more than PLAN_AHEAD after today, a wall time the clocks skip (naming the nearest valid
    times) and an explicit offset the zone does not use then. A time that happens twice without an offset
    is taken at its first occurrence, and the note says so and how to pick the other. The past is the
    caller's check (its message names the zone's local time).
    """
    name = "session plan"
    if day > now.astimezone(zone).date() + PLAN_AHEAD:
        raise _usage_error(name, _too_far(day.isoformat()))
    resolved = resolve_local(day, at, zone)
    moment = f"{resolved.wall:%Y-%m-%d %H:%M}"
    if not resolved.exists:
        assert resolved.before is not None and resolved.after is not None
        raise Invalid(
            _(
                "{moment} does not exist in {zone}: the clocks jump forward over it.",
                moment=moment,
                zone=str(zone),
            ),
            _(
                "The nearest valid times are {before} and {after}. Usage: `{usage}`",
                before=_wall(resolved.before, day),
                after=_wall(resolved.after, day),
                usage=usage(name),
            ),
        )
    explicit = at.utcoffset()
    if explicit is not None:
        instant = resolved.at_offset(explicit)
        if instant is None:
            offsets = " / ".join(format_offset(o) for o in resolved.offsets())
            raise _usage_error(
                name,
                _(
                    "{moment} in {zone} is at UTC offset {offsets}, not {offset}; write the time without an "
                    "offset, or with {offsets}.",
                    moment=moment,
                    offsets=offsets,
                    zone=str(zone),
                    offset=format_offset(explicit),
                ),
            )
        return instant, None
    if resolved.kind is Kind.AMBIGUOUS:
        first, second = resolved.offsets()
        return resolved.first, _(
            "{moment} happens twice in {zone} (the clocks go back); I took the first, at UTC{first}. For the "
            "second, at UTC{second}, plan it with the time `{time}{second}`.",
            moment=moment,
            zone=str(zone),
            first=format_offset(first),
            second=format_offset(second),
            time=f"{resolved.wall:%H:%M}",
        )
    return resolved.first, None


def _wall(moment: datetime, day: date) -> str:
    """A local time as HH:MM, with its date when not on `day` (a gap may span midnight)."""
    return f"{moment:%H:%M}" if moment.date() == day else f"{moment:%Y-%m-%d %H:%M}"


def parse_duration_arg(raw: str, name: str) -> timedelta:
    try:
        return parse_duration(raw)
    except ValueError:
        raise _usage_error(name, _("`{raw}` is not a duration; write e.g. 90m, 1h30m or 2w.", raw=shown(raw))) from None


def _parse_users(tokens: list[str], name: str) -> tuple[tuple[str, int | None], ...]:
    users: list[tuple[str, int | None]] = []
    for token in tokens:
        cut = token.rfind(">=")
        mention, level = (token[: cut + 1], token[cut + 2 :]) if cut >= 0 else (token, None)
        users.append((parse_user(mention, name), parse_level(level, name) if level is not None else None))
    return tuple(users)


def parse(text: str) -> Command:
    """Parse the text after `/peer`; raise Invalid with the right usage on any mistake."""
    if len(text) > MAX_INPUT or _CONTROL.search(text):  # before splitting, so no separator hides one
        _check_characters([text], command_name(text.split(maxsplit=2)[:2]))
    return parse_tokens(tokenize(text))


def parse_tokens(tokens: Sequence[str]) -> Command:
    """Parse tokens already split (Discord's typed options arrive this way, so quotes inside an option are
    plain characters); the same checks and errors as `parse`."""
    words = [w.replace("\r\n", "\n").replace("\r", "\n") for w in tokens]
    name = command_name(words)
    _check_characters(words, name)
    if name is None:
        text, head = shown(" ".join(words).strip()), shown(words[0].lower())
        if head in GROUPED:
            verbs = ", ".join(k.split()[1] for k in USAGE if k.startswith(head + " "))
            raise Invalid(
                _("`{text}` is not a {head} command.", text=text, head=head),
                _("Try one of: {verbs}. See `/peer help`.", verbs=verbs),
            )
        raise Invalid(_("I don't know the command `{head}`.", head=head), _("Type `/peer help` to see what I can do."))
    return _parse_args(name, words[len(name.split()) :] if words else [])


def _parse_args(name: str, args: list[str]) -> Command:
    def need(count: int, problem: Text) -> None:
        if len(args) < count:
            raise _usage_error(name, problem)

    if name in {"help", "raise", "mydata", "forget-me", "dashboard"}:
        if name == "dashboard" and args:
            raise _usage_error(name, _("`/peer dashboard` takes nothing after it."))
        return Command(name)
    if name in {"checkin", "prep-done", "submit"}:
        if len(args) > 1:
            raise _usage_error(name, _("Give at most one session id."))
        return Command(name, session=parse_session_id(args[0], name) if args and args[0] else "")
    if name == "absent":
        need(2, _("Say which session and why you cannot come."))
        reason = " ".join(args[1:]).strip()
        if not reason:
            raise _usage_error(name, _("Say which session and why you cannot come."))
        _one_line(reason, name, _("The reason must fit on one line."))
        _at_most(
            reason,
            MAX_REASON,
            name,
            _("The reason is {length} characters long; at most {limit}.", length=len(reason), limit=MAX_REASON),
        )
        return Command(name, session=parse_session_id(args[0], name), texts=(reason,))
    if name == "session plan":
        return _parse_session_plan(args)
    if name == "export":
        return _parse_export(args)
    if name == "note":
        need(2, _("Say which session and what you noted."))
        text = " ".join(args[1:]).strip()
        if not text:
            raise _usage_error(name, _("Say which session and what you noted."))
        _at_most(
            text,
            MAX_NOTE,
            name,
            _("The note is {length} characters long; at most {limit}.", length=len(text), limit=MAX_NOTE),
        )
        return Command(name, session=parse_session_id(args[0], name), texts=(text,))
    if name.startswith("session ") or name in {"report", "group show", "group reshuffle"}:
        if len(args) != 1:
            raise _usage_error(name, _("Give exactly one session id."))
        return Command(name, session=parse_session_id(args[0], name))
    if name == "cohort create":
        need(1, _("Give the new cohort a name."))
        channel = parse_channel(args[1], name) if len(args) > 1 else ""
        return Command(name, cohort=parse_cohort_name(args[0], name), channel=channel)
    if name in {"cohort show", "alerts"}:
        need(1, _("Say which cohort."))
        return Command(name, cohort=parse_cohort_name(args[0], name))
    if name == "cohort add":
        need(2, _("Say which cohort and mention at least one person."))
        return Command(name, cohort=parse_cohort_name(args[0], name), users=_parse_users(args[1:], name))
    if name == "cohort import":
        need(2, _("Say which cohort and which channel."))
        level = parse_level(args[2], name) if len(args) > 2 else None
        return Command(name, cohort=parse_cohort_name(args[0], name), channel=parse_channel(args[1], name), level=level)
    if name in PAIR_COMMANDS:
        need(3, _("Say which cohort and mention two people."))
        if len(args) > 3:
            raise _usage_error(name, _("Mention exactly two people."))
        first, second = parse_user(args[1], name), parse_user(args[2], name)
        if first == second:
            raise _usage_error(name, _("Mention two different people: a person cannot be paired with themselves."))
        return Command(name, cohort=parse_cohort_name(args[0], name), users=((first, None), (second, None)))
    if name == "cohort trainers":
        need(3, _("Say add or remove, which cohort, and mention one person."))
        verb = args[0].lower()
        if verb not in {"add", "remove"} or len(args) > 3:
            raise _usage_error(name, _("Say add or remove, which cohort, and mention one person."))
        user = parse_user(args[2], name)
        return Command(name, cohort=parse_cohort_name(args[1], name), users=((user, None),), texts=(verb,))
    if name == "review criteria":
        need(2, _("Say which session and give at least one criterion."))
        if len(args) > 1 + MAX_CRITERIA:
            raise _usage_error(name, _("At most {limit} criteria.", limit=MAX_CRITERIA))
        criteria = tuple(c.strip() for c in args[1:])
        for criterion in criteria:
            if not criterion:
                raise _usage_error(name, _("A criterion is empty."))
            _one_line(criterion, name, _("Each criterion must fit on one line."))
            _at_most(
                criterion,
                MAX_CRITERION,
                name,
                _(
                    "The criterion `{criterion}` is {length} characters long; at most {limit}.",
                    criterion=shown(criterion),
                    length=len(criterion),
                    limit=MAX_CRITERION,
                ),
            )
        if len({c.casefold() for c in criteria}) != len(criteria):
            raise _usage_error(name, _("Give each criterion once."))
        return Command(name, session=parse_session_id(args[0], name), texts=criteria)
    if name == "quiz add":
        need(4, _("A quiz item needs a session, a question, the correct answer and at least one wrong answer."))
        if len(args) > 2 + 9:
            raise _usage_error(name, _("At most 8 wrong answers."))
        return Command(name, session=parse_session_id(args[0], name), texts=_quiz_texts(args[1:], name))
    if name == "questionnaire edit":
        if len(args) != 1:
            raise _usage_error(name, _("Say which cohort."))
        return Command(name, cohort=parse_cohort_name(args[0], name))
    if name == "followup plan":
        return _parse_followup(args, name)
    if name == "group move":
        need(3, _("Say which session, whom, and to which group number."))
        group = _whole(args[2], 1, MAX_GROUP)
        if group is None:
            raise _usage_error(
                name, _("`{raw}` is not a group number from 1 to {limit}.", raw=shown(args[2]), limit=MAX_GROUP)
            )
        return Command(
            name, session=parse_session_id(args[0], name), users=((parse_user(args[1], name), None),), group=group
        )
    if name == "group swap":
        need(3, _("Say which session and mention two people."))
        return Command(
            name,
            session=parse_session_id(args[0], name),
            users=((parse_user(args[1], name), None), (parse_user(args[2], name), None)),
        )
    raise _usage_error(name, _("I could not read that command."))  # pragma: no cover - every USAGE key is handled


MAX_FOLLOWUP_WEEKS = 52


def _parse_followup(args: list[str], name: str) -> Command:
    """`followup plan <session> <weeks> [observer=@user]`: weeks as `6` or `6w`, 1 to 52."""
    if len(args) not in {2, 3}:
        raise _usage_error(name, _("Say which session and after how many weeks."))
    raw = args[1].lower().removesuffix("w")
    weeks = _whole(raw, 1, MAX_FOLLOWUP_WEEKS)
    if weeks is None:
        raise _usage_error(
            name,
            _("`{raw}` is not a number of weeks from 1 to {limit}.", raw=shown(args[1]), limit=MAX_FOLLOWUP_WEEKS),
        )
    users: tuple[tuple[str, int | None], ...] = ()
    if len(args) == 3:
        key, eq, value = args[2].partition("=")
        if key.lower() != "observer" or not eq:
            raise _usage_error(name, _("Unknown option `{key}`.", key=shown(key)))
        users = ((parse_user(value, name), None),)
    return Command(name, session=parse_session_id(args[0], name), weeks=weeks, users=users)


def _quiz_texts(texts: list[str], name: str) -> tuple[str, ...]:
    """The question and answers, each on one line and within its limit (emptiness and repeats are the
    core's check)."""
    question, *answers = texts
    _one_line(question, name, _("Quiz questions and answers must fit on one line."))
    _at_most(
        question,
        MAX_QUESTION,
        name,
        _("The question is {length} characters long; at most {limit}.", length=len(question), limit=MAX_QUESTION),
    )
    for answer in answers:
        _one_line(answer, name, _("Quiz questions and answers must fit on one line."))
        _at_most(
            answer,
            MAX_ANSWER,
            name,
            _(
                "The answer `{answer}` is {length} characters long; at most {limit}.",
                answer=shown(answer),
                length=len(answer),
                limit=MAX_ANSWER,
            ),
        )
    return tuple(texts)


def help_text(is_trainer: bool, locale: str = "en") -> str:
    learner = [k for k in USAGE if k not in TRAINER_COMMANDS]
    lines = [t(locale, "*peerbot commands*")]
    if is_trainer:
        lines.append(t(locale, "_Trainers_"))
        lines += [f"• `{t(locale, USAGE[k])}`" for k in USAGE if k in TRAINER_COMMANDS]
        lines.append(t(locale, "_Learners_"))
    lines += [f"• `{t(locale, USAGE[k])}`" for k in learner]
    lines.append(t(locale, "Durations: 90m, 1h30m, 2w. Sessions are named by the short id shown when planned."))
    return "\n".join(lines)

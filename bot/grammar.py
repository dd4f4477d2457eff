"""The `/peer` command grammar, shared by every platform: text in, a typed command out.

Slack sends the text after `/peer`; Discord builds the same text from its typed options, so the grammar
(and its error messages) exists once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from bot.durations import parse_duration
from bot.errors import Invalid
from bot.i18n import N_, Text, _, t

FORMATS = ("groups", "tutoring", "review", "sharing")
MAX_DURATION = timedelta(hours=12)

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
        '/peer session plan <cohort> "<title>" <YYYY-MM-DD> <HH:MM> <duration> '
        '[format=groups|tutoring|review|sharing] [size=<2-6>] [prep="<text or url>"] '
        '[prep_before=<duration>] [objectives="<text>"] [retention=2w|4w] [groups_from=checked_in|enrolled]'
    ),
    "session show": N_("/peer session show <session>"),
    "session start": N_("/peer session start <session>"),
    "session end": N_("/peer session end <session>"),
    "session cancel": N_("/peer session cancel <session>"),
    "quiz add": N_('/peer quiz add <session> "<question>" "<correct answer>" "<wrong answer>" ["<wrong answer>" ...]'),
    "report": N_("/peer report <session>"),
    "group show": N_("/peer group show <session>"),
    "group move": N_("/peer group move <session> <@user> <group number>"),
    "group swap": N_("/peer group swap <session> <@user> <@user>"),
    "group reshuffle": N_("/peer group reshuffle <session>"),
    "checkin": N_("/peer checkin [session]"),
    "prep-done": N_("/peer prep-done [session]"),
    "absent": N_('/peer absent <session> "<reason>"'),
    "raise": "/peer raise",
    "mydata": "/peer mydata",
}
PAIR_COMMANDS = frozenset({"cohort apart", "cohort together", "cohort unpair"})
TRAINER_COMMANDS = frozenset(k for k in USAGE if k.split()[0] in {"cohort", "session", "quiz", "report", "group"})

_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_QUOTES = {"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'}


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
    at: time | None = None
    duration: timedelta | None = None
    options: dict[str, str] = field(default_factory=dict)
    texts: tuple[str, ...] = ()
    group: int | None = None


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
        raise Invalid(_("A quotation mark is not closed."), _('Put text with spaces between "double quotes".'))
    if current or quoted:
        tokens.append("".join(current))
    return tokens


def usage(name: str) -> Text:
    """The usage line of command `name`, in the reader's locale."""
    return Text(USAGE[name])


def usage_hint(name: str) -> Text:
    return _("Usage: `{usage}`", usage=usage(name))


def _usage_error(name: str, problem: Text) -> Invalid:
    return Invalid(problem, usage_hint(name))


def parse_user(token: str, name: str) -> str:
    match = _MENTION.match(token)
    if not match:
        raise _usage_error(name, _("`{token}` is not a user mention; mention people with @.", token=token))
    return match.group(1)


def parse_channel(token: str, name: str) -> str:
    match = _CHANNEL.match(token)
    if not match:
        raise _usage_error(name, _("`{token}` is not a channel; mention it with #.", token=token))
    return match.group(1)


def parse_level(raw: str, name: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 5:
        raise _usage_error(name, _("Level `{raw}` is not a whole number from 1 to 5.", raw=raw))
    return int(raw)


def parse_cohort_name(token: str, name: str) -> str:
    cohort = token.lower()
    if not _NAME.match(cohort):
        raise _usage_error(
            name, _("`{token}` is not a valid cohort name: use letters, digits, - or _ (at most 40).", token=token)
        )
    return cohort


def _parse_session_plan(args: list[str]) -> Command:
    name = "session plan"
    positional, options_raw = args[:5], args[5:]
    if len(positional) != 5 or any("=" in a for a in positional[2:]):
        raise _usage_error(name, _("`session plan` needs a cohort, a title, a date, a time and a duration."))
    cohort, title, day_raw, time_raw, duration_raw = positional
    if not title.strip():
        raise _usage_error(name, _("The title is empty."))
    try:
        day = date.fromisoformat(day_raw)
    except ValueError:
        raise _usage_error(name, _("`{raw}` is not a date; write it as YYYY-MM-DD.", raw=day_raw)) from None
    if not re.fullmatch(r"\d{1,2}:\d{2}", time_raw):
        raise _usage_error(name, _("`{raw}` is not a time; write it as HH:MM (24 h).", raw=time_raw))
    try:
        at = time.fromisoformat(time_raw.zfill(5))
    except ValueError:
        raise _usage_error(name, _("`{raw}` is not a time; write it as HH:MM (24 h).", raw=time_raw)) from None
    duration = parse_duration_arg(duration_raw, name)
    if not timedelta(0) < duration <= MAX_DURATION:
        raise _usage_error(name, _("The duration must be more than 0 and at most 12h."))
    options: dict[str, str] = {}
    for raw in options_raw:
        key, _eq, value = raw.partition("=")
        key = key.lower()
        if key not in {"format", "size", "prep", "prep_before", "objectives", "retention", "groups_from"}:
            raise _usage_error(name, _("Unknown option `{key}`.", key=key))
        options[key] = value
    _check_plan_options(options, name)
    return Command(
        name,
        cohort=parse_cohort_name(cohort, name),
        title=title.strip(),
        day=day,
        at=at,
        duration=duration,
        options=options,
    )


def _check_plan_options(options: dict[str, str], name: str) -> None:
    if "format" in options and options["format"] not in FORMATS:
        raise _usage_error(
            name,
            _("Unknown format `{format}`: use one of {formats}.", format=options["format"], formats=", ".join(FORMATS)),
        )
    if "size" in options and (not options["size"].isdigit() or not 2 <= int(options["size"]) <= 6):
        raise _usage_error(name, _("Group size `{size}` must be a whole number from 2 to 6.", size=options["size"]))
    if "retention" in options and options["retention"] not in {"2w", "4w"}:
        raise _usage_error(name, _("Retention must be `2w` or `4w`."))
    if "prep_before" in options:
        lead = parse_duration_arg(options["prep_before"], name)
        if not timedelta(0) < lead <= timedelta(days=28):
            raise _usage_error(name, _("prep_before must be more than 0 and at most 4w."))
    if "groups_from" in options and options["groups_from"] not in {"checked_in", "enrolled"}:
        raise _usage_error(name, _("groups_from must be `checked_in` or `enrolled`."))


def parse_duration_arg(raw: str, name: str) -> timedelta:
    try:
        return parse_duration(raw)
    except ValueError:
        raise _usage_error(name, _("`{raw}` is not a duration; write e.g. 90m, 1h30m or 2w.", raw=raw)) from None


def _parse_users(tokens: list[str], name: str) -> tuple[tuple[str, int | None], ...]:
    users: list[tuple[str, int | None]] = []
    for token in tokens:
        mention, sep, level = token.partition("=") if token.endswith(tuple("0123456789")) else (token, "", "")
        users.append((parse_user(mention, name), parse_level(level, name) if sep else None))
    return tuple(users)


def parse(text: str) -> Command:
    """Parse the text after `/peer`; raise Invalid with the right usage on any mistake."""
    return parse_tokens(tokenize(text))


def parse_tokens(tokens: Sequence[str]) -> Command:
    """Parse tokens already split (Discord's typed options arrive this way, so quotes inside an option are
    plain characters); the same checks and errors as `parse`."""
    words = list(tokens)
    text = " ".join(words)
    if not words:
        return Command("help")
    head = words[0].lower()
    if head in {"cohort", "session", "group", "quiz"} and len(words) >= 2:
        name, args = f"{head} {words[1].lower()}", words[2:]
    else:
        name, args = head, words[1:]
    if name not in USAGE:
        if head in {"cohort", "session", "group", "quiz"}:
            verbs = ", ".join(k.split()[1] for k in USAGE if k.startswith(head + " "))
            raise Invalid(
                _("`{text}` is not a {head} command.", text=text.strip(), head=head),
                _("Try one of: {verbs}. See `/peer help`.", verbs=verbs),
            )
        raise Invalid(_("I don't know the command `{head}`.", head=head), _("Type `/peer help` to see what I can do."))
    return _parse_args(name, args)


def _parse_args(name: str, args: list[str]) -> Command:
    def need(count: int, problem: Text) -> None:
        if len(args) < count:
            raise _usage_error(name, problem)

    if name in {"help", "raise", "mydata"}:
        return Command(name)
    if name in {"checkin", "prep-done"}:
        if len(args) > 1:
            raise _usage_error(name, _("Give at most one session id."))
        return Command(name, session=args[0].lower() if args else "")
    if name == "absent":
        need(2, _("Say which session and why you cannot come."))
        return Command(name, session=args[0].lower(), texts=(" ".join(args[1:]),))
    if name == "session plan":
        return _parse_session_plan(args)
    if name.startswith("session ") or name in {"report", "group show", "group reshuffle"}:
        if len(args) != 1:
            raise _usage_error(name, _("Give exactly one session id."))
        return Command(name, session=args[0].lower())
    if name == "cohort create":
        need(1, _("Give the new cohort a name."))
        channel = parse_channel(args[1], name) if len(args) > 1 else ""
        return Command(name, cohort=parse_cohort_name(args[0], name), channel=channel)
    if name == "cohort show":
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
    if name == "quiz add":
        need(4, _("A quiz item needs a session, a question, the correct answer and at least one wrong answer."))
        if len(args) > 2 + 9:
            raise _usage_error(name, _("At most 8 wrong answers."))
        return Command(name, session=args[0].lower(), texts=tuple(args[1:]))
    if name == "group move":
        need(3, _("Say which session, whom, and to which group number."))
        if not args[2].isdigit():
            raise _usage_error(name, _("`{raw}` is not a group number.", raw=args[2]))
        return Command(name, session=args[0].lower(), users=((parse_user(args[1], name), None),), group=int(args[2]))
    if name == "group swap":
        need(3, _("Say which session and mention two people."))
        return Command(
            name, session=args[0].lower(), users=((parse_user(args[1], name), None), (parse_user(args[2], name), None))
        )
    raise _usage_error(name, _("I could not read that command."))  # pragma: no cover - every USAGE key is handled


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

"""What people read, in English or French: gettext catalogs read by Babel at run time.

The English text is the msgid, written where it is used, with named placeholders (`{title}`) and the
positional `{0}`… that `bot.messages.Section.times` fill. Three markers feed the extractor:
`t(locale, "…", …)` translates now, `_("…", …)` makes a `Text` rendered later in the reader's locale
(errors, texts built before the reader is known), `N_("…")` only marks a constant for extraction.

Catalogs: `bot/locales/peerbot.pot` is extracted from the code with `pybabel extract` (options in
pyproject's `[tool.babel.extract_messages]`), `bot/locales/<locale>/LC_MESSAGES/peerbot.po` holds a
translation. The `.po` is compiled in memory on first use, so there is no `.mo` to build or to keep in step.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("en", "fr")
SOURCE_LOCALE = "en"
DOMAIN = "peerbot"
LOCALE_DIR = Path(__file__).parent / "locales"


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog of `locale`, built once per process from its `.po` (fuzzy entries are left out)."""
    if locale == SOURCE_LOCALE or locale not in LOCALES:
        return NullTranslations()
    with po_path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def supported(*candidates: str) -> str:
    """The first candidate that is a locale peerbot speaks (empty when none is)."""
    return next((c for c in candidates if c in LOCALES), "")


def _render(value: Any, locale: str) -> Any:
    return value.render(locale) if isinstance(value, Text) else value


def t(locale: str, message: str, /, *times: Any, **values: Any) -> str:
    """`message` in `locale` with its placeholders filled; `{0}`… stay for the adapter's timestamps.

    A value that is itself a `Text` is rendered in the same locale.
    """
    template = translations(locale).gettext(message)
    placeholders = tuple(f"{{{i}}}" for i in range(len(times)))
    return template.format(*placeholders, **{k: _render(v, locale) for k, v in values.items()})


@dataclass(frozen=True, slots=True)
class Text:
    """A message whose reader is not known yet (an error raised deep in the core, a usage line)."""

    msgid: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        return t(locale, self.msgid, **self.values)

    def __str__(self) -> str:
        return self.render(SOURCE_LOCALE)


def _(message: str, /, **values: Any) -> Text:
    """Mark `message` for translation when it is shown (see `Text`)."""
    return Text(message, values)


def N_(message: str, /) -> str:
    """Mark a constant for extraction; translate it later with `t(locale, constant)`."""
    return message


# Stored codes shown to people (`label`). The English word is the code itself, as before translation.
SESSION_STATES = {
    "planned": N_("planned"),
    "prep_sent": N_("prep_sent"),
    "running": N_("running"),
    "ended": N_("ended"),
    "closed": N_("closed"),
    "cancelled": N_("cancelled"),
}
ATTENDANCE_STATUSES = {
    "on_time": N_("on_time"),
    "late": N_("late"),
    "excused": N_("excused"),
    "absent": N_("absent"),
}
ROLES = {"trainer": N_("trainer"), "learner": N_("learner")}
GROUP_ROLES = {"tutor": N_("tutor"), "tutee": N_("tutee")}
QUESTIONNAIRE_KINDS = {
    "feedback": N_("feedback"),
    "retention": N_("retention"),
    "retention2": N_("second retention quiz"),
    "followup": N_("behavioural follow-up"),
    "observation": N_("observer's follow-up about you"),
}


def label(locale: str, words: Mapping[str, str], code: str) -> str:
    """The reader's word for a stored code (the code itself when it has none)."""
    return t(locale, words[code]) if code in words else code

"""A cohort's own post-session questionnaire: 3 to 10 items (Likert 1–5, single choice, free text), each in
English and, optionally, French.

Trainers edit it as text, one item a line, because both platforms can show that in one form: a Discord modal
holds at most 5 text inputs, so one input per item would not fit 10 items, while one multi-line input (3,000
characters here, within Slack's 3,000 and Discord's 4,000) holds them all and lets items be added, removed
and reordered by editing lines. The same items come from YAML for `peerbot questionnaire import`. Pure code:
no database, so each rule and each error is unit-tested.

    likert: The exchanges in my group were clear. // Les échanges de mon groupe étaient clairs.
    choice: Which phase helped? [Prep | Exchange] // Quelle phase ? [Préparation | Échange]
    text: What would you change? // Que changeriez-vous ?

Blank lines and lines starting with `#` are ignored; without `// French` a French reader sees the English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from bot.errors import Invalid
from bot.i18n import N_, Text, _, t

MIN_ITEMS, MAX_ITEMS = 3, 10
MAX_TEXT = 3000  # the whole template: Slack's plain_text_input holds 3,000 characters (Discord's 4,000)
MAX_QUESTION = 200  # an item's text in one language: a Slack input label, a Discord DM line
MAX_OPTION = 75  # a choice: a Slack option or button text is at most 75 characters (Discord's 80)
MIN_OPTIONS, MAX_OPTIONS = 2, 8
FRENCH = "//"
TYPES = {"likert": "likert", "choice": "choice", "choix": "choice", "text": "open", "texte": "open", "open": "open"}
WRITTEN = {"likert": "likert", "choice": "choice", "open": "text"}  # how each stored type is written back
SYNTAX = N_(
    "One item a line: `likert: <question> // <French>`, `choice: <question> [A | B | C] // <French> [A | B | C]` "
    "or `text: <question> // <French>`; 3 to 10 items; `// French` is optional."
)
_OPTIONS = re.compile(r"^(?P<question>.*?)\s*\[(?P<options>[^\[\]]*)\]\s*$", re.S)


@dataclass(frozen=True, slots=True)
class TemplateItem:
    """One item; `key` names its answers in exports (the default items keep theirs: clarity, …, open)."""

    key: str
    item_type: str  # likert | choice | open
    en: str
    fr: str = ""
    options: tuple[str, ...] = ()
    options_fr: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "type": self.item_type,
            "en": self.en,
            "fr": self.fr,
            "options": list(self.options),
            "options_fr": list(self.options_fr),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemplateItem:
        return cls(
            str(data["key"]),
            str(data["type"]),
            str(data["en"]),
            str(data.get("fr", "")),
            tuple(str(o) for o in data.get("options", ())),
            tuple(str(o) for o in data.get("options_fr", ())),
        )


@dataclass(frozen=True, slots=True)
class _Draft:
    item_type: str
    en: str
    fr: str = ""
    options: tuple[str, ...] = ()
    options_fr: tuple[str, ...] = ()
    where: str = ""  # "line:3" or "item:3", for errors


def default_items() -> list[TemplateItem]:
    """The default questionnaire (`bot.questionnaires.FEEDBACK_ITEMS`) as template items, in both languages."""
    from bot.questionnaires import FEEDBACK_ITEMS

    return [TemplateItem(key, kind, text, t("fr", text)) for key, kind, text in FEEDBACK_ITEMS]


def render(items: Sequence[TemplateItem]) -> str:
    """The text a trainer edits: what `parse` reads back into the same items."""
    lines = []
    for item in items:
        en = item.en + (f" [{' | '.join(item.options)}]" if item.options else "")
        fr = item.fr + (f" [{' | '.join(item.options_fr)}]" if item.options_fr else "") if item.fr else ""
        lines.append(f"{WRITTEN[item.item_type]}: {en}" + (f" {FRENCH} {fr}" if fr else ""))
    return "\n".join(lines)


def _split_options(part: str) -> tuple[str, tuple[str, ...]]:
    """`Question [A | B]` → ("Question", ("A", "B")); without brackets, no options."""
    found = _OPTIONS.match(part)
    if found is None:
        return part.strip(), ()
    options = tuple(o.strip() for o in found.group("options").split("|"))
    return found.group("question").strip(), options


def parse(text: str) -> list[TemplateItem]:
    """Read the edited text; `Invalid` names the first line at fault and shows the syntax."""
    if len(text) > MAX_TEXT:
        raise Invalid(
            _("The questionnaire is {length} characters long; at most {limit}.", length=len(text), limit=MAX_TEXT),
            _(SYNTAX),
            field="items",
        )
    drafts: list[_Draft] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, colon, rest = line.partition(":")
        item_type = TYPES.get(word.strip().lower())
        if not colon or item_type is None:
            raise Invalid(
                _(
                    "Line {number} should start with `likert:`, `choice:` or `text:`, not `{start}`.",
                    number=number,
                    start=line[:30],
                ),
                _(SYNTAX),
                field="items",
            )
        en_part, _sep, fr_part = rest.partition(FRENCH)
        en, options = _split_options(en_part)
        fr, options_fr = _split_options(fr_part) if fr_part.strip() else ("", ())
        drafts.append(_Draft(item_type, en, fr, options, options_fr, f"line:{number}"))
    return _check(drafts)


def parse_yaml(data: str | bytes) -> list[TemplateItem]:
    """Read a YAML file (`items:` a list, or the list itself) of `{type, en, fr, options, options_fr}`."""
    try:
        loaded = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise Invalid(
            _("This is not valid YAML (line {line}).", line=line),
            _("Write a list of items: `- type: likert`, `en: …`, `fr: …` (and `options: [A, B]` for a choice)."),
        ) from None
    if isinstance(loaded, dict):
        loaded = loaded.get("items")
    if not isinstance(loaded, list):
        raise Invalid(
            _("The YAML file holds no list of items."),
            _("Write a list of items: `- type: likert`, `en: …`, `fr: …` (and `options: [A, B]` for a choice)."),
        )
    drafts: list[_Draft] = []
    for number, entry in enumerate(loaded, start=1):
        if not isinstance(entry, dict):
            raise Invalid(_("Item {number} is not a mapping of `type`, `en`, `fr`.", number=number))
        item_type = TYPES.get(str(entry.get("type", "")).strip().lower())
        if item_type is None:
            raise Invalid(
                _("Item {number}: the type must be likert, choice or text.", number=number),
            )
        options = entry.get("options") or []
        options_fr = entry.get("options_fr") or []
        if not isinstance(options, list) or not isinstance(options_fr, list):
            raise Invalid(_("Item {number}: options must be a list.", number=number))
        drafts.append(
            _Draft(
                item_type,
                str(entry.get("en") or "").strip(),
                str(entry.get("fr") or "").strip(),
                tuple(str(o).strip() for o in options),
                tuple(str(o).strip() for o in options_fr),
                f"item:{number}",
            )
        )
    return _check(drafts)


def _label(where: str) -> Text:
    kind, _sep, number = where.partition(":")
    return _("Line {number}", number=number) if kind == "line" else _("Item {number}", number=number)


def _check(drafts: list[_Draft]) -> list[TemplateItem]:
    """The rules common to both sources: counts, lengths, options; the default items keep their keys."""
    if not MIN_ITEMS <= len(drafts) <= MAX_ITEMS:
        raise Invalid(
            _("A questionnaire has 3 to 10 items; this one has {count}.", count=len(drafts)), _(SYNTAX), field="items"
        )
    defaults = {(item.item_type, item.en): item.key for item in default_items()}
    items: list[TemplateItem] = []
    used: set[str] = set()
    for number, draft in enumerate(drafts, start=1):
        where = _label(draft.where)
        if not draft.en:
            raise Invalid(_("{where}: the question is empty.", where=where), _(SYNTAX), field="items")
        for text in (draft.en, draft.fr):
            if len(text) > MAX_QUESTION:
                raise Invalid(
                    _(
                        "{where}: the question is {length} characters long; at most {limit}.",
                        where=where,
                        length=len(text),
                        limit=MAX_QUESTION,
                    ),
                    _(SYNTAX),
                    field="items",
                )
        if draft.item_type == "choice":
            _check_options(draft, where)
        elif draft.options or draft.options_fr:
            raise Invalid(
                _("{where}: only a `choice:` item has answers in [brackets].", where=where), _(SYNTAX), field="items"
            )
        key = defaults.get((draft.item_type, draft.en), f"i{number}")
        if key in used:
            key = f"i{number}"
        used.add(key)
        french = draft.fr or (draft.en if draft.options_fr else "")  # French answers alone: the question as is
        items.append(TemplateItem(key, draft.item_type, draft.en, french, draft.options, draft.options_fr))
    return items


def _check_options(draft: _Draft, where: Text) -> None:
    for options in (draft.options, draft.options_fr):
        if options is draft.options_fr and not options:
            continue
        if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            raise Invalid(
                _("{where}: a choice takes 2 to 8 answers in [brackets], separated by `|`.", where=where),
                _(SYNTAX),
                field="items",
            )
        if any(not o for o in options) or len(set(options)) != len(options):
            raise Invalid(
                _("{where}: the answers must be non-empty and all different.", where=where), _(SYNTAX), field="items"
            )
        long = [o for o in options if len(o) > MAX_OPTION]
        if long:
            raise Invalid(
                _(
                    "{where}: the answer `{answer}` is {length} characters long; at most {limit}.",
                    where=where,
                    answer=long[0][:40],
                    length=len(long[0]),
                    limit=MAX_OPTION,
                ),
                _(SYNTAX),
                field="items",
            )
    if draft.options_fr and len(draft.options_fr) != len(draft.options):
        raise Invalid(
            _("{where}: the French answers must be as many as the English ones.", where=where),
            _(SYNTAX),
            field="items",
        )

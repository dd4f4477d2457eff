"""The gettext catalogs: complete, in step with the code, shipped, and used by the grammar and the forms."""

from __future__ import annotations

import string
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.pofile import read_po

from bot.errors import Invalid
from bot.grammar import USAGE, help_text, parse
from bot.i18n import LOCALE_DIR, LOCALES, Text, _, po_path, t, translations
from bot.questionnaires import FEEDBACK_ITEMS, feedback_form
from storage.models import QuestionnaireItem

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TRANSLATED = [locale for locale in LOCALES if locale != "en"]


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def ids(catalog: Catalog) -> set[str]:
    return {str(m.id) for m in catalog if m.id}


def code_msgids() -> set[str]:
    """What `pybabel extract` finds in its input paths with the keywords configured in pyproject.toml."""
    config = PYPROJECT["tool"]["babel"]["extract_messages"]
    keywords = {**DEFAULT_KEYWORDS, **parse_keywords(config["keywords"])}
    methods = [(m["pattern"], m["method"]) for m in PYPROJECT["tool"]["babel"]["mappings"]]  # Python and Jinja2
    found = set()
    for path in config["input_paths"]:
        extracted = extract_from_dir(str(ROOT / path), method_map=methods, keywords=keywords)
        for _filename, _lineno, message, _comments, _context in extracted:
            assert isinstance(message, str), f"plural or empty message {message!r}"
            found.add(message)
    return found


def placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def test_every_msgid_of_the_code_is_in_the_template_and_none_is_stale() -> None:
    template = ids(read_catalog(LOCALE_DIR / "peerbot.pot"))
    in_code = code_msgids()
    assert len(in_code) > 200
    assert in_code - template == set(), "run `pybabel extract` then `pybabel update`"
    assert template - in_code == set(), "run `pybabel extract` then `pybabel update`"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translation_is_complete_with_no_fuzzy_or_obsolete_entry(locale: str) -> None:
    catalog = read_catalog(po_path(locale))
    assert ids(catalog) == ids(read_catalog(LOCALE_DIR / "peerbot.pot"))
    untranslated = [m.id for m in catalog if m.id and not m.string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == [] and not catalog.obsolete


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_the_placeholders_of_their_msgid(locale: str) -> None:
    catalog = read_catalog(po_path(locale))
    for message in catalog:
        if message.id:
            assert isinstance(message.id, str) and isinstance(message.string, str)
            assert placeholders(message.string) == placeholders(message.id), message.id


def test_french_uses_french_quotes_and_the_formal_you() -> None:
    catalog = read_catalog(po_path("fr"))
    strings = [str(m.string) for m in catalog if m.id]
    assert not any("“" in s or "”" in s for s in strings)
    assert not any(word in s.split() for s in strings for word in ("tu", "ton", "ta", "tes"))
    assert t("fr", "Checked in to “{title}”.", title="Git") == "Présence enregistrée pour « Git »."


def test_package_data_ships_the_catalogs() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["bot"]
    shipped = {p for pattern in patterns for p in (ROOT / "bot").glob(pattern)}
    assert LOCALE_DIR / "peerbot.pot" in shipped
    assert all(po_path(locale) in shipped for locale in TRANSLATED)
    assert not list(LOCALE_DIR.rglob("*.mo")), "catalogs are compiled in memory; no .mo in the tree"


def test_catalog_is_built_once_per_locale_and_unknown_text_passes_through() -> None:
    assert translations("fr") is translations("fr")
    assert t("fr", "Not in any catalog {x}.", x=1) == "Not in any catalog 1."
    assert t("de", "Answer recorded.") == "Answer recorded."  # no German catalog: English
    assert t("fr", "Answer recorded.") == "Réponse enregistrée."


def test_time_placeholders_stay_for_the_adapter_and_nested_texts_follow_the_locale() -> None:
    assert t("fr", "`{session}` {title} — {0}", object(), session="s1", title="Git") == "`s1` Git — {0}"
    usage = _("Usage: `{usage}`", usage=Text(USAGE["cohort show"]))
    assert usage.render("en") == "Usage: `/peer cohort show <cohort>`"
    assert usage.render("fr") == "Syntaxe : `/peer cohort show <cohorte>`"
    assert str(usage) == usage.render("en")


def test_grammar_errors_render_in_the_reader_locale_with_the_translated_usage() -> None:
    with pytest.raises(Invalid) as info:
        parse('session plan py "T" 2026-12-01 25:00 1h')
    english, french = info.value.text("en"), info.value.text("fr")
    assert english.startswith("`25:00` is not a time; write it as HH:MM (24 h).\nUsage: `/peer session plan <cohort>")
    assert french.startswith("`25:00` n'est pas une heure ; écrivez-la au format HH:MM (24 h).\n")
    assert 'Syntaxe : `/peer session plan <cohorte> "<titre, 200 caractères au plus>" <AAAA-MM-JJ' in french
    assert info.value.message == "`25:00` is not a time; write it as HH:MM (24 h)."  # English for logs


def test_help_lists_the_same_commands_in_both_languages() -> None:
    english, french = help_text(True, "en").splitlines(), help_text(True, "fr").splitlines()
    assert len(english) == len(french)
    assert english[0] == "*peerbot commands*" and french[0] == "*Commandes de peerbot*"
    commands = [line.split()[2] for line in english if line.startswith("• `/peer")]
    assert commands == [line.split()[2] for line in french if line.startswith("• `/peer")]
    assert '• `/peer absent <session> "<motif>"`' in french


def test_feedback_form_reads_in_the_reader_locale_whatever_language_it_was_stored_in() -> None:
    items = [
        QuestionnaireItem(
            id=i, session_id=1, kind="feedback", position=i, item_key=key, item_type=kind, text=t("en", text)
        )
        for i, (key, kind, text) in enumerate(FEEDBACK_ITEMS, start=1)
    ]
    form = feedback_form(7, "Git", items, "fr")
    assert (form.title, form.submit_label) == ("Avis sur la session", "Envoyer")
    assert form.fields[0].label == "Les échanges dans mon groupe étaient clairs."
    assert getattr(form.fields[0], "low_label", "") == "Pas du tout d'accord"
    english = feedback_form(7, "Git", items, "en")
    assert (english.title, english.fields[0].label) == ("Session feedback", "The exchanges in my group were clear.")

"""The questionnaire template syntax (one item a line) and its YAML twin: what they accept, and the line each
refusal names."""

from __future__ import annotations

import pytest

from bot import grammar, templates
from bot.errors import Invalid
from bot.templates import TemplateItem


def test_the_default_questionnaire_round_trips_with_its_keys() -> None:
    text = templates.render(templates.default_items())
    items = templates.parse(text)
    assert [i.key for i in items] == ["clarity", "interactions", "progress", "safety", "focus", "open"]
    assert items == templates.default_items()
    assert len(text) <= templates.MAX_TEXT


def test_a_choice_with_french_answers_and_comments() -> None:
    items = templates.parse(
        "# my questionnaire\n\n"
        "LIKERT: Clear? // Clair ?\n"
        "choix: Best part? [Prep | Talk] // Meilleur moment ? [Prépa | Échange]\n"
        "texte: Anything else?\r\n"
    )
    assert items == [
        TemplateItem("i1", "likert", "Clear?", "Clair ?"),
        TemplateItem("i2", "choice", "Best part?", "Meilleur moment ?", ("Prep", "Talk"), ("Prépa", "Échange")),
        TemplateItem("i3", "open", "Anything else?"),
    ]
    assert templates.parse(templates.render(items)) == items


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("likert: a\nlikert: b", "3 to 10 items; this one has 2"),
        ("likert: a\n\npoll: b\ntext: c", "Line 3 should start with"),
        ("likert: a\nlikert:  // fr\ntext: c", "Line 2: the question is empty"),
        ("likert: a\nchoice: q [x | x]\ntext: c", "Line 2: the answers must be non-empty and all different"),
        ("likert: a\nchoice: q [x | y] // q [x | y | z]\ntext: c", "Line 2: the French answers must be as many"),
        ("likert: a\nchoice: q [x | " + "y" * 76 + "]\ntext: c", "is 76 characters long; at most 75"),
        ("likert: " + "a" * 2993, "3001 characters long; at most 3000"),
    ],
)
def test_each_mistake_is_named_with_the_syntax(text: str, error: str) -> None:
    with pytest.raises(Invalid) as caught:
        templates.parse(text)
    assert error in caught.value.text(), caught.value.text()
    assert "One item a line" in caught.value.text()
    assert caught.value.field == "items"
    assert "Une question par ligne" in caught.value.text("fr")


def test_yaml_items_and_their_mistakes() -> None:
    items = templates.parse_yaml(
        "- {type: likert, en: A}\n- {type: choice, en: B, options: [x, y]}\n- {type: text, en: C}"
    )
    assert [i.item_type for i in items] == ["likert", "choice", "open"]
    for bad, error in (
        ("a: [", "not valid YAML"),
        ("just text", "no list of items"),
        ("- 3\n- 4\n- 5", "Item 1 is not a mapping"),
        ("- {type: likert, en: A}\n- {type: likert, en: B}\n- {type: choice, en: C, options: x}", "options must be"),
    ):
        with pytest.raises(Invalid) as caught:
            templates.parse_yaml(bad)
        assert error in caught.value.text(), (bad, caught.value.text())


def test_the_new_commands_parse() -> None:
    assert grammar.parse("questionnaire edit py").cohort == "py"
    followup = grammar.parse("followup plan s3 6w observer=<@U1>")
    assert (followup.session, followup.weeks, followup.users) == ("s3", 6, (("U1", None),))
    assert grammar.retention_weeks("2w,6w") == (2, 6) and grammar.retention_weeks("4w") == (4, 0)
    assert {"questionnaire edit", "followup plan"} <= grammar.TRAINER_COMMANDS
    for bad in ("followup plan s3 53", "followup plan s3 6 watcher=<@U1>", "followup plan s3 6 observer=bob"):
        with pytest.raises(Invalid):
            grammar.parse(bad)

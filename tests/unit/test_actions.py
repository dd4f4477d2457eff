"""Action ids: every id the core builds parses back to the same action, and nothing else is accepted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import actions, grammar
from bot.actions import (
    AnswerItem,
    BadActionId,
    CheckIn,
    OpenQuestionnaire,
    OpenTakeaways,
    OpenTextItem,
    PrepDone,
    Questionnaire,
    SubmitQuestionnaire,
    SubmitTakeaways,
)
from bot.clock import FakeClock
from bot.core import Core
from storage.db import Database
from tests.conftest import make_settings

SHORT = st.from_regex(r"s[0-9]{1,9}", fullmatch=True)
ID = st.integers(min_value=0, max_value=10**17)
ITEM = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
QUESTIONNAIRE = st.sampled_from(list(Questionnaire))
ACTION = st.one_of(
    st.builds(PrepDone, SHORT),
    st.builds(CheckIn, SHORT),
    st.builds(OpenQuestionnaire, QUESTIONNAIRE, ID),
    st.builds(SubmitQuestionnaire, QUESTIONNAIRE, ID),
    st.builds(AnswerItem, QUESTIONNAIRE, ID, ITEM, st.from_regex(r"[0-9]{1,2}", fullmatch=True)),
    st.builds(OpenTextItem, QUESTIONNAIRE, ID, ITEM),
    st.builds(OpenTakeaways, ID),
    st.builds(SubmitTakeaways, ID),
)


@given(ACTION)
def test_every_action_round_trips_and_fits_both_platforms(action: actions.Action) -> None:
    raw = str(action)
    assert actions.parse(raw) == action
    assert len(raw) <= 100  # Discord's custom_id limit (Slack allows 255)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("prep:done:s1", PrepDone("s1")),
        ("checkin:in:s12", CheckIn("s12")),
        ("survey:open:3", OpenQuestionnaire(Questionnaire.SURVEY, 3)),
        ("quiz:submit:4", SubmitQuestionnaire(Questionnaire.QUIZ, 4)),
        ("survey:rate:5.clarity.4", AnswerItem(Questionnaire.SURVEY, 5, "clarity", "4")),
        ("quiz:pick:6.q1.0", AnswerItem(Questionnaire.QUIZ, 6, "q1", "0")),
        ("survey:text:7.open", OpenTextItem(Questionnaire.SURVEY, 7, "open")),
        ("takeaways:open:8", OpenTakeaways(8)),
        ("takeaways:submit:9", SubmitTakeaways(9)),
    ],
)
def test_the_wire_format_is_stable(raw: str, expected: actions.Action) -> None:
    """Buttons already posted keep working after an upgrade: these strings are a contract."""
    assert actions.parse(raw) == expected
    assert str(expected) == raw


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "checkin",
        "checkin:in:",
        "nope:in:s1",
        "survey:rate:1.clarity",  # no value
        "quiz:rate:1.q1.0",  # the survey's verb on a quiz
        "survey:open:abc",
        "survey:open:²",  # a digit to str.isdigit, not a number we made
        "takeaways:open:" + "9" * 40,
        "checkin:in:" + "x" * 300,
    ],
)
def test_foreign_ids_are_refused(raw: str) -> None:
    with pytest.raises(BadActionId):
        actions.parse(raw)


def test_clicks_and_forms_do_not_mix() -> None:
    with pytest.raises(BadActionId):
        actions.parse_click("survey:submit:3")
    with pytest.raises(BadActionId):
        actions.parse_submit("checkin:in:s1")
    form = SubmitQuestionnaire(Questionnaire.SURVEY, 3)
    assert actions.parse_submit(str(form)) == form
    assert actions.parse_click(str(form.answer("clarity", "5"))) == AnswerItem(Questionnaire.SURVEY, 3, "clarity", "5")
    assert form.open_text("open").form == form


def test_questionnaire_kinds_match_storage() -> None:
    assert Questionnaire.of_kind("retention") is Questionnaire.QUIZ
    assert Questionnaire.of_kind("feedback") is Questionnaire.SURVEY
    assert Questionnaire.of_kind("feedback_reminder") is Questionnaire.SURVEY
    assert Questionnaire.of_kind("retention2") is Questionnaire.QUIZ
    assert Questionnaire.of_kind("followup") is Questionnaire.FOLLOWUP
    assert Questionnaire.of_kind("observation") is Questionnaire.FOLLOWUP
    rate = AnswerItem(Questionnaire.FOLLOWUP, 7, "rating", "4")
    assert actions.parse_click(str(rate)) == rate


def test_questionnaire_template_form_id_round_trips() -> None:
    form = actions.SaveQuestionnaire(12)
    assert actions.parse_submit(str(form)) == form
    with pytest.raises(BadActionId):
        actions.parse_click(str(form))


def test_every_command_of_the_grammar_has_a_route(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/routes.db")
    core = Core(Database(settings.database_url), {}, settings, FakeClock(datetime(2027, 1, 1, tzinfo=UTC)))
    assert set(core.routes) == set(grammar.USAGE)

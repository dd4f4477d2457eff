"""The questionnaires' content and forms: the default post-session questionnaire (a cohort may have its own,
`bot.templates`), the retention quizzes and the behavioural follow-up (the learner's, and the observer's about
the learner)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from bot import actions
from bot.i18n import N_, t
from bot.messages import ChoiceField, Form, FormField, LikertField, TextField
from storage.models import QuestionnaireItem

# (item key, type, English text): five 1–5 ratings and one open question.
FEEDBACK_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("clarity", "likert", N_("The exchanges in my group were clear.")),
    ("interactions", "likert", N_("The quality of the interactions helped me learn.")),
    ("progress", "likert", N_("I progressed on the session's objectives.")),
    ("safety", "likert", N_("I felt safe to voice my doubts and questions.")),
    ("focus", "likert", N_("The group stayed on the objectives.")),
    ("open", "open", N_("What would you keep or change for the next session?")),
)
# Behavioural follow-up, N weeks after the session: applying what was learned (two open questions and a
# self-rating); the observer (tutor or manager) gets the same about the learner, `{name}`.
FOLLOWUP_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("applied", "open", N_("What from this session have you put into practice, and how did it go?")),
    ("obstacles", "open", N_("What got in the way, or what would help you apply more of it?")),
    ("rating", "likert", N_("I apply what I learned in this session in my daily work.")),
)
OBSERVATION_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("applied", "open", N_("What from this session have you seen {name} put into practice?")),
    ("obstacles", "open", N_("What seems to get in the way, or what would help {name} apply more of it?")),
    ("rating", "likert", N_("{name} applies what they learned in this session in their daily work.")),
)
_DEFAULT_TEXTS = {
    "feedback": {key: text for key, _type, text in FEEDBACK_ITEMS},
    "followup": {key: text for key, _type, text in FOLLOWUP_ITEMS},
    "observation": {key: text for key, _type, text in OBSERVATION_ITEMS},
}


def item_label(item: QuestionnaireItem, locale: str, name: str = "") -> str:
    """An item in the reader's locale as it was asked: the trainer's French when they wrote one, the catalog's
    translation of a built-in item (same English text), else the text as written (a quiz question)."""
    if locale == "fr" and item.text_fr:
        return item.text_fr.replace("{name}", name)
    default = _DEFAULT_TEXTS.get(item.kind, {}).get(item.item_key)
    if default is not None:
        return t(locale, default, name=name)
    return item.text


def item_options(item: QuestionnaireItem, locale: str) -> list[str]:
    """A choice item's answers in the reader's locale (the trainer's French ones when written)."""
    options: list[str] = json.loads(item.options_json or "[]")
    french: list[str] = json.loads(item.options_fr_json or "[]")
    return french if locale == "fr" and len(french) == len(options) else options


def rated_form(
    form_id: str, heading: str, title: str, items: Sequence[QuestionnaireItem], locale: str, name: str = ""
) -> Form:
    """A questionnaire of ratings, choices and open questions (feedback, follow-up, observation)."""
    fields: list[FormField] = []
    for item in items:
        label = item_label(item, locale, name)
        if item.item_type == "likert":
            fields.append(
                LikertField(item.item_key, label, t(locale, "Strongly disagree"), t(locale, "Strongly agree"))
            )
        elif item.item_type == "choice":
            options = tuple((str(i), text) for i, text in enumerate(item_options(item, locale)))
            fields.append(ChoiceField(item.item_key, label, options))
        else:
            fields.append(TextField(item.item_key, label, multiline=True, required=False))
    return Form(form_id, heading, tuple(fields), submit_label=t(locale, "Submit"), intro=title)


def feedback_form(delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str) -> Form:
    form_id = str(actions.SubmitQuestionnaire(actions.Questionnaire.SURVEY, delivery_id))
    return rated_form(form_id, t(locale, "Session feedback"), title, items, locale)


def followup_form(
    delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str, name: str = ""
) -> Form:
    """The learner's follow-up, or (with the learner's `name`) the observer's about them."""
    form_id = str(actions.SubmitQuestionnaire(actions.Questionnaire.FOLLOWUP, delivery_id))
    heading = t(locale, "Follow-up: {name}", name=name) if name else t(locale, "Follow-up")
    return rated_form(form_id, heading[:24], title, items, locale, name)


def quiz_options(item: QuestionnaireItem, delivery_id: int) -> tuple[tuple[str, str], ...]:
    """The answers in an order fixed per delivery, so the correct one is not always first."""
    options = list(enumerate(json.loads(item.options_json)))
    random.Random(f"{delivery_id}:{item.item_key}").shuffle(options)
    return tuple((str(index), text) for index, text in options)


def quiz_form(delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str) -> Form:
    fields = tuple(ChoiceField(item.item_key, item.text, quiz_options(item, delivery_id)) for item in items)
    form_id = str(actions.SubmitQuestionnaire(actions.Questionnaire.QUIZ, delivery_id))
    return Form(form_id, t(locale, "Retention quiz"), fields, submit_label=t(locale, "Submit"), intro=title)

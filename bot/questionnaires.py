"""The default post-session questionnaire and the retention quiz as neutral forms."""

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
_DEFAULT_TEXTS = {key: text for key, _type, text in FEEDBACK_ITEMS}


def item_label(item: QuestionnaireItem, locale: str) -> str:
    """A default feedback item reads in the reader's locale; a trainer's own quiz question as written."""
    default = _DEFAULT_TEXTS.get(item.item_key) if item.kind == "feedback" else None
    return t(locale, default) if default else item.text


def feedback_form(delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str) -> Form:
    fields: list[FormField] = []
    for item in items:
        label = item_label(item, locale)
        if item.item_type == "likert":
            fields.append(
                LikertField(item.item_key, label, t(locale, "Strongly disagree"), t(locale, "Strongly agree"))
            )
        else:
            fields.append(TextField(item.item_key, label, multiline=True, required=False))
    return Form(
        str(actions.SubmitQuestionnaire(actions.Questionnaire.SURVEY, delivery_id)),
        t(locale, "Session feedback"),
        tuple(fields),
        submit_label=t(locale, "Submit"),
        intro=title,
    )


def quiz_options(item: QuestionnaireItem, delivery_id: int) -> tuple[tuple[str, str], ...]:
    """The answers in an order fixed per delivery, so the correct one is not always first."""
    options = list(enumerate(json.loads(item.options_json)))
    random.Random(f"{delivery_id}:{item.item_key}").shuffle(options)
    return tuple((str(index), text) for index, text in options)


def quiz_form(delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str) -> Form:
    fields = tuple(ChoiceField(item.item_key, item.text, quiz_options(item, delivery_id)) for item in items)
    form_id = str(actions.SubmitQuestionnaire(actions.Questionnaire.QUIZ, delivery_id))
    return Form(form_id, t(locale, "Retention quiz"), fields, submit_label=t(locale, "Submit"), intro=title)

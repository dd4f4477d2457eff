"""The default post-session questionnaire and the retention quiz as neutral forms."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from bot.i18n import t
from bot.messages import ChoiceField, Form, FormField, LikertField, TextField
from storage.models import QuestionnaireItem

# (item key, type): five 1–5 ratings and one open question, the texts in bot.i18n ("q.<key>").
FEEDBACK_ITEMS: tuple[tuple[str, str], ...] = (
    ("clarity", "likert"),
    ("interactions", "likert"),
    ("progress", "likert"),
    ("safety", "likert"),
    ("focus", "likert"),
    ("open", "open"),
)


def feedback_form(delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str) -> Form:
    fields: list[FormField] = []
    for item in items:
        if item.item_type == "likert":
            fields.append(LikertField(item.item_key, item.text, t(locale, "likert.low"), t(locale, "likert.high")))
        else:
            fields.append(TextField(item.item_key, item.text, multiline=True, required=False))
    return Form(f"survey:submit:{delivery_id}", t(locale, "survey.title"), tuple(fields), intro=title)


def quiz_options(item: QuestionnaireItem, delivery_id: int) -> tuple[tuple[str, str], ...]:
    """The answers in an order fixed per delivery, so the correct one is not always first."""
    options = list(enumerate(json.loads(item.options_json)))
    random.Random(f"{delivery_id}:{item.item_key}").shuffle(options)
    return tuple((str(index), text) for index, text in options)


def quiz_form(delivery_id: int, title: str, items: Sequence[QuestionnaireItem], locale: str) -> Form:
    fields = tuple(ChoiceField(item.item_key, item.text, quiz_options(item, delivery_id)) for item in items)
    return Form(f"quiz:submit:{delivery_id}", t(locale, "quiz.title"), fields, intro=title)

"""Block Kit rendering stays inside Slack's limits, checked by the emulator's independent validator."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack import render
from bot.messages import (
    Button,
    ButtonStyle,
    ChoiceField,
    Form,
    FormField,
    LikertField,
    Message,
    Section,
    TextField,
    Timestamp,
)
from tests.emulators.slack_api import check_blocks, check_view
from tests.emulators.slack_driver import SlackDriver

words = st.text(min_size=1, max_size=400)


@settings(max_examples=60, deadline=None)
@given(
    title=words,
    sections=st.lists(st.text(max_size=5000), max_size=80),
    labels=st.lists(words, max_size=60),
)
def test_any_message_fits_block_kit(title: str, sections: list[str], labels: list[str]) -> None:
    buttons = tuple(Button(f"prep:done:{i}", label) for i, label in enumerate(labels))
    message = Message(title, tuple(Section(s) for s in sections), buttons)
    blocks = render.message_blocks(message)
    assert check_blocks(blocks, 50) == []
    rendered_ids = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert rendered_ids == [b.action_id for b in buttons]  # no button is ever dropped
    assert check_view(render.home_view(message)) == []


def test_timestamps_render_in_the_reader_time_zone_with_fallback() -> None:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    section = Section("From {0} to {1}; {json} stays", (Timestamp(at, "09:00 UTC"), Timestamp(at, "a|b>c")))
    text = render.section_text(section)
    assert text == (
        f"From <!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|09:00 UTC> to "
        f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|a/bc>; {{json}} stays"
    )


def test_buttons_keep_style_and_are_clipped() -> None:
    (block,) = render.message_blocks(Message("", buttons=(Button("a:b:c", "x" * 100, ButtonStyle.DANGER),)))
    element = block["elements"][0]
    assert element["style"] == "danger" and len(element["text"]["text"]) == 75


@settings(max_examples=40, deadline=None)
@given(
    title=words,
    n_fields=st.integers(0, 120),
    options=st.integers(1, 120),
)
def test_any_form_fits_a_modal(title: str, n_fields: int, options: int) -> None:
    fields: list[FormField] = []
    for i in range(n_fields):
        kind = i % 3
        if kind == 0:
            fields.append(LikertField(f"q{i}", "Rate " * 500, "Strongly disagree", "Strongly agree"))
        elif kind == 1:
            fields.append(TextField(f"q{i}", "Say", required=i % 2 == 0))
        else:
            fields.append(ChoiceField(f"q{i}", "Pick", tuple((str(j), "opt " * 30) for j in range(options))))
    view = render.modal_view(Form("survey:submit:7", title, tuple(fields), intro="intro " * 1000))
    assert check_view(view) == []
    assert view["callback_id"] == "survey:submit:7"


def test_submitted_state_maps_back_to_field_values() -> None:
    form = Form(
        "quiz:submit:3",
        "Quiz",
        (
            LikertField("clarity", "Clear?"),
            TextField("open", "Comments"),
            ChoiceField("q1", "2+2?", (("0", "4"), ("1", "5"))),
            ChoiceField("q2", "Many", tuple((str(j), f"o{j}") for j in range(20))),
        ),
    )
    view = render.modal_view(form)
    state = SlackDriver.view_state(view, {"clarity": "5", "open": "fine", "q1": "1", "q2": "17"})
    assert render.form_values(state) == {"clarity": "5", "open": "fine", "q1": "1", "q2": "17"}
    assert render.required_fields(view) == ["clarity", "q1", "q2"]


def test_a_prefilled_text_field_opens_with_its_text() -> None:
    """A message the trainer reviews before it goes (the friendly check-in) opens with its draft."""
    draft = "Hi Léa, we have missed you. " * 200  # longer than Slack's 3,000-character initial value
    form = Form("alerts:send:1.2", "Friendly check-in", (TextField("message", "Your message", initial=draft),))
    view = render.modal_view(form)
    check_view(view)
    element = next(b["element"] for b in view["blocks"] if b.get("type") == "input")
    assert element["initial_value"] == draft[:3000]
    plain = render.modal_view(Form("x:send:1", "T", (TextField("message", "Your message"),)))
    assert "initial_value" not in next(b["element"] for b in plain["blocks"] if b.get("type") == "input")

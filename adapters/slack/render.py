"""Neutral messages and forms → Block Kit, within Slack's limits (so Slack never answers `invalid_blocks`).

Limits honoured: 50 blocks per message, 100 per modal or App Home, 3,000 characters per section text,
25 elements per actions block, button text 75, action_id 255, modal title/submit/close 24, input label
2,000, option text 75, radio buttons 10 options (static select above that, up to 100).
"""

from __future__ import annotations

import re
from typing import Any

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

Block = dict[str, Any]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_BUTTON_TEXT = 75
MAX_ACTIONS_ELEMENTS = 25
MAX_VIEW_TITLE = 24
MAX_OPTION_TEXT = 75
MAX_RADIO_OPTIONS = 10
MAX_SELECT_OPTIONS = 100
MAX_LABEL = 2000
MAX_MESSAGE_TEXT = 40000

_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def date_token(stamp: Timestamp) -> str:
    """`<!date^…>` shows each reader the moment in their own time zone; the fallback is for old clients."""
    unix = int(stamp.at.timestamp())
    fallback = stamp.fallback.replace("|", "/").replace(">", "")
    return f"<!date^{unix}^{{date_short_pretty}} {{time}}|{fallback}>"


def section_text(section: Section) -> str:
    """Replace `{0}`, `{1}`… by date tokens; other braces are left alone."""

    def token(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return date_token(section.times[index]) if index < len(section.times) else match.group(0)

    return _PLACEHOLDER.sub(token, section.text)


def _chunks(text: str, limit: int) -> list[str]:
    """Split on paragraph or line boundaries where possible, so long texts become several sections."""
    out: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        out.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        out.append(text)
    return out


def _section_blocks(text: str) -> list[Block]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in _chunks(text, MAX_SECTION_TEXT)]


def button(b: Button) -> Block:
    element: Block = {
        "type": "button",
        "action_id": b.action_id[:255],
        "text": plain(b.label, MAX_BUTTON_TEXT),
        "value": b.action_id[:2000],
    }
    if b.style is not ButtonStyle.DEFAULT:
        element["style"] = b.style.value
    if b.url:
        element["url"] = b.url
    return element


def _button_blocks(buttons: tuple[Button, ...]) -> list[Block]:
    return [
        {"type": "actions", "elements": [button(b) for b in buttons[i : i + MAX_ACTIONS_ELEMENTS]]}
        for i in range(0, len(buttons), MAX_ACTIONS_ELEMENTS)
    ]


def _fit(text_blocks: list[Block], tail: list[Block], limit: int) -> list[Block]:
    """Keep every button; merge text sections when the total would exceed the block limit."""
    room = limit - len(tail)
    if len(text_blocks) > room:
        texts = [b["text"]["text"] for b in text_blocks]
        merged = _section_blocks("\n\n".join(texts))
        if len(merged) > room:
            merged = [*merged[: room - 1], {"type": "section", "text": {"type": "mrkdwn", "text": "…"}}]
        text_blocks = merged
    return text_blocks + tail


def message_blocks(message: Message, *, limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    text_blocks = _section_blocks(message.text) if message.text else []
    for section in message.sections:
        text_blocks += _section_blocks(section_text(section))
    return _fit(text_blocks, _button_blocks(message.buttons), limit)


def fallback_text(message: Message) -> str:
    """The `text` argument: shown in notifications and read by screen readers."""
    parts = [message.text, *(section_text(s) for s in message.sections)]
    return clip("\n\n".join(p for p in parts if p), MAX_MESSAGE_TEXT) or " "


def home_view(message: Message) -> Block:
    return {"type": "home", "blocks": message_blocks(message, limit=MAX_VIEW_BLOCKS)}


def _option(value: str, label: str) -> Block:
    return {"text": plain(label, MAX_OPTION_TEXT), "value": value}


def _field_block(f: FormField) -> Block:
    element: Block
    optional = False
    if isinstance(f, LikertField):
        options = []
        for score in range(f.minimum, f.maximum + 1):
            label = str(score)
            if score == f.minimum and f.low_label != str(score):
                label = f"{score} · {f.low_label}"
            elif score == f.maximum and f.high_label != str(score):
                label = f"{score} · {f.high_label}"
            options.append(_option(str(score), label))
        element = {"type": "radio_buttons", "options": options[:MAX_RADIO_OPTIONS]}
    elif isinstance(f, TextField):
        element = {"type": "plain_text_input", "multiline": f.multiline}
        if f.initial:
            element["initial_value"] = f.initial[:3000]
        optional = not f.required
    else:
        assert isinstance(f, ChoiceField)
        options = [_option(value, label) for value, label in f.options[:MAX_SELECT_OPTIONS]]
        if len(options) <= MAX_RADIO_OPTIONS:
            element = {"type": "radio_buttons", "options": options}
        else:
            element = {"type": "static_select", "options": options, "placeholder": plain("Choose…", 150)}
    element["action_id"] = f.field_id[:255]
    return {
        "type": "input",
        "block_id": f.field_id[:255],
        "label": plain(f.label, MAX_LABEL),
        "element": element,
        "optional": optional,
    }


def modal_view(form: Form, *, private_metadata: str = "") -> Block:
    """A modal whose `callback_id` is the form id, so a submission after a restart still finds its form."""
    fields = [_field_block(f) for f in form.fields]
    intro = _section_blocks(form.intro) if form.intro else []
    blocks = _fit(intro, fields, MAX_VIEW_BLOCKS)[:MAX_VIEW_BLOCKS]
    return {
        "type": "modal",
        "callback_id": form.form_id[:255],
        "title": plain(form.title, MAX_VIEW_TITLE),
        "submit": plain(form.submit_label, MAX_VIEW_TITLE),
        "close": plain("Cancel", MAX_VIEW_TITLE),
        "private_metadata": private_metadata[:3000],
        "blocks": blocks,
    }


def form_values(state: dict[str, Any]) -> dict[str, str]:
    """`view.state` of a submission → `{field_id: value}`; unanswered optional fields are left out."""
    values: dict[str, str] = {}
    for block_id, actions in state.get("values", {}).items():
        for entry in actions.values():
            if entry.get("selected_option"):
                values[block_id] = str(entry["selected_option"]["value"])
            elif entry.get("value") is not None:
                values[block_id] = str(entry["value"])
    return values


def required_fields(form_view: Block) -> list[str]:
    return [b["block_id"] for b in form_view["blocks"] if b.get("type") == "input" and not b.get("optional")]

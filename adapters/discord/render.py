"""Neutral messages and forms → discord.py content, persistent views and modals.

Buttons are `DynamicItem`s whose custom_id is the neutral action id itself, so a click on a message sent
before a restart (or by another replica) is still routed: discord.py matches the id against the template,
no in-memory view is needed. Views never time out.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from bot import actions
from bot.messages import (
    Button,
    ButtonStyle,
    ChoiceField,
    Form,
    LikertField,
    Message,
    Reply,
    Section,
    TextField,
    Timestamp,
)

MAX_CONTENT = 2000
MAX_LABEL = 80
MAX_BUTTONS = 25
MODAL_TITLE = 45
MODAL_LABEL = 45
MODAL_ITEMS = 5
ACTION_TEMPLATE = r"[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*:[^\s]{1,80}"

_STYLES = {
    ButtonStyle.DEFAULT: discord.ButtonStyle.secondary,
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.DANGER: discord.ButtonStyle.danger,
}


def timestamp(ts: Timestamp, style: str = "F") -> str:
    """`<t:unix:F>`: each reader's client shows the moment in their own time zone."""
    return f"<t:{int(ts.at.timestamp())}:{style}>"


def section_text(section: Section) -> str:
    if not section.times:
        return section.text
    return section.text.format(*(timestamp(ts) for ts in section.times))


def content(message: Message) -> str:
    """The message as Discord markdown: the title line, then each section as a paragraph."""
    parts = [message.text, *(section_text(s) for s in message.sections)]
    return "\n\n".join(p for p in parts if p)


def chunks(text: str, size: int = MAX_CONTENT) -> list[str]:
    """Split long text on line breaks into Discord-sized messages (a report can exceed 2,000 chars)."""
    out: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > size:
            if current:
                out.append(current)
                current = ""
            out.append(line[:size])
            line = line[size:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > size:
            out.append(current)
            current = line
        else:
            current = candidate
    if current or not out:
        out.append(current)
    return out


class ActionHandler(Protocol):
    """What a click is routed to (the bot client): kept abstract so the renderer needs no client."""

    async def on_action(self, interaction: discord.Interaction, action_id: str) -> None: ...


class ActionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ACTION_TEMPLATE):
    """A button whose custom_id is a neutral action id (`feature:verb:entity`)."""

    def __init__(self, action_id: str, label: str = "…", style: discord.ButtonStyle = discord.ButtonStyle.secondary,
                 *, disabled: bool = False) -> None:  # fmt: skip
        super().__init__(
            discord.ui.Button(label=label[:MAX_LABEL], custom_id=action_id, style=style, disabled=disabled)
        )
        self.action_id = action_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ActionButton:
        return cls(match.group(0))

    async def callback(self, interaction: discord.Interaction) -> None:
        handler: Any = interaction.client
        await handler.on_action(interaction, self.action_id)


def view(buttons: tuple[Button, ...] | list[Button], *, chosen: str = "", disabled: bool = False) -> discord.ui.View:
    """A persistent view; `chosen` highlights one action id (an answered Likert item), `disabled` freezes all."""
    result = discord.ui.View(timeout=None)
    for button in list(buttons)[:MAX_BUTTONS]:
        if button.url:
            result.add_item(discord.ui.Button(label=button.label[:MAX_LABEL], url=button.url))
            continue
        style = _STYLES[button.style]
        if chosen:
            style = discord.ButtonStyle.success if button.action_id == chosen else discord.ButtonStyle.secondary
        result.add_item(ActionButton(button.action_id, button.label, style, disabled=disabled))
    return result


def fits_modal(form: Form) -> bool:
    """Discord modals take at most 5 components; Likert and choice items go to buttons in DM instead."""
    return len(form.fields) <= MODAL_ITEMS and all(isinstance(f, TextField) for f in form.fields)


SubmitCallback = Callable[[discord.Interaction, str, dict[str, str]], Awaitable[None]]


MODAL_SEPARATOR = "#"


def modal_id(form_id: str) -> str:
    """A custom_id unique to this opening of the form: discord.py keeps open modals by custom_id alone, so two
    people (or one, twice) opening the same form would otherwise share one entry, and a submission be lost."""
    return f"{form_id}{MODAL_SEPARATOR}{secrets.token_hex(4)}"


def form_of_modal(custom_id: str) -> str:
    """The form id inside a modal's custom_id (`modal_id`)."""
    return custom_id.rsplit(MODAL_SEPARATOR, 1)[0]


def modal_values(components: list[dict[str, Any]]) -> dict[str, str]:
    """The text a submitted modal carries, by field id, read from the raw payload (rows or labels)."""
    values: dict[str, str] = {}
    for top in components:
        for comp in [*top.get("components", []), *([top["component"]] if "component" in top else [])]:
            if comp.get("custom_id") and isinstance(comp.get("value"), str):
                values[comp["custom_id"]] = comp["value"]
    return values


class FormModal(discord.ui.Modal):
    """A modal for text fields; its custom_id is the form id plus a token unique to this opening
    (`modal_id`), so the submission finds its entity and never collides with someone else's."""

    def __init__(self, form: Form, on_submit: SubmitCallback) -> None:
        super().__init__(title=form.title[:MODAL_TITLE] or "peerbot", custom_id=modal_id(form.form_id), timeout=None)
        self.form_id = form.form_id
        self._submit = on_submit
        self.inputs: dict[str, discord.ui.TextInput[FormModal]] = {}
        for field in form.fields:
            assert isinstance(field, TextField)
            text_input: discord.ui.TextInput[FormModal] = discord.ui.TextInput(
                label=field.label[:MODAL_LABEL],
                custom_id=field.field_id,
                style=discord.TextStyle.paragraph if field.multiline else discord.TextStyle.short,
                required=field.required,
                max_length=3000 if field.multiline else 200,
                default=field.initial[: 3000 if field.multiline else 200] or None,
            )
            self.inputs[field.field_id] = text_input
            self.add_item(text_input)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        values = {key: item.value for key, item in self.inputs.items()}
        await self._submit(interaction, self.form_id, values)


def form_items(form: Form) -> list[tuple[str, list[Button]]]:
    """One DM message per item: Likert → buttons 1–5, choice → one button per answer, text → "Answer…".

    Only a questionnaire has item buttons (`actions.AnswerItem`, `actions.OpenTextItem`); the other forms
    always fit a modal.
    """
    target = actions.parse_submit(form.form_id)
    if not isinstance(target, actions.SubmitQuestionnaire):
        raise ValueError(f"form {form.form_id} cannot be shown one item at a time")
    items: list[tuple[str, list[Button]]] = []
    for number, field in enumerate(form.fields, start=1):
        if isinstance(field, LikertField):
            scale = f"{field.minimum} = {field.low_label} · {field.maximum} = {field.high_label}"
            text = f"**{number}. {field.label}**\n{scale}"
            buttons = [
                Button(str(target.answer(field.field_id, str(v))), str(v))
                for v in range(field.minimum, field.maximum + 1)
            ]
        elif isinstance(field, ChoiceField):
            text = f"**{number}. {field.label}**"
            buttons = [Button(str(target.answer(field.field_id, value)), label) for value, label in field.options]
        else:
            text = f"**{number}. {field.label}**"
            buttons = [Button(str(target.open_text(field.field_id)), "Answer…", ButtonStyle.PRIMARY)]
        items.append((text[:MAX_CONTENT], buttons))
    return items


def reply_content(reply: Reply) -> str:
    if reply.message is not None:
        return content(reply.message)
    return reply.text

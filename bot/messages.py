"""Neutral messages, actions and forms; each adapter has one renderer for them.

Buttons and forms carry action ids built by `bot.actions` (one scheme on every platform, used as Slack
`action_id`/`callback_id` and Discord `custom_id`), so a click after a restart still finds its entity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ButtonStyle(StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


@dataclass(frozen=True, slots=True)
class Button:
    action_id: str
    label: str
    style: ButtonStyle = ButtonStyle.DEFAULT
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A moment each platform renders in the reader's own time zone."""

    at: datetime
    fallback: str


@dataclass(frozen=True, slots=True)
class Section:
    """A paragraph; `{0}`, `{1}`… in `text` are replaced by the rendered `times`."""

    text: str
    times: tuple[Timestamp, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """What the core wants shown: a title line, paragraphs and buttons."""

    text: str
    sections: tuple[Section, ...] = ()
    buttons: tuple[Button, ...] = ()
    ephemeral: bool = False
    key: str = ""  # idempotency key of an outbox delivery (see Platform.send_dm)
    retry: bool = False  # True when this key may already have been delivered by a crashed attempt


@dataclass(frozen=True, slots=True)
class LikertField:
    field_id: str
    label: str
    low_label: str = "1"
    high_label: str = "5"
    minimum: int = 1
    maximum: int = 5


@dataclass(frozen=True, slots=True)
class TextField:
    field_id: str
    label: str
    multiline: bool = True
    required: bool = False
    initial: str = ""  # prefilled text the person may edit (a message a trainer reviews before it goes)


@dataclass(frozen=True, slots=True)
class ChoiceField:
    field_id: str
    label: str
    options: tuple[tuple[str, str], ...]  # (value, label)


FormField = LikertField | TextField | ChoiceField


@dataclass(frozen=True, slots=True)
class Form:
    """A modal: `form_id` is an action id such as `survey:submit:<delivery id>`."""

    form_id: str
    title: str
    fields: tuple[FormField, ...]
    submit_label: str = "Submit"
    intro: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """The neutral answer to a command or action; `public` replies are shown to everyone.

    `form` asks the adapter to open that form (Slack modal, Discord modal or per-item DM messages).
    """

    text: str
    public: bool = False
    ok: bool = True
    message: Message | None = None
    form: Form | None = None
    extra: dict[str, str] = field(default_factory=dict)

"""Domain errors carry a message for the person who typed the command; nothing is changed when raised.

The message and its hint are `Text`s: the core raises them before it knows who reads them, and renders
them in the reader's locale when it turns the error into a reply.
"""

from __future__ import annotations

from bot.i18n import SOURCE_LOCALE, Text


class PeerError(Exception):
    """A refusal the user can act on: `message` says what went wrong, `hint` what to type instead."""

    def __init__(self, message: Text, hint: Text | None = None, *, field: str = "") -> None:
        super().__init__(str(message))
        self.message_text, self.hint_text = message, hint
        self.message = str(message)  # in English, for logs
        self.hint = str(hint) if hint else ""
        self.field = field  # the form field at fault, so a modal can show the error under it

    def text(self, locale: str = SOURCE_LOCALE) -> str:
        """The message and its hint in `locale`."""
        message = self.message_text.render(locale)
        return f"{message}\n{self.hint_text.render(locale)}" if self.hint_text else message


class NotFound(PeerError):
    pass


class Forbidden(PeerError):
    pass


class Invalid(PeerError):
    pass

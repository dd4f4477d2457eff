"""Domain errors carry a message for the person who typed the command; nothing is changed when raised."""

from __future__ import annotations


class PeerError(Exception):
    """A refusal the user can act on: `message` says what went wrong, `hint` what to type instead."""

    def __init__(self, message: str, hint: str = "", *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field  # the form field at fault, so a modal can show the error under it

    def text(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class NotFound(PeerError):
    pass


class Forbidden(PeerError):
    pass


class Invalid(PeerError):
    pass

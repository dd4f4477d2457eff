"""Logging for `peerbot run`: plain lines for a terminal, or one JSON object per line (PEERBOT_LOG_FORMAT=json)
for a log collector, each carrying the session and the request it belongs to when known.

Every configured secret (tokens, the signing secret, the database password) is replaced by `***` in whatever a
record renders to, ours or a library's (an SDK logging its request headers at DEBUG), so no setting of the log
level can leak one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.settings import Settings

_SESSION: ContextVar[str] = ContextVar("peerbot_log_session", default="")
_REQUEST: ContextVar[str] = ContextVar("peerbot_log_request", default="")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"


@contextlib.contextmanager
def session_context(short_id: str) -> Iterator[None]:
    """Records logged inside carry this session id."""
    token = _SESSION.set(short_id)
    try:
        yield
    finally:
        _SESSION.reset(token)


@contextlib.contextmanager
def request_context() -> Iterator[str]:
    """Records logged inside carry a fresh request id (one per command, click, form or reaction)."""
    request = secrets.token_hex(6)
    token = _REQUEST.set(request)
    try:
        yield request
    finally:
        _REQUEST.reset(token)


def configured_secrets(settings: Settings) -> list[str]:
    """The values no log line may contain: every secret setting, and the database URL's password."""
    found = [
        value.get_secret_value()
        for value in (getattr(settings, name) for name in Settings.model_fields)
        if isinstance(value, SecretStr) and value.get_secret_value()
    ]
    password = make_url(settings.database_url).password
    if password:
        found.append(str(password))
    return sorted(set(found), key=len, reverse=True)  # longest first: a secret containing another is masked whole


class _Redacting(logging.Formatter):
    def __init__(self, hidden: list[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.hidden = hidden

    def redact(self, text: str) -> str:
        for value in self.hidden:
            text = text.replace(value, MASK)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(_Redacting):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, session and request when
    known (from the context, or `extra={"session": ...}`), and the traceback as `exc` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        session = str(getattr(record, "session", "") or _SESSION.get())
        request = _REQUEST.get()
        if session:
            entry["session"] = session
        if request:
            entry["request"] = request
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Masked before encoding (a secret with characters JSON escapes) and after (one split across fields).
        return self.redact(json.dumps({k: self.redact(v) for k, v in entry.items()}, ensure_ascii=False))


def configure(settings: Settings) -> None:
    """Replace the root logger's handlers with one on stderr in the configured format and level."""
    hidden = configured_secrets(settings)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(hidden) if settings.log_format == "json" else _Redacting(hidden, TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)  # warnings go through the same handler (and format)

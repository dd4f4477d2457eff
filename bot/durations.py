"""Durations like `90m`, `1h30m`, `2w`: the one syntax every command uses."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+)([smhdw])")  # ASCII digits only: `\d` and `int()` also take ٣ and ², `timedelta` not
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_TEXT = 32  # characters: room for `1w2d3h4m5s`-style text, and no thousand-digit number reaches `int()`
MAX_SECONDS = 5 * 366 * 86400  # far above any limit a command sets, far below what `timedelta` can hold


class DurationTooLong(ValueError):
    """Well-formed but longer than any duration peerbot accepts, so callers can say "too long" rather than
    "not a duration"."""


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text; raise ValueError on anything else (including an empty string), and
    `DurationTooLong` beyond `MAX_SECONDS` instead of overflowing `timedelta`."""
    raw = text.strip().lower()
    if not raw or _PART.sub("", raw):
        raise ValueError(f"not a duration: {text[:MAX_TEXT]!r} (use e.g. 90m, 1h30m, 2w)")
    if len(raw) > MAX_TEXT:
        raise DurationTooLong(f"duration text longer than {MAX_TEXT} characters: {raw[:MAX_TEXT]!r}…")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(raw))
    if seconds > MAX_SECONDS:
        raise DurationTooLong(f"duration longer than {MAX_SECONDS} seconds: {text!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0m"

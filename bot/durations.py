"""Durations like `90m`, `1h30m`, `2w`: the one syntax every command uses."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text; raise ValueError on anything else (including an empty string)."""
    raw = text.strip().lower()
    if not raw or _PART.sub("", raw):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90m, 1h30m, 2w)")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(raw))
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

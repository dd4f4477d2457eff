"""Opaque references to platform objects: the core never sees a Slack or Discord object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person on one platform; `id` is the platform's own user id."""

    platform: str
    id: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel (or DM conversation) on one platform."""

    platform: str
    id: str


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A posted message: its channel and the platform's message id (Slack `ts`, Discord snowflake)."""

    channel: ChannelRef
    id: str

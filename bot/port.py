"""The platform port: what the core asks of a chat platform. Each adapter implements it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef


class PlatformError(Exception):
    """A platform refused a call; `code` is the platform's own error code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class ChannelsRestricted(PlatformError):
    """The workspace lets only its admins create channels: breakouts cannot be made. `setting` names, in the
    platform's words, the admin setting that would allow it."""

    def __init__(self, code: str, detail: str = "", *, setting: str = "") -> None:
        super().__init__(code, detail)
        self.setting = setting


class Undeliverable(PlatformError):
    """The recipient cannot receive DMs (closed DMs, left the workspace): retrying will not help."""


class FileTooLarge(PlatformError):
    """The platform refuses a file this big (Discord: 10 MiB for a bot's DM); `limit` in bytes, 0 if unknown.
    Refused before anything is sent, so no half-shared file is left behind."""

    def __init__(self, code: str, detail: str = "", *, limit: int = 0) -> None:
        super().__init__(code, detail)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Upload:
    """A file for a person: `name` is the file name shown, `title` its caption, `comment` the message text
    that introduces it (the report's summary, "Your export")."""

    name: str
    data: bytes
    title: str = ""
    comment: str = ""
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A calendar entry for platforms that have one (Discord scheduled events)."""

    title: str
    description: str
    start: datetime
    end: datetime
    location: str


@runtime_checkable
class Platform(Protocol):
    """Platform-neutral verbs; every reference in and out is opaque."""

    name: str

    async def create_private_channel(
        self, name: str, members: list[UserRef], topic: str, *, group_key: str = ""
    ) -> ChannelRef: ...

    async def add_members(self, channel: ChannelRef, members: list[UserRef]) -> None: ...

    async def remove_member(self, channel: ChannelRef, member: UserRef) -> None: ...

    async def archive_channel(self, channel: ChannelRef) -> None: ...

    async def post(self, channel: ChannelRef, message: Message) -> MessageRef: ...

    async def update(self, ref: MessageRef, message: Message) -> None: ...

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        """DM a user. Raise `Undeliverable` when they cannot receive DMs.

        When `message.key` is set and `message.retry` is true, a crashed attempt may already have delivered
        it: the adapter must return the existing message instead of sending again (Slack: look for the key
        in the DM's recent message metadata; Discord: `nonce` + `enforce_nonce`; local: a dict).
        """
        ...

    async def upload_file(self, user: UserRef, upload: Upload) -> MessageRef:
        """Send `upload` to the user's DM, with its comment. Raise `FileTooLarge` (before sending anything)
        when the platform refuses its size, `Undeliverable` when the user cannot receive DMs."""
        ...

    async def members_of(self, channel: ChannelRef) -> list[UserRef]: ...

    async def create_event(self, spec: EventSpec) -> str | None: ...

    async def end_event(self, event_id: str, *, cancelled: bool = False) -> None: ...


@dataclass(frozen=True)
class Capacity:
    """How full a platform with a hard channel limit will be once a start's breakouts exist."""

    free_after: int
    total: int

    @property
    def nearly_full(self) -> bool:
        """Under 10% free: the trainer is warned, so the next start is not the one refused."""
        return self.free_after * 10 < self.total


@runtime_checkable
class ChecksCapacity(Protocol):
    """Optional verb for platforms with hard channel limits (Discord: 500 per guild)."""

    async def ensure_capacity(self, session_key: str, groups: int) -> Capacity | None:
        """Raise `PlatformError` before anything is created if `groups` breakouts cannot fit; else how full the
        platform will be (None when it does not count)."""
        ...


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A member a channel refused while the others got in; `reason` is neutral: `single_channel_guest`
    (already in their one channel), `guest` (guest accounts cannot be added), `deactivated`, or `refused`."""

    user: UserRef
    reason: str


@runtime_checkable
class ReportsLeftOut(Protocol):
    """Optional verb for platforms where one member may be refused by a channel (Slack guests): the channel
    is made for the others, and the core reaches the ones left out another way."""

    def take_left_out(self, channel: ChannelRef) -> list[LeftOut]:
        """The members the last create/add for `channel` could not bring in (and forget them)."""
        ...


@runtime_checkable
class OpensThreads(Protocol):
    """Optional verb for platforms with threads (Slack): when channels cannot be created, a group works in a
    thread of the cohort channel; the returned ref stands for the thread wherever a channel is expected (posts
    go into the thread; adding, removing and archiving are no-ops there)."""

    async def open_thread(self, channel: ChannelRef, message: Message) -> ChannelRef: ...

"""The in-process platform: a real implementation of the port that records everything.

The demo and the core's tests act as learners through `LocalUser`, which goes through the same core entry
points an adapter would (commands, clicks, reactions, forms).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from bot.messages import Message
from bot.port import EventSpec, FileTooLarge, PlatformError, Undeliverable, Upload
from bot.refs import ChannelRef, MessageRef, UserRef


@dataclass
class LocalChannel:
    id: str
    name: str
    private: bool
    topic: str = ""
    members: set[str] = field(default_factory=set)
    archived: bool = False
    is_dm: bool = False


@dataclass
class Posted:
    ref: MessageRef
    message: Message
    at_channel: str
    edits: int = 0


@dataclass
class Uploaded:
    """A file the local platform received for a person's DM."""

    ref: MessageRef
    user_id: str
    upload: Upload


@dataclass
class LocalEvent:
    id: str
    spec: EventSpec
    status: str = "scheduled"


class LocalPlatform:
    """Implements `bot.port.Platform` in memory; `log` is a readable transcript of every call."""

    name = "local"

    def __init__(self, *, closed_dms: set[str] | None = None, max_upload: int = 0) -> None:
        self.max_upload = max_upload  # bytes; 0: no limit (tests set one to see the polite refusal)
        self.uploads: list[Uploaded] = []
        self.channels: dict[str, LocalChannel] = {}
        self.messages: dict[str, Posted] = {}
        self.events: dict[str, LocalEvent] = {}
        self.closed_dms: set[str] = set(closed_dms or ())
        self.log: list[str] = []
        self._ids = itertools.count(1)
        self._dm_by_key: dict[str, MessageRef] = {}
        self.users: dict[str, str] = {}  # user id → display name

    def _next(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def add_channel(self, name: str, members: list[str]) -> ChannelRef:
        channel = LocalChannel(self._next("C"), name, private=False, members=set(members))
        self.channels[channel.id] = channel
        return ChannelRef(self.name, channel.id)

    def _channel(self, ref: ChannelRef) -> LocalChannel:
        channel = self.channels.get(ref.id)
        if channel is None:
            raise PlatformError("channel_not_found", ref.id)
        return channel

    async def create_private_channel(
        self, name: str, members: list[UserRef], topic: str, *, group_key: str = ""
    ) -> ChannelRef:
        if any(c.name == name for c in self.channels.values()):
            raise PlatformError("name_taken", name)
        channel = LocalChannel(self._next("G"), name, private=True, topic=topic, members={m.id for m in members})
        self.channels[channel.id] = channel
        self.log.append(f"created private channel #{name} with {len(members)} member(s)")
        return ChannelRef(self.name, channel.id)

    async def add_members(self, channel: ChannelRef, members: list[UserRef]) -> None:
        target = self._channel(channel)
        target.members.update(m.id for m in members)
        self.log.append(f"added {', '.join(m.id for m in members)} to #{target.name}")

    async def remove_member(self, channel: ChannelRef, member: UserRef) -> None:
        target = self._channel(channel)
        target.members.discard(member.id)
        self.log.append(f"removed {member.id} from #{target.name}")

    async def archive_channel(self, channel: ChannelRef) -> None:
        target = self._channel(channel)
        target.archived = True
        self.log.append(f"archived #{target.name}")

    async def post(self, channel: ChannelRef, message: Message) -> MessageRef:
        target = self._channel(channel)
        if target.archived:
            raise PlatformError("is_archived", target.name)
        ref = MessageRef(channel, self._next("M"))
        self.messages[ref.id] = Posted(ref, message, target.id)
        self.log.append(f"posted in #{target.name}: {message.text}")
        return ref

    async def update(self, ref: MessageRef, message: Message) -> None:
        posted = self.messages.get(ref.id)
        if posted is None or posted.at_channel != ref.channel.id:
            raise PlatformError("message_not_found", ref.id)
        if self.channels[posted.at_channel].archived:
            raise PlatformError("is_archived", ref.channel.id)  # as Slack and Discord refuse it
        posted.message = message
        posted.edits += 1

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        if user.id in self.closed_dms:
            raise Undeliverable("cannot_dm_user", user.id)
        if message.key and message.key in self._dm_by_key:
            return self._dm_by_key[message.key]
        dm_id = f"D{user.id}"
        if dm_id not in self.channels:
            self.channels[dm_id] = LocalChannel(dm_id, f"dm-{user.id}", private=True, members={user.id}, is_dm=True)
        ref = MessageRef(ChannelRef(self.name, dm_id), self._next("M"))
        self.messages[ref.id] = Posted(ref, message, dm_id)
        if message.key:
            self._dm_by_key[message.key] = ref
        self.log.append(f"DM to {user.id}: {message.text}")
        return ref

    async def upload_file(self, user: UserRef, upload: Upload) -> MessageRef:
        if user.id in self.closed_dms:
            raise Undeliverable("cannot_dm_user", user.id)
        if self.max_upload and len(upload.data) > self.max_upload:
            raise FileTooLarge("file_too_large", upload.name, limit=self.max_upload)
        ref = await self.send_dm(user, Message(upload.comment or upload.title or upload.name))
        self.uploads.append(Uploaded(ref, user.id, upload))
        self.log.append(f"file to {user.id}: {upload.name} ({len(upload.data)} bytes)")
        return ref

    def uploads_to(self, user_id: str) -> list[Upload]:
        return [u.upload for u in self.uploads if u.user_id == user_id]

    async def members_of(self, channel: ChannelRef) -> list[UserRef]:
        return [UserRef(self.name, m) for m in sorted(self._channel(channel).members)]

    async def create_event(self, spec: EventSpec) -> str | None:
        event = LocalEvent(self._next("E"), spec)
        self.events[event.id] = event
        return event.id

    async def end_event(self, event_id: str, *, cancelled: bool = False) -> None:
        self.events[event_id].status = "cancelled" if cancelled else "completed"

    # ---- inspection helpers for tests and the demo

    def dms_to(self, user_id: str) -> list[Posted]:
        return [p for p in self.messages.values() if p.at_channel == f"D{user_id}"]

    def posts_in(self, channel_id: str) -> list[Posted]:
        return [p for p in self.messages.values() if p.at_channel == channel_id]

    def breakouts(self) -> list[LocalChannel]:
        return [c for c in self.channels.values() if c.private and not c.is_dm]


def find_button(posted: Posted, prefix: str) -> str:
    """The action id of the first button of `posted` whose id starts with `prefix`."""
    for button in posted.message.buttons:
        if button.action_id.startswith(prefix):
            return button.action_id
    raise LookupError(f"no {prefix} button on {posted.message.text!r}")


def latest(posts: list[Posted], prefix: str) -> Posted:
    for posted in reversed(posts):
        if any(b.action_id.startswith(prefix) for b in posted.message.buttons):
            return posted
    raise LookupError(f"no message with a {prefix} button")


__all__ = ["LocalChannel", "LocalEvent", "LocalPlatform", "Posted", "Uploaded", "datetime", "find_button", "latest"]

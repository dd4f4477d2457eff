"""The `Platform` port on Discord's REST API, through discord.py's own HTTP client.

discord.py already follows the per-route buckets (X-RateLimit-* headers) and retries 429s; what it does
not pace is the global 50 requests/s, so `GlobalPacer` spaces calls out before they leave. Everything
goes through `_call`, which turns `discord.HTTPException` into the port's `PlatformError` /
`Undeliverable`, so the core never sees discord.py.

Breakouts: one category per session (a second one when 50 channels are reached), and per group a private
text and voice channel: @everyone is denied VIEW_CHANNEL, the members, the bot and the trainer role are
allowed. Capacity is checked before anything is created, so a session never ends up half-built.
A group asked for again (the process died before the core recorded the channel id) gets the text and voice
channel of that name in the session's category back, its overwrites completed, instead of a second pair.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar, cast

import discord
from discord.http import HTTPClient, Route, handle_message_parameters

from adapters.discord import render
from bot.i18n import N_, t
from bot.messages import Message
from bot.port import Capacity, EventSpec, FileTooLarge, PlatformError, Undeliverable, Upload
from bot.refs import ChannelRef, MessageRef, UserRef

log = logging.getLogger(__name__)

PLATFORM = "discord"
MAX_GUILD_CHANNELS = 500
MAX_PER_CATEGORY = 50
TEXT: Literal[0] = 0
VOICE: Literal[2] = 2
CATEGORY: Literal[4] = 4
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
ADD_REACTIONS = 1 << 6
READ_MESSAGE_HISTORY = 1 << 16
CONNECT = 1 << 20
SPEAK = 1 << 21
MEMBER_ALLOW = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | CONNECT | SPEAK
READ_ONLY_DENY = SEND_MESSAGES | ADD_REACTIONS | CONNECT | SPEAK
UNDELIVERABLE_CODES = frozenset({50007, 10013})  # cannot send to this user, unknown user
TOO_LARGE = "40005"  # "Request entity too large" (HTTP 413)
# A bot's upload limit in a DM (no server boost raises it there): 10 MiB since 2025-01-16.
MAX_UPLOAD = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
ARCHIVED_NOTICE = N_("This breakout is archived: you can still read it here until {when}, when it is deleted.")
DELETION_AT = re.compile(r"<t:(\d+):D>")

T = TypeVar("T")
HISTORY_LOOKBACK = 50  # a retried DM looks for its key among the DM channel's last messages


class DmStore(Protocol):
    """Where DM channel ids are kept across restarts (`storage.dm_channels.DmChannelStore`)."""

    async def get(self, user_id: str) -> str | None: ...

    async def put(self, user_id: str, channel_id: str) -> None: ...


class GlobalPacer:
    """Spaces requests to at most `rate` per second: Discord's global limit, which discord.py does not pre-empt."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class _Breakout:
    category_id: int
    voice_id: int | None


@dataclass
class _SessionCategories:
    ids: list[int] = field(default_factory=list)
    children: dict[int, int] = field(default_factory=dict)  # category id → channel count


def _snowflake(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise PlatformError("50035", f"not a Discord id: {raw!r}") from None


def _name_key(name: str) -> str:
    """Compares a requested name with Discord's stored one: text channel names come back lowercased, with
    spaces and most punctuation turned into dashes; voice channel names come back as sent."""
    return re.sub(r"[^\w-]+", "-", name[:100].lower()).strip("-")


def _covers(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if current is None:
        return False
    allow, deny = int(current["allow"]), int(current["deny"])
    want_allow, want_deny = int(wanted["allow"]), int(wanted["deny"])
    return allow & want_allow == want_allow and not deny & want_allow and deny & want_deny == want_deny


def _can_view(
    guild_id: int, roles: dict[int, int], overwrites: list[dict[str, Any]], member_roles: list[int], member_id: int
) -> bool:
    """Discord's permission algorithm for View Channel: @everyone's and the member's roles' permissions
    (Administrator sees all), then the overwrites for @everyone, the member's roles (merged), the member."""
    perms = roles.get(guild_id, 0)
    for role in member_roles:
        perms |= roles.get(role, 0)
    if perms & ADMINISTRATOR:
        return True
    by_id = {int(ow["id"]): ow for ow in overwrites}
    everyone = by_id.get(guild_id)
    if everyone is not None:
        perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role in member_roles:
        ow = by_id.get(role)
        if ow is not None and int(ow["type"]) == 0:
            allow, deny = allow | int(ow["allow"]), deny | int(ow["deny"])
    perms = (perms & ~deny) | allow
    mine = by_id.get(member_id)
    if mine is not None and int(mine["type"]) == 1:
        perms = (perms & ~int(mine["deny"])) | int(mine["allow"])
    return bool(perms & VIEW_CHANNEL)


def _nonce(key: str) -> str:
    """Discord nonces are at most 25 characters: a digest of the outbox key keeps them unique enough."""
    return hashlib.sha256(key.encode()).hexdigest()[:25]


def _mark(key: str) -> str:
    """The line a keyed DM ends with: Discord's small grey subtext, a digest of the key and nothing to read.
    Discord keeps no metadata on a message and returns no nonce in history, so this is what a retry finds."""
    return f"-# `{_nonce(key)[:12]}`"


class DiscordPlatform:
    """Implements `bot.port.Platform` for one guild."""

    name = PLATFORM

    def __init__(
        self,
        http: HTTPClient,
        guild_id: int,
        *,
        bot_user_id: int | None = None,
        trainer_role: str = "",
        cleanup: Literal["delete", "archive"] = "archive",
        global_rate: float = 45.0,
        max_channels: int = MAX_GUILD_CHANNELS,
        max_per_category: int = MAX_PER_CATEGORY,
        live_channels: Callable[[], int | None] | None = None,
        dm_store: DmStore | None = None,
        archive_days: int = 14,
        locale: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_upload: int = MAX_UPLOAD,
    ) -> None:
        self.max_upload = max_upload
        self.archive_days = archive_days
        self.locale = locale
        self.clock = clock
        self.http = http
        self.live_channels = live_channels
        self.dm_store = dm_store
        self.guild_id = guild_id
        self.bot_user_id = bot_user_id
        self.trainer_role = trainer_role
        self.cleanup = cleanup
        self.max_channels = max_channels
        self.max_per_category = max_per_category
        self.pacer = GlobalPacer(global_rate)
        self._trainer_role_id: int | None = int(trainer_role) if trainer_role.isdigit() else None
        self._channel_count: int | None = None
        self._pending = 0  # channel slots reserved by a provisioning in flight, not created yet
        self._categories: dict[str, _SessionCategories] = {}
        self._breakouts: dict[int, _Breakout] = {}
        # (category id, name key) → channel type → channel id: the breakouts that exist, to reuse them
        self._named: dict[tuple[int, str], dict[int, int]] = {}
        self._dm_channels: dict[str, int] = {}
        self._layout_lock = asyncio.Lock()

    # ---------------------------------------------------------------------------------------- plumbing
    async def _call(self, coro: Awaitable[T]) -> T:
        await self.pacer.wait()
        try:
            return await coro
        except discord.HTTPException as exc:
            raise PlatformError(str(exc.code or exc.status), exc.text) from exc

    async def _bot_id(self) -> int:
        if self.bot_user_id is None:
            me = await self._call(self.http.request(Route("GET", "/users/@me")))
            self.bot_user_id = int(me["id"])
        return self.bot_user_id

    async def _trainer_role(self) -> int | None:
        if self._trainer_role_id is None and self.trainer_role:
            roles = await self._call(self.http.get_roles(self.guild_id))
            found = [r for r in roles if r["name"] == self.trainer_role]
            self._trainer_role_id = int(found[0]["id"]) if found else None
            if not found:
                log.warning("trainer role %r not found in guild %s", self.trainer_role, self.guild_id)
        return self._trainer_role_id

    async def _load_layout(self) -> None:
        """Rebuild channel counts and session categories from the guild: survives a restart."""
        channels = await self._call(self.http.get_all_guild_channels(self.guild_id))
        self._channel_count = len(channels) + self._pending  # slots reserved by a provisioning in flight count
        by_parent: dict[int, int] = {}
        for ch in channels:
            if ch.get("parent_id"):
                by_parent[int(ch["parent_id"])] = by_parent.get(int(ch["parent_id"]), 0) + 1
        for ch in sorted(channels, key=lambda c: int(c["id"])):
            if ch["type"] == CATEGORY and ch["name"].startswith("peer "):
                key = ch["name"].removeprefix("peer ").split(" (")[0]
                cats = self._categories.setdefault(key, _SessionCategories())
                if int(ch["id"]) not in cats.ids:
                    cats.ids.append(int(ch["id"]))
                cats.children[int(ch["id"])] = by_parent.get(int(ch["id"]), 0)
        names: dict[tuple[int, str], dict[int, int]] = {}
        for ch in sorted(channels, key=lambda c: int(c["id"])):
            if ch.get("parent_id") and ch["type"] in (TEXT, VOICE):
                kinds = names.setdefault((int(ch["parent_id"]), _name_key(ch["name"])), {})
                kinds.setdefault(ch["type"], int(ch["id"]))  # the oldest of a name is the one in use
        self._named = names
        for (parent, _), kinds in names.items():
            if TEXT in kinds:
                self._breakouts[kinds[TEXT]] = _Breakout(parent, kinds.get(VOICE))

    def _overwrites(self, members: list[int], bot_id: int, role: int | None) -> list[dict[str, Any]]:
        """Bit sets as integers, as the OpenAPI request schema types them (Discord also accepts strings)."""
        out: list[dict[str, Any]] = [
            {"id": str(self.guild_id), "type": 0, "allow": 0, "deny": VIEW_CHANNEL},
            {"id": str(bot_id), "type": 1, "allow": VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY, "deny": 0},
        ]
        if role is not None:
            out.append({"id": str(role), "type": 0, "allow": MEMBER_ALLOW, "deny": 0})
        out += [
            {"id": str(m), "type": 1, "allow": MEMBER_ALLOW, "deny": 0} for m in dict.fromkeys(members) if m != bot_id
        ]
        return out

    # ---------------------------------------------------------------------------------------- capacity
    def _refresh_count(self) -> None:
        """The guild's channel count from the gateway's live state (`live_channels`, kept up to date by
        CHANNEL_CREATE/DELETE), so channels an admin made or removed since the layout was read count too. While
        our own creations are in flight, they are added on top (the gateway has not seen them yet). Without a
        gateway (a REST-only process), the count read at load time plus our own changes stands."""
        live = self.live_channels() if self.live_channels is not None else None
        if live is None or self._channel_count is None:
            return
        self._channel_count = live + self._pending if self._pending else live

    async def ensure_capacity(self, session_key: str, groups: int) -> Capacity:
        """Refuse (error 30013) before creating anything if the guild cannot hold `groups` breakouts; else how
        many channels will be left free (the core warns the trainer under 10%)."""
        async with self._layout_lock:
            if self._channel_count is None:
                await self._load_layout()
            self._refresh_count()
            assert self._channel_count is not None
            cats = self._categories.get(session_key, _SessionCategories())
            fit = sum((self.max_per_category - n) // 2 for n in cats.children.values())
            new_categories = -(-max(0, groups - fit) // (self.max_per_category // 2))
            needed = 2 * groups + new_categories
            if self._channel_count + needed > self.max_channels:
                raise PlatformError(
                    "30013",
                    f"{groups} breakouts need {needed} channels; the server has "
                    f"{self.max_channels - self._channel_count} free of {self.max_channels}",
                )
            return Capacity(self.max_channels - self._channel_count - needed, self.max_channels)

    async def _category_for(self, session_key: str, bot_id: int, role: int | None) -> int:
        """The session's category with room for a text + voice pair, creating one if needed."""
        if self._channel_count is None:
            await self._load_layout()
        self._refresh_count()
        assert self._channel_count is not None
        cats = self._categories.setdefault(session_key, _SessionCategories())
        for cat_id in cats.ids:
            if cats.children.get(cat_id, 0) + 2 <= self.max_per_category:
                return cat_id
        if self._channel_count + 3 > self.max_channels:
            raise PlatformError("30013", f"the server is full ({self.max_channels} channels)")
        suffix = f" ({len(cats.ids) + 1})" if cats.ids else ""
        created = await self._call(
            self.http.create_channel(
                self.guild_id,
                CATEGORY,
                name=f"peer {session_key}{suffix}"[:100],
                permission_overwrites=self._overwrites([], bot_id, role),
            )
        )
        cat_id = int(created["id"])
        cats.ids.append(cat_id)
        cats.children[cat_id] = 0
        self._channel_count += 1
        self._refresh_count()
        return cat_id

    # ---------------------------------------------------------------------------------------- port verbs
    async def create_private_channel(
        self, name: str, members: list[UserRef], topic: str, *, group_key: str = ""
    ) -> ChannelRef:
        """A private text + voice pair in the session's category; the pair of that name if it exists."""
        session_key = (group_key or name).split(":")[0]
        bot_id = await self._bot_id()
        role = await self._trainer_role()
        member_ids = [_snowflake(m.id) for m in members]
        overwrites = self._overwrites(member_ids, bot_id, role)
        key = _name_key(name)
        async with self._layout_lock:
            category, existing = await self._existing(session_key, key)
            missing = 2 - len(existing)
            if missing:
                if category is None:
                    category = await self._category_for(session_key, bot_id, role)
                self._refresh_count()
                assert self._channel_count is not None
                if self._channel_count + missing > self.max_channels:
                    raise PlatformError("30013", f"the server is full ({self.max_channels} channels)")
                # Reserve the slots before the slow calls so concurrent groups do not overfill the category.
                self._categories[session_key].children[category] += missing
                self._channel_count += missing
                self._pending += missing
        assert category is not None
        for kind, channel_id in existing.items():
            await self._complete(channel_id, overwrites, topic[:1024] if kind == TEXT else None)
        ids = dict(existing)
        try:
            for kind in (TEXT, VOICE):
                if kind not in ids:
                    extra = {"topic": topic[:1024] or None} if kind == TEXT else {}
                    created = await self._call(
                        self.http.create_channel(
                            self.guild_id,
                            kind,
                            name=name[:100],
                            parent_id=category,
                            permission_overwrites=overwrites,
                            **extra,
                        )
                    )
                    ids[kind] = int(created["id"])
                    self._named.setdefault((category, key), {})[kind] = ids[kind]
        finally:
            self._pending -= missing
        self._breakouts[ids[TEXT]] = _Breakout(category, ids[VOICE])
        return ChannelRef(PLATFORM, str(ids[TEXT]))

    async def _existing(self, session_key: str, key: str) -> tuple[int | None, dict[int, int]]:
        """The session category holding a breakout named `key`, and its channels by type (under the lock)."""
        if self._channel_count is None:
            await self._load_layout()
        for category in self._categories.get(session_key, _SessionCategories()).ids:
            found = self._named.get((category, key))
            if found:
                return category, dict(found)
        return None, {}

    async def _complete(self, channel_id: int, wanted: list[dict[str, Any]], topic: str | None) -> None:
        """Give a reused channel the overwrites (and topic) this group needs; keep any others it has."""
        current = await self._call(self.http.get_channel(channel_id))
        have = {str(ow["id"]): ow for ow in cast(list[dict[str, Any]], current.get("permission_overwrites", []))}
        changes: dict[str, Any] = {}
        if not all(_covers(have.get(str(ow["id"])), ow) for ow in wanted):
            merged = {
                oid: {"id": oid, "type": int(ow["type"]), "allow": int(ow["allow"]), "deny": int(ow["deny"])}
                for oid, ow in have.items()
            }
            for ow in wanted:
                old: dict[str, Any] = merged.get(str(ow["id"]), {"allow": 0, "deny": 0})
                merged[str(ow["id"])] = {
                    "id": str(ow["id"]),
                    "type": ow["type"],
                    "allow": int(old["allow"]) | int(ow["allow"]),
                    "deny": (int(old["deny"]) & ~int(ow["allow"])) | int(ow["deny"]),
                }
            changes["permission_overwrites"] = list(merged.values())
        if topic is not None and (current.get("topic") or "") != topic:
            changes["topic"] = topic or None
        if changes:
            await self._call(self.http.edit_channel(channel_id, **changes))

    async def _pair(self, channel: ChannelRef) -> list[int]:
        text_id = _snowflake(channel.id)
        if text_id not in self._breakouts:
            async with self._layout_lock:
                await self._load_layout()
        breakout = self._breakouts.get(text_id)
        return [text_id] + ([breakout.voice_id] if breakout and breakout.voice_id else [])

    async def add_members(self, channel: ChannelRef, members: list[UserRef]) -> None:
        """One member overwrite per person and channel (Manage Roles). The body is the spec's `{allow, deny, type}`:
        discord.py's `edit_channel_permissions` also sends an `id`, which the route does not take."""
        for channel_id in await self._pair(channel):
            for member in members:
                target = _snowflake(member.id)
                path = "/channels/{channel_id}/permissions/{target}"
                route = Route("PUT", path, channel_id=channel_id, target=target)
                await self._call(self.http.request(route, json={"allow": str(MEMBER_ALLOW), "deny": "0", "type": 1}))

    async def remove_member(self, channel: ChannelRef, member: UserRef) -> None:
        for channel_id in await self._pair(channel):
            try:
                await self._call(self.http.delete_channel_permissions(channel_id, _snowflake(member.id)))
            except PlatformError as exc:
                if exc.code != "10009":  # unknown overwrite: already gone
                    raise

    async def archive_channel(self, channel: ChannelRef) -> None:
        """`delete`: remove text and voice; `archive`: keep the text read-only, remove the voice channel."""
        text_id, *voice = await self._pair(channel)
        breakout = self._breakouts.pop(text_id, None)
        for voice_id in voice:
            await self._delete(voice_id)
        if self.cleanup == "delete":
            await self._delete(text_id)
        else:
            current = await self._call(self.http.get_channel(text_id))
            overwrites = []
            for ow in cast(list[dict[str, Any]], current.get("permission_overwrites", [])):
                allow, deny = int(ow["allow"]), int(ow["deny"])
                if int(ow["type"]) == 1 and int(ow["id"]) != self.bot_user_id:
                    allow, deny = VIEW_CHANNEL | READ_MESSAGE_HISTORY, READ_ONLY_DENY
                overwrites.append({"id": ow["id"], "type": int(ow["type"]), "allow": allow, "deny": deny})
            await self._call(self.http.edit_channel(text_id, permission_overwrites=overwrites))
            if self.archive_days > 0:
                await self._announce_deletion(text_id)
        if breakout is not None:
            await self._drop_empty_category(breakout.category_id, removed=1 + (self.cleanup == "delete"))

    async def _announce_deletion(self, text_id: int) -> None:
        """The archived breakout says when it goes; that post is also what `purge_archives` reads back."""
        when = self.clock() + timedelta(days=self.archive_days)
        text = t(self.locale, ARCHIVED_NOTICE, when=f"<t:{int(when.timestamp())}:D>")
        params = handle_message_parameters(content=text, allowed_mentions=discord.AllowedMentions.none())
        await self._call(self.http.send_message(text_id, params=params))

    async def purge_archives(self) -> int:
        """Delete the archived breakouts whose retention (`archive_days`) is over, and their emptied categories:
        archived channels count towards the 500-channel cap. The evidence stays: takeaways, attendance and
        everything else peerbot records are in the database, and the bot cannot read the members' own messages
        (no Message Content intent). Returns how many breakouts were deleted."""
        if self.cleanup != "archive" or self.archive_days <= 0:
            return 0
        bot_id = await self._bot_id()
        async with self._layout_lock:
            await self._load_layout()
            archived = [(category, kinds[TEXT]) for (category, _), kinds in self._named.items() if set(kinds) == {TEXT}]
        now = self.clock()
        removed = 0
        for category, text_id in archived:
            recent = await self._call(self.http.logs_from(text_id, 20))
            due = [
                int(found[1])
                for msg in recent
                if int(msg["author"]["id"]) == bot_id and (found := DELETION_AT.search(str(msg.get("content", ""))))
            ]
            if not due or datetime.fromtimestamp(due[0], UTC) > now:
                continue
            await self._delete(text_id)
            self._breakouts.pop(text_id, None)
            await self._drop_empty_category(category, removed=1)
            removed += 1
        return removed

    async def _delete(self, channel_id: int) -> None:
        try:
            await self._call(self.http.delete_channel(channel_id))
        except PlatformError as exc:
            if exc.code != "10003":  # already deleted
                raise
        if self._channel_count is not None:
            self._channel_count -= 1
        for where, kinds in list(self._named.items()):
            if channel_id in kinds.values():
                kinds = {kind: cid for kind, cid in kinds.items() if cid != channel_id}
                if kinds:
                    self._named[where] = kinds
                else:
                    del self._named[where]

    async def _drop_empty_category(self, category_id: int, removed: int) -> None:
        for key, cats in self._categories.items():
            if category_id in cats.children:
                cats.children[category_id] = max(0, cats.children[category_id] - removed)
                if cats.children[category_id] == 0:
                    await self._delete(category_id)
                    cats.ids.remove(category_id)
                    del cats.children[category_id]
                if not cats.ids:
                    del self._categories[key]
                return

    async def post(self, channel: ChannelRef, message: Message) -> MessageRef:
        return await self._send(_snowflake(channel.id), message, ref_channel=channel)

    async def _send(
        self, channel_id: int, message: Message, *, ref_channel: ChannelRef, marked: bool = False
    ) -> MessageRef:
        text = render.content(message)
        if marked and message.key:
            text += "\n" + _mark(message.key)
        parts = render.chunks(text)
        sent: Any = {}
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            nonce = _nonce(f"{message.key}:{index}") if message.key else None
            params = handle_message_parameters(
                content=part,
                view=render.view(message.buttons) if last and message.buttons else discord.utils.MISSING,
                nonce=nonce,
                allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            )
            sent = await self._call(self.http.send_message(channel_id, params=params))
        return MessageRef(ref_channel, str(sent["id"]))

    async def update(self, ref: MessageRef, message: Message) -> None:
        params = handle_message_parameters(
            content=render.chunks(render.content(message))[0], view=render.view(message.buttons)
        )
        await self._call(self.http.edit_message(_snowflake(ref.channel.id), _snowflake(ref.id), params=params))

    async def dm_channel(self, user: UserRef) -> int:
        """The person's DM channel: from memory, else from the database (`dm_store`), else opened once and
        stored, so a restart does not reopen every DM (bots that open many quickly are blocked, 40003)."""
        cached = self._dm_channels.get(user.id)
        if cached is None and self.dm_store is not None:
            stored = await self.dm_store.get(user.id)
            cached = int(stored) if stored and stored.isdigit() else None
        if cached is None:
            try:
                dm = await self._call(self.http.start_private_message(_snowflake(user.id)))
            except PlatformError as exc:
                if exc.code in {str(c) for c in UNDELIVERABLE_CODES}:
                    raise Undeliverable(exc.code, exc.detail) from exc
                raise
            cached = int(dm["id"])
            if self.dm_store is not None:
                await self.dm_store.put(user.id, str(cached))
        self._dm_channels[user.id] = cached
        return cached

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        """DMs closed → `Undeliverable`. A DM with an idempotency key ends with a small mark of it: a retry
        within Discord's nonce window gets the first copy back from the nonce, a retry after it (a crashed
        delivery reclaimed after its 5-minute lease, or backed off) finds the mark in the channel's last
        messages and sends nothing."""
        channel_id = await self.dm_channel(user)
        where = ChannelRef(PLATFORM, str(channel_id))
        try:
            if message.key and message.retry:
                found = await self._find_delivery(channel_id, message.key)
                if found is not None:
                    return MessageRef(where, found)
            return await self._send(channel_id, message, ref_channel=where, marked=True)
        except PlatformError as exc:
            if exc.code in {str(c) for c in UNDELIVERABLE_CODES}:
                raise Undeliverable(exc.code, exc.detail) from exc
            raise

    async def upload_file(self, user: UserRef, upload: Upload) -> MessageRef:
        """A DM with the file attached (multipart/form-data: `payload_json` and `files[0]`, built by discord.py's
        `discord.File`); the comment comes with it, its first parts before it when longer than one message.
        A file over the upload limit is refused here before anything is sent (Discord would answer 40005)."""
        if len(upload.data) > self.max_upload:
            raise FileTooLarge(TOO_LARGE, upload.name, limit=self.max_upload)
        channel_id = await self.dm_channel(user)
        where = ChannelRef(PLATFORM, str(channel_id))
        parts = render.chunks(render.content(Message(upload.comment))) if upload.comment else [""]
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
        try:
            for part in parts[:-1]:
                with handle_message_parameters(content=part, allowed_mentions=mentions) as params:
                    await self._call(self.http.send_message(channel_id, params=params))
            attached = discord.File(io.BytesIO(upload.data), filename=upload.name, description=upload.title or None)
            with handle_message_parameters(
                content=parts[-1] or discord.utils.MISSING, file=attached, allowed_mentions=mentions
            ) as params:
                sent = await self._call(self.http.send_message(channel_id, params=params))
        except PlatformError as exc:
            if exc.code == TOO_LARGE:
                raise FileTooLarge(exc.code, upload.name, limit=self.max_upload) from exc
            if exc.code in {str(c) for c in UNDELIVERABLE_CODES}:
                raise Undeliverable(exc.code, exc.detail) from exc
            raise
        return MessageRef(where, str(sent["id"]))

    async def _find_delivery(self, channel_id: int, key: str) -> str | None:
        """The id of our message carrying `key`'s mark among the DM channel's recent messages, if any."""
        mark = _mark(key)
        recent = await self._call(self.http.logs_from(channel_id, HISTORY_LOOKBACK))
        bot_id = await self._bot_id()
        for msg in recent:
            if int(msg["author"]["id"]) == bot_id and str(msg.get("content", "")).endswith(mark):
                return str(msg["id"])
        return None

    async def members_of(self, channel: ChannelRef) -> list[UserRef]:
        """The humans who can see a channel (`/peer cohort import`), by Discord's permission algorithm.

        Visibility comes from the roles as much as from the channel's overwrites: on a server that gates
        @everyone, a channel with no overwrite at all is seen only by the roles that grant View Channel, and a
        channel that denies @everyone may let a whole role in. So: when only member overwrites let people in,
        those members, no privileged intent needed; otherwise every member of the server whose roles and
        overwrites let them see it, from the member list, which Discord opens only with the *Server Members
        Intent*.
        """
        data = await self._call(self.http.get_channel(_snowflake(channel.id)))
        overwrites = cast(list[dict[str, Any]], data.get("permission_overwrites", []))
        listed = await self._call(self.http.get_roles(self.guild_id))
        roles = {int(r["id"]): int(r["permissions"]) for r in listed}
        bot_id = await self._bot_id()
        people_roles = [int(r["id"]) for r in listed if not r.get("managed")]  # a bot's own role holds no people
        by_role = [rid for rid in people_roles if _can_view(self.guild_id, roles, overwrites, [rid], 0)]
        if not by_role:
            return [
                UserRef(PLATFORM, str(ow["id"]))
                for ow in overwrites
                if int(ow["type"]) == 1 and int(ow["allow"]) & VIEW_CHANNEL and int(ow["id"]) != bot_id
            ]
        guild = await self._call(self.http.get_guild(self.guild_id, with_counts=False))
        owner = int(guild.get("owner_id") or 0)
        people: list[UserRef] = []
        after: int | None = None
        while True:
            try:
                page = await self._call(self.http.get_members(self.guild_id, 1000, after))
            except PlatformError as exc:
                if exc.code == "50001":
                    raise PlatformError(
                        "50001",
                        "Discord lets me list who can see a channel that roles open only with the Server Members "
                        "Intent (Developer Portal → Bot); or add people with `/peer cohort add`",
                    ) from exc
                raise
            for member in page:
                user = member["user"]
                uid = int(user["id"])
                member_roles = [int(r) for r in member.get("roles", [])]
                if user.get("bot") or not (
                    uid == owner or _can_view(self.guild_id, roles, overwrites, member_roles, uid)
                ):
                    continue
                people.append(UserRef(PLATFORM, str(uid)))
            if len(page) < 1000:
                return people
            after = int(page[-1]["user"]["id"])

    async def create_event(self, spec: EventSpec) -> str | None:
        """An EXTERNAL guild scheduled event (location + end time required) that members can subscribe to."""
        created = await self._call(
            self.http.create_guild_scheduled_event(
                self.guild_id,
                name=spec.title[:100] or "peer session",
                description=spec.description[:1000],
                scheduled_start_time=spec.start.isoformat(),
                scheduled_end_time=spec.end.isoformat(),
                privacy_level=2,
                entity_type=3,
                entity_metadata={"location": spec.location[:100] or "Discord"},
            )
        )
        return str(created["id"])

    async def end_event(self, event_id: str, *, cancelled: bool = False) -> None:
        """Close the session's EXTERNAL event the way Discord allows.

        An external event starts and ends on its own at its scheduled times, and its only manual transition is
        SCHEDULED → CANCELED; a finished one cannot be updated at all (180000). So: a scheduled event is
        cancelled (a cancelled session, or one ended before its event began); an event that began on its own
        is deleted when its session is cancelled (after its start time), and otherwise left to end at its
        scheduled time; a finished or deleted one needs nothing.
        """
        event = _snowflake(event_id)
        try:
            current = await self._call(self.http.get_scheduled_event(self.guild_id, event, False))
        except PlatformError as exc:
            if exc.code == "10070":  # deleted by an admin: nothing left to close
                return
            raise
        status = int(current["status"])
        try:
            if status == 1:
                await self._call(self.http.edit_scheduled_event(self.guild_id, event, status=4))
            elif status == 2 and cancelled:
                await self._call(self.http.delete_scheduled_event(self.guild_id, event))
        except PlatformError as exc:
            if exc.code not in {"180000", "10070"}:  # it finished or went away meanwhile
                raise

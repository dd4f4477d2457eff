"""A loopback Discord (REST v10 + gateway) that the real discord.py client talks to.

Why an emulator and not mocks: the adapter's behaviour that matters (permission overwrites, 50-per-category
spill-over, 429 handling, persistent buttons after a restart, modals) only shows when discord.py itself
parses real payloads, follows real rate-limit headers and reconnects to a real websocket.

Usage::

    async with DiscordEmulator(time_scale=0.01) as emu:   # patches discord.py's base URLs while open
        alice = emu.add_user("alice", roles=[emu.trainer_role_id])
        client = MyClient(...); await client.login(emu.token); task = asyncio.create_task(client.connect())
        await emu.wait_ready()
        result = await emu.slash(alice, "peer", ["checkin"])

Every REST request is checked against Discord's OpenAPI file (route exists, body matches the schema).
Rate limits: per-route buckets (values in `DEFAULT_BUCKETS`, Discord does not publish them; they are
plausible figures, scaled by `time_scale`) and a global 50 requests per (scaled) second.

As strict as Discord where the adapter could be wrong (tests/e2e/test_discord_emulator_rules.py, one test per
rule): permissions by the documented algorithm with its implicit denials; Manage Roles for every overwrite
change; overwrites limited to what the bot holds; Create Events to create an event; external events that start
and end on their own and refuse updates once finished (180000); a nonce window shorter than peerbot's outbox
lease; 40003 for DMs opened too fast; the first follow-up after a deferral editing the original; files as Discord
takes them (multipart/form-data: `payload_json` plus `files[n]` parts, nothing else; Attach Files in a server
channel; a file over the bot's upload limit, 10 MiB by default since January 2025, answers 413 with 40005
"Request entity too large" and nothing is posted). `gated=True`
builds a server whose @everyone sees nothing (a member role does), the bot holding its invite as a bot role;
`refusals` records every refused call, so a test can fail on any it did not plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from tests.emulators.discord_spec import check_body, find_route

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
CONNECT = 1 << 20
SPEAK = 1 << 21
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_EVENTS = 1 << 33
CREATE_EVENTS = 1 << 44
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_DEFAULT = (
    CREATE_INSTANT_INVITE | ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES
    | READ_MESSAGE_HISTORY | CONNECT | SPEAK | USE_APPLICATION_COMMANDS
)  # fmt: skip
# A bot's upload limit per file where no boost raises it (DMs): 10 MiB since 2025-01-16 (discord-api-docs #7312;
# discord.py's DEFAULT_FILE_SIZE_LIMIT_BYTES).
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024
MAX_FILES = 10  # files[0] … files[9]
# A server that gates @everyone (schools, companies): a member role grants what @everyone does not.
GATED = VIEW_CHANNEL | CONNECT | SPEAK
# Implicit denials (discord.com/developers/docs/topics/permissions#implicit-permissions).
SEND_IMPLIES = SEND_TTS_MESSAGES | MENTION_EVERYONE | EMBED_LINKS | ATTACH_FILES
VOICE_IMPLIES = discord.Permissions.voice().value | MANAGE_CHANNELS | MANAGE_ROLES
# What the emulated bot holds unless a test says otherwise: the permissions `peerbot discord-invite-url` asks for
# (tests/e2e/test_discord_platform.py keeps the two in step).
BOT_INVITE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | CONNECT | SPEAK | MANAGE_CHANNELS
    | MANAGE_ROLES | CREATE_EVENTS
)  # fmt: skip

# Intents.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15
GUILD_SCHEDULED_EVENTS = 1 << 16
PRIVILEGED_INTENTS = GUILD_MEMBERS | (1 << 8) | MESSAGE_CONTENT

TEXT, DM, VOICE, CATEGORY = 0, 1, 2, 4

# (requests, window seconds) per route; unscaled. Keys are "METHOD template" from the OpenAPI file.
DEFAULT_BUCKETS: dict[str, tuple[int, float]] = {
    "POST /guilds/{guild_id}/channels": (5, 5.0),
    "PATCH /channels/{channel_id}": (5, 5.0),
    "DELETE /channels/{channel_id}": (5, 5.0),
    "PUT /channels/{channel_id}/permissions/{overwrite_id}": (5, 5.0),
    "DELETE /channels/{channel_id}/permissions/{overwrite_id}": (5, 5.0),
    "POST /channels/{channel_id}/messages": (5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me": (1, 0.25),
    "POST /users/@me/channels": (10, 10.0),
    "POST /guilds/{guild_id}/scheduled-events": (5, 5.0),
    "PATCH /guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}": (5, 5.0),
    "PUT /applications/{application_id}/guilds/{guild_id}/commands": (2, 60.0),
    "PUT /applications/{application_id}/commands": (2, 60.0),
}
DEFAULT_BUCKET = (50, 1.0)


class DiscordHTTPError(Exception):
    """Raised inside handlers; becomes a Discord-shaped error response."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _nest_errors(paths: list[str]) -> dict[str, Any]:
    """Discord's 50035 error tree: {"a": {"0": {"b": {"_errors": [...]}}}}."""
    tree: dict[str, Any] = {}
    for line in paths:
        where, _, message = line.partition(": ")
        node = tree
        for part in where.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": message})
    return tree


def invalid_form(paths: list[str]) -> DiscordHTTPError:
    return DiscordHTTPError(400, 50035, "Invalid Form Body", _nest_errors(paths))


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat()


@dataclass
class EmuUser:
    id: int
    name: str
    bot: bool = False
    dms_open: bool = True
    roles: list[int] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    def member_payload(self, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user": self.payload(),
            "roles": [str(r) for r in self.roles],
            "joined_at": _iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class EmuRole:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class EmuMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: EmuUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    webhook_id: int | None = None
    edited: float | None = None
    reactions: dict[str, list[int]] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    nonce: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    def custom_ids(self) -> list[str]:
        """Every custom_id in the message's components, in reading order."""
        return [c["custom_id"] for c in _walk(self.components) if "custom_id" in c]

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": _iso(self.created),
            "edited_timestamp": _iso(self.edited) if self.edited else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self.attachments,
            "embeds": self.embeds,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
            "components": self.components,
            "reactions": [
                {"count": len(users), "me": False, "emoji": {"id": None, "name": name}}
                for name, users in self.reactions.items()
            ],
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        return data


@dataclass
class EmuChannel:
    id: int
    type: int
    name: str
    guild_id: int | None
    parent_id: int | None = None
    position: int = 0
    topic: str | None = None
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    recipients: list[EmuUser] = field(default_factory=list)
    messages: dict[int, EmuMessage] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        if self.type == DM:
            return {
                "id": str(self.id),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [u.payload() for u in self.recipients],
            }
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": self.permission_overwrites,
            "flags": 0,
            "nsfw": False,
        }
        if self.type == TEXT:
            data.update(topic=self.topic, rate_limit_per_user=0, last_message_id=None)
        if self.type == VOICE:
            data.update(bitrate=64000, user_limit=0, rtc_region=None, rate_limit_per_user=0)
        return data


@dataclass
class EmuEvent:
    id: int
    guild_id: int
    body: dict[str, Any]
    status: int = 1  # SCHEDULED
    creator_id: int | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "channel_id": self.body.get("channel_id"),
            "creator_id": str(self.creator_id) if self.creator_id else None,
            "name": self.body["name"],
            "description": self.body.get("description"),
            "scheduled_start_time": self.body["scheduled_start_time"],
            "scheduled_end_time": self.body.get("scheduled_end_time"),
            "privacy_level": self.body.get("privacy_level", 2),
            "status": self.status,
            "entity_type": self.body["entity_type"],
            "entity_id": None,
            "entity_metadata": self.body.get("entity_metadata"),
            "user_count": 0,
            "image": None,
            "recurrence_rule": None,
        }


@dataclass
class EmuInteraction:
    """One interaction the emulator sent; the bot's answers land here."""

    id: int
    token: str
    type: int
    user: EmuUser
    channel: EmuChannel
    created: float
    source_message: EmuMessage | None = None
    callback_type: int | None = None
    callback_data: dict[str, Any] | None = None
    original: EmuMessage | None = None
    followups: list[EmuMessage] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def modal(self) -> dict[str, Any] | None:
        return self.callback_data if self.callback_type == 9 else None

    @property
    def choices(self) -> list[dict[str, Any]]:
        return list((self.callback_data or {}).get("choices", [])) if self.callback_type == 8 else []

    @property
    def messages(self) -> list[EmuMessage]:
        """What the user got to see: the original response (unless still loading) then follow-ups."""
        out = [] if self.original is None or self.original.flags & 128 else [self.original]
        return out + self.followups

    @property
    def text(self) -> str:
        return "\n".join(m.content for m in self.messages)

    async def wait_message(self, within: float = 5.0) -> EmuMessage:
        """Waits until a deferred response turns into a visible message."""
        async with asyncio.timeout(within):
            while not self.messages:
                self.changed.clear()
                await self.changed.wait()
        return self.messages[-1]


@dataclass
class _Bucket:
    name: str
    limit: int
    window: float
    remaining: int = 0
    reset_at: float = 0.0


@dataclass
class EmulatorStats:
    requests: int = 0
    rate_limited: int = 0
    global_rate_limited: int = 0
    by_route: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


@dataclass
class _GatewaySession:
    id: str
    intents: int
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _walk(components: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for c in components:
        yield c
        if "components" in c:
            yield from _walk(c["components"])
        if "component" in c:
            yield from _walk([c["component"]])
        if "accessory" in c:
            yield from _walk([c["accessory"]])


RestHook = Callable[[str, dict[str, str], Any], Awaitable[None]]

_ROUTES: list[tuple[str, re.Pattern[str], str]] = []


def _route(method: str, template: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    regex = "^" + re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _ROUTES.append((method, re.compile(regex), fn.__name__))
        return fn

    return register


def _text_input_problems(comp: dict[str, Any], where: str) -> list[str]:
    """A modal's text input as Discord checks it: label 1–45, placeholder ≤ 100, min_length 0–4000,
    max_length 1–4000, a prefilled value of at most 4000 characters (and within max_length)."""
    problems = []
    if not 1 <= len(str(comp.get("custom_id", ""))) <= 100:
        problems.append(f"{where}.custom_id: Must be between 1 and 100 in length.")
    if "label" in comp and not 1 <= len(str(comp["label"])) <= 45:
        problems.append(f"{where}.label: Must be between 1 and 45 in length.")
    if len(str(comp.get("placeholder") or "")) > 100:
        problems.append(f"{where}.placeholder: Must be 100 or fewer in length.")
    if not 0 <= int(comp.get("min_length") or 0) <= 4000:
        problems.append(f"{where}.min_length: int value should be between 0 and 4000.")
    maximum = int(comp.get("max_length") or 4000)
    if not 1 <= maximum <= 4000:
        problems.append(f"{where}.max_length: int value should be between 1 and 4000.")
    if len(str(comp.get("value") or "")) > min(maximum, 4000):
        problems.append(f"{where}.value: Must be {min(maximum, 4000)} or fewer in length.")
    return problems


class DiscordEmulator:
    """One guild, one bot application, its users; REST on /api/v10 and a gateway on /gateway."""

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        buckets: Mapping[str, tuple[int, float]] | None = None,
        global_per_second: int = 50,
        max_channels: int = 500,
        max_per_category: int = 50,
        bot_permissions: int = BOT_INVITE_PERMISSIONS,
        gated: bool = False,
        privileged_intents: int = 0,
        interaction_deadline: float = 3.0,
        nonce_window: float = 120.0,
        dm_opens_per_minute: int = 30,
        heartbeat_interval_ms: int = 41250,
        patch_discord: bool = True,
        attachment_limit: int = DEFAULT_ATTACHMENT_LIMIT,
    ) -> None:
        self.attachment_limit = attachment_limit
        self.attachment_data: dict[int, bytes] = {}  # attachment id → the bytes uploaded
        self.time_scale = time_scale
        self.buckets_config = dict(DEFAULT_BUCKETS if buckets is None else buckets)
        self.global_per_second = global_per_second
        self.max_channels = max_channels
        self.max_per_category = max_per_category
        self.privileged_intents = privileged_intents
        self.interaction_deadline = interaction_deadline
        # `enforce_nonce` dedupes only "in the past few minutes": shorter than peerbot's 5-minute outbox lease.
        self.nonce_window = nonce_window
        # Opening DMs too fast gets a bot blocked (40003); Discord publishes no figure, this one is plausible.
        self.dm_opens_per_minute = dm_opens_per_minute
        self._dm_opens: list[float] = []
        self.clock: Callable[[], float] = time.time  # message times; tests move it to pass the nonce window
        # Around each REST call that passed auth, limits and schema, awaited with (route, params, body): before its
        # effect and after it (before the answer leaves), so a system test can kill the caller at either point.
        self.before_call: RestHook | None = None
        self.after_call: RestHook | None = None
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._patch = patch_discord
        self._ids = itertools.count(1)
        self.token = "emu." + secrets.token_urlsafe(24)
        self.application_id = self.snowflake()
        self.guild_id = self.snowflake()
        self.bot_user = EmuUser(self.application_id, "peerbot", bot=True)
        self.users: dict[int, EmuUser] = {self.bot_user.id: self.bot_user}
        self.gated = gated
        everyone = EVERYONE_DEFAULT & ~GATED if gated else EVERYONE_DEFAULT
        self.roles: dict[int, EmuRole] = {self.guild_id: EmuRole(self.guild_id, "@everyone", everyone)}
        self.bot_role_id = self.add_role("peerbot", bot_permissions, managed=True)
        self.bot_user.roles.append(self.bot_role_id)
        self.trainer_role_id = self.add_role("Trainer", 0)
        # Gated: people see channels and join voice through the member role every `add_user` gives them.
        self.member_role_id = self.add_role("Members", GATED) if gated else None
        self.members: dict[int, EmuUser] = {self.bot_user.id: self.bot_user}
        # The server's owner sees and may do everything (Discord's algorithm starts there); a person of their own,
        # so that no test user gets the owner's rights by being added first.
        self.owner = self.add_user("owner")
        self.channels: dict[int, EmuChannel] = {}
        self.general = self._new_channel(TEXT, "general", None, [])
        self.dm_channels: dict[int, EmuChannel] = {}
        self.events: dict[int, EmuEvent] = {}
        self.guild_commands: list[dict[str, Any]] = []
        self.global_commands: list[dict[str, Any]] = []
        self.interactions: dict[int, EmuInteraction] = {}
        self._by_token: dict[str, EmuInteraction] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._global_window = (0.0, 0)
        self._inject: list[tuple[str, float]] = []
        self.stats = EmulatorStats()
        self.request_log: list[tuple[float, str, str, int]] = []
        self.refusals: list[tuple[str, int]] = []  # (route, Discord error code) of every refused request
        self._sessions: dict[str, _GatewaySession] = {}
        self._current: _GatewaySession | None = None
        self._ready = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._saved: tuple[str, yarl.URL] | None = None
        self._event_waiters: list[tuple[Callable[[], bool], asyncio.Event]] = []
        # What time it is for scheduled events (tests give the core's fake clock, so events start and end with it).
        self.event_clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # ---- lifecycle -------------------------------------------------------------------------------------
    async def __aenter__(self) -> DiscordEmulator:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert self._runner.addresses
        self.port = int(self._runner.addresses[0][1])
        if self._patch:
            self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
            discord.http.Route.BASE = self.api_url
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for session in self._sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ---- world setup -----------------------------------------------------------------------------------
    def snowflake(self) -> int:
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    def add_role(self, name: str, permissions: int, *, managed: bool = False) -> int:
        role = EmuRole(self.snowflake(), name, permissions, position=len(self.roles), managed=managed)
        self.roles[role.id] = role
        return role.id

    def add_user(self, name: str, *, roles: Sequence[int] = (), dms_open: bool = True) -> EmuUser:
        """A guild member; `dms_open=False` makes DMs to them fail with 50007; gated: with the member role."""
        given = [*roles, *([self.member_role_id] if self.member_role_id is not None else [])]
        user = EmuUser(self.snowflake(), name, dms_open=dms_open, roles=given)
        self.users[user.id] = user
        self.members[user.id] = user
        return user

    def _new_channel(
        self,
        kind: int,
        name: str,
        parent: int | None,
        overwrites: list[dict[str, Any]],
        topic: str | None = None,
    ) -> EmuChannel:
        channel = EmuChannel(
            self.snowflake(),
            kind,
            name,
            self.guild_id,
            parent_id=parent,
            position=len(self.channels),
            topic=topic,
            permission_overwrites=overwrites,
        )
        self.channels[channel.id] = channel
        return channel

    async def admin_creates_channel(self, name: str, kind: int = TEXT) -> EmuChannel:
        """A channel a server admin makes in Discord's own UI: the bot hears of it only through the gateway."""
        if len(self.channels) >= self.max_channels:
            raise DiscordHTTPError(400, 30013, f"Maximum number of guild channels reached ({self.max_channels})")
        channel = self._new_channel(kind, name, None, [])
        await self.dispatch("CHANNEL_CREATE", channel.payload())
        return channel

    def guild_payload(self, intents: int) -> dict[str, Any]:
        members = self.members.values() if intents & GUILD_MEMBERS else [self.bot_user]
        return {
            "id": str(self.guild_id),
            "name": "Peer Academy",
            "icon": None,
            "owner_id": str(self.owner.id),
            "region": "europe",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": str(self.general.id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": _iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [u.member_payload() for u in members],
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [e.payload() for e in self.events.values()]
            if intents & GUILD_SCHEDULED_EVENTS
            else [],
            "soundboard_sounds": [],
        }

    # ---- permissions -----------------------------------------------------------------------------------
    def base_permissions(self, user: EmuUser) -> int:
        """Guild-level: @everyone's permissions OR those of each of the member's roles; the owner and
        Administrator = all."""
        if user.id == self.owner.id:
            return ALL_PERMISSIONS
        perms = self.roles[self.guild_id].permissions
        for role_id in user.roles:
            perms |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def permissions_in(self, user: EmuUser, channel: EmuChannel) -> int:
        """Discord's documented algorithm: base permissions, then the channel's overwrites for @everyone, the
        member's roles (denies and allows merged) and the member, then the implicit denials: without View
        Channel nothing else; in a voice channel without Connect no voice or managing permission; in a text
        channel without Send Messages none of what sending implies."""
        if channel.type == DM:
            return VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS
        perms = self.base_permissions(user)
        if perms & ADMINISTRATOR or user.id == self.owner.id:
            return ALL_PERMISSIONS
        by_id = {int(o["id"]): o for o in channel.permission_overwrites}
        everyone = by_id.get(self.guild_id)
        if everyone:
            perms = (perms & ~int(everyone.get("deny", 0))) | int(everyone.get("allow", 0))
        deny = allow = 0
        for role_id in user.roles:
            ow = by_id.get(role_id)
            if ow is not None and int(ow.get("type", 0)) == 0:
                deny |= int(ow.get("deny", 0))
                allow |= int(ow.get("allow", 0))
        perms = (perms & ~deny) | allow
        member = by_id.get(user.id)
        if member is not None and int(member.get("type", 1)) == 1:
            perms = (perms & ~int(member.get("deny", 0))) | int(member.get("allow", 0))
        if not perms & VIEW_CHANNEL:
            return 0
        if channel.type == VOICE and not perms & CONNECT:
            perms &= ~VOICE_IMPLIES
        if channel.type == TEXT and not perms & SEND_MESSAGES:
            perms &= ~SEND_IMPLIES
        return perms

    def can_view(self, user: EmuUser, channel: EmuChannel) -> bool:
        return bool(self.permissions_in(user, channel) & VIEW_CHANNEL)

    def _require(self, channel: EmuChannel, needed: int) -> None:
        perms = self.permissions_in(self.bot_user, channel)
        if not perms & VIEW_CHANNEL:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise DiscordHTTPError(403, 50013, "Missing Permissions")

    # ---- test helpers: gateway-driven user actions ------------------------------------------------------
    async def wait_ready(self, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await self._ready.wait()

    def live_sessions(self) -> int:
        """How many gateway connections of the bot are open now (each one hears every event)."""
        return sum(1 for s in self._sessions.values() if s.ws is not None and not s.ws.closed)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Closes the bot's websocket as Discord does on a hiccup; discord.py should RESUME."""
        session = self._current
        if session is not None and session.ws is not None:
            self._ready.clear()
            ws, session.ws = session.ws, None
            await ws.close(code=code)

    def _find_command(self, name: str) -> dict[str, Any]:
        for cmd in [*self.guild_commands, *self.global_commands]:
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        raise AssertionError(f"command /{name} is not registered (did the bot sync its command tree?)")

    def _typed_options(
        self,
        defs: Sequence[dict[str, Any]],
        values: Mapping[str, Any],
        resolved: dict[str, Any],
        focused: str,
    ) -> list[dict[str, Any]]:
        by_name = {d["name"]: d for d in defs}
        unknown = set(values) - set(by_name)
        if unknown:
            raise AssertionError(f"unknown options {sorted(unknown)}; the command has {sorted(by_name)}")
        out = []
        for d in defs:
            if d["name"] not in values:
                if d.get("required") and not focused:
                    raise AssertionError(f"option {d['name']!r} is required")
                continue
            raw = values[d["name"]]
            kind = d["type"]
            if kind in (6, 9) and isinstance(raw, EmuUser):
                resolved.setdefault("users", {})[str(raw.id)] = raw.payload()
                member = raw.member_payload(self.base_permissions(raw))
                member.pop("user")
                resolved.setdefault("members", {})[str(raw.id)] = member
                value: Any = str(raw.id)
            elif kind == 7 and isinstance(raw, EmuChannel):
                resolved.setdefault("channels", {})[str(raw.id)] = {
                    "id": str(raw.id),
                    "type": raw.type,
                    "name": raw.name,
                    "permissions": "0",
                }
                value = str(raw.id)
            elif kind == 4:
                value = int(raw)
            elif kind == 10:
                value = float(raw)
            elif kind == 5:
                value = bool(raw)
            else:
                value = str(raw)
            if d.get("choices") and d["name"] != focused:
                allowed = [c["value"] for c in d["choices"]]
                if value not in allowed:
                    raise AssertionError(f"{value!r} is not one of the choices {allowed} of {d['name']!r}")
            opt: dict[str, Any] = {"name": d["name"], "type": kind, "value": value}
            if d["name"] == focused:
                opt["focused"] = True
            out.append(opt)
        return out

    def _command_data(
        self, name: str, path: Sequence[str], options: Mapping[str, Any], focused: str = ""
    ) -> dict[str, Any]:
        cmd = self._find_command(name)
        resolved: dict[str, Any] = {}
        defs: Sequence[dict[str, Any]] = cmd.get("options", [])
        chain: list[tuple[str, int]] = []
        for part in path:
            sub = next((d for d in defs if d["name"] == part and d["type"] in (1, 2)), None)
            if sub is None:
                raise AssertionError(f"/{name} has no subcommand {part!r} here")
            chain.append((part, sub["type"]))
            defs = sub.get("options", [])
        leaf: list[dict[str, Any]] = self._typed_options(defs, options, resolved, focused)
        for part, kind in reversed(chain):
            leaf = [{"name": part, "type": kind, "options": leaf}]
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": 1, "options": leaf}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    def _interaction_payload(
        self, kind: int, user: EmuUser, channel: EmuChannel, data: dict[str, Any], message: EmuMessage | None
    ) -> tuple[EmuInteraction, dict[str, Any]]:
        inter = EmuInteraction(
            self.snowflake(),
            "itok." + secrets.token_urlsafe(32),
            kind,
            user,
            channel,
            time.monotonic(),
            source_message=message,
        )
        self.interactions[inter.id] = inter
        self._by_token[inter.token] = inter
        payload: dict[str, Any] = {
            "id": str(inter.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "token": inter.token,
            "version": 1,
            "app_permissions": str(self.permissions_in(self.bot_user, channel)),
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)} if channel.type != DM else {"1": str(user.id)},
            "context": 0 if channel.type != DM else 1,
            "attachment_size_limit": 10485760,
        }
        if channel.type == DM:
            payload["user"] = user.payload()
        else:
            payload["guild_id"] = str(self.guild_id)
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": str(self.guild_id), "locale": "en-US", "features": []}
            payload["member"] = user.member_payload(self.permissions_in(user, channel))
        if message is not None:
            payload["message"] = message.payload()
        return inter, payload

    async def _send_interaction(self, inter: EmuInteraction, payload: dict[str, Any], within: float) -> EmuInteraction:
        if self._current is None:
            raise AssertionError("no bot is connected to the gateway")
        if not self.can_view(inter.user, inter.channel):
            raise AssertionError(f"{inter.user.name} cannot see #{inter.channel.name}")
        await self.dispatch("INTERACTION_CREATE", payload)
        async with asyncio.timeout(within):
            await inter.answered.wait()
        return inter

    async def slash(
        self,
        user: EmuUser,
        name: str,
        path: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        *,
        channel: EmuChannel | None = None,
        within: float = 5.0,
    ) -> EmuInteraction:
        """Types `/name path... options` as `user`; returns once the bot has answered the interaction."""
        data = self._command_data(name, path, options or {})
        inter, payload = self._interaction_payload(2, user, channel or self.general, data, None)
        return await self._send_interaction(inter, payload, within)

    async def autocomplete(
        self,
        user: EmuUser,
        name: str,
        path: Sequence[str],
        focused: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel: EmuChannel | None = None,
    ) -> list[dict[str, Any]]:
        """Returns the choices the bot offers while `user` types option `focused`."""
        values = dict(options or {})
        values.setdefault(focused, "")
        data = self._command_data(name, path, values, focused=focused)
        inter, payload = self._interaction_payload(4, user, channel or self.general, data, None)
        await self._send_interaction(inter, payload, 5.0)
        return inter.choices

    def _find_component(self, message: EmuMessage, custom_id: str) -> dict[str, Any]:
        for comp in _walk(message.components):
            if comp.get("custom_id") == custom_id:
                if comp.get("disabled"):
                    raise AssertionError(f"component {custom_id!r} is disabled")
                return comp
        raise AssertionError(f"no component {custom_id!r} in message {message.id}: {message.custom_ids()}")

    def channel_of(self, message: EmuMessage) -> EmuChannel:
        return self.channels.get(message.channel_id) or self.dm_channels_by_id()[message.channel_id]

    def dm_channels_by_id(self) -> dict[int, EmuChannel]:
        return {c.id: c for c in self.dm_channels.values()}

    async def click(
        self, user: EmuUser, message: EmuMessage, custom_id: str, *, values: Sequence[str] | None = None
    ) -> EmuInteraction:
        """Clicks a button (or picks `values` in a select) of a message the bot posted."""
        comp = self._find_component(message, custom_id)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp["type"]}
        if comp["type"] != 2:
            data["values"] = list(values or [])
        channel = self.channel_of(message)
        inter, payload = self._interaction_payload(3, user, channel, data, message)
        return await self._send_interaction(inter, payload, 5.0)

    async def submit_modal(self, user: EmuUser, opened_by: EmuInteraction, values: Mapping[str, Any]) -> EmuInteraction:
        """Fills and submits the modal the bot opened in answer to `opened_by`."""
        modal = opened_by.modal
        if modal is None:
            raise AssertionError("the bot answered with no modal")
        rows: list[dict[str, Any]] = []
        missing: list[str] = []

        def leaf(comp: dict[str, Any]) -> dict[str, Any]:
            cid = comp.get("custom_id", "")
            out: dict[str, Any] = {"type": comp["type"], "custom_id": cid, "id": comp.get("id", 0)}
            given = values.get(cid)
            if comp["type"] == 4:
                if given is None and comp.get("required", True):
                    missing.append(cid)
                out["value"] = "" if given is None else str(given)
            elif comp["type"] in (3, 5, 6, 7, 8, 22):
                picked = [] if given is None else ([given] if isinstance(given, str) else list(given))
                options = [o["value"] for o in comp.get("options", [])]
                if options and any(p not in options for p in picked):
                    raise AssertionError(f"{picked} not among {options} for {cid!r}")
                if not picked and comp.get("required", True) and comp.get("min_values", 1) > 0:
                    missing.append(cid)
                out["values"] = picked
            elif comp["type"] == 21:
                options = [o["value"] for o in comp.get("options", [])]
                if given is not None and given not in options:
                    raise AssertionError(f"{given!r} not among {options} for {cid!r}")
                if given is None and comp.get("required", True):
                    missing.append(cid)
                out["value"] = given
            elif comp["type"] == 23:
                out["value"] = bool(given)
            return out

        for top in modal.get("components", []):
            if top["type"] == 1:
                rows.append({"type": 1, "id": top.get("id", 0), "components": [leaf(c) for c in top["components"]]})
            elif top["type"] == 18:
                rows.append({"type": 18, "id": top.get("id", 0), "component": leaf(top["component"])})
        if missing:
            raise AssertionError(f"required fields left empty: {missing}")
        data = {"custom_id": modal["custom_id"], "components": rows}
        inter, payload = self._interaction_payload(5, user, opened_by.channel, data, opened_by.source_message)
        return await self._send_interaction(inter, payload, 5.0)

    async def react(self, user: EmuUser, message: EmuMessage, emoji: str) -> None:
        """Adds a reaction as `user`; the bot hears it as MESSAGE_REACTION_ADD."""
        users = message.reactions.setdefault(emoji, [])
        if user.id in users:
            return
        users.append(user.id)
        data: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": {"id": None, "name": emoji},
            "message_author_id": str(message.author.id),
            "burst": False,
            "burst_colors": [],
            "type": 0,
        }
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            data["member"] = user.member_payload()
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    def dm_with(self, user: EmuUser) -> EmuChannel | None:
        return self.dm_channels.get(user.id)

    def messages_in(self, channel: EmuChannel) -> list[EmuMessage]:
        return [m for m in channel.messages.values() if not m.ephemeral]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Waits until the world (channels, messages, events) satisfies `predicate`."""
        event = asyncio.Event()
        entry = (predicate, event)
        self._event_waiters.append(entry)
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    event.clear()
                    await event.wait()
        finally:
            self._event_waiters.remove(entry)

    def _changed(self) -> None:
        for _, event in self._event_waiters:
            event.set()

    def inject_429(self, route: str, retry_after: float = 0.05) -> None:
        """The next request on `route` ("METHOD template") gets a 429 whatever its bucket says."""
        self._inject.append((route, retry_after))

    # ---- gateway --------------------------------------------------------------------------------------
    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """An event to every session of the bot, as Discord does: each gateway connection of the (one) shard gets
        it, so two processes logged in with one token both see every interaction; the latest session gets it
        even while its socket is down (it is replayed on RESUME). No session: a REST-only client, nobody hears."""
        sessions = [s for s in self._sessions.values() if s.ws is not None and not s.ws.closed]
        if self._current is not None and all(s is not self._current for s in sessions):
            sessions.append(self._current)
        for session in sessions:
            await self._send_to(session, event, data)

    async def _send_to(self, session: _GatewaySession, event: str, data: dict[str, Any]) -> None:
        needed = _EVENT_INTENTS.get(event)
        if event.startswith("MESSAGE_") and "guild_id" not in data:
            needed = DIRECT_MESSAGE_REACTIONS if event.startswith("MESSAGE_REACTION") else DIRECT_MESSAGES
        if needed is not None and not session.intents & needed:
            return
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.log.append(frame)
            if session.ws is not None and not session.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await session.ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        hello = {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
        await ws.send_str(json.dumps(hello))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op, d = frame.get("op"), frame.get("d")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:
                await self._identify(ws, d)
            elif op == 6:
                await self._resume(ws, d)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        if d.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = _GatewaySession(secrets.token_hex(16), intents, ws=ws)
        self._sessions[session.id] = session  # another live session (another process) keeps its socket
        self._current = session
        ready = {
            "v": 10,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["emulator"],
        }
        await self._send_to(session, "READY", ready)
        await self._send_to(session, "GUILD_CREATE", self.guild_payload(intents))
        self._ready.set()

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        session = self._sessions.get(d.get("session_id", ""))
        if session is None or d.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        async with session.lock:
            session.ws = ws
            self._current = session
            seq = int(d.get("seq") or 0)
            for frame in session.log:
                if frame["s"] > seq:
                    await ws.send_str(json.dumps(frame))
        await self._send_to(session, "RESUMED", {"_trace": ["emulator"]})
        self._ready.set()

    # ---- REST plumbing ---------------------------------------------------------------------------------
    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        hdrs = dict(headers or {})
        if body is None:
            return web.Response(status=204, headers=hdrs)
        hdrs["Content-Type"] = "application/json"
        return web.Response(status=status, body=json.dumps(body).encode(), headers=hdrs)

    def _bucket_for(self, route: str, params: dict[str, str]) -> _Bucket:
        limit, window = self.buckets_config.get(route, DEFAULT_BUCKET)
        major = params.get("channel_id") or params.get("guild_id") or params.get("webhook_id") or ""
        name = hashlib.md5(route.encode()).hexdigest()[:16]
        key = f"{name}:{major}"
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(name, limit, window * self.time_scale, remaining=limit)
        return bucket

    def _rate_limited(self, status: int, retry_after: float, scope: str, bucket: _Bucket | None) -> web.Response:
        self.stats.rate_limited += 1
        retry = math.ceil(retry_after * 1000) / 1000
        headers = {"Retry-After": str(max(1, math.ceil(retry))), "X-RateLimit-Scope": scope}
        headers["Via"] = "1.1 google"  # discord.py treats a 429 without Via as a Cloudflare ban
        if scope == "global":
            self.stats.global_rate_limited += 1
            headers["X-RateLimit-Global"] = "true"
        if bucket is not None:
            headers.update(
                {
                    "X-RateLimit-Limit": str(bucket.limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                    "X-RateLimit-Reset-After": f"{retry:.3f}",
                    "X-RateLimit-Bucket": bucket.name,
                }
            )
        body = {"message": "You are being rate limited.", "retry_after": retry, "global": scope == "global"}
        return self._respond(status, body, headers)

    def _check_global(self, now: float) -> float:
        """Seconds to wait if the global limit is exhausted, else 0 (and the request is counted)."""
        window = self.time_scale
        start, count = self._global_window
        if now - start >= window:
            start, count = now, 0
        if count >= self.global_per_second:
            return start + window - now
        self._global_window = (start, count + 1)
        return 0.0

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        method = request.method
        spec = find_route(method, path)
        if spec is None:
            return self._respond(404, {"message": "404: Not Found", "code": 0})
        template, operation = spec
        route = f"{method} {template}"
        self.stats.requests += 1
        self.stats.by_route[route] = self.stats.by_route.get(route, 0) + 1
        interaction_route = template.startswith("/interactions/") or template.startswith(
            "/webhooks/{webhook_id}/{webhook_token}"
        )
        if not interaction_route and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._respond(401, {"message": "401: Unauthorized", "code": 0})
        handler = None
        params: dict[str, str] = {}
        for m, pattern, name in _ROUTES:
            match = pattern.match(path)
            if m == method and match:
                handler, params = getattr(self, name), match.groupdict()
                break
        if handler is None:
            return self._respond(404, {"message": f"emulator does not implement {route}", "code": 0})
        now = asyncio.get_running_loop().time()
        bucket: _Bucket | None = None
        if not interaction_route:
            wait = self._check_global(now)
            if wait > 0:
                self.request_log.append((now, route, "", 429))
                return self._rate_limited(429, wait, "global", None)
            bucket = self._bucket_for(route, params)
            if now >= bucket.reset_at:
                bucket.remaining, bucket.reset_at = bucket.limit, now + bucket.window
            for i, (target, retry_after) in enumerate(self._inject):
                if target == route:
                    del self._inject[i]
                    return self._rate_limited(429, retry_after * self.time_scale, "user", bucket)
            if bucket.remaining <= 0:
                self.request_log.append((now, route, bucket.name, 429))
                return self._rate_limited(429, bucket.reset_at - now, "user", bucket)
            bucket.remaining -= 1
        body: Any = None
        files: list[tuple[str, str, bytes]] = []
        if request.content_type == "multipart/form-data":
            try:
                body, files = await self._read_multipart(request)
            except DiscordHTTPError as exc:
                self.refusals.append((route, exc.code))
                return self._respond(exc.status, {"message": exc.message, "code": exc.code})
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                if request.headers.get("Content-Type") != "application/json":
                    return self._respond(400, {"message": "Content-Type must be application/json", "code": 0})
                body = json.loads(raw)
        errors = check_body(operation, body, multipart=bool(files))
        headers: dict[str, str] = {}
        if bucket is not None:
            reset_after = max(0.0, bucket.reset_at - now)
            headers = {
                "X-RateLimit-Limit": str(bucket.limit),
                "X-RateLimit-Remaining": str(bucket.remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{math.ceil(reset_after * 1000) / 1000:.3f}",
                "X-RateLimit-Bucket": bucket.name,
            }
        try:
            if errors:
                raise invalid_form(errors)
            if self.before_call is not None:
                await self.before_call(route, params, body)
            status, result = await handler(params=params, body=body, query=request.query, files=files)
            if self.after_call is not None:
                await self.after_call(route, params, body)
        except DiscordHTTPError as exc:
            err: dict[str, Any] = {"message": exc.message, "code": exc.code}
            if exc.errors:
                err["errors"] = exc.errors
            self.request_log.append((now, route, bucket.name if bucket else "", exc.status))
            self.refusals.append((route, exc.code))
            return self._respond(exc.status, err, headers)
        self.request_log.append((now, route, bucket.name if bucket else "", status))
        self._changed()
        return self._respond(status, result, headers)

    async def _read_multipart(self, request: web.Request) -> tuple[dict[str, Any], list[tuple[str, str, bytes]]]:
        """A message with files: `payload_json` (the JSON body) and `files[n]` parts, as Discord documents them
        ("Uploading Files"); a file over the upload limit is refused before anything is posted."""
        body: dict[str, Any] = {}
        files: list[tuple[str, str, bytes]] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise DiscordHTTPError(400, 50035, "Invalid Form Body")
            name = part.name or ""
            if name == "payload_json":
                body = json.loads(await part.text())
            elif re.fullmatch(r"files\[[0-9]\]", name):
                data = await part.read(decode=False)
                if len(data) > self.attachment_limit:
                    raise DiscordHTTPError(413, 40005, "Request entity too large")
                files.append((name, part.filename or "file", bytes(data)))
            else:
                raise invalid_form([f"{name}: unexpected form field (use payload_json and files[n])"])
        if len(files) > MAX_FILES:
            raise invalid_form(["files: Must be 10 or fewer in length."])
        return body, files

    # ---- REST: identity & commands ---------------------------------------------------------------------
    @_route("GET", "/users/@me")
    async def get_me(self, **_: Any) -> tuple[int, Any]:
        return 200, {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0}

    @_route("GET", "/users/{user_id}")
    async def get_user(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        user = self.users.get(int(params["user_id"])) if params["user_id"].isdigit() else None
        if user is None:
            raise DiscordHTTPError(404, 10013, "Unknown User")
        return 200, user.payload()

    @_route("GET", "/oauth2/applications/@me")
    async def get_application(self, **_: Any) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": "peerbot",
            "icon": None,
            "description": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": {"id": "1", "username": "owner", "discriminator": "0", "avatar": None},
            "team": None,
            "bot": self.bot_user.payload(),
        }

    @_route("GET", "/gateway")
    async def get_gateway(self, **_: Any) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    @_route("GET", "/gateway/bot")
    async def get_gateway_bot(self, **_: Any) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    def _store_commands(self, body: list[dict[str, Any]], guild: bool) -> list[dict[str, Any]]:
        names = [c["name"] for c in body]
        if len(names) != len(set(names)):
            raise invalid_form(["0.name: Application command names must be unique"])
        stored = []
        for cmd in body:
            if not re.fullmatch(r"[-_\w]{1,32}", cmd["name"]) or cmd["name"] != cmd["name"].lower():
                raise invalid_form([f"{names.index(cmd['name'])}.name: Command name is invalid"])
            full = {
                **cmd,
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "default_member_permissions": cmd.get("default_member_permissions"),
                "type": cmd.get("type", 1),
                "description": cmd.get("description", ""),
            }
            if guild:
                full["guild_id"] = str(self.guild_id)
            stored.append(full)
        return stored

    @_route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def put_guild_commands(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        self.guild_commands = self._store_commands(body, guild=True)
        return 200, self.guild_commands

    @_route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def get_guild_commands(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        return 200, self.guild_commands

    @_route("PUT", "/applications/{application_id}/commands")
    async def put_global_commands(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        if params["application_id"] != str(self.application_id):
            raise DiscordHTTPError(403, 50035, "Invalid application")
        self.global_commands = self._store_commands(body, guild=False)
        return 200, self.global_commands

    def _check_app_guild(self, params: dict[str, str]) -> None:
        if params.get("application_id", str(self.application_id)) != str(self.application_id):
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if params.get("guild_id", str(self.guild_id)) != str(self.guild_id):
            raise DiscordHTTPError(404, 10004, "Unknown Guild")

    # ---- REST: guild, channels, members ----------------------------------------------------------------
    @_route("GET", "/guilds/{guild_id}")
    async def get_guild(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        data = self.guild_payload(0)
        for key in ("members", "channels", "threads", "presences", "voice_states", "guild_scheduled_events"):
            data.pop(key)
        return 200, data

    @_route("GET", "/guilds/{guild_id}/roles")
    async def get_roles(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        return 200, [r.payload() for r in self.roles.values()]

    @_route("GET", "/guilds/{guild_id}/members")
    async def list_members(self, params: dict[str, str], query: Mapping[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        if not self.privileged_intents & GUILD_MEMBERS:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        after = int(query.get("after", "0"))
        limit = int(query.get("limit", "1"))
        ids = sorted(i for i in self.members if i > after)[:limit]
        return 200, [self.members[i].member_payload() for i in ids]

    @_route("GET", "/guilds/{guild_id}/members/{user_id}")
    async def get_member(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        user = self.members.get(int(params["user_id"]))
        if user is None:
            raise DiscordHTTPError(404, 10007, "Unknown Member")
        return 200, user.member_payload()

    @_route("GET", "/guilds/{guild_id}/channels")
    async def get_channels(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        return 200, [c.payload() for c in self.channels.values()]

    def _check_overwrites(
        self, overwrites: list[dict[str, Any]], channel: EmuChannel | None = None
    ) -> list[dict[str, Any]]:
        """Overwrites a bot may set: at creation (`channel` None) only permissions it holds in the guild; on an
        existing channel those it holds in the guild or the parent category, unless a Manage Roles overwrite for
        the bot in that channel lets it set any (Discord's Create Guild Channel / Edit Channel Permissions). Manage
        Roles at guild level is no exemption, and only an administrator can put Manage Roles in an overwrite."""
        held = self.base_permissions(self.bot_user)
        exempt = bool(held & ADMINISTRATOR)
        if channel is not None and not exempt:
            parent = self.channels.get(channel.parent_id) if channel.parent_id else None
            if parent is not None:
                held |= self.permissions_in(self.bot_user, parent)
            mine = {self.bot_user.id, *self.bot_user.roles}
            exempt = any(
                int(o["id"]) in mine and int(o.get("allow", 0)) & MANAGE_ROLES for o in channel.permission_overwrites
            )
        clean = []
        for ow in overwrites:
            allow, deny = int(ow.get("allow") or 0), int(ow.get("deny") or 0)
            if not exempt and ((allow | deny) & ~held or ((allow | deny) & MANAGE_ROLES and not held & ADMINISTRATOR)):
                raise DiscordHTTPError(403, 50013, "Missing Permissions")
            target = int(ow["id"])
            kind = int(ow.get("type", 0))
            if (kind == 0 and target not in self.roles) or (kind == 1 and target not in self.members):
                raise invalid_form(["permission_overwrites: Unknown role or member"])
            clean.append({"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)})
        return clean

    @_route("POST", "/guilds/{guild_id}/channels")
    async def create_channel(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        if not self.base_permissions(self.bot_user) & (MANAGE_CHANNELS | ADMINISTRATOR):
            raise DiscordHTTPError(403, 50013, "Missing Permissions")
        kind = int(body.get("type") or 0)
        if kind not in (TEXT, VOICE, CATEGORY):
            raise invalid_form(["type: Value is not a supported channel type"])
        if len(self.channels) >= self.max_channels:
            raise DiscordHTTPError(400, 30013, f"Maximum number of guild channels reached ({self.max_channels})")
        parent = int(body["parent_id"]) if body.get("parent_id") else None
        if parent is not None:
            cat = self.channels.get(parent)
            if cat is None or cat.type != CATEGORY:
                raise invalid_form(["parent_id: Category does not exist"])
            if kind == CATEGORY:
                raise invalid_form(["parent_id: Categories cannot have subcategories"])
            if sum(1 for c in self.channels.values() if c.parent_id == parent) >= self.max_per_category:
                limit = self.max_per_category
                raise invalid_form([f"parent_id: Maximum number of channels in category reached ({limit})"])
        name = str(body["name"])
        if kind == TEXT:
            name = re.sub(r"[^\w-]+", "-", name.lower()).strip("-") or "channel"
        overwrites = self._check_overwrites(body.get("permission_overwrites") or [])
        channel = self._new_channel(kind, name, parent, overwrites, body.get("topic"))
        await self.dispatch("CHANNEL_CREATE", channel.payload())
        return 201, channel.payload()

    def _channel(self, channel_id: str) -> EmuChannel:
        cid = int(channel_id)
        channel = self.channels.get(cid) or self.dm_channels_by_id().get(cid)
        if channel is None:
            raise DiscordHTTPError(404, 10003, "Unknown Channel")
        return channel

    @_route("GET", "/channels/{channel_id}")
    async def get_channel(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        self._require(channel, 0)
        return 200, channel.payload()

    @_route("PATCH", "/channels/{channel_id}")
    async def modify_channel(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        if channel.type == DM:
            raise DiscordHTTPError(403, 50003, "Cannot execute action on a DM channel")
        self._require(channel, MANAGE_CHANNELS | (MANAGE_ROLES if "permission_overwrites" in body else 0))
        if "name" in body:
            channel.name = str(body["name"])
        if "topic" in body:
            channel.topic = body["topic"]
        if "permission_overwrites" in body:
            channel.permission_overwrites = self._check_overwrites(body["permission_overwrites"] or [], channel)
        if "parent_id" in body:
            channel.parent_id = int(body["parent_id"]) if body["parent_id"] else None
        if "position" in body and body["position"] is not None:
            channel.position = int(body["position"])
        await self.dispatch("CHANNEL_UPDATE", channel.payload())
        return 200, channel.payload()

    @_route("DELETE", "/channels/{channel_id}")
    async def delete_channel(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        self._require(channel, MANAGE_CHANNELS)
        del self.channels[channel.id]
        for child in self.channels.values():
            if child.parent_id == channel.id:
                child.parent_id = None
        await self.dispatch("CHANNEL_DELETE", channel.payload())
        return 200, channel.payload()

    @_route("PUT", "/channels/{channel_id}/permissions/{overwrite_id}")
    async def put_overwrite(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        self._require(channel, MANAGE_ROLES)  # "Requires the MANAGE_ROLES permission", Manage Channels or not
        extra = sorted(set(body) - {"allow", "deny", "type"})  # the OpenAPI body: the target is in the path
        if extra:
            raise invalid_form([f"{key}: not a field of this request" for key in extra])
        new = self._check_overwrites([{**body, "id": params["overwrite_id"]}], channel)[0]
        channel.permission_overwrites = [
            o for o in channel.permission_overwrites if o["id"] != params["overwrite_id"]
        ] + [new]
        await self.dispatch("CHANNEL_UPDATE", channel.payload())
        return 204, None

    @_route("DELETE", "/channels/{channel_id}/permissions/{overwrite_id}")
    async def delete_overwrite(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        self._require(channel, MANAGE_ROLES)
        channel.permission_overwrites = [o for o in channel.permission_overwrites if o["id"] != params["overwrite_id"]]
        await self.dispatch("CHANNEL_UPDATE", channel.payload())
        return 204, None

    # ---- REST: messages, reactions, DMs ----------------------------------------------------------------
    def _check_components(self, components: list[dict[str, Any]], where: str = "components") -> None:
        custom_ids = [c["custom_id"] for c in _walk(components) if c.get("custom_id")]
        if len(custom_ids) != len(set(custom_ids)):
            raise invalid_form([f"{where}: Component custom id cannot be duplicated"])
        if len(components) > 5 and not any(c.get("type", 1) not in (1,) for c in components):
            raise invalid_form([f"{where}: Must be 5 or fewer in length."])
        for i, row in enumerate(components):
            if row.get("type") == 1 and len(row.get("components", [])) > 5:
                raise invalid_form([f"{where}.{i}.components: Must be 5 or fewer in length."])

    def _check_content(self, body: Mapping[str, Any], *, files: int = 0) -> None:
        content = str(body.get("content") or "")
        if len(content) > 2000:
            raise invalid_form(["content: Must be 2000 or fewer in length."])
        components = list(body.get("components") or [])
        self._check_components(components)
        if not content and not body.get("embeds") and not components and not files:
            raise DiscordHTTPError(400, 50006, "Cannot send an empty message")

    def _new_message(
        self, channel: EmuChannel, body: Mapping[str, Any], *, webhook: bool = False, kind: int = 0, files: int = 0
    ) -> EmuMessage:
        self._check_content(body, files=files)
        content = str(body.get("content") or "")
        components = list(body.get("components") or [])
        embeds = list(body.get("embeds") or [])
        msg = EmuMessage(
            self.snowflake(),
            channel.id,
            channel.guild_id,
            self.bot_user,
            content=content,
            embeds=embeds,
            components=components,
            flags=int(body.get("flags") or 0),
            type=kind,
            webhook_id=self.application_id if webhook else None,
            created=self.clock(),
        )
        channel.messages[msg.id] = msg
        return msg

    def _attachments(self, body: Mapping[str, Any], files: list[tuple[str, str, bytes]]) -> list[dict[str, Any]]:
        """The message's attachments: each `files[n]` part, described by `attachments[]` entries whose `id` is n."""
        described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        out = []
        for name, filename, data in files:
            index = name[len("files[") : -1]
            if described and index not in described:
                raise invalid_form([f"attachments: no entry for {name}"])
            meta = described.get(index, {})
            attachment_id = self.snowflake()
            self.attachment_data[attachment_id] = data
            shown = str(meta.get("filename") or filename)
            out.append(
                {
                    "id": str(attachment_id),
                    "filename": shown,
                    "description": meta.get("description"),
                    "size": len(data),
                    "url": f"https://cdn.discordapp.com/attachments/{attachment_id}/{shown}",
                    "proxy_url": f"https://media.discordapp.net/attachments/{attachment_id}/{shown}",
                }
            )
        return out

    def attachment_bytes(self, message: EmuMessage) -> list[tuple[str, bytes]]:
        """The files of a message: (file name, bytes)."""
        return [(a["filename"], self.attachment_data[int(a["id"])]) for a in message.attachments]

    @_route("POST", "/channels/{channel_id}/messages")
    async def create_message(
        self, params: dict[str, str], body: Any, files: list[tuple[str, str, bytes]] | None = None, **_: Any
    ) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        files = files or []
        if channel.type == DM:
            recipient = channel.recipients[0]
            if not recipient.dms_open:
                raise DiscordHTTPError(403, 50007, "Cannot send messages to this user")
        elif channel.type == CATEGORY:
            raise DiscordHTTPError(400, 50008, "Cannot send messages in a non-text channel")
        else:
            self._require(channel, SEND_MESSAGES | (ATTACH_FILES if files else 0))
        nonce = str(body["nonce"]) if body.get("nonce") is not None else None
        if nonce is not None and body.get("enforce_nonce"):
            for earlier in channel.messages.values():
                if earlier.nonce == nonce and self.clock() - earlier.created < self.nonce_window:
                    return 200, earlier.payload()  # Discord dedupes for a few minutes only
        self._check_content(body, files=len(files))
        attachments = self._attachments(body, files)
        msg = self._new_message(channel, body, files=len(files))
        msg.nonce = nonce
        msg.attachments = attachments
        await self.dispatch("MESSAGE_CREATE", msg.payload())
        return 200, msg.payload()

    def _message(self, channel: EmuChannel, message_id: str) -> EmuMessage:
        msg = channel.messages.get(int(message_id))
        if msg is None:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return msg

    def _edit(self, msg: EmuMessage, body: Mapping[str, Any]) -> None:
        if "content" in body:
            msg.content = str(body["content"] or "")
        if "embeds" in body:
            msg.embeds = list(body["embeds"] or [])
        if "components" in body:
            self._check_components(list(body["components"] or []))
            msg.components = list(body["components"] or [])
        msg.flags &= ~128
        msg.edited = time.time()

    @_route("GET", "/channels/{channel_id}/messages/{message_id}")
    async def get_message(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        self._require(channel, READ_MESSAGE_HISTORY)
        return 200, self._message(channel, params["message_id"]).payload()

    @_route("PATCH", "/channels/{channel_id}/messages/{message_id}")
    async def edit_message(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        if channel.type != DM:
            self._require(channel, 0)  # a channel the bot no longer sees: Missing Access, as for any call there
        msg = self._message(channel, params["message_id"])
        if msg.author.id != self.bot_user.id:
            raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
        if len(str(body.get("content") or "")) > 2000:
            raise invalid_form(["content: Must be 2000 or fewer in length."])
        self._edit(msg, body)
        await self.dispatch("MESSAGE_UPDATE", msg.payload())
        return 200, msg.payload()

    @_route("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}")
    async def reaction_users(self, params: dict[str, str], query: Mapping[str, str], **_: Any) -> tuple[int, Any]:
        """Who reacted with an emoji, by user id after `after` (`limit` 1-100, default 25); no reaction times."""
        channel = self._channel(params["channel_id"])
        if channel.type != DM:
            self._require(channel, READ_MESSAGE_HISTORY)
        msg = self._message(channel, params["message_id"])
        limit = int(query.get("limit", "25"))
        if not 1 <= limit <= 100:
            raise invalid_form(["limit: Must be between 1 and 100."])
        after = int(query.get("after", "0"))
        users = sorted(u for u in msg.reactions.get(unquote(params["emoji_name"]), []) if u > after)[:limit]
        return 200, [self.users[u].payload() for u in users]

    @_route("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me")
    async def add_reaction(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        channel = self._channel(params["channel_id"])
        if channel.type != DM:
            self._require(channel, ADD_REACTIONS | READ_MESSAGE_HISTORY)
        msg = self._message(channel, params["message_id"])
        users = msg.reactions.setdefault(params["emoji_name"], [])
        if self.bot_user.id not in users:
            users.append(self.bot_user.id)
        return 204, None

    @_route("GET", "/channels/{channel_id}/messages")
    async def list_messages(self, params: dict[str, str], query: Mapping[str, str], **_: Any) -> tuple[int, Any]:
        """The channel's latest messages, newest first (`limit` 1-100, default 50)."""
        channel = self._channel(params["channel_id"])
        if channel.type != DM:
            self._require(channel, READ_MESSAGE_HISTORY)
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 100:
            raise invalid_form(["limit: Must be between 1 and 100."])
        newest = sorted((m for m in channel.messages.values() if not m.ephemeral), key=lambda m: -m.id)
        return 200, [m.payload() for m in newest[:limit]]

    @_route("POST", "/users/@me/channels")
    async def open_dm(self, body: Any, **_: Any) -> tuple[int, Any]:
        recipient = self.users.get(int(body.get("recipient_id") or 0))
        if recipient is None:
            raise invalid_form(["recipient_id: Unknown user"])
        now = self.clock()
        self._dm_opens = [t for t in self._dm_opens if now - t < 60] + [now]
        if len(self._dm_opens) > self.dm_opens_per_minute:
            raise DiscordHTTPError(400, 40003, "You are opening direct messages too fast.")
        channel = self.dm_channels.get(recipient.id)
        if channel is None:
            channel = EmuChannel(self.snowflake(), DM, "", None, recipients=[recipient])
            self.dm_channels[recipient.id] = channel
        return 200, channel.payload()

    # ---- REST: scheduled events ------------------------------------------------------------------------
    async def tick_events(self) -> None:
        """External events start and end on their own at their scheduled times (as of `event_clock`), as on
        Discord; every event route runs this first, tests call it to let time pass."""
        now = self.event_clock()
        for event in self.events.values():
            if event.body.get("entity_type") != 3:
                continue
            before = event.status
            if event.status == 1 and datetime.fromisoformat(event.body["scheduled_start_time"]) <= now:
                event.status = 2
            end = event.body.get("scheduled_end_time")
            if event.status == 2 and end and datetime.fromisoformat(end) <= now:
                event.status = 3
            if event.status != before:
                await self.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", event.payload())

    def _own_event(self, params: dict[str, str]) -> EmuEvent:
        """The event, if the bot may edit it: Manage Events, or Create Events for an event it created."""
        self._check_app_guild(params)
        event = self.events.get(int(params["guild_scheduled_event_id"]))
        if event is None:
            raise DiscordHTTPError(404, 10070, "Unknown Guild Scheduled Event")
        held = self.base_permissions(self.bot_user)
        if not held & MANAGE_EVENTS and not (held & CREATE_EVENTS and event.creator_id == self.bot_user.id):
            raise DiscordHTTPError(403, 50013, "Missing Permissions")
        return event

    @_route("GET", "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}")
    async def get_event(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        await self.tick_events()
        event = self.events.get(int(params["guild_scheduled_event_id"]))
        if event is None:
            raise DiscordHTTPError(404, 10070, "Unknown Guild Scheduled Event")
        return 200, event.payload()

    @_route("DELETE", "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}")
    async def delete_event(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        await self.tick_events()
        event = self._own_event(params)
        del self.events[event.id]
        await self.dispatch("GUILD_SCHEDULED_EVENT_DELETE", event.payload())
        return 204, None

    @_route("POST", "/guilds/{guild_id}/scheduled-events")
    async def create_event(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        await self.tick_events()
        if not self.base_permissions(self.bot_user) & CREATE_EVENTS:  # since 2026-02-23 Manage Events is not enough
            raise DiscordHTTPError(403, 50013, "Missing Permissions")
        if sum(1 for e in self.events.values() if e.status in (1, 2)) >= 100:
            raise DiscordHTTPError(400, 30038, "Maximum number of guild scheduled events reached (100)")
        if body["entity_type"] == 3:
            if not (body.get("entity_metadata") or {}).get("location"):
                raise invalid_form(["entity_metadata.location: This field is required"])
            if not body.get("scheduled_end_time"):
                raise invalid_form(["scheduled_end_time: This field is required"])
        start = datetime.fromisoformat(body["scheduled_start_time"])
        if start.tzinfo is None or start < self.event_clock():
            raise invalid_form(["scheduled_start_time: Cannot schedule event in the past."])
        end = body.get("scheduled_end_time")
        if end and datetime.fromisoformat(end) <= start:
            raise invalid_form(["scheduled_end_time: End time must be after start time."])
        event = EmuEvent(self.snowflake(), self.guild_id, dict(body), creator_id=self.bot_user.id)
        self.events[event.id] = event
        await self.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event.payload())
        return 200, event.payload()

    @_route("PATCH", "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}")
    async def modify_event(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        """A finished event (completed or cancelled) cannot be updated at all (180000); an external event's only
        manual transition is SCHEDULED → CANCELED (it starts and ends on its own)."""
        await self.tick_events()
        event = self._own_event(params)
        if event.status in (3, 4):
            raise DiscordHTTPError(400, 180000, "Cannot update a finished event")
        if "status" in body and body["status"] is not None:
            external = event.body.get("entity_type") == 3
            allowed = ({1: {4}} if external else {1: {2, 4}, 2: {3}}).get(event.status, set())
            if int(body["status"]) not in allowed:
                raise invalid_form(["status: Invalid Guild Scheduled Event Status Transition"])
            event.status = int(body["status"])
        for key in ("name", "description", "scheduled_start_time", "scheduled_end_time", "entity_metadata"):
            if key in body:
                event.body[key] = body[key]
        await self.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", event.payload())
        return 200, event.payload()

    @_route("GET", "/guilds/{guild_id}/scheduled-events")
    async def list_events(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._check_app_guild(params)
        return 200, [e.payload() for e in self.events.values()]

    # ---- REST: interactions and their webhooks ---------------------------------------------------------
    def _live(self, inter: EmuInteraction | None, within: float) -> EmuInteraction:
        if inter is None or time.monotonic() - inter.created > within:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        return inter

    @_route("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
    async def interaction_callback(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        inter = self.interactions.get(int(params["interaction_id"]))
        if inter is None or inter.token != params["interaction_token"]:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        self._live(inter, self.interaction_deadline)
        if inter.callback_type is not None:
            raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
        kind = int(body["type"])
        data = dict(body.get("data") or {})
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}[inter.type]
        if kind not in allowed:
            raise DiscordHTTPError(400, 40043, "Interaction response type is not valid for this interaction")
        resource: dict[str, Any] = {"type": kind}
        if kind == 9:
            self._check_modal(data)
        elif kind in (4, 5):
            if kind == 5:
                data = {"flags": int(data.get("flags") or 0) | 128}
                msg = EmuMessage(
                    self.snowflake(), inter.channel.id, inter.channel.guild_id, self.bot_user,
                    flags=data["flags"], webhook_id=self.application_id,
                )  # fmt: skip
                inter.channel.messages[msg.id] = msg
            else:
                msg = self._new_message(inter.channel, data, webhook=True, kind=20 if inter.type == 2 else 0)
            inter.original = msg
            resource["message"] = msg.payload()
        elif kind in (6, 7):
            if inter.source_message is None:
                raise DiscordHTTPError(400, 40043, "Interaction response type is not valid here")
            inter.original = inter.source_message
            if kind == 7:
                self._edit(inter.source_message, data)
            resource["message"] = inter.source_message.payload()
        inter.callback_type, inter.callback_data = kind, data
        inter.answered.set()
        inter.changed.set()
        original = inter.original
        return 200, {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_id": str(original.id) if original else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(original and original.ephemeral),
            },
            "resource": resource,
        }

    def _check_modal(self, data: dict[str, Any]) -> None:
        errors = []
        if not 1 <= len(str(data.get("custom_id", ""))) <= 100:
            errors.append("data.custom_id: Must be between 1 and 100 in length.")
        if not 1 <= len(str(data.get("title", ""))) <= 45:
            errors.append("data.title: Must be between 1 and 45 in length.")
        comps = data.get("components") or []
        if not 1 <= len(comps) <= 5:
            errors.append("data.components: Must be between 1 and 5 in length.")
        for i, comp in enumerate(comps):
            if comp.get("type") == 18 and len(str(comp.get("label", ""))) > 45:
                errors.append(f"data.components.{i}.label: Must be 45 or fewer in length.")
            leaves = [*comp.get("components", []), *([comp["component"]] if "component" in comp else [])]
            for j, leaf in enumerate(c for c in leaves if c.get("type") == 4):
                errors += _text_input_problems(leaf, f"data.components.{i}.components.{j}")
        if errors:
            raise invalid_form(errors)

    def _webhook_interaction(self, params: dict[str, str]) -> EmuInteraction:
        if params["webhook_id"] != str(self.application_id):
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        inter = self._by_token.get(params["webhook_token"])
        if inter is None or time.monotonic() - inter.created > 15 * 60:
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        if inter.callback_type is None:
            raise DiscordHTTPError(400, 40060, "Interaction has not been acknowledged")
        return inter

    @_route("POST", "/webhooks/{webhook_id}/{webhook_token}")
    async def followup(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        """After a deferred response (type 5) the first follow-up becomes the "thinking…" message, which keeps
        its own ephemeral flag whatever the follow-up asks; later follow-ups are new messages."""
        inter = self._webhook_interaction(params)
        original = inter.original
        if inter.callback_type == 5 and original is not None and original.flags & 128:
            self._check_content(body)
            self._edit(original, body)
            inter.changed.set()
            return 200, original.payload()
        msg = self._new_message(inter.channel, body, webhook=True)
        inter.followups.append(msg)
        inter.changed.set()
        return 200, msg.payload()

    @_route("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
    async def get_original(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        inter = self._webhook_interaction(params)
        if inter.original is None:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return 200, inter.original.payload()

    @_route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
    async def edit_original(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        inter = self._webhook_interaction(params)
        if inter.original is None:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        self._edit(inter.original, body)
        inter.changed.set()
        return 200, inter.original.payload()

    @_route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def edit_followup(self, params: dict[str, str], body: Any, **_: Any) -> tuple[int, Any]:
        inter = self._webhook_interaction(params)
        msg = next((m for m in inter.followups if str(m.id) == params["message_id"]), None)
        if msg is None:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        self._edit(msg, body)
        inter.changed.set()
        return 200, msg.payload()


_EVENT_INTENTS: dict[str, int] = {
    "GUILD_CREATE": GUILDS,
    "CHANNEL_CREATE": GUILDS,
    "CHANNEL_UPDATE": GUILDS,
    "CHANNEL_DELETE": GUILDS,
    "MESSAGE_CREATE": GUILD_MESSAGES,
    "MESSAGE_UPDATE": GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": GUILD_MESSAGE_REACTIONS,
    "GUILD_SCHEDULED_EVENT_CREATE": GUILD_SCHEDULED_EVENTS,
    "GUILD_SCHEDULED_EVENT_UPDATE": GUILD_SCHEDULED_EVENTS,
    "GUILD_SCHEDULED_EVENT_DELETE": GUILD_SCHEDULED_EVENTS,
}

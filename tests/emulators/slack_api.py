"""A loopback Slack Web API emulator on aiohttp, strict enough that the real slack_sdk client can be trusted
against it: token checks, argument names checked against Slack's OpenAPI file, Slack's own error codes,
stateful channels/messages/views/reactions, and per-method tier rate limits answered with HTTP 429.

Rate limits are token buckets in *emulated* time: `time_scale=0.01` makes one emulated minute last 0.6 s of
wall time. Each bucket holds `burst` tokens (Slack tolerates short bursts) and refills at the tier's rate.
A refused call gets HTTP 429 with `Retry-After` in whole *wall* seconds:

    Retry-After = max(1, ceil(wait_emulated_seconds * time_scale))

so it is never shorter than the real wait (a client that honours it never retries early) and, at
`time_scale=1`, is exactly what Slack sends. slack_sdk's `AsyncRateLimitErrorRetryHandler` sleeps
`Retry-After + random()` seconds, i.e. at least 1 s of wall time per 429 whatever the scale: clients are
expected to pace themselves and treat a 429 as the exception. `rate_limited` counts the 429s sent.

What a real workspace refuses, the emulator refuses too (each rule has its own test in
tests/e2e/test_slack_emulator.py):

- a token carries scopes (by default the app manifest's bot scopes, as after an install from the manifest);
  a method called without its scope answers `missing_scope` with `needed` and `provided`;
- workspace settings (`policy`) may let only admins create channels, archive them or remove members:
  anyone else, the bot included, gets `restricted_action`;
- guests: a single-channel guest already in their channel cannot be invited elsewhere (`ura_max_channels`);
  a guest calling with their own user token gets `user_is_restricted`; deactivated users cannot be invited;
- plans: on the free plan (`plan="free"`) user groups answer `plan_upgrade_required`;
- a `response_url` takes 5 posts within 30 minutes, a `trigger_id` one `views.open` within 3 s;
- files (docs.slack.dev, files.getUploadURLExternal / files.completeUploadExternal; the 2020 OpenAPI file lacks
  both, so their arguments are checked against `DOCS_ARGS`): both need `files:write`; `length` is required and not
  0; a file larger than the workspace allows (`max_file_size`) answers `file_upload_size_restricted`; an upload
  URL takes one POST, of exactly `length` bytes; only a file whose bytes arrived can be completed, once; a file
  never completed is shared nowhere (`files_in` sees it only once completed).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.emulators.specs import SPECS_DIR

SPEC_FILE = SPECS_DIR / "slack_web_openapi_v2.json"
TIERS_FILE = SPECS_DIR / "slack_rate_limit_tiers.json"


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket's shape: refill rate in calls per emulated minute, and how many calls may burst."""

    per_minute: float
    burst: int


# The documented rates; burst sizes are this emulator's assumption (Slack documents bursts, not their size).
TIER_LIMITS: dict[str, Limit] = {
    "Tier1": Limit(1, 1),
    "Tier2": Limit(20, 4),
    "Tier3": Limit(50, 10),
    "Tier4": Limit(100, 20),
    "SpecialTier_auth_test": Limit(600, 100),
}
POST_MESSAGE_PER_CHANNEL = Limit(60, 3)  # "about 1 message per second per channel, short bursts allowed"

# Arguments newer than the 2020 OpenAPI file that slack_sdk legitimately sends.
NEWER_ARGS: dict[str, set[str]] = {
    "auth.test": {"team_id"},  # slack-bolt's single-team authorization sends it
    "conversations.create": {"team_id"},
    "conversations.invite": {"force"},
    "conversations.open": {"prevent_creation"},
    "conversations.members": {"team_id"},
    "conversations.info": {"team_id"},
    "conversations.history": {"include_all_metadata"},
    "chat.postMessage": {"metadata", "unfurl_links", "unfurl_media", "markdown_text"},
    "chat.update": {"metadata", "file_ids", "reply_broadcast", "markdown_text"},
    "chat.postEphemeral": {"markdown_text"},
    "views.open": {"interactivity_pointer"},
    "views.publish": set(),
    "usergroups.list": {"team_id"},
    "usergroups.users.list": {"team_id"},
}
# Arguments Slack rejects the call without, where the stale spec marks them optional.
REQUIRED_ARGS: dict[str, set[str]] = {
    "conversations.create": {"name"},
    "conversations.invite": {"channel", "users"},
    "conversations.kick": {"channel", "user"},
    "conversations.archive": {"channel"},
    "conversations.members": {"channel"},
    "conversations.info": {"channel"},
    "conversations.setTopic": {"channel", "topic"},
    "conversations.setPurpose": {"channel", "purpose"},
    "conversations.history": {"channel"},
    "users.info": {"user"},
    "views.open": {"view"},
}
MISSING_ARG_ERROR: dict[str, str] = {
    "channel": "channel_not_found",
    "user": "user_not_found",
    "users": "no_user",
    "name": "invalid_name_required",
    "ts": "message_not_found",
    "timestamp": "no_item_specified",
}
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]+$")

# The bot-token scope each method needs today (docs.slack.dev method pages; the 2020 OpenAPI file still names
# the legacy `channels:write`/`chat:write:bot`). A dict means "depends on the kind of conversation".
WRITE = {"public": "channels:manage", "private": "groups:write", "im": "im:write", "mpim": "mpim:write"}
READ = {"public": "channels:read", "private": "groups:read", "im": "im:read", "mpim": "mpim:read"}
HISTORY = {"public": "channels:history", "private": "groups:history", "im": "im:history", "mpim": "mpim:history"}
METHOD_SCOPES: dict[str, str | dict[str, str]] = {
    "auth.test": "",
    "conversations.create": WRITE,
    "conversations.invite": WRITE,
    "conversations.kick": WRITE,
    "conversations.archive": WRITE,
    "conversations.setTopic": WRITE,
    "conversations.setPurpose": WRITE,
    "conversations.open": WRITE,
    "conversations.members": READ,
    "conversations.info": READ,
    "conversations.list": READ,
    "conversations.history": HISTORY,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "views.open": "",
    "views.publish": "",
    "users.info": "users:read",
    "users.list": "users:read",
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
    "reactions.add": "reactions:write",
    "team.info": "team:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
# Methods newer than the OpenAPI file: (allowed arguments, required arguments) from their docs.slack.dev pages.
DOCS_ARGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "files.getUploadURLExternal": (
        frozenset({"filename", "length", "alt_txt", "snippet_type"}),
        frozenset({"filename", "length"}),
    ),
    "files.completeUploadExternal": (
        frozenset({"files", "channel_id", "channels", "initial_comment", "thread_ts", "blocks"}),
        frozenset({"files"}),
    ),
}
MAX_FILE_SIZE = 1024**3  # Slack's ceiling for one file: 1 GB
ALL_SCOPES = frozenset(
    scope
    for needed in METHOD_SCOPES.values()
    for scope in (needed.values() if isinstance(needed, dict) else [needed])
    if scope
)
LIST_TYPES = {"public_channel": "public", "private_channel": "private", "im": "im", "mpim": "mpim"}
# Methods a guest may not call with their own token.
GUEST_REFUSED = frozenset(
    {
        "conversations.create",
        "conversations.invite",
        "conversations.kick",
        "conversations.archive",
        "usergroups.list",
        "usergroups.users.list",
    }
)
PAID_ONLY = frozenset({"usergroups.list", "usergroups.users.list"})
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0


class SlackError(Exception):
    """Raised by a method handler: becomes `{"ok": false, "error": code}` with HTTP 200, as on Slack."""

    def __init__(self, code: str, messages: list[str] | None = None, **extra: str) -> None:
        super().__init__(code)
        self.code = code
        self.messages = messages or []
        self.extra = extra  # top-level fields next to `error`, e.g. `needed`/`provided` of `missing_scope`


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Europe/Paris"
    tz_offset: int = 3600
    is_restricted: bool = False  # a guest (multi- or single-channel)
    is_ultra_restricted: bool = False  # a single-channel guest
    is_admin: bool = False
    locale: str = "en-US"


@dataclass
class Token:
    """Who calls and with which scopes: the bot token, or a person's user token."""

    user: str
    scopes: set[str]


@dataclass
class Policy:
    """Workspace settings (Settings & Permissions → Channel management): who may do what to channels."""

    only_admins_create_channels: bool = False
    only_admins_archive_channels: bool = False
    only_admins_remove_members: bool = False


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    creator: str
    created: int
    members: list[str] = field(default_factory=list)
    is_archived: bool = False
    is_im: bool = False
    im_user: str = ""
    topic: str = ""
    purpose: str = ""


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edited: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)  # ids of the files this message shares


@dataclass
class File:
    """A file between files.getUploadURLExternal and files.completeUploadExternal (and after)."""

    id: str
    name: str
    length: int
    upload_path: str
    data: bytes | None = None  # the bytes once POSTed to the upload URL
    title: str = ""
    shared_in: str = ""  # the channel, once completed


@dataclass
class Ephemeral:
    channel: str
    user: str
    message_ts: str
    text: str
    blocks: list[dict[str, Any]]


@dataclass
class View:
    id: str
    type: str
    user: str
    view: dict[str, Any]
    hash: str


@dataclass
class Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class Call:
    """One request as the emulator saw it, whatever its outcome."""

    method: str
    args: dict[str, Any]
    status: int
    error: str | None
    at: float


@dataclass
class _Bucket:
    limit: Limit
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class _MethodSpec:
    params: frozenset[str]
    required: frozenset[str]


Handler = Callable[[dict[str, Any]], dict[str, Any]]
CallHook = Callable[[str, dict[str, Any]], Awaitable[None]]


def load_spec(path: Path = SPEC_FILE) -> dict[str, _MethodSpec]:
    """Argument names and required arguments of each method in Slack's (stale) OpenAPI 2.0 file."""
    raw = json.loads(path.read_text())
    out: dict[str, _MethodSpec] = {}
    for route, ops in raw["paths"].items():
        params: set[str] = set()
        required: set[str] = set()
        for op in ops.values():
            for p in op.get("parameters", []):
                if p["name"] == "token":
                    continue
                params.add(p["name"])
                if p.get("required"):
                    required.add(p["name"])
        out[route.lstrip("/")] = _MethodSpec(frozenset(params), frozenset(required))
    return out


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


def _as_json(value: Any, code: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise SlackError(code, [f"[ERROR] {exc}"]) from exc
    return value


def _plain_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def check_blocks(blocks: Any, max_blocks: int) -> list[str]:
    """Block Kit limits that Slack enforces; returns the problems found (empty when valid)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"missing block type [json-pointer:/blocks/{i}]")
            continue
        if len(str(block.get("block_id", ""))) > 255:
            problems.append(f"block_id too long [json-pointer:/blocks/{i}]")
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"section needs text or fields [json-pointer:/blocks/{i}]")
            if _plain_len(block.get("text")) > 3000:
                problems.append(f"must be less than 3001 characters [json-pointer:/blocks/{i}/text]")
        elif kind == "header" and _plain_len(block.get("text")) > 150:
            problems.append(f"must be less than 151 characters [json-pointer:/blocks/{i}/text]")
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 25:
                problems.append(f"actions hold 1 to 25 elements [json-pointer:/blocks/{i}/elements]")
            for j, el in enumerate(elements):
                problems += _check_element(el, f"/blocks/{i}/elements/{j}")
        elif kind == "input":
            if _plain_len(block.get("label")) > 2000 or "element" not in block:
                problems.append(f"input needs a label and an element [json-pointer:/blocks/{i}]")
            else:
                problems += _check_element(block["element"], f"/blocks/{i}/element")
    return problems


def _check_element(el: Any, where: str) -> list[str]:
    if not isinstance(el, dict):
        return [f"element must be an object [json-pointer:{where}]"]
    problems: list[str] = []
    if len(str(el.get("action_id", ""))) > 255:
        problems.append(f"action_id too long [json-pointer:{where}/action_id]")
    if el.get("type") == "button":
        if _plain_len(el.get("text")) > 75:
            problems.append(f"must be less than 76 characters [json-pointer:{where}/text]")
        if len(str(el.get("value", ""))) > 2000:
            problems.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
    if el.get("type") == "plain_text_input":  # Block Kit: max_length 1–3000, min_length 0–3000, placeholder ≤ 150
        maximum = int(el.get("max_length", 3000))
        if not 1 <= maximum <= 3000:
            problems.append(f"max_length must be between 1 and 3000 [json-pointer:{where}/max_length]")
        if not 0 <= int(el.get("min_length", 0)) <= 3000:
            problems.append(f"min_length must be between 0 and 3000 [json-pointer:{where}/min_length]")
        if len(str(el.get("initial_value", ""))) > maximum:
            problems.append(f"must be less than {maximum + 1} characters [json-pointer:{where}/initial_value]")
        if _plain_len(el.get("placeholder")) > 150:
            problems.append(f"must be less than 151 characters [json-pointer:{where}/placeholder]")
    options = el.get("options")
    if isinstance(options, list) and len(options) > 100:
        problems.append(f"no more than 100 items allowed [json-pointer:{where}/options]")
    return problems


def check_view(view: Any) -> list[str]:
    """Modal and App Home limits (title/submit/close ≤ 24, 1–100 blocks, metadata ≤ 3,000)."""
    if not isinstance(view, dict):
        return ["view must be an object"]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in {"modal", "home"}:
        problems.append("view type must be modal or home [json-pointer:/view/type]")
    if kind == "modal":
        if not 1 <= _plain_len(view.get("title")) <= 24:
            problems.append("title must be 1 to 24 characters [json-pointer:/view/title/text]")
        for key in ("submit", "close"):
            if key in view and _plain_len(view[key]) > 24:
                problems.append(f"must be less than 25 characters [json-pointer:/view/{key}/text]")
        if not view.get("blocks"):
            problems.append("a modal needs at least 1 block [json-pointer:/view/blocks]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    problems += check_blocks(view.get("blocks", []), 100)
    return problems


class SlackEmulator:
    """Async context manager serving `http://127.0.0.1:<port>/api/<method>` for the real slack_sdk client."""

    def __init__(
        self,
        *,
        token: str = "xoxb-emulated-token",
        team_id: str = "T0PEERBOT",
        team_name: str = "Peer Academy",
        time_scale: float = 1.0,
        rate_limits: bool = True,
        tier_limits: dict[str, Limit] | None = None,
        post_message_limit: Limit = POST_MESSAGE_PER_CHANNEL,
        trigger_ttl: float = 3.0,
        scopes: Iterable[str] | None = None,
        plan: str = "pro",
        policy: Policy | None = None,
        response_url_ttl: float = RESPONSE_URL_TTL,
        max_file_size: int = MAX_FILE_SIZE,
    ) -> None:
        self.max_file_size = max_file_size
        self.files: dict[str, File] = {}
        self._uploads: dict[str, str] = {}  # upload URL path → file id, until used
        self.token = token
        self.team_id = team_id
        self.team_name = team_name
        self.time_scale = time_scale
        self.rate_limits = rate_limits
        self.tier_limits = dict(tier_limits or TIER_LIMITS)
        self.post_message_limit = post_message_limit
        self.trigger_ttl = trigger_ttl
        self.plan = plan
        self.policy = policy or Policy()
        self.response_url_ttl = response_url_ttl
        self.spec = load_spec()
        self.tiers: dict[str, str] = json.loads(TIERS_FILE.read_text())
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, View] = {}
        self.usergroups: dict[str, tuple[str, list[str]]] = {}
        self.triggers: dict[str, Trigger] = {}
        self.calls: list[Call] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}  # response_url path -> payloads posted to it
        self.refused_hooks: list[tuple[str, str]] = []  # (path, reason) of response_url posts refused
        self._response_issued: dict[str, float] = {}
        self.rate_limited = 0
        self._failures: dict[str, list[int]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._ids = itertools.count(1)
        self._ts_counter = itertools.count(1)
        # Around each call that passed every check, awaited with (method, args): `before_call` before its effect,
        # `after_call` after it and before the answer leaves, so a system test can kill the calling process at
        # either point (sent but never told so included).
        self.before_call: CallHook | None = None
        self.after_call: CallHook | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.bot_user_id = self.seed_user("peerbot", is_bot=True, user_id="U0PEERBOT")
        self.bot_id = "B0PEERBOT"
        if scopes is None:
            from adapters.slack.manifest import bot_scopes  # installed from its manifest, as an admin would

            scopes = bot_scopes()
        self.tokens: dict[str, Token] = {token: Token(self.bot_user_id, set(scopes))}
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.kick": self._conversations_kick,
            "conversations.archive": self._conversations_archive,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.list": self._conversations_list,
            "conversations.history": self._conversations_history,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "team.info": self._team_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "reactions.add": self._reactions_add,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # ----------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> SlackEmulator:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/hooks/{kind}/{hook_id}", self._handle_hook)
        app.router.add_post("/upload/v1/{upload_id}", self._handle_upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------------------- seeding and inspection
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def seed_user(
        self,
        name: str,
        *,
        is_bot: bool = False,
        deleted: bool = False,
        user_id: str | None = None,
        real_name: str | None = None,
        tz: str = "Europe/Paris",
        guest: str = "",
        is_admin: bool = False,
        locale: str = "en-US",
    ) -> str:
        """A person (or bot); `guest` is `"multi"` or `"single"` for multi- and single-channel guests."""
        if guest not in {"", "multi", "single"}:
            raise ValueError(guest)
        uid = user_id or self._new_id("U")
        self.users[uid] = User(
            uid,
            name,
            real_name or name.title(),
            is_bot=is_bot,
            deleted=deleted,
            tz=tz,
            is_restricted=bool(guest),
            is_ultra_restricted=guest == "single",
            is_admin=is_admin,
            locale=locale,
        )
        return uid

    @property
    def scopes(self) -> set[str]:
        """The bot token's scopes (mutable: a test may grant or take one away)."""
        return self.tokens[self.token].scopes

    def user_token(self, user_id: str, scopes: Iterable[str] = ALL_SCOPES) -> str:
        """A user token (`xoxp-…`) acting as `user_id`: its guest and admin status apply to its calls."""
        self._user(user_id)
        token = f"xoxp-{user_id.lower()}-{next(self._ids)}"
        self.tokens[token] = Token(user_id, set(scopes))
        return token

    def seed_channel(
        self, name: str, members: list[str], *, is_private: bool = False, creator: str | None = None
    ) -> str:
        """A channel as if `creator` (the bot unless said otherwise) had made it."""
        cid = self._new_id("C")
        self.channels[cid] = Channel(
            cid, name, is_private, creator or self.bot_user_id, int(time.time()), members=list(dict.fromkeys(members))
        )
        self.messages[cid] = []
        return cid

    def seed_usergroup(self, handle: str, users: list[str]) -> str:
        gid = self._new_id("S")
        self.usergroups[gid] = (handle, list(users))
        return gid

    def new_trigger_id(self, user: str) -> str:
        """A trigger id as found in an interaction payload; valid once, for `trigger_ttl` wall seconds."""
        tid = f"{next(self._ids)}.{int(time.time())}.{next(self._ids):032x}"
        self.triggers[tid] = Trigger(user, time.monotonic())
        return tid

    def new_response_url(self, kind: str = "commands") -> str:
        """A `response_url` served by this emulator: usable 5 times, like Slack's."""
        path = f"/hooks/{kind}/{next(self._ids)}"
        self.responses[path] = []
        self._response_issued[path] = time.monotonic()
        return f"http://127.0.0.1:{self.port}{path}"

    def responses_to(self, response_url: str) -> list[dict[str, Any]]:
        return list(self.responses.get("/" + response_url.split("/", 3)[-1], []))

    async def _handle_hook(self, request: web.Request) -> web.Response:
        posted = self.responses.get(request.path)
        if posted is None:
            return web.Response(status=404, text="no_active_hooks")
        if time.monotonic() - self._response_issued[request.path] > self.response_url_ttl:
            self.refused_hooks.append((request.path, "expired_url"))
            return web.Response(status=404, text="expired_url")
        if len(posted) >= RESPONSE_URL_USES:
            self.refused_hooks.append((request.path, "used_url"))
            return web.Response(status=404, text="used_url")
        try:
            body = json.loads(await request.text())
        except json.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks") or body.get("delete_original")):
            return web.Response(status=400, text="no_text")
        posted.append(body)
        return web.Response(text="ok")

    def fail_next(self, method: str, *statuses: int) -> None:
        """Answer the next calls of `method` with these HTTP statuses (e.g. 503) before serving it again."""
        self._failures.setdefault(method, []).extend(statuses)

    def channel_named(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name), None)

    def history(self, channel: str) -> list[Message]:
        return list(self.messages.get(channel, []))

    def calls_of(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (not ok_only or c.error is None)]

    def limit_for(self, method: str) -> Limit:
        if method == "chat.postMessage":
            return self.post_message_limit
        return self.tier_limits.get(self.tiers.get(method, "Tier3"), self.tier_limits["Tier3"])

    # ---------------------------------------------------------------------------------------- transport
    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query)
        body_token: str | None = args.pop("token", None)
        if request.can_read_body:
            if request.content_type == "application/json":
                raw = await request.text()
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise SlackError("invalid_json") from exc
                if not isinstance(body, dict):
                    raise SlackError("json_not_object")
                body.pop("token", None)  # Slack ignores a token inside a JSON body: it must be a header
                args.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if key == "token":
                        body_token = str(value)
                    elif isinstance(value, str):
                        args[key] = value
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else body_token
        return args, token

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        now = time.monotonic()
        args: dict[str, Any] = {}
        headers: dict[str, str] = {}
        try:
            args, token = await self._read_args(request)
            failures = self._failures.get(method)
            if failures:
                status = failures.pop(0)
                self.calls.append(Call(method, args, status, "injected_failure", now))
                return web.json_response({"ok": False, "error": "fatal_error"}, status=status)
            if not token:
                raise SlackError("not_authed")
            caller = self.tokens.get(token)
            if caller is None:
                raise SlackError("invalid_auth")
            headers["x-oauth-scopes"] = ",".join(sorted(caller.scopes))  # as Slack adds to every answer
            handler = self._handlers.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            self._check_scope(method, args, caller)
            self._check_caller(method, caller)
            wait = self._take_token(method, args)
            if wait > 0:
                self.rate_limited += 1
                retry_after = max(1, math.ceil(wait))
                self.calls.append(Call(method, args, 429, "ratelimited", now))
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(retry_after)},
                )
            self._check_spec(method, args)
            if self.before_call is not None:
                await self.before_call(method, args)
            body = handler(args)
            if self.after_call is not None:
                await self.after_call(method, args)
        except SlackError as err:
            self.calls.append(Call(method, args, 200, err.code, now))
            payload: dict[str, Any] = {"ok": False, "error": err.code, **err.extra}
            if err.messages:
                payload["response_metadata"] = {"messages": err.messages}
            return web.json_response(payload, headers=headers)
        self.calls.append(Call(method, args, 200, None, now))
        return web.json_response({"ok": True, **body}, headers=headers)

    def _take_token(self, method: str, args: dict[str, Any]) -> float:
        """Spend one token of the method's bucket; returns 0, or the wall seconds until one is available."""
        if not self.rate_limits:
            return 0.0
        key = (method, str(args.get("channel", ""))) if method == "chat.postMessage" else (method, "")
        limit = self.limit_for(method)
        rate = limit.per_minute / 60.0 / self.time_scale  # tokens per wall second
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(limit, float(limit.burst), now)
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def _kinds(self, method: str, args: dict[str, Any]) -> list[str]:
        """The kinds of conversation a call is about, which decide its scope (public, private, im, mpim)."""
        if method == "conversations.create":
            return ["private" if _as_bool(args.get("is_private", False)) else "public"]
        if method == "conversations.list":
            types = str(args.get("types") or "public_channel").split(",")
            return [LIST_TYPES[t.strip()] for t in types if t.strip() in LIST_TYPES]
        if method == "conversations.open":
            return ["im" if "," not in str(args.get("users", "")) else "mpim"]
        cid = str(args.get("channel") or "")
        if cid.startswith("U"):
            return ["im"]
        channel = self.channels.get(cid)
        if channel is None:
            return []  # the method's own check answers channel_not_found
        return ["im" if channel.is_im else "private" if channel.is_private else "public"]

    def _check_scope(self, method: str, args: dict[str, Any], caller: Token) -> None:
        """`missing_scope` naming the scope needed and the ones the token has, like Slack."""
        needed = METHOD_SCOPES.get(method, "")
        wanted = [needed[kind] for kind in self._kinds(method, args)] if isinstance(needed, dict) else [needed]
        for scope in wanted:
            if scope and scope not in caller.scopes:
                raise SlackError("missing_scope", needed=scope, provided=",".join(sorted(caller.scopes)))

    def _check_caller(self, method: str, caller: Token) -> None:
        """What the caller's own status forbids: guests managing channels, user groups on a free plan."""
        person = self.users[caller.user]
        if method in GUEST_REFUSED and person.is_restricted:
            raise SlackError("user_is_restricted")
        if method in PAID_ONLY and self.plan == "free":
            raise SlackError("plan_upgrade_required")
        policy = self.policy
        admin_only = {
            "conversations.create": policy.only_admins_create_channels,
            "conversations.archive": policy.only_admins_archive_channels,
            "conversations.kick": policy.only_admins_remove_members,
        }
        if admin_only.get(method) and not person.is_admin:
            raise SlackError("restricted_action")

    def _check_spec(self, method: str, args: dict[str, Any]) -> None:
        spec = self.spec.get(method)
        if spec is None:
            self._check_docs_args(method, args)
            return
        allowed = spec.params | NEWER_ARGS.get(method, set())
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise SlackError("invalid_arguments", [f"[ERROR] unknown argument: {name}" for name in unknown])
        required = spec.required | REQUIRED_ARGS.get(method, set())
        missing = sorted(name for name in required if args.get(name) in (None, ""))
        if missing:
            name = missing[0]
            raise SlackError(
                MISSING_ARG_ERROR.get(name, "invalid_arguments"), [f"[ERROR] missing required field: {name}"]
            )

    def _check_docs_args(self, method: str, args: dict[str, Any]) -> None:
        """The arguments of a method newer than the OpenAPI file, as its docs page lists them."""
        if method not in DOCS_ARGS:
            return
        allowed, required = DOCS_ARGS[method]
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise SlackError("invalid_arguments", [f"[ERROR] unknown argument: {name}" for name in unknown])
        missing = sorted(name for name in required if args.get(name) in (None, ""))
        if missing:
            raise SlackError("invalid_arguments", [f"[ERROR] missing required field: {missing[0]}"])

    # ----------------------------------------------------------------------------------------- helpers
    def _user(self, uid: str) -> User:
        user = self.users.get(uid)
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _channel(self, cid: str, *, visible_only: bool = True) -> Channel:
        channel = self.channels.get(cid)
        if channel is None:
            raise SlackError("channel_not_found")
        if visible_only and channel.is_private and self.bot_user_id not in channel.members:
            raise SlackError("channel_not_found")  # a private channel is invisible to a non-member
        return channel

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts_counter):06d}"

    def _channel_json(self, c: Channel, *, num_members: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": c.id,
            "created": c.created,
            "creator": c.creator,
            "is_archived": c.is_archived,
            "is_im": c.is_im,
            "context_team_id": self.team_id,
        }
        if c.is_im:
            out["user"] = c.im_user
        else:
            out |= {
                "name": c.name,
                "is_channel": True,
                "is_private": c.is_private,
                "is_member": self.bot_user_id in c.members,
                "topic": {"value": c.topic, "creator": "", "last_set": 0},
                "purpose": {"value": c.purpose, "creator": "", "last_set": 0},
            }
        if num_members:
            out["num_members"] = len(c.members)
        return out

    def _message_content(self, args: dict[str, Any], max_blocks: int = 50) -> tuple[str, list[dict[str, Any]]]:
        text = str(args.get("text", ""))
        blocks = _as_json(args.get("blocks", []), "invalid_blocks_format") or []
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if len(text) > 40000:
            raise SlackError("msg_too_long")
        problems = check_blocks(blocks, max_blocks)
        if problems:
            raise SlackError("invalid_blocks", problems)
        return text, blocks

    def _writable(self, cid: str) -> Channel:
        if cid.startswith("U"):
            return self._open_im(cid)
        channel = self._channel(cid)
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _channels_of(self, uid: str) -> list[Channel]:
        return [c for c in self.channels.values() if not c.is_im and not c.is_archived and uid in c.members]

    def _open_im(self, uid: str) -> Channel:
        user = self._user(uid)
        if user.deleted:
            raise SlackError("user_disabled")
        if user.is_bot:
            raise SlackError("cannot_dm_bot")
        for c in self.channels.values():
            if c.is_im and c.im_user == uid:
                return c
        cid = self._new_id("D")
        members = [self.bot_user_id, uid]
        self.channels[cid] = Channel(
            cid, "", True, self.bot_user_id, int(time.time()), members, is_im=True, im_user=uid
        )
        self.messages[cid] = []
        return self.channels[cid]

    def _find_message(self, cid: str, ts: str) -> Message:
        for msg in self.messages.get(cid, []):
            if msg.ts == ts:
                return msg
        raise SlackError("message_not_found")

    # ------------------------------------------------------------------------------------------ methods
    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://peer-academy.slack.com/",
            "team": self.team_name,
            "user": "peerbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args["name"])
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not CHANNEL_NAME_RE.match(name):
            raise SlackError("invalid_name_specials")
        if not re.search(r"[a-z0-9]", name):
            raise SlackError("invalid_name_punctuation")
        if any(c.name == name for c in self.channels.values() if not c.is_im):
            raise SlackError("name_taken")
        cid = self.seed_channel(name, [self.bot_user_id], is_private=_as_bool(args.get("is_private", False)))
        return {"channel": self._channel_json(self.channels[cid])}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(str(args["channel"]))
        users = [u.strip() for u in str(args["users"]).split(",") if u.strip()]
        if not users:
            raise SlackError("no_user")
        if len(users) > 1000:
            raise SlackError("too_many_users")
        force = _as_bool(args.get("force", False))
        fresh: list[str] = []
        for uid in users:
            user = self._user(uid)
            if uid == self.bot_user_id:
                raise SlackError("cant_invite_self")
            if user.deleted:
                raise SlackError("cant_invite")
            if uid in channel.members:
                if not force:
                    raise SlackError("already_in_channel")
                continue
            if user.is_ultra_restricted and self._channels_of(uid):
                raise SlackError("ura_max_channels")  # a single-channel guest already has their channel
            fresh.append(uid)
        channel.members.extend(u for u in dict.fromkeys(fresh))
        return {"channel": self._channel_json(channel)}

    def _conversations_kick(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        uid = str(args["user"])
        self._user(uid)
        if uid == self.bot_user_id:
            raise SlackError("cant_kick_self")
        if uid not in channel.members:
            raise SlackError("not_in_channel")
        channel.members.remove(uid)
        return {}

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("already_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        channel.is_archived = True
        return {}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise SlackError("invalid_limit")
        cursor = str(args.get("cursor") or "")
        start = int(cursor.removeprefix("off_")) if cursor else 0
        page = channel.members[start : start + limit]
        next_cursor = f"off_{start + limit}" if start + limit < len(channel.members) else ""
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            channel = self._channel(str(args["channel"]))
            return {"channel": self._channel_json(channel)}
        users = [u.strip() for u in str(args.get("users", "")).split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("method_not_supported_for_channel_type", ["group DMs are not emulated"])
        channel = self._open_im(users[0])
        full = _as_bool(args.get("return_im"))
        return {"channel": self._channel_json(channel) if full else {"id": channel.id}}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        return {"channel": self._channel_json(channel, num_members=_as_bool(args.get("include_num_members")))}

    def _conversations_set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(str(args["channel"]))
        topic = str(args["topic"])
        if len(topic) > 250:
            raise SlackError("too_long")
        channel.topic = topic
        return {"channel": self._channel_json(channel)}

    def _conversations_set_purpose(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(str(args["channel"]))
        purpose = str(args["purpose"])
        if len(purpose) > 250:
            raise SlackError("too_long")
        channel.purpose = purpose
        return {"channel": self._channel_json(channel)}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Channels of the requested `types` (default public_channel) the token can see: every public
        channel, and only the private channels, IMs the bot is a member of; paged by `cursor`."""
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",") if t.strip()}
        if not types or types - {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackError("invalid_types")
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise SlackError("invalid_limit")
        exclude_archived = _as_bool(args.get("exclude_archived", False))
        listed = []
        for c in self.channels.values():
            kind = "im" if c.is_im else "private_channel" if c.is_private else "public_channel"
            if kind not in types or (exclude_archived and c.is_archived):
                continue
            if kind != "public_channel" and self.bot_user_id not in c.members:
                continue
            listed.append(c)
        cursor = str(args.get("cursor") or "")
        if cursor and not re.fullmatch(r"off_\d+", cursor):
            raise SlackError("invalid_cursor")
        start = int(cursor.removeprefix("off_")) if cursor else 0
        page = listed[start : start + limit]
        next_cursor = f"off_{start + limit}" if start + limit < len(listed) else ""
        return {
            "channels": [self._channel_json(c, num_members=True) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        limit = int(args.get("limit") or 100)
        with_metadata = _as_bool(args.get("include_all_metadata", False))
        newest_first = sorted(self.messages[channel.id], key=lambda m: float(m.ts), reverse=True)
        cursor = str(args.get("cursor") or "")
        start = int(cursor.removeprefix("off_")) if cursor else 0
        page = newest_first[start : start + limit]
        out = []
        for m in page:
            item: dict[str, Any] = {"type": "message", "user": m.user, "text": m.text, "ts": m.ts}
            if m.blocks:
                item["blocks"] = m.blocks
            if with_metadata and m.metadata is not None:
                item["metadata"] = m.metadata
            out.append(item)
        more = start + limit < len(newest_first)
        return {
            "messages": out,
            "has_more": more,
            "response_metadata": {"next_cursor": f"off_{start + limit}" if more else ""},
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(str(args["channel"]))
        text, blocks = self._message_content(args)
        thread_ts = args.get("thread_ts")
        if thread_ts:
            self._find_message(channel.id, str(thread_ts))
        metadata = _as_json(args.get("metadata"), "invalid_metadata_format") if args.get("metadata") else None
        if metadata is not None and not (isinstance(metadata, dict) and metadata.get("event_type")):
            raise SlackError("invalid_metadata_schema")
        msg = Message(channel.id, self._next_ts(), self.bot_user_id, text, blocks, thread_ts=thread_ts)
        msg.metadata = metadata
        self.messages[channel.id].append(msg)
        return {
            "channel": channel.id,
            "ts": msg.ts,
            "message": {
                "type": "message",
                "user": msg.user,
                "bot_id": self.bot_id,
                "text": text,
                "ts": msg.ts,
                "blocks": blocks,
            },
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.is_archived:
            raise SlackError("is_archived")
        msg = self._find_message(channel.id, str(args["ts"]))
        if msg.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        if "text" in args or "blocks" in args:
            msg.text, msg.blocks = self._message_content(args)
        msg.edited = True
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._writable(str(args["channel"]))
        uid = str(args["user"])
        self._user(uid)
        if uid not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._message_content(args)
        eph = Ephemeral(channel.id, uid, self._next_ts(), text, blocks)
        self.ephemerals.append(eph)
        return {"message_ts": eph.message_ts}

    # ----------------------------------------------------------------------------------------------- files
    def files_in(self, channel: str) -> list[File]:
        """The files shared in a channel (completed there), oldest first."""
        return [self.files[fid] for m in self.messages.get(channel, []) for fid in m.files]

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(str(args["length"]))
        except ValueError:
            raise SlackError("invalid_arguments", ["[ERROR] length must be an integer"]) from None
        if length <= 0:
            raise SlackError("missing_argument")  # docs: "typically only occurs when the length provided is 0"
        if length > self.max_file_size:
            raise SlackError("file_upload_size_restricted")
        file_id = self._new_id("F")
        path = f"/upload/v1/{secrets.token_hex(8)}"
        self.files[file_id] = File(file_id, str(args["filename"]), length, path)
        self._uploads[path] = file_id
        return {"upload_url": f"http://127.0.0.1:{self.port}{path}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL: one POST of exactly the announced length (raw bytes or a multipart `file` part)."""
        file_id = self._uploads.pop(request.path, None)
        if file_id is None:
            return web.Response(status=404, text="upload_url_not_found")  # unknown or already used
        upload = self.files[file_id]
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if isinstance(part, web.FileField) else b""
        else:
            data = await request.read()
        if len(data) != upload.length:
            return web.Response(status=400, text=f"length_mismatch: announced {upload.length}, got {len(data)}")
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        listed = _as_json(args["files"], "invalid_arguments")
        if not isinstance(listed, list) or not listed or not all(isinstance(f, dict) and f.get("id") for f in listed):
            raise SlackError("invalid_arguments", ["[ERROR] files must be a non-empty array of {id, title}"])
        files = []
        for item in listed:
            found = self.files.get(str(item["id"]))
            if found is None or found.data is None:
                raise SlackError("file_not_found")  # never uploaded: its bytes never reached the upload URL
            if found.shared_in:
                raise SlackError("file_already_completed")
            files.append((found, str(item.get("title") or found.name)))
        channel_id = str(args.get("channel_id") or "")
        comment = str(args.get("initial_comment") or "")
        if len(comment) > 40000:
            raise SlackError("msg_too_long")
        if channel_id:
            channel = self._writable(channel_id)
            msg = Message(channel.id, self._next_ts(), self.bot_user_id, comment, [])
            msg.files = [f.id for f, _title in files]
            self.messages[channel.id].append(msg)
        for found, title in files:
            found.title, found.shared_in = title, channel_id or "(private)"
        return {"files": [{"id": f.id, "title": title, "name": f.name, "size": f.length} for f, title in files]}

    def _stored_view(self, view: dict[str, Any], user: str, kind: str, vid: str | None = None) -> View:
        view_id = vid or self._new_id("V")
        stored = View(view_id, kind, user, view, f"{int(time.time())}.{next(self._ids)}")
        return stored

    def _view_json(self, v: View) -> dict[str, Any]:
        return {**v.view, "id": v.id, "team_id": self.team_id, "hash": v.hash, "state": {"values": {}}}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        tid = str(args.get("trigger_id") or args.get("interactivity_pointer") or "")
        view = _as_json(args["view"], "invalid_arguments")
        trigger = self.triggers.get(tid)
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        problems = check_view(view)
        if problems or view.get("type") != "modal":
            raise SlackError("invalid_arguments", problems or ["views.open needs a modal"])
        trigger.used = True
        stored = self._stored_view(view, trigger.user, "modal")
        self.views[stored.id] = stored
        return {"view": self._view_json(stored)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        uid = str(args["user_id"])
        self._user(uid)
        view = _as_json(args["view"], "invalid_arguments")
        problems = check_view(view)
        if problems or view.get("type") != "home":
            raise SlackError("invalid_arguments", problems or ["views.publish needs a home view"])
        old = self.home_views.get(uid)
        if args.get("hash") and old is not None and args["hash"] != old.hash:
            raise SlackError("hash_conflict")
        stored = self._stored_view(view, uid, "home", old.id if old else None)
        self.home_views[uid] = stored
        return {"view": self._view_json(stored)}

    def _user_json(self, u: User, *, locale: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": u.id,
            "team_id": self.team_id,
            "name": u.name,
            "real_name": u.real_name,
            "deleted": u.deleted,
            "is_bot": u.is_bot,
            "is_admin": u.is_admin,
            "is_restricted": u.is_restricted,
            "is_ultra_restricted": u.is_ultra_restricted,
            "tz": u.tz,
            "tz_offset": u.tz_offset,
            "profile": {"real_name": u.real_name, "display_name": u.name},
        }
        if locale:
            out["locale"] = u.locale
        return out

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        limit = int(args.get("limit") or 0) or len(self.users) or 1
        if limit < 1:
            raise SlackError("invalid_limit")
        cursor = str(args.get("cursor") or "")
        if cursor and not re.fullmatch(r"off_\d+", cursor):
            raise SlackError("invalid_cursor")
        everyone = list(self.users.values())
        start = int(cursor.removeprefix("off_")) if cursor else 0
        page = everyone[start : start + limit]
        next_cursor = f"off_{start + limit}" if start + limit < len(everyone) else ""
        with_locale = _as_bool(args.get("include_locale", False))
        return {
            "members": [self._user_json(u, locale=with_locale) for u in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _team_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"team": {"id": self.team_id, "name": self.team_name, "plan": "" if self.plan == "free" else self.plan}}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        u = self._user(str(args["user"]))
        return {"user": self._user_json(u, locale=_as_bool(args.get("include_locale", False)))}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        with_users = _as_bool(args.get("include_users", False))
        groups = []
        for gid, (handle, users) in self.usergroups.items():
            group: dict[str, Any] = {"id": gid, "team_id": self.team_id, "handle": handle, "name": handle}
            if with_users:
                group["users"] = list(users)
            if _as_bool(args.get("include_count", False)):
                group["user_count"] = len(users)
            groups.append(group)
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args["usergroup"]))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group[1])}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        msg = self._find_message(channel.id, str(args["timestamp"]))
        name = str(args["name"]).strip(":")
        if not re.fullmatch(r"[a-z0-9_+'-]+", name):
            raise SlackError("invalid_name")
        users = msg.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackError("already_reacted")
        users.append(self.bot_user_id)
        return {}

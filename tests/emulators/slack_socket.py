"""Slack's Socket Mode on loopback, for the real slack_sdk / slack-bolt Socket Mode client.

`SlackSocketEmulator` is the Web API emulator plus the two things Socket Mode adds:

- `apps.connections.open`, which only an app-level token (`xapp-…`) may call, and which hands out a
  single-use `ws://` URL (`/link/?ticket=…&app_id=…`, on a second loopback port: on Slack too the socket
  lives on another host than the Web API);
- that websocket: `{"type": "hello", …}` on connect, pongs to the client's pings, envelopes
  `{"envelope_id", "type", "payload", "accepts_response_payload"}` (plus `retry_attempt` / `retry_reason`
  for `events_api`), the client's ack `{"envelope_id", "payload"?}` returned to the test, and the two ways
  Slack ends a connection: a `{"type": "disconnect"}` message, or dropping the socket.

`SocketModeDriver` sends what Slack would send over that socket, with the payload shapes `SlackDriver`
builds for HTTP (a Socket Mode payload is the HTTP body, parsed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.emulators.slack_api import Call, SlackEmulator, SlackError
from tests.emulators.slack_driver import SlackDriver

APP_TOKEN = "xapp-1-A0PEERBOT-1-emulated"
OPEN = "apps.connections.open"


class AckTimeout(AssertionError):
    """The app did not acknowledge an envelope in time (on Slack: the user sees an error, events are retried)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """The client's answer to one envelope, and how long it took (wall seconds)."""

    envelope_id: str
    payload: dict[str, Any] | None
    elapsed: float
    connection: int

    @property
    def text(self) -> str:
        return str((self.payload or {}).get("text", ""))


@dataclass
class Connection:
    """One websocket as the emulator saw it."""

    id: int
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float
    pings: int = 0
    envelopes: int = 0
    closed_by: str = ""  # "" while open, then "server" or "client"

    @property
    def live(self) -> bool:
        return not self.closed_by and not self.ws.closed


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    sent_at: float
    connection: int


class SlackSocketEmulator(SlackEmulator):
    """Async context manager: the Web API on `base_url`, Socket Mode on `ws://127.0.0.1:<ws_port>/link/`."""

    def __init__(
        self,
        *,
        app_token: str = APP_TOKEN,
        app_id: str = "A0PEERBOT",
        ack_timeout: float = 3.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app_token = app_token
        self.app_id = app_id
        self.ack_timeout = ack_timeout
        self.tickets: dict[str, bool] = {}  # ticket -> used
        self.connections: list[Connection] = []
        self.acks: list[Ack] = []
        self.stray_messages: list[str] = []  # texts from the client that ack no pending envelope
        self.refused_links = 0
        self._pending: dict[str, _Pending] = {}
        self._conn_ids = itertools.count(1)
        self._ws_runner: web.AppRunner | None = None
        self.ws_port = 0

    # ----------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> SlackSocketEmulator:
        await super().__aenter__()
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._ws_runner = web.AppRunner(app, access_log=None)
        await self._ws_runner.setup()
        await web.TCPSite(self._ws_runner, "127.0.0.1", 0).start()
        self.ws_port = int(self._ws_runner.addresses[0][1])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for conn in self.connections:
            if conn.live:
                conn.closed_by = "server"
                await conn.ws.close(code=WSCloseCode.GOING_AWAY)
        if self._ws_runner is not None:
            await self._ws_runner.cleanup()
            self._ws_runner = None
        await super().__aexit__(exc_type, exc, tb)

    # --------------------------------------------------------------------------------- apps.connections.open
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["method"] != OPEN:
            return await super()._handle(request)
        now = time.monotonic()
        args: dict[str, Any] = {}
        try:
            args, token = await self._read_args(request)
            if not token:
                raise SlackError("not_authed")
            if not token.startswith("xapp-"):
                raise SlackError("not_allowed_token_type")  # what Slack answers a bot or user token
            if token != self.app_token:
                raise SlackError("invalid_auth")
            wait = self._take_token(OPEN, args)  # Tier 1, like the real method
            if wait > 0:
                self.rate_limited += 1
                self.calls.append(Call(OPEN, args, 429, "ratelimited", now))
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        except SlackError as err:
            self.calls.append(Call(OPEN, args, 200, err.code, now))
            return web.json_response({"ok": False, "error": err.code})
        ticket = uuid.uuid4().hex
        self.tickets[ticket] = False
        self.calls.append(Call(OPEN, args, 200, None, now))
        return web.json_response(
            {"ok": True, "url": f"ws://127.0.0.1:{self.ws_port}/link/?ticket={ticket}&app_id={self.app_id}"}
        )

    # ----------------------------------------------------------------------------------------- websocket
    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self.tickets.get(ticket) is not False:  # unknown or already used: Slack's URLs are single-use
            self.refused_links += 1
            return web.Response(status=401, text="invalid_ticket")
        self.tickets[ticket] = True
        ws = web.WebSocketResponse(autoping=False)  # pings are answered below, and counted
        await ws.prepare(request)
        conn = Connection(next(self._conn_ids), ticket, ws, time.monotonic())
        self.connections.append(conn)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": sum(1 for c in self.connections if c.live),
                    "debug_info": {
                        "host": "applink-emulator",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        async for msg in ws:
            if msg.type == WSMsgType.PING:
                conn.pings += 1
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                self._on_text(conn, str(msg.data))
        if not conn.closed_by:
            conn.closed_by = "client"
        return ws

    def _on_text(self, conn: Connection, raw: str) -> None:
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            self.stray_messages.append(raw)
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        pending = self._pending.get(envelope_id) if isinstance(envelope_id, str) else None
        if pending is None or pending.future.done():
            self.stray_messages.append(raw)
            return
        pending.future.set_result(message)

    # ------------------------------------------------------------------------------------------ control
    @property
    def live(self) -> list[Connection]:
        return [c for c in self.connections if c.live]

    async def wait_connected(self, count: int = 1, *, within: float = 5.0) -> Connection:
        """Wait until `count` connections have been opened in all and one is live; returns the newest live."""
        deadline = time.monotonic() + within
        while True:
            live = self.live
            if len(self.connections) >= count and live:
                return live[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no live Socket Mode connection #{count} (seen {len(self.connections)})")
            await asyncio.sleep(0.01)

    async def drop(self) -> None:
        """Close every live socket from the server side, as when Slack restarts a link host."""
        for conn in self.live:
            conn.closed_by = "server"
            await conn.ws.close(code=WSCloseCode.GOING_AWAY)

    async def send_disconnect(self, reason: str = "refresh_requested") -> Connection:
        """Ask the client to move to a new connection (Slack sends this before a scheduled refresh)."""
        conn = await self.wait_connected()
        await conn.ws.send_str(
            json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}})
        )
        return conn

    async def deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        ack_within: float | None = None,
    ) -> Ack:
        """Send one envelope on the newest live connection and wait for the client's ack."""
        conn = await self.wait_connected()
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        self._pending[envelope_id] = _Pending(future, started, conn.id)
        try:
            await conn.ws.send_str(json.dumps(envelope))
            conn.envelopes += 1
            message = await asyncio.wait_for(future, self.ack_timeout if ack_within is None else ack_within)
        except TimeoutError as exc:
            raise AckTimeout(f"{kind} envelope {envelope_id} was not acknowledged") from exc
        finally:
            self._pending.pop(envelope_id, None)
        extra = set(message) - {"envelope_id", "payload"}
        assert not extra, f"unexpected keys in the ack: {sorted(extra)}"
        ack_payload = message.get("payload")
        assert ack_payload is None or isinstance(ack_payload, dict), ack_payload
        ack = Ack(envelope_id, ack_payload, time.perf_counter() - started, conn.id)
        self.acks.append(ack)
        return ack


@dataclass
class SocketModeDriver:
    """What Slack sends an app in Socket Mode: the HTTP payload shapes, as envelopes on the socket."""

    emulator: SlackSocketEmulator
    shapes: SlackDriver = field(init=False)

    def __post_init__(self) -> None:
        self.shapes = SlackDriver("", "", emulator=self.emulator)  # used to build payloads, never to send

    async def slash_command(
        self, user_id: str, text: str, *, command: str = "/peer", channel_id: str = "C0GENERAL"
    ) -> tuple[Ack, dict[str, str]]:
        """Returns the ack and the payload sent (its `response_url` and `trigger_id` are the emulator's)."""
        payload = self.shapes.slash_command_body(user_id, text, command=command, channel_id=channel_id)
        return await self.emulator.deliver("slash_commands", payload, accepts_response_payload=True), payload

    async def block_action(self, user_id: str, action_id: str, **kw: Any) -> tuple[Ack, dict[str, Any]]:
        payload = self.shapes.block_action_payload(user_id, action_id, **kw)
        return await self.emulator.deliver("interactive", payload, accepts_response_payload=False), payload

    async def view_submission(self, user_id: str, view: dict[str, Any], values: dict[str, str]) -> Ack:
        payload = self.shapes.view_submission_payload(user_id, view, values)
        return await self.emulator.deliver("interactive", payload, accepts_response_payload=True)

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> tuple[Ack, str]:
        """Returns the ack and the `event_id` (send it again with `retry_attempt` to play Slack's retry)."""
        payload = self.shapes.event_envelope(event, event_id=event_id)
        ack = await self.emulator.deliver(
            "events_api",
            payload,
            accepts_response_payload=False,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        return ack, str(payload["event_id"])

    async def reaction_added(self, user_id: str, reaction: str, channel_id: str, ts: str, **kw: Any) -> tuple[Ack, str]:
        event = {
            "type": "reaction_added",
            "user": user_id,
            "reaction": reaction,
            "item_user": self.emulator.bot_user_id,
            "item": {"type": "message", "channel": channel_id, "ts": ts},
            "event_ts": f"{time.time():.6f}",
        }
        return await self.event(event, **kw)

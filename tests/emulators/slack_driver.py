"""Plays Slack's side of an app's Request URL: signed slash commands, interactivity payloads and Events API
envelopes, shaped like the ones slack-bolt parses, posted to `<app>/slack/events`.

Signing is Slack's v0 scheme: `v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}"))` in
`X-Slack-Signature`, with the timestamp in `X-Slack-Request-Timestamp`.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from tests.emulators.slack_api import SlackEmulator


@dataclass(frozen=True, slots=True)
class DriverResponse:
    status: int
    text: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class SlackDriver:
    """Sends what Slack would send; pass the emulator so trigger ids and response URLs are real ones."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        emulator: SlackEmulator | None = None,
        team_id: str = "T0PEERBOT",
        team_domain: str = "peer-academy",
        api_app_id: str = "A0PEERBOT",
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.emulator = emulator
        self.team_id = emulator.team_id if emulator else team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self._session: aiohttp.ClientSession | None = None
        self._seq = itertools.count(1)

    async def __aenter__(self) -> SlackDriver:
        # No cap on connections: Slack sends a burst over as many connections as it needs, and a client-side
        # queue would be counted as the app's latency.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------------------------------ transport
    def sign(self, body: str, timestamp: int) -> str:
        return str(SignatureVerifier(self.signing_secret).generate_signature(timestamp=str(timestamp), body=body))

    async def send(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> DriverResponse:
        """Post a raw body; `timestamp`/`signature` override the honest ones to test rejection."""
        assert self._session is not None, "use the driver as an async context manager"
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else self.sign(body, ts),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        started = time.perf_counter()
        async with self._session.post(self.url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
        return DriverResponse(resp.status, text, time.perf_counter() - started)

    def _trigger_id(self, user_id: str) -> str:
        if self.emulator is not None:
            return self.emulator.new_trigger_id(user_id)
        return f"{next(self._seq)}.{int(time.time())}.unregistered"

    def _response_url(self, kind: str) -> str:
        if self.emulator is not None:
            return self.emulator.new_response_url(kind)
        return f"http://127.0.0.1:9/hooks/{kind}/{next(self._seq)}"

    def _user(self, user_id: str) -> dict[str, str]:
        name = user_id.lower()
        if self.emulator is not None and user_id in self.emulator.users:
            name = self.emulator.users[user_id].name
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    # ---------------------------------------------------------------------------------------- commands
    def slash_command_body(
        self, user_id: str, text: str, *, command: str = "/peer", channel_id: str = "C0GENERAL"
    ) -> dict[str, str]:
        user = self._user(user_id)
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user["name"],
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands"),
            "trigger_id": self._trigger_id(user_id),
        }

    async def send_form(self, form: dict[str, str], **kw: Any) -> DriverResponse:
        """Post a slash command body built beforehand with `slash_command_body` (bursts build them first)."""
        return await self.send(urlencode(form), "application/x-www-form-urlencoded", **kw)

    async def slash_command(
        self, user_id: str, text: str, *, command: str = "/peer", channel_id: str = "C0GENERAL", **kw: Any
    ) -> tuple[DriverResponse, dict[str, str]]:
        """Returns the app's answer and the form sent (its `response_url` and `trigger_id` are real)."""
        form = self.slash_command_body(user_id, text, command=command, channel_id=channel_id)
        resp = await self.send(urlencode(form), "application/x-www-form-urlencoded", **kw)
        return resp, form

    # ------------------------------------------------------------------------------------ interactivity
    async def _interactive(self, payload: dict[str, Any], **kw: Any) -> DriverResponse:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.send(body, "application/x-www-form-urlencoded", **kw)

    def block_action_payload(
        self,
        user_id: str,
        action_id: str,
        *,
        value: str = "",
        channel_id: str | None = None,
        message_ts: str | None = None,
        view: dict[str, Any] | None = None,
        block_id: str = "actions",
    ) -> dict[str, Any]:
        """A button click in a message (give channel and ts) or in a view such as App Home (give `view`)."""
        action = {
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": "Button", "emoji": True},
            "value": value,
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "trigger_id": self._trigger_id(user_id),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "actions": [action],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "")}
            payload["view"] = view
        else:
            cid = channel_id or "C0GENERAL"
            ts = message_ts or f"{int(time.time())}.000100"
            payload["container"] = {
                "type": "message",
                "message_ts": ts,
                "channel_id": cid,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": cid, "name": "channel"}
            payload["message"] = {"type": "message", "ts": ts, "text": "", "blocks": []}
            payload["response_url"] = self._response_url("actions")
        return payload

    async def block_action(self, user_id: str, action_id: str, **kw: Any) -> DriverResponse:
        send_kw = {k: kw.pop(k) for k in ("timestamp", "signature", "retry_num") if k in kw}
        return await self._interactive(self.block_action_payload(user_id, action_id, **kw), **send_kw)

    @staticmethod
    def view_state(view: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
        """`state.values` for a modal's input blocks, from plain values keyed by block_id."""
        state: dict[str, dict[str, Any]] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input" or block.get("block_id") not in values:
                continue
            element = block["element"]
            raw = values[block["block_id"]]
            kind = element["type"]
            entry: dict[str, Any] = {"type": kind}
            if kind == "plain_text_input":
                entry["value"] = raw
            elif kind in {"radio_buttons", "static_select"}:
                option = next(o for o in element["options"] if o["value"] == raw)
                entry["selected_option"] = option
            else:
                raise ValueError(f"element type {kind} not emulated")
            state[block["block_id"]] = {element["action_id"]: entry}
        return {"values": state}

    def view_submission_payload(self, user_id: str, view: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
        submitted = {
            "id": view.get("id", "V0UNKNOWN"),
            "team_id": self.team_id,
            "type": "modal",
            "app_id": self.api_app_id,
            "bot_id": "B0PEERBOT",
            "root_view_id": view.get("id", "V0UNKNOWN"),
            "previous_view_id": None,
            "hash": view.get("hash", "1.1"),
            "clear_on_close": False,
            "notify_on_close": False,
            "external_id": "",
            **{k: v for k, v in view.items() if k not in {"id", "hash", "state"}},
            "state": self.view_state(view, values),
        }
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "trigger_id": self._trigger_id(user_id),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    async def view_submission(
        self, user_id: str, view: dict[str, Any], values: dict[str, str], **kw: Any
    ) -> DriverResponse:
        return await self._interactive(self.view_submission_payload(user_id, view, values), **kw)

    # ---------------------------------------------------------------------------------------- events
    def event_envelope(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        bot_user = self.emulator.bot_user_id if self.emulator else "U0PEERBOT"
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._seq):010d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": bot_user,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, **kw: Any
    ) -> tuple[DriverResponse, str]:
        """Returns the answer and the `event_id` (resend it with `retry_num` to emulate a retry)."""
        envelope = self.event_envelope(event, event_id=event_id)
        resp = await self.send(json.dumps(envelope), "application/json", **kw)
        return resp, str(envelope["event_id"])

    async def reaction_added(
        self, user_id: str, reaction: str, channel_id: str, ts: str, **kw: Any
    ) -> tuple[DriverResponse, str]:
        item_user = self.emulator.bot_user_id if self.emulator else "U0PEERBOT"
        event = {
            "type": "reaction_added",
            "user": user_id,
            "reaction": reaction,
            "item_user": item_user,
            "item": {"type": "message", "channel": channel_id, "ts": ts},
            "event_ts": f"{time.time():.6f}",
        }
        return await self.event(event, **kw)

    async def app_home_opened(self, user_id: str, **kw: Any) -> tuple[DriverResponse, str]:
        event = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        return await self.event(event, **kw)

"""The Slack adapter as `bot.app` starts it: Socket Mode when SLACK_APP_TOKEN is set, else HTTP mode (POST
/slack/events for commands, interactivity and events). `peerbot run` mounts that route on the composition root's
server (beside /healthz, /readyz and /metrics); started without `mount`, the runner serves it on a server of its
own (with a GET /healthz), as the adapter's tests use it."""

from __future__ import annotations

import logging
import time

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError

from adapters.slack.app import SeenEvents, SlackBot, TrainerDirectory
from adapters.slack.platform import PLATFORM, SlackPlatform
from bot.inbound import CoreAPI
from bot.metrics import Metrics
from bot.settings import ConfigError, Settings

log = logging.getLogger(__name__)

# apps.connections.open errors that no retry will cure: the app-level token itself is wrong.
BAD_APP_TOKEN = frozenset(
    {"not_authed", "invalid_auth", "not_allowed_token_type", "token_revoked", "token_expired", "account_inactive"}
)

TIMESTAMP, SIGNATURE = "X-Slack-Request-Timestamp", "X-Slack-Signature"


class SlackRunner:
    """Owns the Slack connections; `platform` is what the core registers as `platforms["slack"]`."""

    name = "slack"

    def __init__(
        self,
        core: CoreAPI,
        settings: Settings,
        *,
        time_scale: float = 1.0,
        port: int | None = None,
        ack_budget: float = 2.0,
        seen: SeenEvents | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: where the ack latency and the Web API calls are counted (the process's one)."""
        if not settings.slack_enabled or settings.slack_bot_token is None:
            raise ValueError("Slack needs SLACK_BOT_TOKEN, and SLACK_SIGNING_SECRET unless SLACK_APP_TOKEN is set")
        self.settings = settings
        self.metrics = metrics or Metrics(enabled=False)
        self.platform = SlackPlatform.connect(
            settings.slack_bot_token.get_secret_value(),
            settings.slack_api_url,
            time_scale=time_scale,
            observe=lambda method, status: self.metrics.api_call("slack", method, status),
        )
        trainers = TrainerDirectory(self.platform, settings.trainer_ids, settings.slack_trainer_group)
        self.bot = SlackBot(
            core,
            self.platform,
            # Socket Mode requests are not signed; in HTTP mode an empty secret would refuse everything.
            signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
            trainers=trainers,
            ack_budget=ack_budget,
            locale=settings.locale,
            seen=seen,
            metrics=self.metrics,
        )
        self.host = settings.http_host
        self.port = settings.http_port if port is None else port
        self._web: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._mounted = False
        self._serving = False

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/slack/events", self._events)
        app.router.add_get("/healthz", self._healthz)
        return app

    def mount(self, app: web.Application) -> None:
        """Serve POST /slack/events on `app` (the composition root's server) instead of a server of its own."""
        app.router.add_post("/slack/events", self._events)
        self._mounted = True

    async def ready(self) -> bool:
        """Socket Mode: the WebSocket is up. HTTP mode: the route is being served."""
        if self._socket is not None:
            return bool(await self._socket.client.is_connected())
        return self._serving

    async def _events(self, request: web.Request) -> web.Response:
        """A signed button click is acked here at once (`SlackBot.quick_ack`); everything else goes to Bolt."""
        started = time.perf_counter()
        body = await request.text()
        headers = request.headers
        if self.bot.quick_ack(body, headers.get(TIMESTAMP, ""), headers.get(SIGNATURE, "")):
            self.metrics.ack(PLATFORM, "action", time.perf_counter() - started)
            return web.Response(text="")
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=headers)  # type: ignore[arg-type]
        return await to_aiohttp_response(await self.bot.bolt.async_dispatch(bolt_request))

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "platform": "slack"})

    async def start(self) -> None:
        await self.bot.warm_up()
        await self.bot.keep_promises()
        await self.bot.check_trainer_group()
        app_token = self.settings.slack_app_token
        if app_token is not None and app_token.get_secret_value():
            handler = AsyncSocketModeHandler(self.bot.bolt, app_token.get_secret_value())
            # slack_sdk's connect() retries a refused token every 10 s forever, so `peerbot run` would never
            # finish starting (nor start the scheduler): fetch the first URL here and fail fast on a bad token.
            try:
                handler.client.wss_uri = await handler.client.issue_new_wss_url()
            except SlackApiError as exc:
                code = str(exc.response.get("error", ""))
                if code in BAD_APP_TOKEN:
                    await handler.close_async()  # type: ignore[no-untyped-call]
                    raise ConfigError(
                        f"Slack refused SLACK_APP_TOKEN ({code}): it must be the app-level token (xapp-…) "
                        "with the connections:write scope"
                    ) from exc
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass  # Slack unreachable for now: connect() below keeps retrying, as it always did
            self._socket = handler
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack: connected in Socket Mode")
            return
        self._serving = True
        if self._mounted:
            log.info("Slack: serving POST /slack/events (HTTP mode)")
            return
        self._web = web.AppRunner(self.web_app(), access_log=None)
        await self._web.setup()
        await web.TCPSite(self._web, self.host, self.port).start()
        self.port = int(self._web.addresses[0][1])
        log.info("Slack: listening on http://%s:%d/slack/events", self.host, self.port)

    async def stop(self) -> None:
        self._serving = False
        await self.bot.drain()
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        await self.platform.close()

"""The slack-bolt app: Slack payload → core call (`CoreAPI`) → neutral reply → Block Kit answer. No business rule.

Slack wants an answer within 3 s. Commands and form submissions go through `adapters.common.answer`: the
core's reply goes in the ack when it comes within `ack_budget`; otherwise the ack says "working on it" and
the reply replaces that message later through the command's `response_url` (progress shown in that one
message), or comes as a DM for a form. Button clicks are acked at once: over HTTP before Bolt sees them
(`SlackBot.quick_ack`, signature and timestamp checked first), since a click's ack is empty anyway. Events
are acked by Bolt; a redelivered event (same `event_id`, e.g. with `X-Slack-Retry-Num`) is acknowledged and
not processed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import unquote_plus

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters import common
from adapters.slack import render
from adapters.slack.manifest import bot_scopes
from adapters.slack.platform import PLATFORM, SlackPlatform
from bot.i18n import t
from bot.inbound import Actor, CoreAPI
from bot.messages import Message, Reply, Section
from bot.metrics import Metrics
from bot.port import PlatformError
from bot.refs import ChannelRef, MessageRef, UserRef

log = logging.getLogger(__name__)

ANY = re.compile(r".+")
PAYLOAD = "payload="
CLICK_HEAD = re.compile(r'\s*\{\s*"type"\s*:\s*"block_actions"\s*[,}]')  # a click payload's head, as Slack sends it
WORKING = "⏳ Working on `/peer {text}`…"
RESPONSE_URL_LIFE = timedelta(minutes=29)  # Slack: 30 minutes; a minute of margin for clocks and queues
MAX_PROGRESS_UPDATES = 3  # a response_url takes 5 posts: leave room for the final answer


# Codes meaning the trainer group cannot be read on this workspace as configured: re-asked rarely.
GROUP_UNAVAILABLE = frozenset({"plan_upgrade_required", "missing_scope", "no_such_subteam", "not_allowed_token_type"})


class TrainerDirectory:
    """Who is a trainer: listed in SLACK_TRAINER_IDS, or a member of SLACK_TRAINER_GROUP.

    Reading a user group costs two Tier 2 calls (20/min), and on a free plan it fails with
    `plan_upgrade_required`. So the answer never waits for Slack: `is_trainer` reads the ids and the group as
    last read; a stale list (or a remembered failure) is refreshed by a background task, never before an ack.
    `refresh()` is awaited once at start-up, where a failure is reported to the admins.
    """

    def __init__(
        self,
        platform: SlackPlatform,
        ids: frozenset[str],
        group: str = "",
        *,
        ttl: float = 300.0,
        failure_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.ids = ids
        self.group = group.strip()
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.clock = clock
        self.failure = ""  # the error code of the last read, "" when it worked
        self._members: set[str] = set()
        self._fetched = float("-inf")
        self._task: asyncio.Task[str] | None = None

    def is_trainer(self, user_id: str) -> bool:
        """Never waits and never calls Slack on the caller's path."""
        if user_id in self.ids:
            return True
        if not self.group:
            return False
        self._refresh_if_stale()
        return user_id in self._members

    def _refresh_if_stale(self) -> None:
        ttl = self.failure_ttl if self.failure in GROUP_UNAVAILABLE else self.ttl
        if self.clock() - self._fetched <= ttl or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.ensure_future(self.refresh())

    async def refresh(self) -> str:
        """Read the group now; keeps the last known list on failure (trainers are not locked out by a blip).

        Returns the failure code, or "" when the group was read. Never raises."""
        if not self.group:
            return ""
        try:
            self._members = await self.platform.usergroup_members(self.group)
        except PlatformError as exc:
            if exc.code != self.failure:
                log.warning("could not read user group %s: %s", self.group, exc)
            self.failure = exc.code
        except Exception:  # a background task must not die with an unretrieved exception
            log.exception("could not read user group %s", self.group)
            self.failure = "unexpected_error"
        else:
            self.failure = ""
        self._fetched = self.clock()
        return self.failure

    async def settled(self) -> None:
        """Wait for a background refresh in flight (tests, shutdown)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class Profiles:
    """Display names and languages, learned from Slack *after* the ack.

    A payload already carries the person's username: enough to answer. `users.info` is Tier 4 and paced, so
    calling it before an ack (or before `views.open`, whose trigger_id lives 3 s) makes a burst of 500 clicks
    queue behind it. Here one background worker resolves the people seen: one by one with `users.info` when
    they are few, by `users.list` pages (Tier 2, 200 people per call, every profile of the page kept) when a
    burst brings `bulk` or more within a minute. A profile is kept `ttl`; a failure is remembered for as long, so a
    broken profile never costs a call per click.
    """

    def __init__(
        self,
        platform: SlackPlatform,
        *,
        ttl: float = 24 * 3600.0,
        size: int = 50_000,
        bulk: int = 20,
        clock: Callable[[], float] = time.monotonic,
        yield_to: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.platform = platform
        self.yield_to = yield_to  # awaited before each read: acks first
        self.ttl = ttl
        self.size = size
        self.bulk = bulk
        self.clock = clock
        self._known: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # id → (name, locale, when)
        self._queue: dict[str, None] = {}
        self._worker: asyncio.Task[None] | None = None
        self._singles: list[float] = []  # when the last users.info calls were made
        self.coalesce = 0.2
        self.max_pages = 25

    def name(self, user_id: str, fallback: str) -> str:
        known = self._known.get(user_id)
        return (known[0] if known and known[0] else "") or fallback or user_id

    def locale(self, user_id: str) -> str:
        """`en`/`fr`… from Slack's `en-US`/`fr-FR`, "" while unknown (the core then uses its default)."""
        known = self._known.get(user_id)
        return known[1] if known else ""

    def wanted(self, user_id: str) -> bool:
        known = self._known.get(user_id)
        stale = known is None or self.clock() - known[2] > self.ttl
        return stale and user_id not in self._queue

    def want(self, user_id: str) -> asyncio.Task[None] | None:
        """Queue a person; returns the worker task when a new one had to be started."""
        if not self.wanted(user_id):
            return None
        self._queue[user_id] = None
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())
            return self._worker
        return None

    async def _work(self) -> None:
        while self._queue:
            await asyncio.sleep(self.coalesce)  # let a burst queue up: it then costs a few pages, not a call each
            if self.yield_to is not None:
                await self.yield_to()
            try:
                recent = [when for when in self._singles if self.clock() - when < 60.0]
                self._singles = recent
                if len(self._queue) + len(recent) >= self.bulk:  # a burst of new people: read pages
                    await self._from_pages()
                else:
                    user_id = next(iter(self._queue))
                    self._singles.append(self.clock())
                    try:
                        self._keep(await self.platform.user_info(user_id, locale=True))
                    except PlatformError as exc:
                        log.info("could not read the profile of %s: %s", user_id, exc)
                        self._remember(user_id, "", "")
            except Exception:  # a failed page: those waiting keep the payload's name until the next try
                log.exception("could not read Slack profiles")
                for user_id in list(self._queue):
                    self._remember(user_id, "", "")

    async def _from_pages(self) -> None:
        cursor = ""
        for _page in range(self.max_pages):  # 25 pages = 5,000 people, about a minute and a quarter at Tier 2
            members, cursor = await self.platform.users_page(cursor, locale=True)
            for info in members:
                self._keep(info)
            if not cursor or not self._queue:
                break
        for user_id in list(self._queue):  # not found in the pages read: the payload's name serves for `ttl`
            self._remember(user_id, "", "")

    def _keep(self, info: dict[str, Any]) -> None:
        profile = info.get("profile") or {}
        name = str(profile.get("display_name") or info.get("real_name") or "")
        self._remember(str(info.get("id", "")), name, str(info.get("locale") or "").split("-")[0])

    def _remember(self, user_id: str, name: str, locale: str) -> None:
        self._queue.pop(user_id, None)
        self._known[user_id] = (name, locale, self.clock())
        self._known.move_to_end(user_id)
        if len(self._known) > self.size:
            self._known.popitem(last=False)


class AckFirst:
    """Work that can wait yields to requests that still wait for their ack.

    On one event loop every ready task gets its turn: when 500 clicks arrive at once, the core work of the
    first ones (database transactions, replies) would interleave with the signature checks and routing of
    the others, and every ack would come late. So a request counts as *arriving* from Bolt's dispatch until
    its listener has acked it (clicks) or taken it in hand (commands and forms, whose ack may carry the
    reply); work behind an ack first waits until nothing is arriving, at most `max_wait` seconds so a steady
    stream of requests never starves it.
    """

    def __init__(self, max_wait: float = 1.0, calm: float = 0.05) -> None:
        self.max_wait = max_wait
        self.calm = calm  # a burst comes in waves: work waits for this long without a new arrival
        self.arriving = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._last_arrival = float("-inf")
        self._current: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("arrival", default=None)

    def arrive(self) -> list[bool]:
        """Count one request in; the returned flag is shared with its listener through the context."""
        flag = [True]
        self._current.set(flag)
        self.arriving += 1
        self._last_arrival = time.monotonic()
        self._quiet.clear()
        return flag

    def passed(self) -> None:
        """A request was acked as it arrived (`SlackBot.quick_ack`): it only restarts the `calm` wait."""
        self._last_arrival = time.monotonic()

    def settle(self, flag: list[bool] | None = None) -> None:
        """The request reached the point where its ack no longer waits on the loop (idempotent)."""
        flag = flag if flag is not None else self._current.get()
        if flag is None or not flag[0]:
            return
        flag[0] = False
        self.arriving -= 1
        if self.arriving == 0:
            self._quiet.set()

    async def turn(self) -> None:
        """Wait until no request is arriving and none came for `calm` seconds (at most `max_wait`)."""
        deadline = time.monotonic() + self.max_wait
        while (left := deadline - time.monotonic()) > 0:
            if self.arriving:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), left)
                continue
            since = time.monotonic() - self._last_arrival
            if since >= self.calm:
                return
            await asyncio.sleep(min(self.calm - since, left))


class _App(AsyncApp):
    """Bolt's app, counting each request in `AckFirst` from dispatch (HTTP and Socket Mode alike), and timing
    it: dispatch returns when the listener acks, so that time is the ack latency (signature check included)."""

    gate: AckFirst
    metrics: Metrics

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        started = time.perf_counter()
        flag = self.gate.arrive()
        try:
            return await super().async_dispatch(req)
        finally:
            self.gate.settle(flag)
            self.metrics.ack(PLATFORM, request_kind(req.body), time.perf_counter() - started)


REQUEST_KINDS = {
    "block_actions": "action",
    "view_submission": "form",
    "view_closed": "form",
    "block_suggestion": "suggestion",
    "event_callback": "event",
}


def request_kind(body: dict[str, Any]) -> str:
    """A Slack request's kind for the ack-latency label: command, action, form, suggestion, event or other."""
    if "command" in body:
        return "command"
    return REQUEST_KINDS.get(str(body.get("type", "")), "other")


class SeenEvents(Protocol):
    """Which event ids were handled, so Slack's redeliveries are acknowledged without being run again.
    `peerbot run` keeps them in the database (`storage.seen_events`) so that every replica knows them."""

    async def first_time(self, event_id: str) -> bool: ...


class RecentEvents:
    """The last `size` event ids in memory: enough for one process (the adapter's own tests)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    async def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


async def _awaited(task: asyncio.Task[None]) -> None:
    await task


def reply_payload(reply: Reply) -> dict[str, Any]:
    """A reply as a Slack message payload (for ack, respond or chat.postEphemeral)."""
    message = reply.message or Message(reply.text)
    if reply.message is not None and reply.text and reply.text != reply.message.text:
        message = Message(reply.text, message.sections, message.buttons)
    return {
        "text": render.fallback_text(message),
        "blocks": render.message_blocks(message),
        "response_type": "in_channel" if reply.public else "ephemeral",
    }


def notice_view(title: str, text: str) -> dict[str, Any]:
    """What a modal turns into after a successful submission: the core's confirmation."""
    return {
        "type": "modal",
        "title": render.plain(title, render.MAX_VIEW_TITLE),
        "close": render.plain("Close", render.MAX_VIEW_TITLE),
        "blocks": render.message_blocks(Message(text or "✅"), limit=render.MAX_VIEW_BLOCKS),
    }


class SlackBot:
    """Builds the Bolt `AsyncApp` around the core's inbound API and a `SlackPlatform`."""

    def __init__(
        self,
        core: CoreAPI,
        platform: SlackPlatform,
        *,
        signing_secret: str,
        trainers: TrainerDirectory,
        ack_budget: float = 2.0,
        progress_every: float = 20.0,
        locale: str = "en",
        seen: SeenEvents | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.core = core
        self.platform = platform
        self.trainers = trainers
        self.gate = AckFirst()
        self.profiles = Profiles(platform, yield_to=self.gate.turn)
        self.locale = locale  # the workspace's default language (PEERBOT_LOCALE), for adapter notices
        self.ack_budget = ack_budget
        self.progress_every = progress_every
        self.seen: SeenEvents = seen if seen is not None else RecentEvents()
        self._background: set[asyncio.Task[None]] = set()
        self.bolt = _App(
            client=platform.client,
            signing_secret=signing_secret,
            process_before_response=False,
            ignoring_self_events_enabled=True,
        )
        self.bolt.gate = self.gate
        self.bolt.metrics = metrics or Metrics(enabled=False)
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._authorized = False
        self._clicks: list[str] = []  # bodies of the clicks acked by `quick_ack`, not yet taken in hand
        self._click_worker: asyncio.Task[None] | None = None
        self.bolt.middleware(self._skip_redeliveries)
        self.bolt.command(re.compile(r"^/peer"))(self._on_command)
        self.bolt.action(ANY)(self._on_action)
        self.bolt.view(ANY)(self._on_view)
        self.bolt.event("reaction_added")(self._on_reaction)
        self.bolt.event("app_home_opened")(self._on_home_opened)

    # -------------------------------------------------------------------------------------- plumbing
    async def _skip_redeliveries(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and not await self.seen.first_time(event_id):
            log.info("event %s already handled; acknowledging the redelivery", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    def actor(self, user_id: str, fallback_name: str, team_id: str) -> Actor:
        """Who acts, from the payload and what is cached: no Slack call here, since it runs before the ack.

        The ids configured in SLACK_TRAINER_IDS administer every cohort; the user group's members train theirs.
        Call `learn_profile` once acknowledged to refresh the cached display name and language."""
        return Actor(
            UserRef(PLATFORM, user_id),
            self.profiles.name(user_id, fallback_name),
            self.trainers.is_trainer(user_id),
            team_id,
            locale=self.profiles.locale(user_id),
            is_admin=user_id in self.trainers.ids,
        )

    def learn_profile(self, user_id: str) -> None:
        """After the ack: fetch the person's profile in the background if it is unknown or old."""
        worker = self.profiles.want(user_id)
        if worker is not None:
            self._spawn(_awaited(worker))

    async def tell(self, channel_id: str | None, user: UserRef, message: Message) -> None:
        """A private notice: ephemeral in the channel, else a DM (someone not in the channel gets
        `user_not_in_channel`); a notice nobody could receive is logged, never dropped silently."""
        if channel_id:
            try:
                await self.platform.post_ephemeral(channel_id, user.id, message)
                return
            except PlatformError as exc:
                log.info("ephemeral to %s in %s refused (%s); sending a DM", user.id, channel_id, exc.code)
        try:
            await self.platform.send_dm(user, message)
        except PlatformError as exc:
            log.warning("could not reach %s at all (%s): %s", user.id, exc.code, message.text)

    async def _after_acks(self, work: Awaitable[Reply]) -> Reply:
        await self.gate.turn()
        return await work

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` as a task `drain()` waits for (Bolt does not track a listener that outlives its ack)."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def drain(self) -> None:
        """Wait for the handlers still at work, also after their ack (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self.trainers.settled()

    def quick_ack(self, body: str, timestamp: str, signature: str) -> bool:
        """HTTP mode: True when `body` is a signed button click, which is then acked at once (empty 200).

        A click's ack is empty whatever the click does, yet through Bolt it costs a request object, the
        middleware chain, listener matching and Bolt's 10 ms polling for the ack: 500 clicks queued on one
        loop then wait ~0.5 s for the last ack. So here only the signature and timestamp are checked and the
        payload's head is read (Slack puts `"type":"block_actions"` first; a payload that does not goes
        through Bolt); parsing the rest and the click's work come after the acks (`_take_clicks`). Anything
        else, a bad signature included, returns False and goes through Bolt, which refuses it (401) or routes it.
        """
        if self._verifier is None or not body.startswith(PAYLOAD) or "&" in body or not self._token_checked():
            return False
        if not self._verifier.is_valid(body, timestamp, signature):
            return False
        if not CLICK_HEAD.match(unquote_plus(body[len(PAYLOAD) : len(PAYLOAD) + 64])):
            return False
        self.gate.passed()
        self._clicks.append(body)
        if self._click_worker is None or self._click_worker.done():
            self._click_worker = self._spawn(self._take_clicks())
        return True

    def _token_checked(self) -> bool:
        """Bolt's authorization has its auth.test answer (see `warm_up`); until then clicks go through Bolt,
        whose middleware makes that call and answers a broken token with its own notice."""
        if not self._authorized:
            self._authorized = any(
                isinstance(middleware, AsyncSingleTeamAuthorization) and bool(middleware.auth_test_result)
                for middleware in getattr(self.bolt, "_async_middleware_list", [])
            )
        return self._authorized

    async def _take_clicks(self) -> None:
        """The clicks `quick_ack` answered, once no request waits for its ack: each goes to `_run_action`, as
        `_on_action` would take it. One worker rather than a task per click, so the acks share the loop with none."""
        while self._clicks:
            await self.gate.turn()
            clicks, self._clicks = self._clicks, []
            for body in clicks:
                try:
                    payload = json.loads(unquote_plus(body[len(PAYLOAD) :]))
                    action, user_id = payload["actions"][0], payload["user"]["id"]
                    if not (isinstance(action["action_id"], str) and ANY.search(action["action_id"]) and user_id):
                        raise ValueError("no action id or user")
                except (ValueError, LookupError, TypeError) as exc:  # Bolt would have no listener for it either
                    log.warning("an acked Slack click had no action to run (%s): ignored", exc)
                    continue
                self._spawn(self._handle_acked_action(payload, action, str(user_id)))

    async def _handle_acked_action(self, body: dict[str, Any], action: dict[str, Any], user_id: str) -> None:
        """A click `quick_ack` answered, run as Bolt would run `_on_action` after its ack: the ack is sent, so
        a failure here is logged (as Bolt would), and never stops the other clicks."""
        try:
            self.learn_profile(user_id)
            client = self.platform.client
            respond = AsyncRespond(response_url=body.get("response_url"), proxy=client.proxy, ssl=client.ssl)
            await self._run_action(body, action, respond)  # `_take_clicks` already waited for the gate
        except Exception:
            log.exception("Slack click %s failed after its ack", action.get("action_id"))

    # -------------------------------------------------------------------------------------- handlers
    async def _on_command(
        self,
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        self.gate.settle()
        await self._spawn(self._answer_command(ack, command, respond))

    async def _answer_command(
        self,
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        text = str(command.get("text", "")).strip()
        actor = self.actor(command["user_id"], command.get("user_name", ""), command.get("team_id", ""))
        channel = ChannelRef(PLATFORM, command["channel_id"]) if command.get("channel_id") else None
        working = WORKING.format(text=render.clip(text, 200))
        updates = 0

        async def in_ack(reply: Reply) -> None:
            if reply.form is not None:
                await self._open_form(command.get("trigger_id", ""), reply, actor, channel)
                await ack()
            else:
                await ack(**reply_payload(reply))

        pending_id: int | None = None

        async def working_on_it() -> None:
            nonlocal pending_id
            await ack(text=working, response_type="ephemeral")
            if command.get("response_url"):  # a promise a crash must not break: kept in the database
                try:
                    pending_id = await self.core.remember_pending(
                        PLATFORM, actor.user.id, text, str(command["response_url"]), RESPONSE_URL_LIFE
                    )
                except Exception:
                    log.exception("could not record the pending answer to /peer %s", text)

        async def still_working(elapsed: float) -> None:
            nonlocal updates
            if updates < MAX_PROGRESS_UPDATES:
                updates += 1
                try:
                    await respond(text=f"{working} ({int(elapsed)} s so far)", replace_original=True)
                except Exception as exc:  # progress is a courtesy: the final answer still comes
                    log.info("progress update failed: %s", exc)

        async def replace_working(reply: Reply) -> None:
            try:
                sent = await respond(**reply_payload(reply), replace_original=True)
                if getattr(sent, "status_code", 200) != 200:  # used 5 times or older than 30 minutes: by DM
                    log.info("response_url refused the reply (%s); sending it by DM", getattr(sent, "body", ""))
                    await self.tell(None, actor.user, reply.message or Message(reply.text))
            finally:
                if pending_id is not None:
                    await self.core.forget_pending(pending_id)

        await common.answer(
            self._after_acks(self.core.handle_command(actor, text, channel)),
            budget=self.ack_budget,
            ack_now=in_ack,
            defer=working_on_it,
            follow_up=replace_working,
            progress=still_working,
            progress_every=self.progress_every,
            what="Slack command",
        )
        self.learn_profile(actor.user.id)

    async def _open_form(self, trigger_id: str, reply: Reply, actor: Actor, channel: ChannelRef | None) -> None:
        assert reply.form is not None
        try:
            await self.platform.open_form(trigger_id, reply.form, private_metadata=channel.id if channel else "")
        except PlatformError as exc:
            log.warning("could not open form %s: %s", reply.form.form_id, exc)
            locale = actor.locale or self.locale
            notice = Message(t(locale, "That took too long to open. Please click again."))
            await self.tell(channel.id if channel else None, actor.user, notice)

    async def _on_action(
        self,
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        self._spawn(self._handle_action(body, action, respond))
        await ack()
        self.gate.settle()
        self.learn_profile(str(body["user"]["id"]))

    async def _handle_action(
        self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Awaitable[Any]]
    ) -> None:
        await self.gate.turn()
        await self._run_action(body, action, respond)

    async def _run_action(
        self, body: dict[str, Any], action: dict[str, Any], respond: Callable[..., Awaitable[Any]]
    ) -> None:
        """A click's work, once the gate let it through: its trigger_id (3 s) must not wait on the gate twice."""
        user = body["user"]
        name = user.get("name") or user.get("username") or ""
        actor = self.actor(user["id"], name, (body.get("team") or {}).get("id", ""))
        container = body.get("container") or {}
        channel_id = (body.get("channel") or {}).get("id") or container.get("channel_id")
        channel = ChannelRef(PLATFORM, channel_id) if channel_id else None
        reply = await common.guarded(self.core.handle_action(actor, action["action_id"], channel), "Slack click")
        if reply.form is not None:
            await self._open_form(body.get("trigger_id", ""), reply, actor, channel)
        elif body.get("response_url") and (reply.text or reply.message):
            await respond(**reply_payload(reply), replace_original=False)
        if (body.get("view") or {}).get("type") == "home":
            await self.publish_home(actor, notice=reply.text if reply.form is None else "")

    async def _on_view(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], view: dict[str, Any]) -> None:
        self.gate.settle()
        await self._spawn(self._answer_view(ack, body, view))

    async def _answer_view(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        user = body["user"]
        name = user.get("name") or user.get("username") or ""
        actor = self.actor(user["id"], name, (body.get("team") or {}).get("id", ""))
        values = render.form_values(view.get("state") or {})
        inputs = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"]
        title = str((view.get("title") or {}).get("text") or "peerbot")

        async def in_ack(reply: Reply) -> None:
            if not reply.ok and inputs:  # the modal stays open, the problem shown under its field
                field = reply.extra.get("field", "")
                where = field if field in inputs else inputs[0]
                await ack(response_action="errors", errors={where: render.clip(reply.text, 1000)})
            else:
                await ack(response_action="update", view=notice_view(title, reply.text))

        async def close_modal() -> None:
            await ack()

        async def by_dm(reply: Reply) -> None:
            if reply.text or reply.message:
                await self.platform.send_dm(actor.user, reply.message or Message(reply.text))

        await common.answer(
            self._after_acks(self.core.handle_form(actor, view["callback_id"], values)),
            budget=self.ack_budget,
            ack_now=in_ack,
            defer=close_modal,
            follow_up=by_dm,
            what="Slack form",
        )
        self.learn_profile(actor.user.id)

    async def _on_reaction(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        actor = self.actor(event["user"], "", body.get("team_id", ""))
        self.learn_profile(actor.user.id)  # events are acknowledged before their listener runs
        ref = MessageRef(ChannelRef(PLATFORM, item["channel"]), item["ts"])
        emoji = str(event.get("reaction", "")).split("::", 1)[0]  # drop skin tones
        try:
            reply = await self.core.handle_reaction(actor, ref, emoji)
        except Exception:
            log.exception("reaction handling failed")
            return
        if reply is None or not (reply.text or reply.message):
            return
        await self.tell(item["channel"], actor.user, reply.message or Message(reply.text))

    async def _on_home_opened(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        actor = self.actor(event["user"], "", body.get("team_id", ""))
        self.learn_profile(actor.user.id)
        await self.publish_home(actor)

    async def keep_promises(self) -> None:
        """At start-up: the answers a crash left promised ("Working on …") get an apology, through their
        response_url while it is valid (replacing the "Working on" message), else by DM. Never raises."""
        try:
            promises = await self.core.take_pending(PLATFORM)
        except Exception:
            log.exception("could not read the pending answers")
            return
        for promise in promises:
            text = t(
                self.locale,
                "Sorry: peerbot restarted while working on `/peer {what}`, so it may not have finished. "
                "Please check, and run it again if needed.",
                what=promise.what,
            )
            if promise.still_valid and promise.response_url:
                try:
                    sent = await AsyncWebhookClient(promise.response_url).send(
                        text=text, replace_original=True, response_type="ephemeral"
                    )
                    if sent.status_code == 200:
                        continue
                except Exception as exc:
                    log.info("response_url of a pending answer refused: %s", exc)
            await self.tell(None, UserRef(PLATFORM, promise.user_id), Message(text))

    async def warm_up(self) -> None:
        """Bolt checks the token with auth.test on the first request and keeps the answer; every request that
        arrives before that answer makes its own call, before its ack. After a restart in the middle of a
        burst that would be hundreds of calls: make the one call at start-up instead."""
        for middleware in getattr(self.bolt, "_async_middleware_list", []):
            if isinstance(middleware, AsyncSingleTeamAuthorization) and middleware.auth_test_result is None:
                try:
                    middleware.auth_test_result = result = await self.platform.client.auth_test()
                except Exception as exc:  # Bolt will try again on the first request, as it always did
                    log.warning("auth.test at start-up failed: %s", exc)
                    continue
                granted = {
                    scope.strip()
                    for key, value in dict(result.headers or {}).items()
                    if str(key).lower() == "x-oauth-scopes"
                    for scope in str(value[0] if isinstance(value, list) else value).split(",")
                    if scope.strip()
                }
                missing = sorted(set(bot_scopes()) - granted) if granted else []
                if missing:  # what fails later with missing_scope, said once now
                    log.error(
                        "the Slack token lacks the scopes %s: reinstall the app from `peerbot slack-manifest` "
                        "(`peerbot check-config --probe` lists every capability)",
                        ", ".join(missing),
                    )

    async def check_trainer_group(self) -> None:
        """At start-up: read SLACK_TRAINER_GROUP once; if this workspace cannot have user groups (free plan),
        tell the admins (SLACK_TRAINER_IDS) once: the DM carries a key, so a restart finds it and says nothing."""
        failure = await self.trainers.refresh()
        if failure != "plan_upgrade_required":
            return
        text = t(
            self.locale,
            "SLACK_TRAINER_GROUP is set to {group}, but user groups need a paid Slack plan, so nobody becomes a "
            "trainer through it on this workspace. List the trainers' member ids in SLACK_TRAINER_IDS instead.",
            group=self.trainers.group,
        )
        log.error(
            "SLACK_TRAINER_GROUP=%s cannot work on this workspace: user groups need a paid plan", self.trainers.group
        )
        notice = Message(text, key=f"config:trainer-group-plan:{self.trainers.group}", retry=True)
        for admin in sorted(self.trainers.ids):
            try:
                await self.platform.send_dm(UserRef(PLATFORM, admin), notice)
            except PlatformError as exc:
                log.warning("could not tell admin %s about the trainer group: %s", admin, exc)

    async def publish_home(self, actor: Actor, *, notice: str = "") -> None:
        """App Home: the core's overview of this person, under the `notice` of the click that led here."""
        message = await self.core.home(actor)
        if notice:
            head = (Section(message.text),) if message.text else ()
            message = Message(notice, head + message.sections, message.buttons)
        await self.platform.publish_home(actor.user.id, message)

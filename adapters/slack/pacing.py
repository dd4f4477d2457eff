"""Client-side pacing for Slack's per-method rate limits, and the 429 retry handler that feeds it.

Slack limits each Web API method per app per workspace by tier (api.slack.com/docs/rate-limits), and
chat.postMessage to about one message per second per channel. Pacing each call to its method's bucket lets
a 100-learner breakout finish close to the floor those limits impose instead of bouncing off 429s; a 429
that still happens (another process sharing the app, a smaller burst than assumed) pauses the whole
method for `Retry-After` seconds, not just the one call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket: `per_minute` calls per minute on average, `burst` back to back."""

    per_minute: float
    burst: int


# Documented rates. Slack allows bursts but does not say how large: these sizes are our assumption, small
# enough that a real workspace should accept them; a 429 then simply resynchronises the bucket.
TIER_RATES: dict[str, Rate] = {
    "Tier1": Rate(1, 1),
    "Tier2": Rate(20, 4),
    "Tier3": Rate(50, 10),
    "Tier4": Rate(100, 20),
    "Special": Rate(600, 100),
}
POST_MESSAGE_RATE = Rate(60, 3)  # per channel

# The tier of every method the adapter calls (from Slack's docs / the SDK's rate_limit_tiers.json).
METHOD_TIERS: dict[str, str] = {
    "auth.test": "Special",
    "conversations.create": "Tier2",
    "conversations.setTopic": "Tier2",
    "conversations.setPurpose": "Tier2",
    "conversations.list": "Tier2",
    "conversations.archive": "Tier2",
    "conversations.invite": "Tier3",
    "conversations.kick": "Tier3",
    "conversations.open": "Tier3",
    "conversations.info": "Tier3",
    "conversations.history": "Tier3",
    "conversations.members": "Tier4",
    "chat.postMessage": "Special",
    "chat.update": "Tier3",
    "chat.postEphemeral": "Tier4",
    "views.open": "Tier4",
    "views.publish": "Tier4",
    "users.info": "Tier4",
    "users.list": "Tier2",
    "usergroups.list": "Tier2",
    "usergroups.users.list": "Tier2",
    "files.getUploadURLExternal": "Tier4",
    "files.completeUploadExternal": "Tier4",
}


class _Bucket:
    """Reservation-style bucket: tokens may go negative, each caller sleeps until its own slot."""

    def __init__(self, rate: Rate, per_second: float, now: float) -> None:
        self.rate = rate
        self.per_second = per_second
        self.tokens = float(rate.burst)
        self.updated = now
        self.paused_until = 0.0

    def reserve(self, now: float, headroom: float) -> float:
        """Take a token; the wait makes the call leave only once `headroom` tokens would remain."""
        start = max(now, self.paused_until)
        self.tokens = min(float(self.rate.burst), self.tokens + (start - self.updated) * self.per_second)
        self.updated = start
        self.tokens -= 1.0
        wait = start - now
        if self.tokens < headroom:
            wait += (headroom - self.tokens) / self.per_second
        return wait

    def pause(self, now: float, seconds: float) -> None:
        """After a 429: no token until `now + seconds`, then an empty bucket."""
        self.paused_until = max(self.paused_until, now + seconds)
        self.tokens = min(self.tokens, 0.0)
        self.updated = max(self.updated, now)


class Pacer:
    """Spaces calls per method (and per channel for chat.postMessage).

    `time_scale` shrinks every interval (0.01: a minute lasts 0.6 s) so tests and benchmarks can run the
    real tier table against an emulator running at the same scale.
    """

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        tier_rates: dict[str, Rate] | None = None,
        post_message_rate: Rate = POST_MESSAGE_RATE,
        margin: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.time_scale = time_scale
        self.tier_rates = dict(tier_rates or TIER_RATES)
        self.post_message_rate = post_message_rate
        # A call leaves only when Slack's bucket (same shape, started no later) would keep `margin` of a
        # token after it, so network and event-loop jitter never make a call arrive a hair early. Slots are
        # computed from reservations, not from send times: the margin does not accumulate, a run pays it once.
        self.margin = margin
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.waited = 0.0
        self.paused = 0

    def rate_for(self, method: str) -> Rate:
        if method == "chat.postMessage":
            return self.post_message_rate
        return self.tier_rates[METHOD_TIERS.get(method, "Tier3")]

    def _bucket(self, method: str, channel: str) -> _Bucket:
        key = (method, channel if method == "chat.postMessage" else "")
        bucket = self._buckets.get(key)
        if bucket is None:
            rate = self.rate_for(method)
            per_second = rate.per_minute / 60.0 / self.time_scale
            bucket = self._buckets[key] = _Bucket(rate, per_second, self.clock())
        return bucket

    async def acquire(self, method: str, channel: str = "") -> None:
        wait = self._bucket(method, channel).reserve(self.clock(), self.margin)
        if wait > 0:
            self.waited += wait
            await asyncio.sleep(wait)

    def pause(self, method: str, seconds: float, channel: str = "") -> None:
        self.paused += 1
        self._bucket(method, channel).pause(self.clock(), seconds)


def method_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


class PacedRateLimitHandler(AsyncRetryHandler):
    """Retries a 429 after `Retry-After` seconds and pauses the method's bucket for as long.

    Unlike slack_sdk's handler it adds at most 10% jitter instead of up to a whole second, and tells the
    pacer, so concurrent calls of the same method wait too instead of each collecting its own 429.
    """

    def __init__(self, pacer: Pacer, max_retry_count: int = 3) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.pacer = pacer

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        assert response is not None
        header = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            seconds = float(header[0] if isinstance(header, list) else header)
        except ValueError:
            seconds = 1.0
        method = method_of(request.url)
        log.warning("Slack rate-limited %s: retrying after %.1f s", method, seconds)
        state.next_attempt_requested = True
        channel = str((request.body_params or {}).get("channel", "")) if method == "chat.postMessage" else ""
        self.pacer.pause(method, seconds, channel)
        await asyncio.sleep(seconds * (1 + 0.1 * random.random()))
        state.increment_current_attempt()


ApiObserver = Callable[[str, int], None]  # (method, HTTP status) of each answer, e.g. `Metrics.api_call` bound


class ApiCallCounter(AsyncRetryHandler):
    """Counts every HTTP answer of the Web API by method and status, 429s included, for /metrics.

    slack_sdk asks its retry handlers, in order, about each answer it gets (every attempt of every call), which
    makes the first handler the one place that sees them all; this one records and never asks for a retry, so
    the handlers after it decide as before."""

    def __init__(self, observe: ApiObserver) -> None:
        super().__init__(max_retry_count=0)
        self.observe = observe

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None:
            self.observe(method_of(request.url), response.status_code)
        return False

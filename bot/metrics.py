"""What `GET /metrics` exports, in the Prometheus text format (prometheus-client).

Counters are per process (Prometheus adds the replicas up): commands and clicks by kind and outcome, deliveries
by kind and outcome, platform API calls and 429s by method; the ack latency is a histogram per platform and
kind of request, with buckets around the platforms' 3-second deadline. Gauges that describe the shared database
(outbox depth, age of the oldest due delivery, sessions by state) are read from it at scrape time, so every
replica reports the same truth. Each `Metrics` has its own registry: several apps in one test process do not
collide, and nothing is registered at import. `PEERBOT_METRICS=off` makes the recording methods no-ops and
removes the route.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func
from sqlmodel import col, select

from storage.db import Database
from storage.models import Delivery, PeerSession

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds: fine below the 3 s both platforms allow for an acknowledgement, coarse above it.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0)


class Metrics:
    """The process's instruments; the core records into them, the HTTP server renders them."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "peerbot_commands", "/peer commands handled, by command and outcome.", ["command", "outcome"], registry=r
        )
        self.actions = Counter(
            "peerbot_actions", "Clicks, form submissions and reactions, by kind and outcome.", ["kind", "outcome"],
            registry=r,
        )  # fmt: skip
        self.deliveries = Counter(
            "peerbot_deliveries", "Outbox deliveries attempted, by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.outbox_depth = Gauge("peerbot_outbox_depth", "Deliveries due and not yet claimed.", registry=r)
        self.outbox_oldest = Gauge(
            "peerbot_outbox_oldest_due_age_seconds",
            "How long the oldest due, unclaimed delivery has waited (0 when none).",
            registry=r,
        )
        self.outbox_sending = Gauge("peerbot_outbox_sending", "Deliveries claimed and being sent.", registry=r)
        self.leader = Gauge(
            "peerbot_scheduler_leader", "1 while this replica runs the scheduler, 0 on standby.", registry=r
        )
        self.sessions = Gauge("peerbot_sessions", "Sessions by state.", ["state"], registry=r)
        self.ack_latency = Histogram(
            "peerbot_ack_latency_seconds",
            "From a request's arrival to its acknowledgement, by platform and kind (command, action, form, event).",
            ["platform", "kind"], buckets=ACK_BUCKETS, registry=r,
        )  # fmt: skip
        self.api_calls = Counter(
            "peerbot_platform_api_calls",
            "HTTP calls to a platform's API (each retry counts), by platform and method.",
            ["platform", "method"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "peerbot_platform_rate_limited",
            "Platform API answers 429 (rate limited), by platform and method.",
            ["platform", "method"], registry=r,
        )  # fmt: skip

    def command(self, name: str, outcome: str) -> None:
        if self.enabled:
            self.commands.labels(name, outcome).inc()

    def action(self, kind: str, outcome: str) -> None:
        if self.enabled:
            self.actions.labels(kind, outcome).inc()

    def delivery(self, kind: str, outcome: str) -> None:
        if self.enabled:
            self.deliveries.labels(kind, outcome).inc()

    def ack(self, platform: str, kind: str, seconds: float) -> None:
        if self.enabled:
            self.ack_latency.labels(platform, kind).observe(seconds)

    def api_call(self, platform: str, method: str, status: int) -> None:
        """One HTTP answer of a platform's API; `method` is the Slack method or Discord's route template (no ids,
        no tokens: labels must stay few and hold no secret)."""
        if self.enabled:
            self.api_calls.labels(platform, method).inc()
            if status == 429:
                self.rate_limited.labels(platform, method).inc()

    async def refresh(self, db: Database, now: datetime, *, leader: bool) -> None:
        """Read the database-wide gauges (two small aggregate queries)."""
        from bot.core.rules import DeliveryState  # here: `bot.core` imports this module (Context holds Metrics)

        self.leader.set(1 if leader else 0)
        async with db.transaction() as tx:
            due = (
                await tx.exec(
                    select(func.count(), func.min(Delivery.due_at)).where(
                        Delivery.state == DeliveryState.PENDING, col(Delivery.due_at) <= now
                    )
                )
            ).one()
            sending = (await tx.exec(select(func.count()).where(Delivery.state == DeliveryState.SENDING))).one()
            by_state = (await tx.exec(select(PeerSession.state, func.count()).group_by(col(PeerSession.state)))).all()
        count, oldest = due
        self.outbox_depth.set(count)
        self.outbox_oldest.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        self.outbox_sending.set(sending)
        self.sessions.clear()
        for state, n in by_state:
            self.sessions.labels(state).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)

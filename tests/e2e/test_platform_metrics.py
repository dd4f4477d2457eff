"""The platform side of /metrics, scraped after real exchanges: the ack-latency histogram (Slack HTTP mode's
request-to-ack time, Discord's interaction answer) and every API call and 429 by method, against emulators that
rate-limit as the platforms do (Slack's tier bucket; a 429 Discord sends)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapters.discord.calls import route_of
from adapters.discord.runner import DiscordRunner
from adapters.slack.runner import SlackRunner
from bot.app import App, HttpServer, build
from bot.clock import FakeClock
from bot.messages import Message
from bot.refs import UserRef
from tests.conftest import T0, make_settings
from tests.e2e.conftest_slack import FAST
from tests.emulators.discord_emulator import DiscordEmulator
from tests.emulators.slack_api import TIER_LIMITS, Limit, SlackEmulator
from tests.emulators.slack_driver import SlackDriver

SECRET = "metrics-signing-secret"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(app: App) -> Samples:
    assert app.http is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{app.http.port}/metrics") as resp,
    ):
        text = await resp.text()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_slack_ack_latency_api_calls_and_a_tier_429_are_exported(tmp_path: Path) -> None:
    """users.info (Tier 4) is called after each ack to learn the person's profile; this workspace's bucket holds
    one call, so the second person's lookup gets Slack's 429 and the SDK's retry after Retry-After succeeds."""
    tiers = {**TIER_LIMITS, "Tier4": Limit(1, 1)}  # one call, then one a (scaled) minute
    async with SlackEmulator(time_scale=FAST, tier_limits=tiers) as emu:
        trainer, other = emu.seed_user("tina"), emu.seed_user("otto")
        general = emu.seed_channel("general", [emu.bot_user_id, trainer, other])
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
            SLACK_BOT_TOKEN=emu.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=emu.base_url,
            SLACK_TRAINER_IDS=trainer,
        )
        app = await build(settings, clock=FakeClock(T0), with_scheduler=False)
        runner = SlackRunner(app.core, settings, time_scale=FAST, metrics=app.core.ctx.metrics)
        app.core.attach(runner.platform)
        app.http = HttpServer(app)
        runner.mount(app.http.web)  # as `peerbot run` does: one server for /slack/events and /metrics
        try:
            await app.http.start(port=0)
            await runner.start()
            url = f"http://127.0.0.1:{app.http.port}/slack/events"
            async with SlackDriver(url, SECRET, emulator=emu) as driver:
                resp, _ = await driver.slash_command(trainer, "cohort create c1", channel_id=general)
                assert "created" in str(resp.json())
                resp, _ = await driver.slash_command(other, "cohort create c2", channel_id=general)
                assert "Only trainers" in str(resp.json())
            await runner.bot.drain()  # the profile lookups run after the acks
            values = await scrape(app)
        finally:
            await runner.stop()
            await app.close()
    assert emu.rate_limited >= 1  # the emulator really refused one
    latency = (("kind", "command"), ("platform", "slack"))
    assert values[("peerbot_ack_latency_seconds_count", latency)] == 2
    assert 0 < values[("peerbot_ack_latency_seconds_sum", latency)] < 3
    assert values[("peerbot_ack_latency_seconds_bucket", (*latency[:1], ("le", "3.0"), latency[1]))] == 2
    users_info = (("method", "users.info"), ("platform", "slack"))
    assert values[("peerbot_platform_rate_limited_total", users_info)] == emu.rate_limited
    calls = len([c for c in emu.calls if c.method == "users.info"])
    assert values[("peerbot_platform_api_calls_total", users_info)] == calls >= 3  # two lookups, one retried
    assert values[("peerbot_platform_api_calls_total", (("method", "auth.test"), ("platform", "slack")))] >= 1


async def test_discord_interaction_ack_latency_and_a_429_by_route_are_exported(tmp_path: Path) -> None:
    async with DiscordEmulator(time_scale=0.01) as emu:
        trainer = emu.add_user("dina", roles=[emu.trainer_role_id])
        learner = emu.add_user("leo")
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
            DISCORD_TOKEN=emu.token,
            DISCORD_GUILD_ID=str(emu.guild_id),
            DISCORD_APPLICATION_ID=str(emu.application_id),
            DISCORD_TRAINER_ROLE="Trainer",
            DISCORD_API_URL=emu.api_url,
        )
        app = await build(settings, clock=FakeClock(T0), with_scheduler=False)
        runner = DiscordRunner(app.core, settings, global_rate=1000.0, metrics=app.core.ctx.metrics)
        app.core.attach(runner.platform)
        app.http = HttpServer(app)
        try:
            await app.http.start(port=0)
            await runner.start()
            await emu.wait_until(lambda: bool(emu.guild_commands), within=20)
            inter = await emu.slash(trainer, "peer", ["cohort", "create"], {"cohort": "gamers"}, within=20)
            assert "created" in (await inter.wait_message(within=20)).content
            emu.inject_429("POST /channels/{channel_id}/messages", retry_after=0.05)
            await runner.platform.send_dm(UserRef("discord", str(learner.id)), Message("hello"))  # retried once
            values = await scrape(app)
        finally:
            await runner.stop()
            await app.close()
    assert emu.stats.rate_limited == 1
    latency = (("kind", "command"), ("platform", "discord"))
    assert values[("peerbot_ack_latency_seconds_count", latency)] == 1
    post = (("method", "POST /channels/{id}/messages"), ("platform", "discord"))
    assert values[("peerbot_platform_rate_limited_total", post)] == 1
    assert values[("peerbot_platform_api_calls_total", post)] == 2  # the 429, then the retry
    callback = (("method", "POST /interactions/{id}/{param}/callback"), ("platform", "discord"))
    assert values[("peerbot_platform_api_calls_total", callback)] == 1  # the token never becomes a label
    assert not any(emu.token in "".join(dict(labels).values()) for _, labels in values)


def test_discord_routes_keep_no_id_nor_token() -> None:
    import yarl

    base = "/api/v10"
    url = yarl.URL("http://127.0.0.1:9/api/v10/webhooks/123/aW50ZXJhY3Rpb246MTIz/messages/@original")
    assert route_of("patch", url, base) == "PATCH /webhooks/{id}/{param}/messages/@original"
    emoji = yarl.URL("http://127.0.0.1:9/api/v10/channels/1/messages/2/reactions/%E2%9C%85/@me")
    assert route_of("PUT", emoji, base) == "PUT /channels/{id}/messages/{id}/reactions/{param}/@me"
    assert route_of("GET", yarl.URL("http://127.0.0.1:9/?v=10&encoding=json"), base) is None  # the gateway


async def test_slack_socket_mode_acks_are_timed_too(tmp_path: Path) -> None:
    """Socket Mode has no HTTP request to time: the ack travels back on the WebSocket, and Bolt's dispatch
    (timed in both modes) returns when it is sent."""
    from tests.emulators.slack_socket import SlackSocketEmulator, SocketModeDriver

    async with SlackSocketEmulator(time_scale=FAST) as emu:
        trainer = emu.seed_user("tina")
        general = emu.seed_channel("general", [emu.bot_user_id, trainer])
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
            SLACK_BOT_TOKEN=emu.token,
            SLACK_APP_TOKEN=emu.app_token,
            SLACK_API_URL=emu.base_url,
            SLACK_TRAINER_IDS=trainer,
        )
        app = await build(settings, clock=FakeClock(T0), with_scheduler=False)
        runner = SlackRunner(app.core, settings, time_scale=FAST, metrics=app.core.ctx.metrics)
        app.core.attach(runner.platform)
        app.runners.append(runner)
        app.http = HttpServer(app)
        try:
            await app.http.start(port=0)
            await runner.start()
            ack, _ = await SocketModeDriver(emu).slash_command(trainer, "cohort create c1", channel_id=general)
            assert "created" in ack.text
            await runner.bot.drain()
            values = await scrape(app)
        finally:
            await app.close()
    assert values[("peerbot_ack_latency_seconds_count", (("kind", "command"), ("platform", "slack")))] == 1

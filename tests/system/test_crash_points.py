"""One `peerbot run` replica on PostgreSQL, with Slack and Discord, is SIGKILLed at 20 points of a questionnaire
fan-out to 20 Slack and 20 Discord learners, and restarted after each. Half of the kills land when a DM reaches
the platform and before it is stored, the other half after the platform stored it and before the replica hears
so (the send done, its record not). Nothing is lost and nothing doubled: after the lease the restarted replica
claims the interrupted delivery again, and each platform's dedupe finds the DMs that did arrive: on Slack the
delivery key in the message metadata, looked up in the DM's history; on Discord the nonce, whose window (a few
minutes, scaled like everything else in this rehearsal) is shorter than the lease, then the key's marker in the
DM's history."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.clock import WarpClock
from tests.conftest import postgres_or_skip, reset_postgres
from tests.emulators.discord_emulator import DiscordEmulator, EmuUser
from tests.emulators.slack_api import SlackEmulator
from tests.system.replicas import BOUND, Ingress, Replica, at, dm_keys, fetch, wait_until_sql, warp_env

pytestmark = pytest.mark.postgres

LEARNERS = 20  # on each platform
SPEED = 300.0  # the 5-minute delivery lease lasts a wall second, Discord's 2-minute nonce window 0.4 s
# (n, phase): kill when the n-th questionnaire DM of the fan-out (Slack's first, then Discord's) reaches the
# platform ("before" it stores it) or after the platform stored it ("after"), alternately.
KILLS = [(n, "before" if i % 2 == 0 else "after") for i, n in enumerate(range(2, 2 * LEARNERS + 1, 2))]


def slack_identity(method: str, args: dict[str, Any]) -> str:
    """A Slack questionnaire DM's delivery key (message metadata), or ""."""
    if method != "chat.postMessage":
        return ""
    metadata = args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    key = str(((metadata or {}).get("event_payload") or {}).get("key", ""))
    return key if key.startswith("feedback:") else ""


def discord_identity(demu: DiscordEmulator, route: str, params: dict[str, str], body: Any) -> str:
    """A Discord questionnaire DM's nonce (the digest of its delivery key), or ""."""
    if route != "POST /channels/{channel_id}/messages" or int(params["channel_id"]) not in demu.dm_channels_by_id():
        return ""
    return str(body.get("nonce") or "") if "survey:open:" in json.dumps(body) else ""


async def test_a_replica_killed_at_20_points_of_a_fan_out_loses_and_doubles_nothing(tmp_path: Path) -> None:
    url = postgres_or_skip()
    await reset_postgres(url)
    day = datetime.now(UTC) + timedelta(days=1)
    clock = WarpClock(at(day, 0, 0), time.time(), SPEED)  # the sessions' planned 09:00 is 108 wall seconds away
    async with (
        SlackEmulator(time_scale=1 / SPEED) as emu,
        DiscordEmulator(time_scale=1 / SPEED, nonce_window=120 / SPEED) as demu,
    ):
        trainer = emu.seed_user("tina")
        learners = [emu.seed_user(f"learner{i:02}") for i in range(LEARNERS)]
        general = emu.seed_channel("general", [emu.bot_user_id, trainer, *learners])
        d_trainer = demu.add_user("dina", roles=[demu.trainer_role_id])
        d_learners = [demu.add_user(f"dl{i:02}") for i in range(LEARNERS)]
        env = warp_env(
            clock,
            emu,
            url,
            SLACK_TRAINER_IDS=trainer,
            DISCORD_TOKEN=demu.token,
            DISCORD_GUILD_ID=str(demu.guild_id),
            DISCORD_APPLICATION_ID=str(demu.application_id),
            DISCORD_TRAINER_ROLE="Trainer",
            DISCORD_API_URL=demu.api_url,
        )
        replica = Replica("replica", env, tmp_path)
        await replica.start()
        plan = list(KILLS)
        posted: set[str] = set()
        both_ended = asyncio.Event()
        killed = asyncio.Event()
        points: list[str] = []

        async def kill_at(phase: str, identity: str) -> None:
            if not identity or identity in posted:
                return
            await both_ended.wait()  # the fan-out starts once both sessions have ended
            if plan and plan[0] == (len(posted) + 1, phase) and replica.alive:
                plan.pop(0)
                await replica.kill()
                points.append(f"{phase} DM #{len(posted) + 1}")
                killed.set()
                if phase == "before":
                    raise web.HTTPServiceUnavailable()  # the caller is gone: nothing is stored
            if phase == "after":
                posted.add(identity)

        async def slack_before(method: str, args: dict[str, Any]) -> None:
            await kill_at("before", slack_identity(method, args))

        async def slack_after(method: str, args: dict[str, Any]) -> None:
            await kill_at("after", slack_identity(method, args))

        async def discord_before(route: str, params: dict[str, str], body: Any) -> None:
            await kill_at("before", discord_identity(demu, route, params, body))

        async def discord_after(route: str, params: dict[str, str], body: Any) -> None:
            await kill_at("after", discord_identity(demu, route, params, body))

        try:
            async with Ingress(emu, [replica]) as ingress:
                await ingress.slash(trainer, "cohort create sys <#" + general + "|general>", general)
                await ingress.slash(trainer, "cohort add sys " + " ".join(f"<@{u}>" for u in learners), general)
                planned = await ingress.slash(trainer, f'session plan sys "Crashes" {day:%Y-%m-%d} 09:00 1h', general)
                assert "Planned session `s1`" in str(planned), planned
                await ingress.slash(trainer, "session start s1", general)
                await wait_until_sql(url, "SELECT state FROM peer_session WHERE short_id = 's1'", "running")
                for learner in learners:
                    assert (await ingress.click(learner, "checkin:in:s1", general, "1.000001")).status == 200

                await _discord(demu, d_trainer, ["cohort", "create"], cohort="dc", channel=demu.general)
                others = " ".join(f"<@{u.id}>" for u in d_learners[1:])
                await _discord(demu, d_trainer, ["cohort", "add"], cohort="dc", member=d_learners[0], others=others)
                reply = await _discord(
                    demu, d_trainer, ["session", "plan"], cohort="dc", title="Crashes", day=f"{day:%Y-%m-%d}",
                    time="09:00", duration="1h",
                )  # fmt: skip
                assert "Planned session `s2`" in reply, reply
                assert "started" in await _discord(demu, d_trainer, ["session", "start"], session="s2")
                for d_learner in d_learners:
                    assert (await _discord(demu, d_learner, ["checkin"])).startswith("Checked in")
                await wait_until_sql(url, "SELECT count(*) FROM attendance", 2 * LEARNERS)

                emu.before_call, emu.after_call = slack_before, slack_after
                demu.before_call, demu.after_call = discord_before, discord_after
                # Both ends at once: the first DMs wait in the hooks for the other session's end, and a wait
                # longer than the lease would have the outbox take the held DM for lost and send it again.
                _, ended = await asyncio.gather(
                    ingress.slash(trainer, "session end s1", general),
                    _discord(demu, d_trainer, ["session", "end"], session="s2"),
                )
                assert "ended" in ended
                await wait_until_sql(url, "SELECT count(*) FROM peer_session WHERE state = 'ended'", 2)
                both_ended.set()
                async with asyncio.timeout(BOUND * 2):
                    while plan:
                        await killed.wait()
                        killed.clear()
                        await replica.start()
                await wait_until_sql(
                    url, "SELECT count(*) FROM delivery WHERE kind = 'feedback' AND state = 'sent'", 2 * LEARNERS
                )
                emu.before_call = emu.after_call = demu.before_call = demu.after_call = None
        finally:
            code = await replica.stop()
        assert code == 0, replica.log.read_text()[-2000:]

    print(f"killed at {len(points)} points: {', '.join(points)}")
    assert len(points) == len(KILLS) and replica.starts == len(KILLS) + 1
    slack_dms = dm_keys(emu, "feedback:s1:")
    assert len(slack_dms) == LEARNERS and set(slack_dms.values()) == {1}, slack_dms.most_common(3)
    discord_dms = [_questionnaires(demu, u) for u in d_learners]
    assert discord_dms == [1] * LEARNERS  # none lost, none twice
    rows = await fetch(url, "SELECT state, count(*) FROM delivery WHERE kind = 'feedback' GROUP BY state")
    assert {row[0]: row[1] for row in rows} == {"sent": 2 * LEARNERS}
    retried = await fetch(url, "SELECT count(*) FROM delivery WHERE kind = 'feedback' AND attempts > 1")
    assert retried[0][0] >= len(KILLS)  # each interrupted delivery was claimed again after its lease


async def _discord(demu: DiscordEmulator, user: EmuUser, path: list[str], **options: Any) -> str:
    async with asyncio.timeout(BOUND):
        while not (demu.guild_commands and demu.live_sessions() == 1):  # noqa: ASYNC110 - polled, no event
            await asyncio.sleep(0.05)
    inter = await demu.slash(user, "peer", path, options, within=20)
    return (await inter.wait_message(within=30)).content


def _questionnaires(demu: DiscordEmulator, user: EmuUser) -> int:
    """How many questionnaire DMs this Discord learner got."""
    channel = demu.dm_with(user)
    messages = demu.messages_in(channel) if channel is not None else []
    return sum(1 for m in messages if any(i.startswith("survey:open:") for i in m.custom_ids()))

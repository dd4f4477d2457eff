"""One `peerbot run` replica on PostgreSQL is SIGKILLed at 20 points of a questionnaire fan-out and restarted
after each: half of the kills land when a DM reaches Slack and before Slack stores it, the other half after Slack
stored it and before the replica hears so (the send done, its record not). Nothing is lost and nothing doubled:
after the lease the restarted replica claims the interrupted delivery again, and the Slack adapter's dedupe
(the delivery key in the message metadata, looked up in the DM's history before a retried send) finds the DMs
that did arrive."""

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
from tests.emulators.slack_api import SlackEmulator
from tests.system.replicas import BOUND, Ingress, Replica, at, dm_keys, fetch, wait_until_sql, warp_env

pytestmark = pytest.mark.postgres

LEARNERS = 40
SPEED = 600.0  # the 5-minute delivery lease lasts half a wall second
KILLS = [(n, "before" if i % 2 == 0 else "after") for i, n in enumerate(range(2, 2 * 20 + 1, 2))]


def delivery_key(args: dict[str, Any]) -> str:
    metadata = args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return str(((metadata or {}).get("event_payload") or {}).get("key", ""))


async def test_a_replica_killed_at_20_points_of_a_fan_out_loses_and_doubles_nothing(tmp_path: Path) -> None:
    url = postgres_or_skip()
    await reset_postgres(url)
    day = datetime.now(UTC) + timedelta(days=1)
    clock = WarpClock(at(day, 0, 0), time.time(), SPEED)  # the planned 09:00 start is 54 wall seconds away
    async with SlackEmulator(time_scale=1 / SPEED) as emu:
        trainer = emu.seed_user("tina")
        learners = [emu.seed_user(f"learner{i:02}") for i in range(LEARNERS)]
        general = emu.seed_channel("general", [emu.bot_user_id, trainer, *learners])
        replica = Replica("replica", warp_env(clock, emu, url, SLACK_TRAINER_IDS=trainer), tmp_path)
        await replica.start()
        plan = list(KILLS)
        posted: set[str] = set()
        killed = asyncio.Event()
        points: list[str] = []

        async def kill_at(phase: str, method: str, args: dict[str, Any]) -> None:
            key = delivery_key(args) if method == "chat.postMessage" else ""
            if not key.startswith("feedback:") or key in posted:
                return
            if plan and plan[0] == (len(posted) + 1, phase) and replica.alive:
                plan.pop(0)
                await replica.kill()
                points.append(f"{phase} DM #{len(posted) + 1}")
                killed.set()
                if phase == "before":
                    raise web.HTTPServiceUnavailable()  # the caller is gone: nothing is stored
            if phase == "after":
                posted.add(key)

        async def before(method: str, args: dict[str, Any]) -> None:
            await kill_at("before", method, args)

        async def after(method: str, args: dict[str, Any]) -> None:
            await kill_at("after", method, args)

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
                await wait_until_sql(url, "SELECT count(*) FROM attendance", LEARNERS)

                emu.before_call, emu.after_call = before, after
                await ingress.slash(trainer, "session end s1", general)
                async with asyncio.timeout(BOUND * 2):
                    while plan:
                        await killed.wait()
                        killed.clear()
                        await replica.start()
                await wait_until_sql(
                    url, "SELECT count(*) FROM delivery WHERE kind = 'feedback' AND state = 'sent'", LEARNERS
                )
                emu.before_call = emu.after_call = None
        finally:
            code = await replica.stop()
        assert code == 0, replica.log.read_text()[-2000:]

    print(f"killed at {len(points)} points: {', '.join(points)}")
    assert len(points) == len(KILLS) and replica.starts == len(KILLS) + 1
    feedback = dm_keys(emu, "feedback:s1:")
    assert len(feedback) == LEARNERS and set(feedback.values()) == {1}, feedback.most_common(3)  # none lost, none twice
    assert set(dm_keys(emu, "summary:s1:").values()) == {1}
    rows = await fetch(url, "SELECT state, count(*) FROM delivery WHERE kind = 'feedback' GROUP BY state")
    assert {row[0]: row[1] for row in rows} == {"sent": LEARNERS}
    retried = await fetch(url, "SELECT count(*) FROM delivery WHERE kind = 'feedback' AND attempts > 1")
    assert retried[0][0] >= len(KILLS)  # each interrupted delivery was claimed again after its lease

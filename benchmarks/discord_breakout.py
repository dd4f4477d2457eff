"""Breakouts for 200 learners (groups of 4: 50 groups, 2 categories) against the Discord emulator.

Prints the wall time, the floor Discord's rate limits impose on the same requests (the busiest bucket:
(ceil(n / limit) - 1) windows, or the global 50/s), their ratio (target <= 1.15) and the 429s received.
Limits are Discord's, scaled by --time-scale so a run takes seconds.

    .venv/bin/python benchmarks/discord_breakout.py [--learners 200] [--size 4] [--time-scale 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from pathlib import Path

import discord

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.discord.platform import DiscordPlatform
from bot.actions import CheckIn
from bot.messages import Button, Message, Section
from bot.refs import UserRef
from tests.emulators.discord_emulator import DEFAULT_BUCKET, DiscordEmulator


def floor_seconds(emu: DiscordEmulator) -> tuple[float, str]:
    """The least time Discord's limits allow for the requests the run actually made."""
    per_bucket: Counter[tuple[str, str]] = Counter()
    routes: dict[str, str] = {}
    for _, route, bucket, status in emu.request_log:
        if bucket and status < 400:
            per_bucket[(route, bucket)] += 1
            routes[bucket] = route
    best, why = 0.0, "none"
    for (route, _), count in per_bucket.items():
        limit, window = emu.buckets_config.get(route, DEFAULT_BUCKET)
        seconds = (math.ceil(count / limit) - 1) * window * emu.time_scale
        if seconds > best:
            best, why = seconds, f"{route}: {count} requests at {limit} per {window * emu.time_scale:.3f}s"
    total = sum(per_bucket.values())
    global_floor = (math.ceil(total / emu.global_per_second) - 1) * emu.time_scale
    if global_floor > best:
        best, why = global_floor, f"global: {total} requests at {emu.global_per_second}/s (scaled)"
    return best, why


async def run(learners: int, size: int, time_scale: float) -> None:
    async with DiscordEmulator(time_scale=time_scale) as emu:
        users = [emu.add_user(f"learner{i}") for i in range(learners)]
        emu.add_user("trainer", roles=[emu.trainer_role_id])
        client = discord.Client(intents=discord.Intents.none())
        await client.login(emu.token)
        platform = DiscordPlatform(
            client.http, emu.guild_id, bot_user_id=emu.bot_user.id, trainer_role="Trainer",
            global_rate=45.0 / time_scale,
        )  # fmt: skip
        groups = [users[i : i + size] for i in range(0, len(users), size)]
        emu.request_log.clear()
        started = time.perf_counter()
        await platform.ensure_capacity("bench", len(groups))
        for number, members in enumerate(groups, start=1):  # sequential, as the core's _ensure_breakouts
            refs = [UserRef("discord", str(u.id)) for u in members]
            channel = await platform.create_private_channel(
                f"peer-bench-g{number}", refs, "Benchmark session", group_key=f"bench:{number}"
            )
            await platform.post(
                channel,
                Message(f"Group {number}", sections=(Section("Objectives and ground rules."),),
                        buttons=(Button(str(CheckIn("bench")), "I'm here"),)),
            )  # fmt: skip
        elapsed = time.perf_counter() - started
        await client.close()
        floor, why = floor_seconds(emu)
        categories = sum(1 for c in emu.channels.values() if c.type == 4)
        print(f"learners={learners} groups={len(groups)} categories={categories} channels={len(emu.channels)}")
        print(f"time={elapsed:.3f}s floor={floor:.3f}s ratio={elapsed / floor:.3f} (target <= 1.15)")
        print(f"429s={emu.stats.rate_limited} (global {emu.stats.global_rate_limited}) requests={emu.stats.requests}")
        print(f"binding limit: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(run(args.learners, args.size, args.time_scale))


if __name__ == "__main__":
    main()

"""Breakout creation on Slack against the emulator's real tier limits, scaled in time.

100 learners in groups of 4 means 25 × (conversations.create, conversations.setPurpose — the group-key mark that
makes creation idempotent across restarts —, conversations.invite, conversations.setTopic, chat.postMessage), done
the way the core does it (group after group). The floor is the least time the
emulator's token buckets allow for the calls actually made: for each method (and each channel for
chat.postMessage), (calls − burst) / rate, the largest of them. Prints time, floor, ratio and 429s.

    .venv/bin/python benchmarks/slack_breakout.py [--learners 100] [--group-size 4] [--time-scale 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.slack.platform import SlackPlatform
from bot.actions import CheckIn
from bot.messages import Button, ButtonStyle, Message, Section
from bot.refs import UserRef
from tests.emulators.slack_api import SlackEmulator


def floor_seconds(emu: SlackEmulator) -> float:
    """Emulated seconds the buckets need for the successful calls recorded by the emulator."""
    counts: Counter[tuple[str, str]] = Counter()
    for call in emu.calls:
        if call.status == 200:
            channel = str(call.args.get("channel", "")) if call.method == "chat.postMessage" else ""
            counts[(call.method, channel)] += 1
    worst = 0.0
    for (method, _), n in counts.items():
        limit = emu.limit_for(method)
        worst = max(worst, max(0, n - limit.burst) * 60.0 / limit.per_minute)
    return worst


async def run(learners: int, group_size: int, time_scale: float) -> dict[str, float]:
    async with SlackEmulator(time_scale=time_scale) as emu:
        people = [UserRef("slack", emu.seed_user(f"learner{i}")) for i in range(learners)]
        trainer = UserRef("slack", emu.seed_user("trainer"))
        slack = SlackPlatform.connect(emu.token, emu.base_url, time_scale=time_scale)
        groups = [people[i : i + group_size] for i in range(0, len(people), group_size)]
        started = time.perf_counter()
        for number, members in enumerate(groups, start=1):
            channel = await slack.create_private_channel(
                f"peer-bench-g{number}", [*members, trainer], "Peer session: fractions", group_key=f"bench:{number}"
            )
            await slack.post(
                channel,
                Message(
                    f"Group {number}: welcome",
                    sections=(Section("Objectives: explain one method each."), Section("Ground rules: …")),
                    buttons=(Button(str(CheckIn("bench")), "Check in", ButtonStyle.PRIMARY),),
                ),
            )
        elapsed = time.perf_counter() - started
        floor = floor_seconds(emu) * time_scale
        ok = all(len(c.members) == len(g) + 2 for c, g in zip(list(emu.channels.values()), groups, strict=True))
        await slack.close()
        return {
            "groups": len(groups),
            "elapsed": elapsed,
            "floor": floor,
            "ratio": elapsed / floor if floor else float("nan"),
            "rate_limited": emu.rate_limited,
            "calls": len(emu.calls),
            "members_ok": float(ok),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=0.02, help="0.02: an emulated minute lasts 1.2 s")
    args = parser.parse_args()
    r = asyncio.run(run(args.learners, args.group_size, args.time_scale))
    scale = args.time_scale
    print(f"slack breakout: {args.learners} learners, {int(r['groups'])} groups of {args.group_size}")
    print(f"  time scale        {scale} (1 emulated minute = {60 * scale:.2f} s)")
    print(f"  time taken        {r['elapsed']:.3f} s wall = {r['elapsed'] / scale:.1f} s emulated")
    print(f"  rate-limit floor  {r['floor']:.3f} s wall = {r['floor'] / scale:.1f} s emulated")
    print(f"  ratio             {r['ratio']:.3f}  (target <= 1.15)")
    print(f"  429s received     {int(r['rate_limited'])}")
    print(f"  API calls         {int(r['calls'])}; every channel has its members: {bool(r['members_ok'])}")


if __name__ == "__main__":
    main()

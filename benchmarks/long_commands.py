"""How long a check-in waits behind a trainer's long command: `/peer cohort add` with 3,000 mentions.

While the trainer's command runs, learners keep clicking *Check in* (one every 20 ms, each on its own task)
and the script records how long each click took. Prints, per database,
`sqlite mentions=3000 command=<s> s checkins=<n> p50=<ms> ms max=<ms> ms (goal max <= 100 ms)`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` too, run as a script

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.actions import CheckIn
from bot.app import build
from bot.clock import FakeClock
from bot.settings import Settings
from tests.conftest import POSTGRES_URL, reset_postgres

GOAL_MS = 100.0


async def measure(url: str, mentions: int) -> tuple[float, list[float]]:
    start = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    clock = FakeClock(start - timedelta(days=2))
    platform = LocalPlatform()
    app = await build(
        Settings(_env_file=None, DATABASE_URL=url), {"local": platform}, clock=clock, with_scheduler=False
    )  # type: ignore[call-arg]
    try:
        trainer = LocalUser(app.core, platform, "T1", "T", trainer=True)
        people = [LocalUser(app.core, platform, f"L{i}", f"L{i}") for i in range(200)]
        assert (await trainer.command("cohort create open")).ok
        assert (await trainer.command("cohort add open " + " ".join(f"<@{p.user_id}>" for p in people))).ok
        short = (await trainer.command('session plan open "Open" 2026-03-04 13:00 1h')).extra["session"]
        assert (await trainer.command("cohort create big")).ok
        clock.set(start - timedelta(minutes=5))
        waits: list[float] = []

        async def click(person: LocalUser) -> None:
            began = time.perf_counter()
            assert (await person.click(str(CheckIn(short)))).ok
            waits.append((time.perf_counter() - began) * 1000)

        text = "cohort add big " + " ".join(f"<@B{i}>" for i in range(mentions))
        began = time.perf_counter()
        command = asyncio.create_task(trainer.command(text))
        clicks: list[asyncio.Task[None]] = []
        for person in people:
            if command.done():
                break
            clicks.append(asyncio.create_task(click(person)))
            await asyncio.sleep(0.02)
        reply = await command
        elapsed = time.perf_counter() - began
        await asyncio.gather(*clicks)
        assert reply.ok, reply.text
        return elapsed, waits
    finally:
        await app.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")]
        try:
            await reset_postgres(POSTGRES_URL)
            targets.append(("postgresql", POSTGRES_URL))
        except OSError as exc:
            print(f"postgresql skipped: {exc}")
        for name, url in targets:
            elapsed, waits = await measure(url, args.mentions)
            print(
                f"{name} mentions={args.mentions} command={elapsed:.2f} s checkins={len(waits)} "
                f"p50={statistics.median(waits):.1f} ms max={max(waits):.1f} ms (goal max <= {GOAL_MS:.0f} ms)"
            )


if __name__ == "__main__":
    asyncio.run(main())

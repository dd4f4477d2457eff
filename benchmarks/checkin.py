"""Check-in throughput and latency for 500 learners, on SQLite and PostgreSQL.

Each learner clicks *Check in* once; arrivals are spread over `--window` seconds (a Poisson process: the
burst that follows the check-in announcement). Latency is measured around the core's check-in use case,
the whole path an adapter calls. A second line per database sends all clicks at the same instant, the
worst case (the core writes simultaneous check-ins in one transaction), with the process's resident memory.
Prints one line per database in the form `sqlite checkins=500 throughput=<n>/s p50=<n> ms p99=<n> ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
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


async def measure(url: str, learners: int, window: float, seed: int) -> tuple[float, list[float]]:
    start = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    clock = FakeClock(start - timedelta(days=2))
    platform = LocalPlatform()
    settings = Settings(_env_file=None, DATABASE_URL=url)  # type: ignore[call-arg]
    app = await build(settings, {"local": platform}, clock=clock, with_scheduler=False)
    try:
        trainer = LocalUser(app.core, platform, "T1", "T", trainer=True)
        people = [LocalUser(app.core, platform, f"L{i}", f"L{i}") for i in range(learners)]
        assert (await trainer.command("cohort create bench")).ok
        for chunk in range(0, learners, 100):
            mentions = " ".join(f"<@{p.user_id}>" for p in people[chunk : chunk + 100])
            assert (await trainer.command(f"cohort add bench {mentions}")).ok
        reply = await trainer.command('session plan bench "Bench" 2026-03-04 13:00 1h')
        short = reply.extra["session"]
        for person in people:  # members exist before the burst, as they would after enrolment
            await person.command("help")
        clock.set(start - timedelta(minutes=5))
        rng = random.Random(seed)
        offsets = sorted(rng.uniform(0, window) for _ in people) if window > 0 else [0.0] * learners
        latencies: list[float] = []

        async def one(person: LocalUser, offset: float, t0: float) -> None:
            await asyncio.sleep(max(0.0, t0 + offset - time.perf_counter()))
            began = time.perf_counter()
            result = await person.click(str(CheckIn(short)))
            latencies.append((time.perf_counter() - began) * 1000)
            assert result.ok, result.text

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p, o, t0) for p, o in zip(people, offsets, strict=True)))
        elapsed = time.perf_counter() - t0
        return elapsed, latencies
    finally:
        await app.close()


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def rss_mb() -> float:
    """The process's resident memory now (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=500)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which the clicks arrive")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    targets: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        targets.append(("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"))
        try:
            await reset_postgres(POSTGRES_URL)
            targets.append(("postgresql", POSTGRES_URL))
        except OSError as exc:
            print(f"postgresql skipped: {exc}")
        burst_lines = []
        for name, url in targets:
            if name == "postgresql":
                await reset_postgres(url)
            else:
                Path(tmp, "bench.db").unlink(missing_ok=True)
            elapsed, lat = await measure(url, args.learners, args.window, args.seed)
            print(
                f"{name} checkins={len(lat)} throughput={len(lat) / elapsed:.0f}/s p50={p(lat, 50):.1f} ms "
                f"p99={p(lat, 99):.1f} ms  (arrivals over {args.window:g} s)"
            )
            if name == "postgresql":
                await reset_postgres(url)
            else:
                Path(tmp, "bench.db").unlink(missing_ok=True)
            before = rss_mb()
            elapsed, lat = await measure(url, args.learners, 0.0, args.seed)
            burst_lines.append(
                f"{name} burst: all {len(lat)} at once: throughput={len(lat) / elapsed:.0f}/s "
                f"p50={p(lat, 50):.1f} ms p99={p(lat, 99):.1f} ms (includes queueing; goals >= 2000/s, p99 <= 300 ms) "
                f"rss before={before:.0f} MB after={rss_mb():.0f} MB (goal < 200 MB)"
            )
        for line in burst_lines:
            print(line)


if __name__ == "__main__":
    asyncio.run(main())

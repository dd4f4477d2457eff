"""Dashboard latencies on the demo's cohort (12 learners, one session), and how long /healthz waits while the
audit pack is being made (its PDFs and charts run in a worker thread, so the event loop keeps answering).

Prints: per page p50 and max over 20 requests; the audit pack's time; /healthz p50, p99 and max meanwhile.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.dashboard_world import dashboard_world, seed_demo

ROUNDS = 20


async def timed(client: TestClient[object, object], path: str) -> float:
    started = time.perf_counter()
    response = await client.get(path)
    await response.read()
    assert response.status == 200, (path, response.status)
    return time.perf_counter() - started


async def main(folder: Path) -> None:
    demo = await asyncio.to_thread(seed_demo, folder / "demo")
    world = await dashboard_world(demo, folder / "dashboard")
    try:
        async with TestClient(TestServer(world.http.web)) as client:
            link = await world.link()
            await client.get("/dashboard/login?" + link.split("?", 1)[1])
            short = demo.session
            pages = {
                "cohorts": "/dashboard/",
                "cohort": "/dashboard/cohorts/1",
                "session": f"/dashboard/sessions/{short}",
                "learner": "/dashboard/cohorts/1/learners/L1",
                "session chart (PNG)": f"/dashboard/sessions/{short}/chart.png",
                "trend chart (PNG)": "/dashboard/cohorts/1/trends.png",
                "sheets (PDF)": "/dashboard/cohorts/1/export/pdf",
                "workbook (XLSX)": "/dashboard/cohorts/1/export/xlsx",
                "CSV ZIP": "/dashboard/cohorts/1/export/csv.zip",
            }
            for name, path in pages.items():
                times = [await timed(client, path) for _ in range(ROUNDS)]
                print(f"{name:22s} p50 {statistics.median(times) * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms")

            pack = asyncio.create_task(timed(client, "/dashboard/cohorts/1/export/audit-pack.zip"))
            health: list[float] = []
            while not pack.done():
                started = time.perf_counter()
                await (await client.get("/healthz")).read()
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)
            print(f"audit pack (ZIP)       {await pack:7.2f} s")
            health.sort()
            p99 = health[min(len(health) - 1, int(len(health) * 0.99))]
            print(
                f"/healthz meanwhile     p50 {statistics.median(health) * 1000:.1f} ms   p99 {p99 * 1000:.1f} ms   "
                f"max {health[-1] * 1000:.1f} ms over {len(health)} requests"
            )
    finally:
        await world.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="peerbot-bench-") as tmp:
        asyncio.run(main(Path(tmp)))

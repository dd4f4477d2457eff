"""Ack latency of the Slack endpoint under a burst: 500 signed check-in clicks sent at once.

Separate processes, as in production: "Slack" (the loopback Web API emulator, rate limits on, and the driver
that sets the workspace up and makes the 500 signed click payloads), the sender that plays Slack's outgoing
requests, and "peerbot" (`SlackRunner`'s HTTP server, the signature check, the adapter's ack, and behind it the
core's check-in on the database: SQLite, then PostgreSQL when `PEERBOT_TEST_POSTGRES_URL` is reachable). The
latency is the time from sending a request to reading its HTTP answer, i.e. what Slack waits for (past 3 s it
shows the person an error). Goal: p99 <= 300 ms.

Senders (`--sender`): `raw` (the default) opens one keep-alive connection per click beforehand, as Slack's
senders keep theirs, then writes the 500 ready-made requests in one loop (about 10 ms) and times each from its
write to its answer's headers: the figure is peerbot's. `aiohttp` sends them with aiohttp's client from the
emulator's process, as the first version of this script did: its own cost (about 0.5 ms of Python per request
to build, 250-400 ms for 500, plus the emulator heap's garbage collection) is inside each latency it measures.

Prints, per database: `<db> clicks=500 acked=<n> late(>3s)=<n> p50=<ms> p99=<ms> max=<ms>`, the time until
every click had its reply through its response_url, and how long the sending process stood still in garbage
collection while the acks came back.

    .venv/bin/python benchmarks/slack_ack.py [--clicks 500] [--sender raw|aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk.signature import SignatureVerifier

from adapters.slack.runner import SlackRunner
from bot.actions import CheckIn
from bot.app import build
from bot.clock import FakeClock
from bot.settings import Settings
from tests.conftest import POSTGRES_URL, reset_postgres
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.slack_driver import SlackDriver

SECRET = "bench-signing-secret"
START = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
TIME_SCALE = 0.01  # the emulator's and the pacer's minute lasts 0.6 s: set-up is quick, limits still apply


async def receive(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


# ------------------------------------------------------------------------------------------ Slack's side
class GcPauses:
    """Total time this process spent in garbage collection while inside the `with` block (reporting only)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._since = 0.0

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._since = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._since

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._observe)


async def wait_for(check: Any, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("Slack never saw the expected replies")
        await asyncio.sleep(0.02)


async def send_raw(url: str, secret: str, bodies: list[str]) -> tuple[list[float], int, float, float]:
    """Slack's senders: one open connection per request, the requests written at once; each timed from its
    write to its answer's status line and headers (the ack). Returns latencies (s), 200s, gc pauses (s) and
    the first write's `perf_counter` (the system's monotonic clock, the same in every process)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connections = [await asyncio.open_connection(host, port) for _ in bodies]
    stamp = str(int(time.time()))
    verifier = SignatureVerifier(secret)
    requests = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {stamp}\r\n"
            f"X-Slack-Signature: {verifier.generate_signature(timestamp=stamp, body=body)}\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        ).encode()
        for body in bodies
    ]
    sent = [0.0] * len(bodies)
    answered = [0.0] * len(bodies)
    statuses = [0] * len(bodies)

    async def answer(index: int, reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        answered[index] = time.perf_counter()
        statuses[index] = int(head.split(b" ", 2)[1])
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        await reader.readexactly(length)

    readers = [asyncio.create_task(answer(i, reader)) for i, (reader, _w) in enumerate(connections)]
    gc.collect()
    pauses = GcPauses()
    with pauses:
        for index, (_reader, writer) in enumerate(connections):
            sent[index] = time.perf_counter()
            writer.write(requests[index])
        await asyncio.gather(*readers)
    for _reader, writer in connections:
        writer.close()
    return [a - b for a, b in zip(answered, sent, strict=True)], statuses.count(200), pauses.total, sent[0]


def run_sender(conn: Connection) -> None:
    job = conn.recv()
    conn.send(asyncio.run(send_raw(job["url"], SECRET, job["bodies"])))


async def slack_side(conn: Connection, clicks: int, sender: str) -> None:
    async with SlackEmulator(time_scale=TIME_SCALE) as emu:
        trainer = emu.seed_user("trainer")
        learners = [emu.seed_user(f"learner{i}") for i in range(clicks)]
        general = emu.seed_channel("general", [emu.bot_user_id, trainer, *learners])
        conn.send({"base_url": emu.base_url, "token": emu.token, "trainer": trainer})
        app_url = await receive(conn)
        async with SlackDriver(app_url, SECRET, emulator=emu) as driver:

            async def command(text: str) -> None:
                resp, form = await driver.slash_command(trainer, text, channel_id=general)
                assert resp.status == 200, resp.text
                if str((resp.json() or {}).get("text", "")).startswith("⏳"):
                    posted = lambda: emu.responses_to(form["response_url"])  # noqa: E731
                    await wait_for(lambda: bool(posted()) and not str(posted()[-1]["text"]).startswith("⏳"))

            await command("cohort create bench")
            for chunk in range(0, clicks, 100):
                await command(
                    "cohort add bench " + " ".join(f"<@{u}|{u.lower()}>" for u in learners[chunk : chunk + 100])
                )
            await command('session plan bench "Bench" 2026-03-04 13:00 1h')
            conn.send("ready")
            await receive(conn)  # peerbot's clock now says the check-in window is open
            payloads = [
                driver.block_action_payload(u, str(CheckIn("s1")), channel_id=general, message_ts="1.000100")
                for u in learners
            ]
            started = time.perf_counter()
            if sender == "raw":  # the burst starts at the sender's first write
                bodies = [urlencode({"payload": json.dumps(p)}) for p in payloads]
                here, there = multiprocessing.get_context("spawn").Pipe()
                process = multiprocessing.get_context("spawn").Process(target=run_sender, args=(there,), daemon=True)
                process.start()
                here.send({"url": app_url, "bodies": bodies})
                seconds, acked, gc_seconds, started = await receive(here)
                process.join(timeout=30)
                latencies = [x * 1000 for x in seconds]
            else:
                pauses = GcPauses()
                with pauses:
                    answers = await asyncio.gather(*(driver._interactive(p) for p in payloads))
                latencies = [a.elapsed * 1000 for a in answers]
                acked, gc_seconds = sum(1 for a in answers if a.status == 200), pauses.total
            await wait_for(lambda: all(emu.responses_to(p["response_url"]) for p in payloads))
            done = time.perf_counter() - started
    conn.send({"latencies": latencies, "acked": acked, "done": done, "gc_ms": gc_seconds * 1000})


def run_slack(conn: Connection, clicks: int, sender: str) -> None:
    asyncio.run(slack_side(conn, clicks, sender))


# ---------------------------------------------------------------------------------------- peerbot's side
async def measure(url: str, clicks: int, sender: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    slack = ctx.Process(target=run_slack, args=(there, clicks, sender))  # not a daemon: it starts the sender
    slack.start()
    try:
        info = await receive(here)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            DATABASE_URL=url,
            SLACK_BOT_TOKEN=info["token"],
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=info["base_url"],
            SLACK_TRAINER_IDS=info["trainer"],
        )
        clock = FakeClock(START - timedelta(days=2))
        app = await build(settings, clock=clock, with_scheduler=False)
        runner = SlackRunner(app.core, settings, time_scale=TIME_SCALE, port=0)
        app.core.attach(runner.platform)
        await runner.start()
        try:
            here.send(f"http://127.0.0.1:{runner.port}/slack/events")
            assert await receive(here) == "ready"
            clock.set(START - timedelta(minutes=5))
            here.send("go")
            result: dict[str, Any] = await receive(here)
        finally:
            await runner.stop()
            await app.close()
    finally:
        slack.join(timeout=30)
    return result


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=500)
    parser.add_argument("--sender", choices=("raw", "aiohttp"), default="raw", help="see the module's docstring")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")]
        try:
            await reset_postgres(POSTGRES_URL)
            targets.append(("postgresql", POSTGRES_URL))
        except OSError as exc:
            print(f"postgresql skipped: {exc}")
        for name, url in targets:
            result = await measure(url, args.clicks, args.sender)
            latencies: list[float] = result["latencies"]
            late = sum(1 for ms in latencies if ms > 3000)
            print(
                f"{name} clicks={len(latencies)} acked={result['acked']} late(>3s)={late} "
                f"p50={pct(latencies, 50):.0f} ms p99={pct(latencies, 99):.0f} ms max={max(latencies):.0f} ms  "
                f"(goal p99 <= 300 ms); every click answered in {result['done']:.1f} s; "
                f"sender ({args.sender}): gc pauses during the acks {result['gc_ms']:.0f} ms"
            )
            if name == "postgresql":
                await reset_postgres(url)


if __name__ == "__main__":
    asyncio.run(main())

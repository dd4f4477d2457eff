"""`peerbot run` as a real process: the composition root starts Slack (HTTP mode) and Discord side by side
against the loopback emulators, persists scheduler jobs, answers commands on both, and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import sqlalchemy

from tests.emulators.discord_emulator import DiscordEmulator
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.slack_driver import SlackDriver

SECRET = "run-process-signing-secret"

ROOT = Path(__file__).resolve().parents[2]


def process_env(**settings: str) -> dict[str, str]:
    """This environment without any peerbot setting, plus `settings`: what a fresh shell with a .env gives."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PEERBOT_", "SLACK_", "DISCORD_"))}
    return {**inherited, **settings}


async def start_run(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def probe(tmp_path: Path, settings: dict[str, str]) -> tuple[int, str]:
    """`peerbot check-config --probe` in a subprocess with `settings` (a throwaway SQLite database unless given):
    its exit status and everything it printed."""
    defaults = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}", "PYTHONPATH": str(ROOT)}
    env = process_env(**(defaults | settings))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "check-config", "--probe", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None and "Traceback" not in out.decode(), out.decode()
    return proc.returncode, out.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.returncode is not None:
                raise AssertionError(f"peerbot run exited early with {proc.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("peerbot run never became healthy")


def dm_link(slack: SlackEmulator, user: str) -> str | None:
    """The dashboard link in the newest DM to `user`, if any."""
    dm = next((c for c in slack.channels.values() if c.is_im and c.im_user == user), None)
    texts = [m.text for m in slack.history(dm.id)] if dm is not None else []
    found = re.search(r"http://\S+/dashboard/login\?token=[A-Za-z0-9_.-]+", texts[-1]) if texts else None
    return found.group(0) if found else None


async def test_run_serves_slack_and_discord_in_one_process(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "run.db"
    async with SlackEmulator(time_scale=0.01) as slack, DiscordEmulator(time_scale=0.01) as discord_emu:
        trainer = slack.seed_user("tina")
        learner = slack.seed_user("leo")
        general = slack.seed_channel("general", [slack.bot_user_id, trainer, learner])
        d_trainer = discord_emu.add_user("dina", roles=[discord_emu.trainer_role_id])
        env = process_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{db}",
            PEERBOT_HTTP_PORT=str(port),
            PEERBOT_TIMEZONE="Europe/Paris",
            SLACK_BOT_TOKEN=slack.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack.base_url,
            SLACK_TRAINER_IDS=trainer,
            DISCORD_TOKEN=discord_emu.token,
            DISCORD_GUILD_ID=str(discord_emu.guild_id),
            DISCORD_APPLICATION_ID=str(discord_emu.application_id),
            DISCORD_TRAINER_ROLE="Trainer",
            DISCORD_API_URL=discord_emu.api_url,
            PEERBOT_DASHBOARD="on",
        )
        proc = await start_run(tmp_path, env)
        try:
            await wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
            async with SlackDriver(f"http://127.0.0.1:{port}/slack/events", SECRET, emulator=slack) as driver:
                resp, _ = await driver.slash_command(trainer, "cohort create slackers", channel_id=general)
                assert resp.status == 200 and "created" in str(resp.json())
                resp, _ = await driver.slash_command(trainer, f"cohort add slackers <@{learner}>", channel_id=general)
                assert "1 added" in str(resp.json())
                resp, _ = await driver.slash_command(
                    # a month ahead of the real clock: a plan is never in the past, nor years away
                    trainer,
                    f'session plan slackers "Run test" {date.today() + timedelta(days=30)} 10:00 1h',
                    channel_id=general,
                )
                assert "Planned session `s1`" in str(resp.json())
                refused, _ = await driver.slash_command(learner, "session start s1", channel_id=general)
                assert "Only trainers" in str(refused.json())
                # The dashboard on the same server: the DMed link signs the trainer in.
                await driver.slash_command(trainer, "dashboard", channel_id=general)
                for _ in range(200):  # the DM goes out right after the ack
                    if (link := dm_link(slack, trainer)) is not None:
                        break
                    await asyncio.sleep(0.05)
                assert link is not None and link.startswith(f"http://127.0.0.1:{port}/dashboard/login?token=")
                async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # an IP host
                    async with browser.get(link) as page:
                        assert page.status == 200 and "Sign in" in await page.text()
                    token = link.split("token=")[1]
                    async with browser.post(f"http://127.0.0.1:{port}/dashboard/login", data={"token": token}) as home:
                        assert home.status == 200 and "slackers" in await home.text()

            await discord_emu.wait_until(lambda: bool(discord_emu.guild_commands), within=20)
            inter = await discord_emu.slash(d_trainer, "peer", ["cohort", "create"], {"cohort": "gamers"}, within=20)
            assert "created" in (await inter.wait_message(within=20)).content
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 0, stderr.decode()[-2000:]

    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        jobs = {row[0] for row in conn.execute(sqlalchemy.text("SELECT id FROM apscheduler_jobs"))}
        cohorts = {row[0] for row in conn.execute(sqlalchemy.text("SELECT name FROM cohort"))}
    engine.dispose()
    assert {"session:s1:start", "session:s1:end", "outbox:drain"} <= jobs  # the scheduler persisted them
    assert cohorts == {"slackers", "gamers"}


async def test_run_with_a_refused_app_token_exits_2_with_one_line(tmp_path: Path) -> None:
    from tests.emulators.slack_socket import SlackSocketEmulator

    async with SlackSocketEmulator(time_scale=0.01) as slack:
        env = process_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
            PEERBOT_HTTP_PORT=str(free_port()),  # the health server listens in Socket Mode too
            SLACK_BOT_TOKEN=slack.token,  # Socket Mode: no signing secret needed
            SLACK_APP_TOKEN="xapp-1-revoked",
            SLACK_API_URL=slack.base_url,
        )
        proc = await start_run(tmp_path, env)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    lines = [line for line in stderr.decode().splitlines() if line.startswith("peerbot:")]
    assert proc.returncode == 2
    assert len(lines) == 1 and "SLACK_APP_TOKEN" in lines[0]
    assert "Traceback" not in stderr.decode()


async def test_run_with_the_http_port_taken_stops_before_connecting_anything(tmp_path: Path) -> None:
    """Slack HTTP mode and Discord both configured, the port already taken: one line, and neither the database nor
    Discord was touched (the check runs before the migrations and before any platform connects)."""
    async with DiscordEmulator(time_scale=0.01) as discord_emu:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = int(taken.getsockname()[1])
            env = process_env(
                DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
                PEERBOT_HTTP_PORT=str(port),
                SLACK_BOT_TOKEN="xoxb-port-test",
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/",  # closed: nothing may call Slack either
                DISCORD_TOKEN=discord_emu.token,
                DISCORD_GUILD_ID=str(discord_emu.guild_id),
                DISCORD_API_URL=discord_emu.api_url,
            )
            proc = await start_run(tmp_path, env)
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert discord_emu.request_log == []
    assert proc.returncode == 2, stderr.decode()[-2000:]
    assert stderr.decode().strip().splitlines() == [
        f"peerbot: configuration error: PEERBOT_HTTP_PORT: 127.0.0.1:{port} is already in use "
        "(peerbot's HTTP server listens there: health, metrics, Slack HTTP mode); "
        "stop the program using it or choose another port"
    ]
    assert not (tmp_path / "run.db").exists()

"""Structured logs of a real `peerbot run`: with PEERBOT_LOG_FORMAT=json every line of its output is one JSON
object, records name their session where known, and no configured secret appears anywhere, even at DEBUG (where
the SDKs log their requests)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

from bot.logs import JsonFormatter, configured_secrets, request_context, session_context
from bot.settings import Settings
from tests.e2e.test_run_process import SECRET, free_port, process_env, start_run, wait_healthy
from tests.emulators.discord_emulator import DiscordEmulator
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.slack_driver import SlackDriver


async def test_json_logs_of_a_whole_run_name_sessions_and_never_a_secret(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with SlackEmulator(time_scale=0.01) as slack, DiscordEmulator(time_scale=0.01) as discord_emu:
        trainer = slack.seed_user("tina")
        learner = slack.seed_user("leo")
        general = slack.seed_channel("general", [slack.bot_user_id, trainer, learner])
        d_trainer = discord_emu.add_user("dina", roles=[discord_emu.trainer_role_id])
        secrets = {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "DISCORD_TOKEN": discord_emu.token,
        }
        env = process_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
            PEERBOT_HTTP_PORT=str(port),
            PEERBOT_LOG_FORMAT="json",
            PEERBOT_LOG_LEVEL="DEBUG",
            SLACK_API_URL=slack.base_url,
            SLACK_TRAINER_IDS=trainer,
            DISCORD_GUILD_ID=str(discord_emu.guild_id),
            DISCORD_APPLICATION_ID=str(discord_emu.application_id),
            DISCORD_TRAINER_ROLE="Trainer",
            DISCORD_API_URL=discord_emu.api_url,
            **secrets,
        )
        proc = await start_run(tmp_path, env)
        # Read both pipes from the start: at DEBUG a run writes more than a pipe holds (64 KiB on Linux), and a
        # process whose stderr is full blocks in its logging call, event loop and all (it hung here that way).
        output_read = asyncio.create_task(proc.communicate())
        try:
            await wait_healthy(f"{base}/healthz", proc)
            async with SlackDriver(f"{base}/slack/events", SECRET, emulator=slack) as driver:
                await driver.slash_command(trainer, "cohort create slackers", channel_id=general)
                await driver.slash_command(trainer, f"cohort add slackers <@{learner}>", channel_id=general)
                day = date.today() + timedelta(days=30)
                resp, _ = await driver.slash_command(
                    trainer, f'session plan slackers "Logs" {day} 10:00 1h', channel_id=general
                )
                assert "Planned session `s1`" in str(resp.json())
                await driver.slash_command(learner, "session start s1", channel_id=general)  # refused: a learner
            await discord_emu.wait_until(lambda: bool(discord_emu.guild_commands), within=20)
            inter = await discord_emu.slash(d_trainer, "peer", ["cohort", "create"], {"cohort": "gamers"}, within=20)
            await inter.wait_message(within=20)
        finally:
            if proc.returncode is None:
                proc.terminate()
            stdout, stderr = await asyncio.wait_for(output_read, timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]

    output = stdout.decode() + stderr.decode()
    for name, value in secrets.items():
        assert value not in output, f"{name} appears in the logs"
    records = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"].startswith("slack_sdk") for r in records)  # the SDK's DEBUG requests were logged too
    by_session = {(r["message"], r.get("session")) for r in records if r["logger"] == "bot.core"}
    assert ("command session plan: ok", "s1") in by_session
    assert ("command session start: refused", "s1") in by_session
    assert all("request" in r for r in records if r["logger"] == "bot.core" and r["message"].startswith("command"))


def test_the_formatter_masks_secrets_in_messages_and_tracebacks() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL="postgresql+asyncpg://peer:db-pass-123@db.example/peerbot",
        SLACK_BOT_TOKEN="xoxb-secret-token",
        SLACK_SIGNING_SECRET="sign-me",
    )
    assert configured_secrets(settings) == ["xoxb-secret-token", "db-pass-123", "sign-me"]
    formatter = JsonFormatter(configured_secrets(settings))
    try:
        raise RuntimeError('refused "xoxb-secret-token"')
    except RuntimeError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "calling %s with %s", ("db-pass-123", "sign-me"), sys.exc_info()
        )
    with session_context("s7"), request_context() as request:
        entry = json.loads(formatter.format(record))
    assert entry["message"] == "calling *** with ***"
    assert "xoxb-secret-token" not in entry["exc"] and "RuntimeError" in entry["exc"]
    assert (entry["session"], entry["request"], entry["level"]) == ("s7", request, "ERROR")

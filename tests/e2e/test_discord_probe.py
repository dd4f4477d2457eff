"""`peerbot check-config --probe` against the Discord emulator (the real CLI, in a subprocess)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from adapters.discord.invite import NEEDED
from tests.emulators.discord_emulator import DiscordEmulator

ROOT = Path(__file__).resolve().parents[2]


async def check_config(emu: DiscordEmulator, tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PEERBOT_", "SLACK_", "DISCORD_", "DATABASE_"))}
    values = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}",
        "DISCORD_TOKEN": emu.token,
        "DISCORD_GUILD_ID": str(emu.guild_id),
        "DISCORD_API_URL": emu.api_url,
        "PYTHONPATH": str(ROOT),
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "check-config",
        "--probe",
        cwd=tmp_path,
        env={**clean, **values},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None and "Traceback" not in out.decode(), out.decode()
    lines = [line.strip() for line in out.decode().split("discord:", 1)[1].splitlines() if line.strip()]
    return proc.returncode, lines


async def test_discord_probe_of_a_server_where_the_bot_has_what_it_needs(tmp_path: Path) -> None:
    async with DiscordEmulator(time_scale=0.01, patch_discord=False) as emu:
        code, lines = await check_config(emu, tmp_path, DISCORD_TRAINER_ROLE="Trainer")
        assert code == 0, lines
        text = "\n".join(lines)
        held = f"permissions: {len(NEEDED)} of {len(NEEDED)} needed held"  # exactly the invite's
        for capability in ("token valid", "reachable", held, "trainer role Trainer"):
            assert capability in text, (capability, lines)
        assert any(line.startswith("note") and "Server Members intent: off" in line for line in lines)


async def test_discord_probe_names_missing_permissions_and_role(tmp_path: Path) -> None:
    async with DiscordEmulator(time_scale=0.01, patch_discord=False, bot_permissions=1 << 11) as emu:
        code, lines = await check_config(emu, tmp_path, DISCORD_TRAINER_ROLE="Teachers")
        assert code == 2, lines
        failed = [line for line in lines if line.startswith("FAIL")]
        assert any("missing" in line and "manage_channels" in line for line in failed), lines
        assert any("trainer role 'Teachers' not found" in line for line in failed), lines


async def test_discord_probe_with_a_refused_token(tmp_path: Path) -> None:
    async with DiscordEmulator(time_scale=0.01, patch_discord=False) as emu:
        code, lines = await check_config(emu, tmp_path, DISCORD_TOKEN="emu.wrong")
        assert code == 2 and len(lines) == 1 and lines[0].startswith("FAIL token refused by Discord"), lines

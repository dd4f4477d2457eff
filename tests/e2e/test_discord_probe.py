"""`peerbot check-config --probe` against the Discord emulator (the real CLI, in a subprocess)."""

from __future__ import annotations

from pathlib import Path

from adapters.discord.invite import NEEDED
from tests.e2e.test_run_process import probe
from tests.emulators.discord_emulator import DiscordEmulator


async def check_config(emu: DiscordEmulator, tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    values = {"DISCORD_TOKEN": emu.token, "DISCORD_GUILD_ID": str(emu.guild_id), "DISCORD_API_URL": emu.api_url}
    code, out = await probe(tmp_path, values | env)
    return code, [line.strip() for line in out.split("discord:", 1)[1].splitlines() if line.strip()]


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

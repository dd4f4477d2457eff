"""`peerbot check-config --probe` against the Slack emulator: the real CLI in a subprocess, one line per
capability, exit 0 only when everything the configuration needs is there."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest_slack import FAST
from tests.e2e.test_run_process import probe
from tests.emulators.slack_api import Policy, SlackEmulator


async def check_config(emu: SlackEmulator, tmp_path: Path, **env: str) -> tuple[int, str]:
    values = {"SLACK_BOT_TOKEN": emu.token, "SLACK_SIGNING_SECRET": "secret", "SLACK_API_URL": emu.base_url}
    return await probe(tmp_path, values | env)


def probe_lines(out: str) -> list[str]:
    return [line.strip() for line in out.split("slack:", 1)[1].splitlines() if line.strip()]


async def test_probe_of_a_workspace_that_allows_everything_exits_0(tmp_path: Path) -> None:
    async with SlackEmulator(time_scale=FAST, rate_limits=False) as emu:
        tina = emu.seed_user("tina", real_name="Tina Trainer")
        code, out = await check_config(emu, tmp_path, SLACK_TRAINER_IDS=tina)
        lines = probe_lines(out)
        assert code == 0, out
        assert all(line.startswith("ok") for line in lines), out
        text = "\n".join(lines)
        for capability in (
            "token valid",
            "scopes:",
            "can create private channels",
            "can invite",
            "can remove",
            "can archive",
            "user groups: not used",
            f"trainer {tina} resolves to Tina Trainer",
        ):
            assert capability in text, (capability, out)
        probe_channel = next(c for c in emu.channels.values() if c.name.startswith("peerbot-probe-"))
        assert probe_channel.is_archived and probe_channel.members == [emu.bot_user_id]


async def test_probe_names_each_missing_capability_and_its_fix(tmp_path: Path) -> None:
    async with SlackEmulator(
        time_scale=FAST, rate_limits=False, plan="free", policy=Policy(only_admins_create_channels=True)
    ) as emu:
        emu.scopes.discard("reactions:read")
        tina = emu.seed_user("tina")
        code, out = await check_config(emu, tmp_path, SLACK_TRAINER_IDS=f"{tina},U404", SLACK_TRAINER_GROUP="trainers")
        assert code == 2, out
        failed = [line for line in probe_lines(out) if line.startswith("FAIL")]
        assert any("missing reactions:read" in line and "slack-manifest" in line for line in failed), out
        assert any(
            "cannot create private channels (restricted_action)" in line and "Channel Management" in line
            for line in failed
        ), out
        assert any("user group trainers" in line and "paid Slack plan" in line for line in failed), out
        assert any("trainer U404: not found" in line for line in failed), out
        assert "Traceback" not in out


async def test_probe_with_a_refused_token_exits_2_with_the_fix(tmp_path: Path) -> None:
    async with SlackEmulator(time_scale=FAST, rate_limits=False) as emu:
        code, out = await check_config(emu, tmp_path, SLACK_BOT_TOKEN="xoxb-revoked")
        assert code == 2
        (line,) = probe_lines(out)
        assert line.startswith("FAIL token refused by Slack (invalid_auth)") and "SLACK_BOT_TOKEN" in line

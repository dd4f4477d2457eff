"""The manifest asks for exactly the scopes of the calls the adapter makes, and the pacing table uses
each method's real tier."""

from __future__ import annotations

import json
import re
from pathlib import Path

from adapters.slack import manifest as mf
from adapters.slack.pacing import METHOD_TIERS
from tests.e2e.test_slack_app import SlackWorld, world
from tests.e2e.test_slack_app import test_prep_button_reaction_and_retried_event as prep_flow
from tests.e2e.test_slack_app import (
    test_session_start_creates_private_breakouts_and_survey_modal_round_trip as session_flow,
)
from tests.emulators.slack_api import TIERS_FILE

__all__ = ["world"]
SOURCE = Path(__file__).resolve().parents[2] / "adapters" / "slack"


def methods_in_source() -> set[str]:
    text = "\n".join(p.read_text() for p in SOURCE.glob("*.py"))
    named = set(re.findall(r'_api\(\s*"([A-Za-z.]+)"', text))
    via_client = {name.replace("_", ".") for name in re.findall(r"self\.client\.([A-Za-z_]+)\(", text)}
    return named | via_client


def test_scope_table_covers_exactly_the_methods_in_the_source() -> None:
    assert methods_in_source() == set(mf.METHOD_SCOPES)


def test_pacing_tiers_match_slack_published_tiers() -> None:
    published = json.loads(TIERS_FILE.read_text())
    for method in mf.METHOD_SCOPES:
        expected = published[method]
        assert METHOD_TIERS[method] == ("Special" if expected.startswith("SpecialTier") else expected), method


def test_manifest_is_least_privilege_and_complete() -> None:
    m = mf.manifest("https://bot.example.org/slack/events")
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    needed = {"commands"} | {s for v in (*mf.METHOD_SCOPES.values(), *mf.EVENT_SCOPES.values()) for s in v}
    assert scopes == needed
    assert not scopes & {"channels:write", "groups:history", "channels:history", "admin", "chat:write.public"}
    assert m["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened", "reaction_added"]
    assert m["features"]["slash_commands"][0]["command"] == "/peer"
    assert m["features"]["slash_commands"][0]["should_escape"] is True
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert mf.manifest("https://bot.example.org/")["settings"]["interactivity"]["request_url"] == (
        "https://bot.example.org/slack/events"
    )
    socket = mf.manifest(socket_mode=True)
    assert "request_url" not in socket["settings"]["interactivity"] and socket["settings"]["socket_mode_enabled"]


async def test_every_call_made_in_the_flows_has_its_scope(world: SlackWorld) -> None:
    await session_flow(world)
    await world.driver.app_home_opened(world.learners[0])
    called = {c.method for c in world.emu.calls if c.error is None}
    assert called <= set(mf.METHOD_SCOPES), called - set(mf.METHOD_SCOPES)
    assert {"conversations.create", "conversations.invite", "chat.postMessage", "views.open"} <= called


async def test_prep_flow_calls_are_covered(world: SlackWorld) -> None:
    await prep_flow(world)
    assert {c.method for c in world.emu.calls} <= set(mf.METHOD_SCOPES)

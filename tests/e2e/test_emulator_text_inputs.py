"""The emulators refuse text inputs the real platforms refuse (Discord's OpenAPI spec, Slack's Block Kit
reference), so a form that fits them fits Slack and Discord."""

from __future__ import annotations

import json
from pathlib import Path

from tests.emulators.discord_emulator import _text_input_problems
from tests.emulators.slack_api import check_view

SPECS = Path(__file__).parents[1] / "specs"


def test_discord_text_input_limits_are_the_specs() -> None:
    spec = json.loads((SPECS / "discord_openapi.json").read_text())
    props = spec["components"]["schemas"]["TextInputComponentForModalRequest"]["properties"]
    assert props["value"]["maxLength"] == 4000 and props["max_length"]["maximum"] == 4000
    assert props["label"]["maxLength"] == 45 and props["placeholder"]["maxLength"] == 100
    good = {"type": 4, "custom_id": "items", "label": "Items, one a line", "max_length": 3000, "value": "x" * 3000}
    assert _text_input_problems(good, "c") == []
    assert _text_input_problems({**good, "max_length": 4001}, "c")
    assert _text_input_problems({**good, "value": "x" * 3001}, "c")  # longer than its own max_length
    assert _text_input_problems({**good, "label": "x" * 46}, "c")
    assert _text_input_problems({**good, "custom_id": ""}, "c")


def test_slack_plain_text_input_limits() -> None:
    def view(element: dict[str, object]) -> dict[str, object]:
        block = {"type": "input", "block_id": "items", "label": {"type": "plain_text", "text": "Items"}}
        title = {"type": "plain_text", "text": "Questionnaire"}
        return {"type": "modal", "title": title, "blocks": [{**block, "element": element}]}

    element = {"type": "plain_text_input", "action_id": "items", "multiline": True, "initial_value": "x" * 3000}
    assert check_view(view(element)) == []
    assert check_view(view({**element, "initial_value": "x" * 3001}))
    assert check_view(view({**element, "max_length": 3001}))
    assert check_view(view({**element, "max_length": 100}))  # the prefilled text is longer than allowed

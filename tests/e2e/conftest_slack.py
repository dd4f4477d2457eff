"""Slack fixtures, imported explicitly by the Slack test modules (shared conftest files belong to others)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.emulators.slack_api import SlackEmulator

FAST = 0.01  # one emulated minute lasts 0.6 s
LIMITED = 0.1  # slow enough that a burst is never refilled while a test sends it, even on a busy machine


@pytest.fixture
async def slack_emulator() -> AsyncIterator[SlackEmulator]:
    """Rate limits off: behaviour tests must not depend on how fast the machine is."""
    async with SlackEmulator(time_scale=FAST, rate_limits=False) as emu:
        yield emu


@pytest.fixture
async def limited_slack_emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(time_scale=LIMITED) as emu:
        yield emu


def bare_client(emulator: SlackEmulator) -> AsyncWebClient:
    """The real SDK client with no retry handler, so every 429 and error is visible to the test."""
    return AsyncWebClient(token=emulator.token, base_url=emulator.base_url, retry_handlers=[])


@pytest.fixture
def slack_client(slack_emulator: SlackEmulator) -> AsyncWebClient:
    return bare_client(slack_emulator)

"""The HTTP endpoint's quick ack of button clicks (`SlackBot.quick_ack`): a signed click is answered before
Bolt sees it, so these tests check that such a click is still processed exactly once, and that the shortcut
is taken only by what Bolt would have routed to the click handler: a forged or stale click is refused (401)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import col, func, select

from bot.actions import CheckIn
from storage.models import Attendance
from tests.conftest import T0
from tests.e2e.test_slack_app import SlackWorld, close_world, make_world, plan_session

CHECKIN_OPEN = T0 + timedelta(minutes=55)  # the session starts at 10:00 local (09:00 UTC): check-in is open


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SlackWorld]:
    w = await make_world(tmp_path, learners=3)
    await plan_session(w)
    w.clock.set(CHECKIN_OPEN)
    yield w
    await close_world(w)


def click(w: SlackWorld, user: str) -> tuple[dict[str, Any], str]:
    payload = w.driver.block_action_payload(user, str(CheckIn("s1")), channel_id=w.general, message_ts="1.000100")
    return payload, urlencode({"payload": json.dumps(payload)})


async def attendance_rows(w: SlackWorld) -> int:
    async with w.app.db.transaction() as tx:
        return int((await tx.exec(select(func.count(col(Attendance.id))))).one())


async def test_a_click_acked_at_once_is_processed_exactly_once(world: SlackWorld) -> None:
    w = world
    payload, body = click(w, w.learners[0])
    now = int(time.time())
    assert w.runner.bot.quick_ack(body, str(now), w.driver.sign(body, now)) is True  # the shortcut takes it…
    await w.runner.bot.drain()
    (reply,) = w.emu.responses_to(payload["response_url"])  # …and it is processed once, with one reply
    assert "Checked in" in reply["text"], reply

    payload, body = click(w, w.learners[1])  # the same through the HTTP endpoint: an empty ack
    answer = await w.driver.send(body, "application/x-www-form-urlencoded")
    assert (answer.status, answer.text) == (200, "")
    await w.runner.bot.drain()
    (reply,) = w.emu.responses_to(payload["response_url"])
    assert "Checked in" in reply["text"], reply
    assert await attendance_rows(w) == 2


async def test_a_forged_or_stale_click_is_refused_and_nothing_recorded(world: SlackWorld) -> None:
    w = world
    payload, body = click(w, w.learners[0])
    now = int(time.time())
    assert w.runner.bot.quick_ack(body, str(now), "v0=" + "0" * 64) is False
    forged = await w.driver.send(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    stale_ts = now - 301
    stale = await w.driver.send(body, "application/x-www-form-urlencoded", timestamp=stale_ts)
    replay = await w.driver.send(
        body, "application/x-www-form-urlencoded", timestamp=stale_ts, signature=w.driver.sign(body, stale_ts)
    )
    assert (forged.status, stale.status, replay.status) == (401, 401, 401)
    await w.runner.bot.drain()
    assert w.emu.responses_to(payload["response_url"]) == []
    assert await attendance_rows(w) == 0


async def test_only_a_click_takes_the_shortcut(world: SlackWorld, caplog: pytest.LogCaptureFixture) -> None:
    """Commands, forms and anything not shaped like a click keep going through Bolt; a click with nothing to
    run (Bolt would route it to no listener) is acked, logged and not processed."""
    w = world
    now = int(time.time())

    def signed(body: str) -> bool:
        return w.runner.bot.quick_ack(body, str(now), w.driver.sign(body, now))

    command = urlencode(w.driver.slash_command_body(w.learners[0], "help"))
    view = {"type": "view_submission", "user": {"id": w.learners[0]}, "view": {"callback_id": "x"}}
    late_type = {"user": {"id": w.learners[0]}, "type": "block_actions", "actions": [{"action_id": "x"}]}
    assert not signed(command)
    for payload in (view, late_type):
        assert not signed(urlencode({"payload": json.dumps(payload)}))
    assert not signed("payload=%7Bnot+json")
    no_action = {"type": "block_actions", "user": {"id": w.learners[0]}, "actions": []}
    empty_id = {"type": "block_actions", "user": {"id": w.learners[0]}, "actions": [{"action_id": ""}]}
    for payload in (no_action, empty_id):
        assert signed(urlencode({"payload": json.dumps(payload)}))
    await w.runner.bot.drain()
    assert sum("acked Slack click had no action to run" in r.getMessage() for r in caplog.records) == 2
    assert await attendance_rows(w) == 0

"""Bursts through the real HTTP endpoint: every request acknowledged, every reply delivered, no modal lost.

Slack shows a person an error when an ack comes after 3 s, and Bolt answers a request its listener did not
ack in time with an error status: so a 200 for every request means no ack was late. Latency figures belong
to `benchmarks/slack_ack.py`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.actions import CheckIn
from storage.models import Attendance
from tests.conftest import T0
from tests.e2e.test_slack_app import SlackWorld, close_world, make_world, mentions

CHECKIN_OPEN = T0 + timedelta(minutes=55)  # the session starts at 09:00 UTC: check-in is open


async def plan(w: SlackWorld) -> None:
    await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>")
    for start in range(0, len(w.learners), 100):
        await w.command(w.trainer, f"cohort add c1 {mentions(w.learners[start : start + 100])}")
    reply = w.final_text(*await w.command(w.trainer, 'session plan c1 "Fractions" 2026-03-02 10:00 1h size=4'))
    assert "Planned session `s1`" in reply, reply


@pytest.fixture
async def crowd(tmp_path: Path) -> AsyncIterator[SlackWorld]:
    w = await make_world(tmp_path, learners=500)
    yield w
    await close_world(w)


async def present(w: SlackWorld) -> int:
    async with w.app.db.transaction() as tx:
        return int((await tx.exec(select(func.count(col(Attendance.id))))).one())


async def test_500_simultaneous_checkin_clicks_and_commands_are_all_acknowledged(crowd: SlackWorld) -> None:
    w = crowd
    await plan(w)
    w.clock.set(CHECKIN_OPEN)
    clicks = [
        w.driver.block_action_payload(u, str(CheckIn("s1")), channel_id=w.general, message_ts="1.000100")
        for u in w.learners[:250]
    ]
    commands = [w.driver.slash_command_body(u, "checkin s1", channel_id=w.general) for u in w.learners[250:]]
    sent = [w.driver._interactive(p) for p in clicks] + [w.driver.send_form(f) for f in commands]
    answers = await asyncio.gather(*sent)
    assert [a.status for a in answers] == [200] * 500
    await w.runner.bot.drain()

    for payload in clicks:  # a click is acked empty; its answer comes through its response_url
        (reply,) = w.emu.responses_to(payload["response_url"])
        assert "Checked in" in reply["text"], reply
    for form, answer in zip(commands, answers[250:], strict=True):
        text = str((answer.json() or {}).get("text", ""))
        posted = w.emu.responses_to(form["response_url"])
        final = str(posted[-1]["text"]) if posted else text
        assert "Checked in" in final, final
    assert await present(w) == 500
    # Nothing waited on Slack before the acks: no trainer-group reads, and the 500 new profiles came in
    # users.list pages after the acks rather than 500 paced users.info calls.
    assert not w.emu.calls_of("usergroups.list") and not w.emu.calls_of("usergroups.users.list")
    assert len(w.emu.calls_of("users.info")) < 25 and w.emu.calls_of("users.list")
    assert w.emu.refused_hooks == []


async def test_50_simultaneous_questionnaire_opens_beside_500_commands(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=50)
    try:
        await plan(w)
        w.clock.set(CHECKIN_OPEN)
        await w.command(w.trainer, "session start s1")
        checkins = await asyncio.gather(*(w.driver.slash_command(u, "checkin s1") for u in w.learners))
        assert all(resp.status == 200 for resp, _ in checkins)
        await w.runner.bot.drain()
        assert await present(w) == 50
        w.clock.set(T0 + timedelta(minutes=65))
        await w.command(w.trainer, "session end s1")
        w.clock.set(T0 + timedelta(hours=3))
        await w.app.core.deliver_due()
        opens = []
        for learner in w.learners:
            dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == learner)
            survey = w.emu.history(dm.id)[-1]
            open_id = survey.blocks[-1]["elements"][0]["action_id"]
            opens.append(w.driver.block_action_payload(learner, open_id, channel_id=dm.id, message_ts=survey.ts))
        noise = [w.driver.slash_command_body(w.learners[i % 50], "help") for i in range(500)]
        sent = [w.driver._interactive(p) for p in opens] + [w.driver.send_form(f) for f in noise]
        answers = await asyncio.gather(*sent)
        assert [a.status for a in answers] == [200] * 550
        await w.runner.bot.drain()

        opened = w.emu.calls_of("views.open", ok_only=False)
        assert [c.error for c in opened] == [None] * 50, {c.error for c in opened}
        assert sorted(v.user for v in w.emu.views.values()) == sorted(w.learners)
    finally:
        await close_world(w)


async def test_a_burst_right_after_start_up_checks_the_token_once(tmp_path: Path) -> None:
    w = await make_world(tmp_path)
    try:
        checks = len(w.emu.calls_of("auth.test"))
        answers = await asyncio.gather(*(w.driver.slash_command(u, "help") for u in w.learners * 10))
        assert [resp.status for resp, _ in answers] == [200] * 80
        assert len(w.emu.calls_of("auth.test")) == checks  # Bolt's token check was made at start-up
    finally:
        await close_world(w)

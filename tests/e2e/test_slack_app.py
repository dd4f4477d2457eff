"""The whole Slack adapter end to end: signed requests into the real slack-bolt app, the real core and
database behind it, and every Web API call it makes landing in the emulator."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.runner import SlackRunner
from bot.app import App, build
from bot.clock import FakeClock
from storage.seen_events import SeenEventStore
from tests.conftest import T0, make_settings
from tests.e2e.conftest_slack import FAST
from tests.emulators.slack_api import SlackEmulator
from tests.emulators.slack_driver import SlackDriver

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class SlackWorld:
    emu: SlackEmulator
    app: App
    runner: SlackRunner
    driver: SlackDriver
    clock: FakeClock
    trainer: str
    learners: list[str]
    general: str

    async def command(self, user: str, text: str, **kw: Any) -> tuple[dict[str, Any], dict[str, str]]:
        resp, form = await self.driver.slash_command(user, text, channel_id=self.general, **kw)
        assert resp.status == 200, resp.text
        await self.runner.bot.drain()
        return (resp.json() or {}), form

    def final_text(self, ack: dict[str, Any], form: dict[str, str]) -> str:
        posted = self.emu.responses_to(form["response_url"])
        return str(posted[-1]["text"] if posted else ack.get("text", ""))


async def make_world(
    tmp_path: Path,
    *,
    learners: int = 8,
    ack_budget: float = 2.0,
    workspace: dict[str, Any] | None = None,
    **env: str,
) -> SlackWorld:
    """`workspace`: the emulator's settings (plan, policy…) from the start, as the app finds them."""
    emu = SlackEmulator(time_scale=FAST, **(workspace or {}))
    await emu.__aenter__()
    trainer = emu.seed_user("tina", real_name="Tina Trainer")
    people = [emu.seed_user(f"learner{i}") for i in range(learners)]
    general = emu.seed_channel("general", [emu.bot_user_id, trainer, *people])
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
        SLACK_BOT_TOKEN=emu.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=emu.base_url,
        **({"SLACK_TRAINER_IDS": trainer} | env),
    )
    clock = FakeClock(T0)
    app = await build(settings, clock=clock, with_scheduler=False)
    seen = SeenEventStore(app.db, "slack")  # as `peerbot run` builds it: redeliveries known to every replica
    runner = SlackRunner(app.core, settings, time_scale=FAST, port=0, ack_budget=ack_budget, seen=seen)
    app.core.attach(runner.platform)
    await runner.start()
    driver = SlackDriver(f"http://127.0.0.1:{runner.port}/slack/events", SECRET, emulator=emu)
    await driver.__aenter__()
    return SlackWorld(emu, app, runner, driver, clock, trainer, people, general)


async def close_world(w: SlackWorld) -> None:
    await w.driver.__aexit__(None, None, None)
    await w.runner.stop()
    await w.app.close()
    await w.emu.__aexit__(None, None, None)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SlackWorld]:
    w = await make_world(tmp_path)
    yield w
    await close_world(w)


async def test_bad_signature_and_stale_timestamp_are_refused_with_nothing_recorded(world: SlackWorld) -> None:
    at_start = list(world.emu.calls)  # start-up's own calls (Bolt's token check)
    form = world.driver.slash_command_body(world.trainer, "cohort create c1")
    body = "&".join(f"{k}={v}" for k, v in form.items())
    forged = await world.driver.send(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    stale_ts = int(time.time()) - 301
    stale = await world.driver.send(body, "application/x-www-form-urlencoded", timestamp=stale_ts)
    resent_sig = world.driver.sign(body, stale_ts)  # honestly signed, but too old
    replay = await world.driver.send(
        body, "application/x-www-form-urlencoded", timestamp=stale_ts, signature=resent_sig
    )
    assert (forged.status, stale.status, replay.status) == (401, 401, 401)
    assert world.emu.calls == at_start
    assert world.emu.responses_to(form["response_url"]) == []
    ack, _ = await world.command(world.trainer, "cohort show c1")
    assert "c1" in ack["text"] and "Cohort `c1` created" not in ack["text"]  # the forged create never ran


async def test_healthz(world: SlackWorld) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{world.runner.port}/healthz") as r:
        assert r.status == 200 and (await r.json())["ok"] is True


async def test_learner_cannot_run_trainer_commands(world: SlackWorld) -> None:
    ack, _ = await world.command(world.learners[0], "cohort create c1")
    assert ack["response_type"] == "ephemeral"
    assert "Only trainers" in ack["text"]
    ack, _ = await world.command(world.learners[0], "help")
    assert "/peer checkin" in ack["text"] and "/peer session plan" not in ack["text"]


async def test_trainer_group_membership_makes_a_trainer(tmp_path: Path) -> None:
    w = await make_world(tmp_path, SLACK_TRAINER_IDS="", SLACK_TRAINER_GROUP="trainers")
    try:
        w.emu.seed_usergroup("trainers", [w.learners[3]])
        await w.runner.bot.trainers.refresh()  # what the background refresh does every 5 minutes
        ack, _ = await w.command(w.learners[3], "cohort create c1")
        assert "Only trainers" not in ack["text"]
        ack, _ = await w.command(w.learners[2], "cohort create c2")
        assert "Only trainers" in ack["text"]
    finally:
        await close_world(w)


def mentions(users: list[str]) -> str:
    return " ".join(f"<@{u}|{u.lower()}>" for u in users)


async def plan_session(w: SlackWorld) -> None:
    reply = w.final_text(*await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>"))
    assert reply.startswith("Cohort `c1` created"), reply
    await w.command(w.trainer, f"cohort add c1 {mentions(w.learners)}")
    plan = 'session plan c1 "Fractions" 2026-03-02 10:00 1h size=4 groups_from=enrolled prep="Read ch. 2"'
    reply = w.final_text(*await w.command(w.trainer, plan))
    assert "Planned session `s1`" in reply, reply


async def test_prep_button_reaction_and_retried_event(world: SlackWorld) -> None:
    w = world
    await plan_session(w)
    await w.app.core.timeline.post_prep("s1")
    prep = w.emu.history(w.general)[-1]
    button = prep.blocks[-1]["elements"][0]
    assert button["action_id"] == "prep:done:s1"
    assert "<!date^" in json.dumps(prep.blocks)

    action = w.driver.block_action_payload(w.learners[0], "prep:done:s1", channel_id=w.general, message_ts=prep.ts)
    resp = await w.driver._interactive(action)
    assert resp.status == 200 and resp.elapsed < 3
    await w.runner.bot.drain()
    answers = w.emu.responses_to(action["response_url"])
    assert len(answers) == 1 and answers[0]["response_type"] == "ephemeral"

    first, event_id = await w.driver.reaction_added(w.learners[1], "white_check_mark", w.general, prep.ts)
    retried, _ = await w.driver.reaction_added(
        w.learners[1], "white_check_mark", w.general, prep.ts, event_id=event_id, retry_num=1
    )
    assert (first.status, retried.status) == (200, 200)
    await eventually(lambda: any(e.user == w.learners[1] for e in w.emu.ephemerals))
    await asyncio.sleep(0.2)  # time enough for a wrongly processed redelivery to show up
    assert len([e for e in w.emu.ephemerals if e.user == w.learners[1]]) == 1

    shown = w.final_text(*await w.command(w.trainer, "session show s1"))
    assert "prepared 2" in shown, shown  # one by button, one by reaction (delivered twice, counted once)


async def test_a_redelivered_event_reaching_another_replica_is_not_run_again(world: SlackWorld) -> None:
    """Behind a load balancer Slack's retry may reach another replica: the event ids are in the database."""
    w = world
    await plan_session(w)
    await w.app.core.timeline.post_prep("s1")
    prep = w.emu.history(w.general)[-1]
    other = SlackRunner(w.app.core, w.runner.settings, time_scale=FAST, port=0, seen=SeenEventStore(w.app.db, "slack"))
    await other.start()
    try:
        first, event_id = await w.driver.reaction_added(w.learners[1], "white_check_mark", w.general, prep.ts)
        await eventually(lambda: any(e.user == w.learners[1] for e in w.emu.ephemerals))
        async with SlackDriver(f"http://127.0.0.1:{other.port}/slack/events", SECRET, emulator=w.emu) as driver:
            retried, _ = await driver.reaction_added(
                w.learners[1], "white_check_mark", w.general, prep.ts, event_id=event_id, retry_num=1
            )
        assert (first.status, retried.status) == (200, 200)
        await other.bot.drain()
        await asyncio.sleep(0.2)  # time enough for a wrongly processed redelivery to show up
        assert len([e for e in w.emu.ephemerals if e.user == w.learners[1]]) == 1
    finally:
        await other.stop()


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """Event listeners run after Bolt's ack: poll Slack's state until the effect shows (or fail)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the expected effect never reached the emulator")
        await asyncio.sleep(0.01)


async def test_session_start_creates_private_breakouts_and_survey_modal_round_trip(world: SlackWorld) -> None:
    w = world
    await plan_session(w)
    ack, form = await w.command(w.trainer, "session start s1")
    assert "started" in w.final_text(ack, form)
    breakouts = [c for c in w.emu.channels.values() if c.name.startswith("peer-s1-g")]
    assert sorted(c.name for c in breakouts) == ["peer-s1-g1", "peer-s1-g2"]
    for c in breakouts:
        assert c.is_private and w.trainer in c.members and w.emu.bot_user_id in c.members
        assert len(set(c.members) & set(w.learners)) == 4
    intro = w.emu.history(breakouts[0].id)[0]
    assert intro.blocks[-1]["elements"][0]["action_id"] == "checkin:in:s1"

    w.clock.set(T0 + timedelta(minutes=55))
    learner = next(u for u in w.learners if u in breakouts[0].members)
    resp = await w.driver.block_action(learner, "checkin:in:s1", channel_id=breakouts[0].id, message_ts=intro.ts)
    assert resp.status == 200
    await w.runner.bot.drain()

    ack, form = await w.command(w.trainer, "session end s1")
    assert all(c.is_archived for c in breakouts)
    w.clock.set(T0 + timedelta(hours=3))
    await w.app.core.deliver_due()
    dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == learner)
    survey = w.emu.history(dm.id)[-1]
    open_id = survey.blocks[-1]["elements"][0]["action_id"]
    assert open_id.startswith("survey:open:")

    resp = await w.driver.block_action(learner, open_id, channel_id=dm.id, message_ts=survey.ts)
    assert resp.status == 200
    await w.runner.bot.drain()
    (modal,) = w.emu.views.values()
    assert modal.user == learner and modal.view["callback_id"].startswith("survey:submit:")
    view = {**modal.view, "id": modal.id}
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert len(inputs) == 6 and all(len(b["label"]["text"]) <= 2000 for b in inputs)

    partial = {b["block_id"]: "4" for b in inputs if b["element"]["type"] == "radio_buttons"}
    sent = await w.driver.view_submission(learner, view, partial | {"open": "Loved the pair work"})
    assert sent.status == 200
    answer = sent.json()
    assert answer["response_action"] == "update", answer
    assert "recorded" in answer["view"]["blocks"][0]["text"]["text"]
    again = (await w.driver.view_submission(learner, view, partial)).json()
    assert again["response_action"] == "errors" and "already answered" in again["errors"]["clarity"]


async def test_slow_command_acks_at_once_then_updates_one_message(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=24, ack_budget=0.0)
    w.runner.bot.progress_every = 0.01
    try:
        await plan_session(w)
        resp, form = await w.driver.slash_command(w.trainer, "session start s1", channel_id=w.general)
        assert resp.status == 200 and resp.elapsed < 3
        assert "Working on" in resp.json()["text"]
        await w.runner.bot.drain()
        posted = w.emu.responses_to(form["response_url"])
        assert posted and all(p.get("replace_original") for p in posted)
        assert len(posted) <= 4
        assert "started" in posted[-1]["text"]
        assert len([c for c in w.emu.channels.values() if c.name.startswith("peer-s1-g")]) == 6
        assert w.emu.rate_limited == 0
    finally:
        await close_world(w)


async def test_a_failing_core_call_is_answered_politely_with_a_logged_reference(
    world: SlackWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(world.app.core, "handle_command", broken)
    with caplog.at_level(logging.ERROR, logger="adapters.common"):
        ack, _ = await world.command(world.trainer, "cohort show c1")
    text = str(ack.get("text", ""))
    assert "Something went wrong on my side" in text and "database unreachable" not in text, ack
    found = re.search(r"`([0-9a-f]{6})`", text)
    assert found is not None, text
    assert any(found[1] in r.getMessage() and r.exc_info for r in caplog.records)


async def test_app_home_is_published_once_per_event(world: SlackWorld) -> None:
    w = world
    first, event_id = await w.driver.app_home_opened(w.learners[0])
    again, _ = await w.driver.app_home_opened(w.learners[0], event_id=event_id, retry_num=1)
    assert (first.status, again.status) == (200, 200)
    await eventually(lambda: w.learners[0] in w.emu.home_views)
    await asyncio.sleep(0.2)
    assert len(w.emu.calls_of("views.publish")) == 1


async def test_cohort_import_enrolls_only_the_humans_of_a_channel(world: SlackWorld) -> None:
    w = world
    other_bot = w.emu.seed_user("otherbot", is_bot=True)
    gone = w.emu.seed_user("gone", deleted=True)
    room = w.emu.seed_channel("room", [w.emu.bot_user_id, w.trainer, *w.learners[:3], other_bot, gone])
    w.final_text(*await w.command(w.trainer, "cohort create c1"))
    reply = w.final_text(*await w.command(w.trainer, f"cohort import c1 <#{room}|room> 2"))
    assert "imported 3 new learner(s)" in reply, reply
    shown = w.final_text(*await w.command(w.trainer, "cohort show c1"))
    assert shown.count("level 2") == 3 and other_bot not in shown and gone not in shown


async def test_dropout_alert_and_an_edited_check_in_through_slack(world: SlackWorld) -> None:
    """Two sessions held, learner0 at neither: `/peer alerts` lists them with a button, which opens the
    friendly message prefilled in a modal; the trainer's edited text reaches the learner by DM."""
    w = world
    await plan_session(w)  # s1 on 2026-03-02 at 10:00 Paris
    second = 'session plan c1 "Week 2" 2026-03-09 10:00 1h size=4 groups_from=enrolled'
    assert "Planned session `s2`" in w.final_text(*await w.command(w.trainer, second))
    for short, start in (("s1", T0 + timedelta(hours=1)), ("s2", T0 + timedelta(days=7, hours=1))):
        w.clock.set(start)
        for learner in w.learners[1:5]:
            assert "Checked in" in w.final_text(*await w.command(learner, f"checkin {short}"))
        assert "started" in w.final_text(*await w.command(w.trainer, f"session start {short}"))
        w.clock.set(start + timedelta(hours=1))
        assert "ended" in w.final_text(*await w.command(w.trainer, f"session end {short}"))

    ack, form = await w.command(w.trainer, "alerts c1")
    posted = w.emu.responses_to(form["response_url"])
    listed = posted[-1] if posted else ack
    absent = w.learners[0]
    assert f"<@{absent}>: absent from the last two sessions" in json.dumps(listed), listed
    buttons = [e for b in listed["blocks"] if b["type"] == "actions" for e in b["elements"]]
    nudge = next(b["action_id"] for b in buttons if b["action_id"].startswith("alerts:nudge:"))

    resp = await w.driver.block_action(w.trainer, nudge, channel_id=w.general)
    assert resp.status == 200 and resp.elapsed < 3
    await w.runner.bot.drain()
    (modal,) = w.emu.views.values()
    assert modal.user == w.trainer
    (field,) = [b for b in modal.view["blocks"] if b["type"] == "input"]
    assert "we have missed you" in field["element"]["initial_value"]  # prefilled, editable
    sent = await w.driver.view_submission(w.trainer, {**modal.view, "id": modal.id}, {field["block_id"]: "Monday?"})
    assert sent.status == 200 and f"Sent to <@{absent}>." in json.dumps(sent.json()), sent.json()
    await w.runner.bot.drain()
    dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == absent)
    assert w.emu.history(dm.id)[-1].text == "Monday?"


async def test_peer_dashboard_dms_a_sign_in_link_for_the_slack_trainer(tmp_path: Path) -> None:
    w = await make_world(tmp_path, PEERBOT_DASHBOARD="on", PEERBOT_PUBLIC_URL="https://peerbot.example.org")
    try:
        ack, form = await w.command(w.trainer, "dashboard")
        assert "sign-in link to the dashboard by DM" in w.final_text(ack, form)
        dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == w.trainer)
        found = re.search(
            r"https://peerbot\.example\.org/dashboard/login\?token=([A-Za-z0-9_.-]+)", w.emu.history(dm.id)[-1].text
        )
        assert found is not None
        viewer = await w.app.core.dashboard.redeem(found.group(1))
        assert (viewer.platform, viewer.user_id, viewer.is_admin) == ("slack", w.trainer, True)  # SLACK_TRAINER_IDS
        ack, form = await w.command(w.learners[0], "dashboard")
        assert "Only trainers" in w.final_text(ack, form)
    finally:
        await close_world(w)

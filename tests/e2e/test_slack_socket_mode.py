"""The Slack adapter in Socket Mode, end to end: `SlackRunner` started with SLACK_APP_TOKEN, as `peerbot run`
does, so slack-bolt's AsyncSocketModeHandler on slack_sdk's aiohttp client fetches its URL from the
emulator's `apps.connections.open` and takes every command, click, submission and event as an envelope on
that websocket. The emulator gets the acks; the database and the emulator's state are what is checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from adapters.slack.runner import SlackRunner
from bot.app import App, build
from bot.clock import FakeClock
from bot.settings import ConfigError
from storage.models import Answer, Attendance, Cohort, Member, PrepAck, Submission
from tests.conftest import T0, make_settings
from tests.e2e.conftest_slack import FAST
from tests.emulators.slack_socket import OPEN, Ack, SlackSocketEmulator, SocketModeDriver

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class SocketWorld:
    emu: SlackSocketEmulator
    app: App
    runner: SlackRunner
    driver: SocketModeDriver
    clock: FakeClock
    trainer: str
    learners: list[str]
    general: str

    async def command(self, user: str, text: str) -> tuple[Ack, dict[str, str]]:
        ack, payload = await self.driver.slash_command(user, text, channel_id=self.general)
        await self.runner.bot.drain()
        return ack, payload

    def final_text(self, ack: Ack, payload: dict[str, str]) -> str:
        """The answer the user ends up seeing: the ack, or what replaced it through the response_url."""
        posted = self.emu.responses_to(payload["response_url"])
        return str(posted[-1]["text"]) if posted else ack.text


async def build_app(tmp_path: Path, emu: SlackSocketEmulator, app_token: str) -> tuple[App, SlackRunner]:
    """The graph `peerbot run` builds, with Socket Mode on; the runner is attached but not started."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
        SLACK_BOT_TOKEN=emu.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_APP_TOKEN=app_token,
        SLACK_API_URL=emu.base_url,
        SLACK_TRAINER_IDS=",".join(u for u, user in emu.users.items() if user.name == "tina"),
    )
    app = await build(settings, clock=FakeClock(T0), with_scheduler=False)
    runner = SlackRunner(app.core, settings, time_scale=FAST)  # as bot.app attaches it, paced for the emulator
    app.core.attach(runner.platform)
    app.runners.append(runner)
    return app, runner


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SocketWorld]:
    async with SlackSocketEmulator(time_scale=FAST) as emu:
        trainer = emu.seed_user("tina", real_name="Tina Trainer")
        learners = [emu.seed_user(f"learner{i}") for i in range(8)]
        general = emu.seed_channel("general", [emu.bot_user_id, trainer, *learners])
        app, runner = await build_app(tmp_path, emu, emu.app_token)
        try:
            await runner.start()
            assert isinstance(app.core.ctx.clock, FakeClock)
            yield SocketWorld(emu, app, runner, SocketModeDriver(emu), app.core.ctx.clock, trainer, learners, general)
        finally:
            await app.close()  # stops the runner: the socket client goes before the emulator does


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """Event listeners run after the ack: poll until the effect shows (or fail)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the expected effect never showed")
        await asyncio.sleep(0.02)


async def cohort_names(w: SocketWorld) -> list[str]:
    async with w.app.db.transaction() as tx:
        return sorted(c.name for c in (await tx.exec(select(Cohort))).all())


async def member_ids(w: SocketWorld) -> dict[int, str]:
    async with w.app.db.transaction() as tx:
        return {m.id or 0: m.user_id for m in (await tx.exec(select(Member))).all()}


async def prep_acks(w: SocketWorld) -> list[tuple[str, str]]:
    users = await member_ids(w)
    async with w.app.db.transaction() as tx:
        return sorted((users[p.member_id], p.method) for p in (await tx.exec(select(PrepAck))).all())


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("wrong", ["xapp-1-revoked", "xoxb-emulated-token"], ids=["revoked", "bot-token"])
async def test_a_refused_app_token_stops_start_up_with_a_clear_error(tmp_path: Path, wrong: str) -> None:
    async with SlackSocketEmulator(time_scale=FAST) as emu:
        app, runner = await build_app(tmp_path, emu, wrong)
        try:
            with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
                await asyncio.wait_for(runner.start(), 5)  # slack_sdk alone would retry every 10 s, forever
            assert not await runner.ready()  # /readyz would say Slack is not connected
        finally:
            await app.close()
        expected = "invalid_auth" if wrong.startswith("xapp-") else "not_allowed_token_type"
        assert [c.error for c in emu.calls_of(OPEN, ok_only=False)] == [expected]
        assert emu.connections == []


async def test_connects_with_the_app_token_and_keeps_the_link_alive(world: SocketWorld) -> None:
    w = world
    conn = await w.emu.wait_connected()
    opens = w.emu.calls_of(OPEN, ok_only=False)
    assert [c.error for c in opens] == [None] and len(w.emu.connections) == 1
    await eventually(lambda: conn.pings >= 1)  # slack_sdk pings on connect and every ping_interval
    assert w.emu.refused_links == 0
    assert await w.runner.ready()  # what /readyz reports for Slack in Socket Mode
    # The emulator's side of the contract: only an app-level token may open a connection.
    for token, error in ((w.emu.token, "not_allowed_token_type"), ("xapp-1-wrong", "invalid_auth")):
        with pytest.raises(SlackApiError) as exc:
            await AsyncWebClient(base_url=w.emu.base_url, retry_handlers=[]).apps_connections_open(app_token=token)
        assert exc.value.response["error"] == error


async def test_trainer_commands_travel_the_socket_and_learners_are_refused(world: SocketWorld) -> None:
    w = world
    ack, payload = await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>")
    assert ack.payload is not None and ack.payload["response_type"] == "ephemeral", ack
    assert w.final_text(ack, payload).startswith("Cohort `c1` created")
    assert ack.elapsed < 3
    async with w.app.db.transaction() as tx:
        (cohort,) = (await tx.exec(select(Cohort))).all()
    assert (cohort.name, cohort.channel_id) == ("c1", w.general)

    ack, payload = await w.command(w.trainer, "cohort show c1")
    shown = w.final_text(ack, payload)
    assert "c1" in shown and "created" not in shown

    ack, _ = await w.command(w.learners[0], "cohort create c2")
    assert "Only trainers" in ack.text and ack.payload is not None and ack.payload["response_type"] == "ephemeral"
    assert await cohort_names(w) == ["c1"]
    # Each envelope got exactly one ack, on the socket, and nothing else came back.
    assert len(w.emu.acks) == 3 and not w.emu.stray_messages


async def plan_session(w: SocketWorld) -> None:
    await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>")
    await w.command(w.trainer, "cohort add c1 " + " ".join(f"<@{u}|{u.lower()}>" for u in w.learners))
    plan = 'session plan c1 "Fractions" 2026-03-02 10:00 1h size=4 groups_from=enrolled prep="Read ch. 2"'
    reply = w.final_text(*await w.command(w.trainer, plan))
    assert "Planned session `s1`" in reply, reply


async def test_reaction_marks_prep_done_once_even_when_redelivered(world: SocketWorld) -> None:
    w = world
    await plan_session(w)
    await w.app.core.timeline.post_prep("s1")  # the scheduler's job
    prep = w.emu.history(w.general)[-1]
    learner = w.learners[1]

    first, event_id = await w.driver.reaction_added(learner, "white_check_mark", w.general, prep.ts)
    assert first.payload is None and first.elapsed < 3  # events are acked with the envelope id alone
    await eventually(lambda: any(e.user == learner for e in w.emu.ephemerals))
    assert await prep_acks(w) == [(learner, "reaction")]

    retried, _ = await w.driver.reaction_added(
        learner, "white_check_mark", w.general, prep.ts, event_id=event_id, retry_attempt=1, retry_reason="timeout"
    )
    assert retried.payload is None
    await asyncio.sleep(0.3)  # time enough for a wrongly processed redelivery to show
    assert await prep_acks(w) == [(learner, "reaction")]
    assert len([e for e in w.emu.ephemerals if e.user == learner]) == 1


async def test_checkin_button_and_survey_modal_are_recorded(world: SocketWorld) -> None:
    w = world
    await plan_session(w)
    assert "started" in w.final_text(*await w.command(w.trainer, "session start s1"))
    breakout = min((c for c in w.emu.channels.values() if c.name.startswith("peer-s1-g")), key=lambda c: c.name)
    intro = w.emu.history(breakout.id)[0]
    learner = next(u for u in w.learners if u in breakout.members)

    w.clock.set(T0 + timedelta(minutes=55))
    ack, action = await w.driver.block_action(learner, "checkin:in:s1", channel_id=breakout.id, message_ts=intro.ts)
    assert ack.payload is None and ack.elapsed < 3  # buttons are acked at once, the work follows
    await w.runner.bot.drain()
    assert len(w.emu.responses_to(action["response_url"])) == 1
    users = await member_ids(w)
    async with w.app.db.transaction() as tx:
        rows = (await tx.exec(select(Attendance))).all()
    assert [(users[a.member_id], a.method) for a in rows] == [(learner, "button")]

    await w.command(w.trainer, "session end s1")
    w.clock.set(T0 + timedelta(hours=3))
    await w.app.core.deliver_due()  # the outbox worker's job
    dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == learner)
    survey = w.emu.history(dm.id)[-1]
    open_id = survey.blocks[-1]["elements"][0]["action_id"]
    await w.driver.block_action(learner, open_id, channel_id=dm.id, message_ts=survey.ts)
    await w.runner.bot.drain()
    (modal,) = w.emu.views.values()
    view = {**modal.view, "id": modal.id}
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    answers = {b["block_id"]: "4" for b in inputs if b["element"]["type"] == "radio_buttons"}

    ack = await w.driver.view_submission(learner, view, answers | {"open": "Loved the pair work"})
    assert ack.payload is not None and ack.payload["response_action"] == "update", ack
    assert "recorded" in ack.payload["view"]["blocks"][0]["text"]["text"]
    async with w.app.db.transaction() as tx:
        (submission,) = (await tx.exec(select(Submission))).all()
        stored = (await tx.exec(select(Answer).where(col(Answer.submission_id) == submission.id))).all()
    assert users[submission.member_id] == learner and submission.kind == "feedback"
    assert sorted(a.value_int for a in stored if a.value_int is not None) == [4] * len(answers)
    assert [a.value_text for a in stored if a.value_text] == ["Loved the pair work"]

    again = await w.driver.view_submission(learner, view, answers)
    assert again.payload is not None and again.payload["response_action"] == "errors"
    async with w.app.db.transaction() as tx:
        assert len((await tx.exec(select(Submission))).all()) == 1


async def test_client_reconnects_after_a_drop_and_after_a_disconnect_message(world: SocketWorld) -> None:
    w = world
    first = await w.emu.wait_connected()
    await w.emu.drop()
    second = await w.emu.wait_connected(2)
    assert second is not first and not first.live
    ack, payload = await w.command(w.trainer, "cohort create c1")
    assert ack.connection == second.id and w.final_text(ack, payload).startswith("Cohort `c1` created")

    await w.emu.send_disconnect("refresh_requested")
    third = await w.emu.wait_connected(3)
    await eventually(lambda: second.closed_by == "client")  # the client leaves the old link itself
    ack, _ = await w.command(w.learners[0], "cohort create c2")
    assert ack.connection == third.id and "Only trainers" in ack.text
    ack, payload = await w.command(w.trainer, "cohort create c3")
    assert w.final_text(ack, payload).startswith("Cohort `c3` created")

    assert await cohort_names(w) == ["c1", "c3"]
    # A fresh URL for each connection. apps.connections.open is Tier 1 (1 a minute): reconnecting this fast
    # may be refused with a 429, which the client waits out before it asks again.
    opens = [c.error for c in w.emu.calls_of(OPEN, ok_only=False)]
    assert opens.count(None) == 3 and set(opens) <= {None, "ratelimited"}, opens
    assert w.emu.refused_links == 0 and not w.emu.stray_messages

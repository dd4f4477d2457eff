"""Slack workspaces as they really are, through the real slack-bolt app (HTTP and Socket Mode): a free plan
with SLACK_TRAINER_GROUP set, guests who cannot join a breakout, admin-only workspace settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.app import reply_payload
from adapters.slack.runner import SlackRunner
from bot.app import build
from bot.clock import FakeClock
from bot.grammar import help_text
from bot.messages import Reply
from tests.conftest import T0, make_settings
from tests.e2e.conftest_slack import FAST
from tests.e2e.test_slack_app import SECRET, SlackWorld, close_world, eventually, make_world, mentions, plan_session
from tests.emulators.slack_api import Policy, SlackEmulator
from tests.emulators.slack_socket import SlackSocketEmulator, SocketModeDriver

FREE = {"plan": "free"}


def plan_notices(emu: SlackEmulator, admin: str) -> list[str]:
    dm = next((c for c in emu.channels.values() if c.is_im and c.im_user == admin), None)
    return [m.text for m in emu.history(dm.id)] if dm is not None else []


async def restart(w: SlackWorld) -> None:
    again = SlackRunner(w.app.core, w.app.settings, time_scale=FAST, port=0)
    await again.start()
    await again.stop()


async def test_free_plan_trainer_group_told_once_and_never_read_before_an_ack(tmp_path: Path) -> None:
    w = await make_world(tmp_path, workspace=FREE, SLACK_TRAINER_GROUP="trainers")
    try:
        (notice,) = plan_notices(w.emu, w.trainer)  # the admin (SLACK_TRAINER_IDS) hears it at start-up
        assert "SLACK_TRAINER_GROUP" in notice and "paid Slack plan" in notice and "SLACK_TRAINER_IDS" in notice
        reads = len(w.emu.calls_of("usergroups.list", ok_only=False))
        assert reads == 1
        for learner in w.learners:
            resp, _form = await w.driver.slash_command(learner, "help", channel_id=w.general)
            assert resp.status == 200 and "/peer checkin" in resp.json()["text"]
        ack, _ = await w.command(w.learners[0], "cohort create c1")
        assert "Only trainers" in ack["text"]
        ack, form = await w.command(w.trainer, "cohort create c1")  # the configured ids still administer
        assert "created" in w.final_text(ack, form)
        assert len(w.emu.calls_of("usergroups.list", ok_only=False)) == reads  # the failure is remembered
        await restart(w)
        assert len(plan_notices(w.emu, w.trainer)) == 1  # a restart finds its keyed DM and says nothing more
    finally:
        await close_world(w)


async def test_free_plan_trainer_group_over_socket_mode(tmp_path: Path) -> None:
    async with SlackSocketEmulator(time_scale=FAST, plan="free") as emu:
        tina = emu.seed_user("tina")
        learner = emu.seed_user("learner")
        general = emu.seed_channel("general", [emu.bot_user_id, tina, learner])
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
            SLACK_BOT_TOKEN=emu.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_APP_TOKEN=emu.app_token,
            SLACK_API_URL=emu.base_url,
            SLACK_TRAINER_IDS=tina,
            SLACK_TRAINER_GROUP="@trainers",
        )
        app = await build(settings, clock=FakeClock(T0), with_scheduler=False)
        runner = SlackRunner(app.core, settings, time_scale=FAST)
        app.core.attach(runner.platform)
        app.runners.append(runner)
        try:
            await runner.start()
            assert len(plan_notices(emu, tina)) == 1
            driver = SocketModeDriver(emu)
            for _ in range(5):
                ack, _payload = await driver.slash_command(learner, "help", channel_id=general)
                assert "/peer checkin" in ack.text and ack.elapsed < 3
            await runner.bot.drain()
            assert len(emu.calls_of("usergroups.list", ok_only=False)) == 1
        finally:
            await app.close()


def dm_texts(emu: SlackEmulator, user: str) -> list[str]:
    dm = next((c for c in emu.channels.values() if c.is_im and c.im_user == user), None)
    if dm is None:
        return []
    return [" ".join([m.text, *(str(b.get("text", {}).get("text", "")) for b in m.blocks)]) for m in emu.history(dm.id)]


async def test_a_single_channel_guest_never_stops_the_breakouts(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=7, PEERBOT_VIDEO_URL_TEMPLATE="https://meet.example.org/{room}")
    try:
        guest = w.emu.seed_user("gus", guest="single")
        w.emu.channels[w.general].members.append(guest)  # the guest's one channel is the cohort's
        everyone = [*w.learners, guest]
        await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>")
        await w.command(w.trainer, f"cohort add c1 {mentions(everyone)}")
        plan = 'session plan c1 "Fractions" 2026-03-02 10:00 1h size=4 groups_from=enrolled'
        assert "Planned session `s1`" in w.final_text(*await w.command(w.trainer, plan))
        ack, form = await w.command(w.trainer, "session start s1")
        assert "started" in w.final_text(ack, form)

        breakouts = [c for c in w.emu.channels.values() if c.name.startswith("peer-s1-g")]
        assert len(breakouts) == 2
        inside = {u for c in breakouts for u in c.members}
        assert set(w.learners) <= inside and guest not in inside  # the others are in; the guest cannot be
        home = next(c for c in breakouts if w.emu.history(c.id) and f"<@{guest}>" in w.emu.history(c.id)[0].text)

        (to_guest,) = dm_texts(w.emu, guest)
        assert "could not be added" in to_guest and "https://meet.example.org/peer-s1-g" in to_guest
        assert all(f"<@{u}>" in to_guest for u in home.members if u in w.learners)
        to_trainer = [t for t in dm_texts(w.emu, w.trainer) if "runs without" in t]
        assert len(to_trainer) == 1 and f"<@{guest}>" in to_trainer[0] and "single-channel guest" in to_trainer[0]
    finally:
        await close_world(w)


async def test_a_private_answer_to_someone_outside_the_channel_comes_by_dm(tmp_path: Path) -> None:
    w = await make_world(tmp_path)
    try:
        await plan_session(w)
        await w.app.core.timeline.post_prep("s1")
        prep = w.emu.history(w.general)[-1]
        outsider = w.learners[0]
        w.emu.channels[w.general].members.remove(outsider)  # left the channel, still enrolled
        resp, _ = await w.driver.reaction_added(outsider, "white_check_mark", w.general, prep.ts)
        assert resp.status == 200
        await eventually(lambda: bool(dm_texts(w.emu, outsider)))
        refused = w.emu.calls_of("chat.postEphemeral", ok_only=False)
        assert [c.error for c in refused] == ["user_not_in_channel"]
        (notice,) = dm_texts(w.emu, outsider)
        assert "prep" in notice.lower() or "prepar" in notice.lower(), notice
    finally:
        await close_world(w)


async def test_a_person_is_answered_in_their_slack_language_once_known(tmp_path: Path) -> None:
    w = await make_world(tmp_path)
    try:
        marie = w.emu.seed_user("marie", locale="fr-FR")
        first, _ = await w.command(marie, "help")  # answered at once, before her profile is known
        assert first["text"].startswith(help_text(False, "en").splitlines()[0])
        info = w.emu.calls_of("users.info")
        assert info and info[-1].args.get("include_locale") in {"1", "true", True}  # read after the ack
        second, _ = await w.command(marie, "help")
        assert second["text"] == reply_payload(Reply(help_text(False, "fr")))["text"]
    finally:
        await close_world(w)


async def test_a_reply_whose_response_url_expired_comes_by_dm(tmp_path: Path) -> None:
    w = await make_world(tmp_path, ack_budget=0.0, workspace={"response_url_ttl": 0.0})
    try:
        ack, form = await w.command(w.trainer, "cohort create c1")
        assert "Working on" in ack["text"]
        assert w.emu.responses_to(form["response_url"]) == []
        assert "expired_url" in {reason for _path, reason in w.emu.refused_hooks}
        assert any("c1" in text and "created" in text for text in dm_texts(w.emu, w.trainer))
    finally:
        await close_world(w)


async def test_import_of_a_big_channel_reads_profiles_by_pages(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=60)
    try:
        bot = w.emu.seed_user("otherbot", is_bot=True)
        room = w.emu.seed_channel("room", [w.emu.bot_user_id, *w.learners, bot])
        await w.command(w.trainer, "cohort create c1")
        before = len(w.emu.calls_of("users.info"))
        reply = w.final_text(*await w.command(w.trainer, f"cohort import c1 <#{room}|room> 2"))
        assert "imported 60 new learner(s)" in reply, reply
        assert len(w.emu.calls_of("users.info")) == before and w.emu.calls_of("users.list")
    finally:
        await close_world(w)


async def test_where_only_admins_create_channels_the_session_runs_in_threads(tmp_path: Path) -> None:
    w = await make_world(tmp_path, workspace={"policy": Policy(only_admins_create_channels=True)})
    try:
        await plan_session(w)
        ack, form = await w.command(w.trainer, "session start s1")
        assert "started" in w.final_text(ack, form)
        assert not [c for c in w.emu.channels.values() if c.name.startswith("peer-s1-g")]
        parents = [m for m in w.emu.history(w.general) if m.text.startswith("🧵 Group")]
        assert len(parents) == 2
        for parent in parents:  # every learner mentioned in their group's thread
            inside = [m for m in w.emu.history(w.general) if m.thread_ts == parent.ts]
            assert inside and inside[0].blocks[-1]["elements"][0]["action_id"] == "checkin:in:s1"
        assert sum(f"<@{u}>" in p.text for p in parents for u in w.learners) == len(w.learners)
        (why,) = [t for t in dm_texts(w.emu, w.trainer) if "Only workspace admins" in t]
        assert "threads" in why and "Channel Management" in why

        w.clock.set(T0 + timedelta(minutes=55))
        learner = w.learners[0]
        resp = await w.driver.block_action(learner, "checkin:in:s1", channel_id=w.general, message_ts=parents[0].ts)
        assert resp.status == 200
        await w.runner.bot.drain()
        ack, form = await w.command(w.trainer, "session end s1")
        assert "Something went wrong" not in w.final_text(ack, form)
        shown = w.final_text(*await w.command(w.trainer, "session show s1"))
        assert "checked in 1" in shown, shown
    finally:
        await close_world(w)


@asynccontextmanager
async def socket_world(
    tmp_path: Path, workspace: dict[str, Any], **env: str
) -> AsyncIterator[tuple[SlackSocketEmulator, SlackRunner, SocketModeDriver, str, list[str], str]]:
    """The app in Socket Mode on a workspace with these settings: (emulator, runner, driver, trainer, learners,
    cohort channel)."""
    async with SlackSocketEmulator(time_scale=FAST, **workspace) as emu:
        tina = emu.seed_user("tina")
        learners = [emu.seed_user(f"learner{i}") for i in range(7)]
        general = emu.seed_channel("general", [emu.bot_user_id, tina, *learners])
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
            SLACK_BOT_TOKEN=emu.token,
            SLACK_APP_TOKEN=emu.app_token,
            SLACK_API_URL=emu.base_url,
            SLACK_TRAINER_IDS=tina,
            **env,
        )
        app = await build(settings, clock=FakeClock(T0), with_scheduler=False)
        runner = SlackRunner(app.core, settings, time_scale=FAST)
        app.core.attach(runner.platform)
        app.runners.append(runner)
        try:
            await runner.start()
            yield emu, runner, SocketModeDriver(emu), tina, learners, general
        finally:
            await app.close()


async def socket_command(
    emu: SlackSocketEmulator, runner: SlackRunner, driver: SocketModeDriver, user: str, text: str, channel: str
) -> str:
    ack, payload = await driver.slash_command(user, text, channel_id=channel)
    await runner.bot.drain()
    posted = emu.responses_to(payload["response_url"])
    return str(posted[-1]["text"]) if posted else ack.text


async def test_guest_and_admin_only_channels_over_socket_mode(tmp_path: Path) -> None:
    policy = Policy(only_admins_create_channels=True)
    async with socket_world(tmp_path, {"policy": policy}, PEERBOT_VIDEO_URL_TEMPLATE="https://v.example/{room}") as (
        emu,
        runner,
        driver,
        tina,
        learners,
        general,
    ):
        say = partial(socket_command, emu, runner, driver, tina, channel=general)
        await say(f"cohort create c1 <#{general}|general>")
        await say(f"cohort add c1 {mentions(learners)}")
        plan = 'session plan c1 "Fractions" 2026-03-02 10:00 1h size=4 groups_from=enrolled'
        assert "Planned session `s1`" in await say(plan)
        assert "started" in await say("session start s1")
        parents = [m for m in emu.history(general) if m.text.startswith("🧵 Group")]
        assert len(parents) == 2 and not any(c.name.startswith("peer-s1") for c in emu.channels.values()), [
            m.text for m in emu.history(general)
        ]
        assert any("Channel Management" in t for t in dm_texts(emu, tina))


async def test_single_channel_guest_over_socket_mode(tmp_path: Path) -> None:
    async with socket_world(tmp_path, {}) as (emu, runner, driver, tina, learners, general):
        guest = emu.seed_user("gus", guest="single")
        emu.channels[general].members.append(guest)
        say = partial(socket_command, emu, runner, driver, tina, channel=general)
        await say(f"cohort create c1 <#{general}|general>")
        await say(f"cohort add c1 {mentions([*learners, guest])}")
        await say('session plan c1 "Fractions" 2026-03-02 10:00 1h size=4 groups_from=enrolled')
        assert "started" in await say("session start s1")
        breakouts = [c for c in emu.channels.values() if c.name.startswith("peer-s1-g")]
        assert len(breakouts) == 2 and all(guest not in c.members for c in breakouts)
        assert set(learners) <= {u for c in breakouts for u in c.members}
        assert any("could not be added" in t for t in dm_texts(emu, guest))
        assert any("single-channel guest" in t for t in dm_texts(emu, tina))


async def test_where_only_admins_remove_members_a_move_says_who_stays_behind(tmp_path: Path) -> None:
    w = await make_world(tmp_path, workspace={"policy": Policy(only_admins_remove_members=True)})
    try:
        await plan_session(w)
        assert "started" in w.final_text(*await w.command(w.trainer, "session start s1"))
        one, two = sorted((c for c in w.emu.channels.values() if c.name.startswith("peer-s1-g")), key=lambda c: c.name)
        mover = next(u for u in one.members if u in w.learners)
        reply = w.final_text(*await w.command(w.trainer, f"group move s1 <@{mover}|m> 2"))
        assert "moved from group 1 to group 2" in reply and "still in group 1's channel" in reply, reply
        assert "restricted_action" in reply and mover in two.members and mover in one.members
    finally:
        await close_world(w)


async def test_work_in_flight_at_a_crash_is_apologised_for_after_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await make_world(tmp_path, ack_budget=0.0)
    try:
        stuck = asyncio.Event()

        async def never_finishes(*args: Any) -> Reply:
            await stuck.wait()
            return Reply("late")

        monkeypatch.setattr(w.app.core, "handle_command", never_finishes)
        resp, form = await w.driver.slash_command(w.trainer, "session start s1", channel_id=w.general)
        assert "Working on" in resp.json()["text"]
        await eventually(lambda: bool(w.runner.bot._background))
        await asyncio.sleep(0.1)  # the promise is recorded after the ack
        for task in list(w.runner.bot._background):  # the crash: the work dies with its process
            task.cancel()
        await asyncio.gather(*w.runner.bot._background, return_exceptions=True)
        monkeypatch.undo()

        await restart(w)
        (apology,) = w.emu.responses_to(form["response_url"])
        assert apology["replace_original"] and "restarted while working on `/peer session start s1`" in apology["text"]
        await restart(w)  # told once
        assert len(w.emu.responses_to(form["response_url"])) == 1
    finally:
        await close_world(w)


async def test_a_promise_whose_response_url_expired_is_kept_by_dm(tmp_path: Path) -> None:
    w = await make_world(tmp_path)
    try:
        when = w.app.core.ctx.clock.now()
        await w.app.core.remember_pending("slack", w.learners[0], "checkin s1", "http://127.0.0.1:9/gone", timedelta(0))
        assert w.app.core.ctx.clock.now() == when
        await restart(w)
        assert any("restarted while working on `/peer checkin s1`" in t for t in dm_texts(w.emu, w.learners[0]))
    finally:
        await close_world(w)


async def test_missing_scopes_are_named_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = await make_world(tmp_path)
    try:
        w.emu.scopes.discard("reactions:read")
        with caplog.at_level(logging.ERROR, logger="adapters.slack.app"):
            await restart(w)
        assert any("reactions:read" in r.getMessage() and "slack-manifest" in r.getMessage() for r in caplog.records)
    finally:
        await close_world(w)

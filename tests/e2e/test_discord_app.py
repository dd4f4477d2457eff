"""The whole Discord adapter end to end: the real discord.py client (gateway + REST) against the emulator,
the real core and database behind it. Users act only through the gateway (slash commands, clicks, modals,
reactions), exactly as Discord would deliver them."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from adapters.discord.runner import DiscordRunner
from bot.app import App, build
from bot.clock import FakeClock
from storage.models import Attendance, Member, PeerSession
from tests.conftest import make_settings
from tests.emulators.discord_emulator import (
    CATEGORY,
    SEND_MESSAGES,
    TEXT,
    VOICE,
    DiscordEmulator,
    EmuChannel,
    EmuInteraction,
    EmuMessage,
    EmuUser,
)

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class DiscordWorld:
    emu: DiscordEmulator
    app: App
    runner: DiscordRunner
    clock: FakeClock
    trainer: EmuUser
    learners: list[EmuUser]
    start: datetime
    settings: Any

    async def command(self, user: EmuUser, path: list[str], **options: Any) -> str:
        inter = await self.emu.slash(user, "peer", path, options, within=10)
        return (await inter.wait_message(within=30)).content

    async def restart(self) -> None:
        """A new process: a fresh client and platform, nothing in memory but the database."""
        await self.runner.stop()
        self.runner = DiscordRunner(self.app.core, self.settings, global_rate=1000.0, guild_ready_timeout=0.05)
        self.app.core.attach(self.runner.platform)
        await self.runner.start()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[DiscordWorld]:
    async with DiscordEmulator(time_scale=0.01) as emu:
        trainer = emu.add_user("tina", roles=[emu.trainer_role_id])
        learners = [emu.add_user(f"learner{i}", dms_open=i != 11) for i in range(12)]
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'peerbot.db'}",
            DISCORD_TOKEN=emu.token,
            DISCORD_GUILD_ID=str(emu.guild_id),
            DISCORD_APPLICATION_ID=str(emu.application_id),
            DISCORD_TRAINER_ROLE="Trainer",
            DISCORD_API_URL=emu.api_url,
        )
        # Discord refuses scheduled events in the past: the session is planned for real tomorrow.
        start = datetime.now(PARIS).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=2)
        clock = FakeClock(datetime.now(UTC))
        app = await build(settings, clock=clock, with_scheduler=False)
        runner = DiscordRunner(app.core, settings, global_rate=1000.0, guild_ready_timeout=0.05)
        app.core.attach(runner.platform)
        await runner.start()
        w = DiscordWorld(emu, app, runner, clock, trainer, learners, start.astimezone(UTC), settings)
        try:
            yield w
        finally:
            await w.runner.stop()
            await app.close()


def breakouts(emu: DiscordEmulator) -> list[EmuChannel]:
    return [c for c in emu.channels.values() if c.type == TEXT and c.name.startswith("peer-s1-g")]


def last_with(messages: list[EmuMessage], prefix: str) -> EmuMessage:
    return next(m for m in reversed(messages) if any(i.startswith(prefix) for i in m.custom_ids()))


async def plan(w: DiscordWorld) -> None:
    emu, t = w.emu, w.trainer
    assert "Only trainers" in await w.command(w.learners[0], ["cohort", "create"], cohort="c1")
    assert "created" in await w.command(t, ["cohort", "create"], cohort="c1", channel=emu.general)
    others = " ".join(f"<@{u.id}>" for u in w.learners[1:])
    await w.command(t, ["cohort", "add"], cohort="c1", member=w.learners[0], others=others)
    local = w.start.astimezone(PARIS)
    reply = await w.command(
        t, ["session", "plan"], cohort="c1", title='Fractions "live"', day=local.date().isoformat(),
        time=local.strftime("%H:%M"), duration="1h", size=4,
    )  # fmt: skip
    assert "Planned session `s1`" in reply, reply


async def test_session_from_plan_to_retention_quiz(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    await plan(w)
    w.clock.set(w.start - timedelta(minutes=10))
    await w.app.core.advance()
    (event,) = emu.events.values()
    assert event.body["name"] == 'Fractions "live"'  # typed options reach the grammar as tokens: quotes intact
    assert datetime.fromisoformat(event.body["scheduled_start_time"]) == w.start
    announce = last_with(emu.messages_in(emu.general), "checkin:in:")
    assert f"<t:{int(w.start.timestamp())}:F>" in announce.content

    for learner in w.learners[:5]:
        answered = await emu.click(learner, announce, "checkin:in:s1")
        assert answered.text.startswith("Checked in") and answered.messages[0].ephemeral
    await w.restart()  # the buttons posted by the previous process must keep working
    for learner in w.learners[5:10]:
        assert (await emu.click(learner, announce, "checkin:in:s1")).text.startswith("Checked in")
    assert (await w.command(w.learners[10], ["checkin"])).startswith("Checked in")
    await emu.react(w.learners[11], announce, "✅")
    await emu.wait_until(lambda: True, within=0.1)
    shown = await w.command(w.trainer, ["session", "show"], session="s1")
    for _ in range(50):
        if "checked in 12" in shown:
            break
        shown = await w.command(w.trainer, ["session", "show"], session="s1")
    assert "checked in 12" in shown, shown

    started = await w.command(w.trainer, ["session", "start"], session="s1")
    assert "started" in started, started
    rooms = breakouts(emu)
    assert len(rooms) == 3
    (category,) = [c for c in emu.channels.values() if c.type == CATEGORY]
    voices = [c for c in emu.channels.values() if c.type == VOICE]
    assert len(voices) == 3 and all(c.parent_id == category.id for c in [*rooms, *voices])
    everyone = {u.id for u in w.learners}
    for room in rooms:
        voice = next(v for v in voices if v.name == room.name)
        inside = {u.id for u in w.learners if emu.can_view(u, room)}
        assert len(inside) == 4
        for channel in (room, voice):
            assert {u.id for u in w.learners if emu.can_view(u, channel)} == inside
            assert emu.can_view(w.trainer, channel)
        intro = emu.messages_in(room)[0]
        assert intro.custom_ids() == ["checkin:in:s1"]
    assert set().union(*({u.id for u in w.learners if emu.can_view(u, r)} for r in rooms)) == everyone

    added = await w.command(
        w.trainer, ["quiz", "add"], session="s1", question="1/2 + 1/4?", correct="3/4", wrong1="2/6", wrong2="1/8"
    )
    assert "added" in added, added
    w.clock.set(w.start + timedelta(minutes=61))
    ended = await w.command(w.trainer, ["session", "end"], session="s1")
    assert "ended" in ended, ended
    assert event.status == 3
    assert not [c for c in emu.channels.values() if c.type == VOICE]
    for room in rooms:  # archived: members still read their breakout, nobody writes in it any more
        readers = [u for u in w.learners if emu.can_view(u, room)]
        assert len(readers) == 4 and not any(emu.permissions_in(u, room) & SEND_MESSAGES for u in readers)

    w.clock.set(w.start + timedelta(hours=2))
    await w.app.core.deliver_due()
    learner = w.learners[0]
    dm = emu.dm_with(learner)
    assert dm is not None
    invite = last_with(list(dm.messages.values()), "survey:open:")
    (open_id,) = invite.custom_ids()
    trainer_dm = emu.dm_with(w.trainer)
    assert trainer_dm is not None
    assert any(f"<@{w.learners[11].id}>" in m.content for m in trainer_dm.messages.values())

    opened = await emu.click(learner, invite, open_id)
    await emu.wait_until(lambda: len([m for m in opened.messages if m.custom_ids()]) == 6)
    items = [m for m in opened.messages if m.custom_ids()]
    assert len(items) == 6 and all(len(m.custom_ids()) == 5 for m in items[:5])
    # The open question first: the core completes the questionnaire with the last rating (see report).
    modal_opened = await emu.click(learner, items[5], items[5].custom_ids()[0])
    assert modal_opened.modal is not None, (modal_opened.callback_type, modal_opened.text)
    assert modal_opened.modal["custom_id"].startswith("survey:submit:")
    recorded = await emu.submit_modal(learner, modal_opened, {"open": "Loved the pair work"})
    assert "recorded" in recorded.text, recorded.text
    for item in items[:5]:
        rated = await emu.click(learner, item, item.custom_ids()[3])
        assert rated.callback_type == 7 and "✔" in item.content
    assert "hank" in items[4].content, items[4].content
    with pytest.raises(AssertionError, match="disabled"):  # an answered item cannot be clicked again
        await emu.click(learner, items[0], items[0].custom_ids()[0])

    w.clock.set(w.start + timedelta(days=15))
    await w.app.core.deliver_due()
    quiz_invite = last_with(list(dm.messages.values()), "quiz:open:")
    quiz = await emu.click(learner, quiz_invite, quiz_invite.custom_ids()[0])
    await emu.wait_until(lambda: any(m.custom_ids() for m in quiz.messages))
    question = next(m for m in quiz.messages if m.custom_ids())
    labels = {cid: comp.get("label") for cid, comp in component_labels(question).items()}
    correct = next(cid for cid, label in labels.items() if label == "3/4")
    scored: EmuInteraction = await emu.click(learner, question, correct)
    assert scored.callback_type == 7
    assert question.content.endswith("1/1."), question.content  # the score, shown in place
    assert component_labels(question)[correct]["style"] == 3  # the picked answer is highlighted


def component_labels(message: EmuMessage) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in message.components:
        for comp in row.get("components", []):
            if "custom_id" in comp:
                out[comp["custom_id"]] = comp
    return out


async def test_learner_cannot_plan_and_help_lists_learner_commands(world: DiscordWorld) -> None:
    reply = await world.command(world.learners[0], ["help"])
    assert "/peer checkin" in reply and "/peer session plan" not in reply
    assert "Only trainers" in await world.command(world.learners[0], ["report"], session="s1")


async def test_autocomplete_forwards_the_typed_prefix(world: DiscordWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, bool]] = []

    async def suggest(actor: Any, kind: str, prefix: str) -> list[str]:
        seen.append((kind, prefix, actor.is_trainer))
        return [name for name in ("s1", "s2", "t9") if name.startswith(prefix)]

    monkeypatch.setattr(world.app.core, "suggest", suggest)  # the core's `CoreAPI.suggest`, as the bot sees it
    choices = await world.emu.autocomplete(world.trainer, "peer", ["session", "start"], "session", {"session": "s"})
    assert [c["value"] for c in choices] == ["s1", "s2"]
    assert seen == [("session", "s", True)]


async def test_autocomplete_answers_in_every_group_from_the_core(world: DiscordWorld) -> None:
    await plan(world)  # cohort `c1`, session `s1`, straight from the core's `suggest`
    emu, t = world.emu, world.trainer
    for path, option, name in (
        (["cohort", "add"], "cohort", "c1"),
        (["session", "plan"], "cohort", "c1"),
        (["quiz", "add"], "session", "s1"),
        (["group", "move"], "session", "s1"),
        (["checkin"], "session", "s1"),
        (["report"], "session", "s1"),
    ):
        choices = await emu.autocomplete(t, "peer", path, option, {option: ""})
        assert [c["value"] for c in choices] == [name], (path, choices)


async def test_slow_work_is_deferred_then_followed_up(world: DiscordWorld) -> None:
    world.runner.client.defer_after = 0.0  # as if the core took longer than Discord's 3 s allow
    await plan(world)
    inter = await world.emu.slash(world.trainer, "peer", ["session", "show"], {"session": "s1"})
    assert inter.callback_type == 5
    shown = await inter.wait_message()
    assert "`s1`" in shown.content and shown.ephemeral


async def test_slow_clicks_are_deferred_and_the_item_still_shows_its_answer(world: DiscordWorld) -> None:
    w, emu, learner = world, world.emu, world.learners[0]
    await plan(w)
    w.clock.set(w.start - timedelta(minutes=10))
    await w.app.core.advance()
    assert (await w.command(learner, ["checkin"])).startswith("Checked in")
    assert "started" in await w.command(w.trainer, ["session", "start"], session="s1")
    w.clock.set(w.start + timedelta(minutes=61))
    assert "ended" in await w.command(w.trainer, ["session", "end"], session="s1")
    w.clock.set(w.start + timedelta(hours=2))
    await w.app.core.deliver_due()
    dm = emu.dm_with(learner)
    assert dm is not None
    invite = last_with(list(dm.messages.values()), "survey:open:")

    w.runner.client.defer_after = 0.0  # as if every core call took longer than Discord's 3 s allow
    opened = await emu.click(learner, invite, invite.custom_ids()[0])
    assert opened.callback_type == 5  # "thinking…", then the items as follow-ups
    await emu.wait_until(lambda: len([m for m in opened.messages if m.custom_ids()]) == 6)
    item = next(m for m in opened.messages if m.custom_ids())
    chosen = item.custom_ids()[3]
    rated = await emu.click(learner, item, chosen)
    assert rated.callback_type == 6  # a deferred update: the item itself is edited afterwards
    await emu.wait_until(lambda: "✔" in item.content)
    buttons = component_labels(item)
    assert buttons[chosen]["style"] == 3 and all(b.get("disabled") for b in buttons.values())


async def test_a_failing_core_call_is_answered_politely_with_a_logged_reference(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(world.app.core, "handle_command", broken)
    with caplog.at_level(logging.ERROR, logger="adapters.common"):
        reply = await world.command(world.trainer, ["cohort", "show"], cohort="c1")
    assert "Something went wrong on my side" in reply and "database unreachable" not in reply, reply
    found = re.search(r"`([0-9a-f]{6})`", reply)
    assert found is not None, reply
    assert any(found[1] in r.getMessage() and r.exc_info for r in caplog.records)


async def test_manage_server_makes_a_trainer_without_the_role(world: DiscordWorld) -> None:
    manager_role = world.emu.add_role("Managers", 1 << 5)  # MANAGE_GUILD
    manager = world.emu.add_user("maud", roles=[manager_role])
    created = await world.command(manager, ["cohort", "create"], cohort="managed")
    assert "created" in created and "Only trainers" not in created
    assert "Only trainers" in await world.command(world.learners[1], ["cohort", "create"], cohort="nope")


async def test_a_trainer_role_trains_its_own_cohorts_and_adds_colleagues(world: DiscordWorld) -> None:
    w, t = world, world.trainer
    await plan(w)
    colleague = w.emu.add_user("cleo", roles=[w.emu.trainer_role_id])
    refused = await w.command(colleague, ["cohort", "show"], cohort="c1")
    assert "You are not a trainer of cohort `c1`" in refused and f"<@{t.id}>" in refused, refused
    added = await w.command(t, ["cohort", "trainers"], action="add", cohort="c1", member=colleague)
    assert added == f"<@{colleague.id}> is now a trainer of `c1`.", added
    assert "*Cohort `c1`*" in await w.command(colleague, ["cohort", "show"], cohort="c1")
    manager_role = w.emu.add_role("Managers", 1 << 5)  # MANAGE_GUILD: administers every cohort
    manager = w.emu.add_user("maud", roles=[manager_role])
    assert "*Cohort `c1`*" in await w.command(manager, ["cohort", "show"], cohort="c1")
    removed = await w.command(manager, ["cohort", "trainers"], action="remove", cohort="c1", member=colleague)
    assert removed == f"<@{colleague.id}> no longer trains `c1`.", removed


async def test_pair_rules_travel_as_two_member_options(world: DiscordWorld) -> None:
    w, t = world, world.trainer
    await plan(w)
    peer = next(c for c in w.emu.guild_commands if c["name"] == "peer")
    cohort = next(o for o in peer["options"] if o["name"] == "cohort")
    for verb in ("apart", "together", "unpair"):
        sub = next(o for o in cohort["options"] if o["name"] == verb)
        assert [(o["name"], o["type"], o.get("required", False)) for o in sub["options"]] == [
            ("cohort", 3, True),
            ("first", 6, True),  # USER: Discord's member picker, not free text
            ("second", 6, True),
        ]
    a, b = w.learners[0], w.learners[1]
    apart = await w.command(t, ["cohort", "apart"], cohort="c1", first=a, second=b)
    assert apart == f"<@{a.id}> and <@{b.id}> will be kept apart in the groups of cohort `c1`.", apart
    shown = await w.command(t, ["cohort", "show"], cohort="c1")
    assert f"*Pair rules*\n• <@{a.id}> and <@{b.id}>: kept apart\n" in shown, shown
    together = await w.command(t, ["cohort", "together"], cohort="c1", first=b, second=a)
    assert "that rule is replaced" in together
    same = await w.command(t, ["cohort", "together"], cohort="c1", first=a, second=a)
    assert "cannot be paired with themselves" in same
    lifted = await w.command(t, ["cohort", "unpair"], cohort="c1", first=a, second=b)
    assert lifted == f"<@{a.id}> and <@{b.id}> are no longer kept together in cohort `c1`."
    refused = await w.command(w.learners[2], ["cohort", "apart"], cohort="c1", first=a, second=b)
    assert "Only trainers" in refused


async def test_group_draft_swap_and_reshuffle_through_discord(world: DiscordWorld) -> None:
    w, t = world, world.trainer
    await plan(w)
    draft = await w.command(t, ["group", "show"], session="s1")
    assert draft.startswith("*Draft groups of `s1`*"), draft
    first_group = draft.splitlines()[1]
    second_group = draft.splitlines()[2]
    a = next(u for u in w.learners if f"<@{u.id}>" in first_group)
    b = next(u for u in w.learners if f"<@{u.id}>" in second_group)
    swapped = await w.command(t, ["group", "swap"], session="s1", first=a, second=b)
    assert f"<@{a.id}> (now group 2)" in swapped and f"<@{b.id}> (now group 1)" in swapped, swapped
    after = await w.command(t, ["group", "show"], session="s1")
    assert f"<@{a.id}>" in after.splitlines()[2] and f"<@{b.id}>" in after.splitlines()[1]
    reshuffled = await w.command(t, ["group", "reshuffle"], session="s1")
    assert reshuffled.startswith("*Draft groups of `s1`*")
    assert "Only trainers" in await w.command(w.learners[0], ["group", "reshuffle"], session="s1")


async def test_quotes_in_typed_options_arrive_intact(world: DiscordWorld) -> None:
    w, t = world, world.trainer
    assert "created" in await w.command(t, ["cohort", "create"], cohort="c1", channel=w.emu.general)
    await w.command(t, ["cohort", "add"], cohort="c1", member=w.learners[0])
    local = w.start.astimezone(PARIS)
    title = 'Fractions "live" with “smart” quotes'
    objectives = 'Say "why" = not just “how”'
    prep = 'Read "chapter 2" first'
    reply = await w.command(
        t, ["session", "plan"], cohort="c1", title=title, day=local.date().isoformat(),
        time=local.strftime("%H:%M"), duration="1h", objectives=objectives, prep=prep,
    )  # fmt: skip
    assert "Planned session `s1`" in reply, reply
    shown = await w.command(t, ["session", "show"], session="s1")
    assert title in shown and f"Objectives: {objectives}" in shown, shown
    async with w.app.db.transaction() as tx:
        stored = (await tx.exec(select(PeerSession).where(PeerSession.short_id == "s1"))).one()
    assert (stored.title, stored.objectives, stored.prep_material) == (title, objectives, prep)


async def test_absence_reason_with_quotes_arrives_intact(world: DiscordWorld) -> None:
    await plan(world)
    learner = world.learners[0]
    reason = 'My "doctor" said “rest”'
    reply = await world.command(learner, ["absent"], session="s1", reason=reason)
    assert "absence from `s1` is recorded" in reply, reply
    async with world.app.db.transaction() as tx:
        row = (
            await tx.exec(
                select(Attendance)
                .join(Member, col(Attendance.member_id) == col(Member.id))
                .where(Member.user_id == str(learner.id))
            )
        ).one()
    assert (row.status, row.absence_reason) == ("excused", reason)


async def test_forget_me_opens_a_confirmation_modal_and_erases_on_submit(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    assert "created" in await w.command(w.trainer, ["cohort", "create"], cohort="forgetful")  # now stored
    opened = await emu.slash(w.trainer, "peer", ["forget-me"], {}, within=10)
    await emu.wait_until(lambda: opened.modal is not None, within=10)
    assert opened.modal is not None and opened.modal["custom_id"] == "forget:submit:me"
    refused = await emu.submit_modal(w.trainer, opened, {"confirm": "no"})
    assert "Type ERASE to confirm" in refused.text, refused.text
    # A Discord modal closes on submit: the person runs the command again.
    again = await emu.slash(w.trainer, "peer", ["forget-me"], {}, within=10)
    await emu.wait_until(lambda: again.modal is not None, within=10)
    done = await emu.submit_modal(w.trainer, again, {"confirm": "ERASE"})
    assert "no longer knows who you are" in done.text, done.text
    async with w.app.db.transaction() as tx:
        assert (await tx.exec(select(Member).where(Member.user_id == str(w.trainer.id)))).first() is None

"""The whole Discord adapter end to end: the real discord.py client (gateway + REST) against the emulator,
the real core and database behind it. Users act only through the gateway (slash commands, clicks, modals,
reactions), exactly as Discord would deliver them."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from adapters.discord import invite
from adapters.discord.runner import DiscordRunner
from bot.app import App, build
from bot.clock import FakeClock
from bot.core.rules import DELIVERY_LEASE
from bot.messages import Button, Message, Reply
from storage.dm_channels import DmChannelStore
from storage.models import Attendance, Member, PeerGroup, PeerSession
from tests.conftest import make_settings
from tests.e2e.test_discord_platform import permission_table
from tests.emulators.discord_emulator import (
    CATEGORY,
    CONNECT,
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
CLIENT_ROUTES = {
    "GET /oauth2/applications/@me",
    "GET /gateway/bot",
    "PUT /applications/{application_id}/guilds/{guild_id}/commands",
}


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
    planned: set[int] = field(default_factory=lambda: {50007})  # refusals a test provokes (closed DMs)

    async def command(self, user: EmuUser, path: list[str], **options: Any) -> str:
        inter = await self.emu.slash(user, "peer", path, options, within=10)
        return (await inter.wait_message(within=30)).content

    async def restart(self) -> None:
        """A new process: a fresh client and platform, nothing in memory but the database."""
        await self.runner.stop()
        self.runner = DiscordRunner(
            self.app.core, self.settings, global_rate=1000.0, guild_ready_timeout=0.05, dm_store=dm_store(self.app)
        )
        self.app.core.attach(self.runner.platform)
        await self.runner.start()


def dm_store(app: App) -> DmChannelStore:
    """What `bot.app` gives the Discord runner: DM channel ids kept in the database."""
    return DmChannelStore(app.db, "discord", str(app.settings.discord_guild_id))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[DiscordWorld]:
    # A gated guild (@everyone sees nothing, a member role does) where the bot holds exactly the invite's permissions.
    async with DiscordEmulator(time_scale=0.01, gated=True, bot_permissions=invite.permissions().value) as emu:
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
        emu.event_clock = clock.now  # scheduled events start and end with the core's time
        app = await build(settings, clock=clock, with_scheduler=False)
        runner = DiscordRunner(app.core, settings, global_rate=1000.0, guild_ready_timeout=0.05, dm_store=dm_store(app))
        app.core.attach(runner.platform)
        await runner.start()
        w = DiscordWorld(emu, app, runner, clock, trainer, learners, start.astimezone(UTC), settings)
        try:
            yield w
        finally:
            await w.runner.stop()
            await app.close()
        # With exactly the invite's permissions, Discord refuses nothing the bot asks but what the test planned.
        refused = [(route, code) for route, code in emu.refusals if code not in w.planned]
        assert not refused, refused
        # Every call the bot made is listed, with its permission, in adapters/README.md (or is discord.py's own
        # login, gateway and command sync, or an interaction answer: no permission needed).
        unlisted = set(emu.stats.by_route) - set(permission_table()) - CLIENT_ROUTES
        assert not {r for r in unlisted if not r.split(" ", 1)[1].startswith(("/interactions/", "/webhooks/"))}


def breakouts(emu: DiscordEmulator) -> list[EmuChannel]:
    return [c for c in emu.channels.values() if c.type == TEXT and c.name.startswith("peer-s1-g")]


def last_with(messages: list[EmuMessage], prefix: str) -> EmuMessage:
    return next(m for m in reversed(messages) if any(i.startswith(prefix) for i in m.custom_ids()))


async def plan(w: DiscordWorld, **extra: str) -> None:
    emu, t = w.emu, w.trainer
    assert "Only trainers" in await w.command(w.learners[0], ["cohort", "create"], cohort="c1")
    assert "created" in await w.command(t, ["cohort", "create"], cohort="c1", channel=emu.general)
    others = " ".join(f"<@{u.id}>" for u in w.learners[1:])
    await w.command(t, ["cohort", "add"], cohort="c1", member=w.learners[0], others=others)
    local = w.start.astimezone(PARIS)
    reply = await w.command(
        t, ["session", "plan"], cohort="c1", title='Fractions "live"', day=local.date().isoformat(),
        time=local.strftime("%H:%M"), duration="1h", size=4, **extra,
    )  # fmt: skip
    assert "Planned session `s1`" in reply, reply


async def test_session_from_plan_to_retention_quiz(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    await plan(w)
    (event,) = emu.events.values()  # in the server's Events list as soon as the session is planned
    assert event.body["name"] == 'Fractions "live"'  # typed options reach the grammar as tokens: quotes intact
    assert datetime.fromisoformat(event.body["scheduled_start_time"]) == w.start
    w.clock.set(w.start - timedelta(minutes=10))
    await w.app.core.advance()
    assert list(emu.events.values()) == [event] and event.status == 1
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
    assert event.status == 3  # started and ended on its own at its scheduled times; nothing refused (180000)
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
    # The score and each question's right answer, shown in place (retrieval practice).
    assert question.content.endswith("✔ Your score: 1/1.\n✅ 1/2 + 1/4? — 3/4"), question.content
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


async def test_dropout_alert_and_an_edited_check_in_through_discord(world: DiscordWorld) -> None:
    """Two sessions held, learner0 at neither: `/peer alerts` lists them with a button; the button opens the
    friendly message prefilled in a modal; the trainer's edited text reaches the learner by DM."""
    w, emu = world, world.emu
    await plan(w)  # session s1 at w.start; s2 a week later
    local = (w.start + timedelta(days=7)).astimezone(PARIS)
    second = await w.command(
        w.trainer, ["session", "plan"], cohort="c1", title="Week 2", day=local.date().isoformat(),
        time=local.strftime("%H:%M"), duration="1h",
    )  # fmt: skip
    assert "Planned session `s2`" in second, second
    for short, start in (("s1", w.start), ("s2", w.start + timedelta(days=7))):
        w.clock.set(start)
        for learner in w.learners[1:5]:
            assert (await w.command(learner, ["checkin"], session=short)).startswith("Checked in")
        assert "started" in await w.command(w.trainer, ["session", "start"], session=short)
        w.clock.set(start + timedelta(hours=1))
        assert "ended" in await w.command(w.trainer, ["session", "end"], session=short)
    inter = await emu.slash(w.trainer, "peer", ["alerts"], {"cohort": "c1"}, within=10)
    listed = await inter.wait_message(within=30)
    absent = w.learners[0]
    assert f"<@{absent.id}>: absent from the last two sessions" in listed.content, listed.content
    nudge = next(i for i in listed.custom_ids() if i.startswith("alerts:nudge:"))
    opened = await emu.click(w.trainer, listed, nudge)
    assert opened.modal is not None
    (row,) = opened.modal["components"]
    assert "we have missed you" in row["components"][0]["value"]  # prefilled, editable
    sent = await emu.submit_modal(w.trainer, opened, {"message": "Shall we talk on Monday?"})
    assert (await sent.wait_message(within=10)).content == f"Sent to <@{absent.id}>."
    dm = emu.dm_with(absent)
    assert dm is not None
    assert [m.content for m in emu.messages_in(dm)][-1] == "Shall we talk on Monday?"


async def test_late_learners_moves_and_swaps_on_a_gated_server(world: DiscordWorld) -> None:
    """Every overwrite change during a session (late check-ins, a move, a swap, the archive) with exactly the
    invite's permissions on a server whose @everyone sees nothing: Discord refuses none (see the fixture)."""
    w, emu = world, world.emu
    await plan(w)
    w.clock.set(w.start - timedelta(minutes=10))
    await w.app.core.advance()
    announce = last_with(emu.messages_in(emu.general), "checkin:in:")
    for learner in w.learners[:8]:
        assert (await emu.click(learner, announce, "checkin:in:s1")).text.startswith("Checked in")
    assert "started" in await w.command(w.trainer, ["session", "start"], session="s1")
    rooms = breakouts(emu)
    assert len(rooms) == 2
    w.clock.set(w.start + timedelta(minutes=2))
    late_button, late_command = w.learners[8], w.learners[9]
    assert (await emu.click(late_button, announce, "checkin:in:s1")).text.startswith("Checked in")
    assert (await w.command(late_command, ["checkin"], session="s1")).startswith("Checked in")
    await emu.wait_until(lambda: all(any(emu.can_view(u, r) for r in rooms) for u in (late_button, late_command)))
    for late in (late_button, late_command):
        (room,) = [r for r in rooms if emu.can_view(late, r)]
        voice = next(c for c in emu.channels.values() if c.type == VOICE and c.name == room.name)
        assert emu.permissions_in(late, voice) & CONNECT

    mover = next(u for u in w.learners[:8] if emu.can_view(u, rooms[0]))
    moved = await w.command(w.trainer, ["group", "move"], session="s1", member=mover, number=2)
    assert "group 2" in moved, moved
    assert emu.can_view(mover, rooms[1]) and not emu.can_view(mover, rooms[0])
    a = next(u for u in w.learners[:8] if emu.can_view(u, rooms[0]))
    b = next(u for u in w.learners[:8] if emu.can_view(u, rooms[1]) and u is not mover)
    swapped = await w.command(w.trainer, ["group", "swap"], session="s1", first=a, second=b)
    assert "now group" in swapped, swapped
    assert emu.can_view(a, rooms[1]) and emu.can_view(b, rooms[0])
    assert not emu.can_view(a, rooms[0]) and not emu.can_view(b, rooms[1])

    w.clock.set(w.start + timedelta(minutes=61))
    assert "ended" in await w.command(w.trainer, ["session", "end"], session="s1")
    assert not [c for c in emu.channels.values() if c.type == VOICE]
    for room in rooms:
        readers = [u for u in w.learners if emu.can_view(u, room)]
        assert readers and not any(emu.permissions_in(u, room) & SEND_MESSAGES for u in readers)


REFERENCE = re.compile(r"`([0-9a-f]{6})`")


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """The reference a person was shown is in an error log line with its traceback."""
    found = REFERENCE.search(text)
    return found is not None and any(found[1] in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_reply_discord_refuses_still_answers_saying_the_work_was_done(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.planned.add(50035)

    async def refused_reply(*args: Any) -> Reply:  # two buttons with one id: Discord refuses the message
        return Reply("ok", message=Message("ok", buttons=(Button("a:b:c", "x"), Button("a:b:c", "y"))))

    monkeypatch.setattr(world.app.core, "handle_command", refused_reply)
    with caplog.at_level(logging.ERROR):
        inter = await world.emu.slash(world.trainer, "peer", ["help"])
    assert inter.messages and inter.messages[0].ephemeral
    assert "What you asked is done, but I could not show you my answer" in inter.text, inter.text
    assert logged(caplog, inter.text)


async def test_an_error_in_the_adapter_itself_is_answered_with_a_logged_reference(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(interaction: Any) -> Any:
        raise RuntimeError("role cache out of date")

    announce = await announce_post(world)
    monkeypatch.setattr(world.runner.client, "actor", broken)
    with caplog.at_level(logging.ERROR):
        inter = await world.emu.slash(world.trainer, "peer", ["help"])
        clicked = await world.emu.click(world.learners[0], announce, "checkin:in:s1")
    for answered in (inter, clicked):
        assert "Something went wrong on my side" in answered.text and answered.messages[0].ephemeral
        assert "role cache" not in answered.text and logged(caplog, answered.text)


async def announce_post(w: DiscordWorld) -> EmuMessage:
    await plan(w)
    w.clock.set(w.start - timedelta(minutes=10))
    await w.app.core.advance()
    return last_with(w.emu.messages_in(w.emu.general), "checkin:in:")


async def test_a_public_reply_after_a_private_deferral_is_public(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def public(*args: Any) -> Reply:
        return Reply("Takeaways recorded, thank you!", public=True)

    monkeypatch.setattr(world.app.core, "handle_command", public)
    world.runner.client.defer_after = 0.0
    inter = await world.emu.slash(world.trainer, "peer", ["help"])
    await world.emu.wait_until(lambda: len(inter.messages) == 2)
    settled, shown = inter.messages
    assert settled.ephemeral and settled.content == "Done."  # Discord keeps the deferral private
    assert not shown.ephemeral and shown.content == "Takeaways recorded, thank you!"


async def test_an_answer_after_the_interaction_token_died_comes_by_dm(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start provisioning many breakouts may outlast the 15-minute token: its answer must not be lost."""
    world.planned.add(10015)
    release = asyncio.Event()

    async def slow(*args: Any) -> Reply:
        await release.wait()
        return Reply("Session `s1` started: 30 breakouts.")

    monkeypatch.setattr(world.app.core, "handle_command", slow)
    world.runner.client.defer_after = 0.0
    inter = await world.emu.slash(world.trainer, "peer", ["session", "start"], {"session": "s1"})
    assert inter.callback_type == 5
    inter.created -= 16 * 60  # the emulator now treats the token as 16 minutes old
    release.set()
    await world.emu.wait_until(lambda: world.emu.dm_with(world.trainer) is not None)
    dm = world.emu.dm_with(world.trainer)
    assert dm is not None
    await world.emu.wait_until(lambda: bool(dm.messages))
    assert [m.content for m in dm.messages.values()] == ["Session `s1` started: 30 breakouts."]


async def test_a_start_the_server_cannot_hold_is_refused_before_anything_is_created(world: DiscordWorld) -> None:
    """Channels an admin created after the bot read the server's layout count too (the gateway's live state): a
    start that would not fit is refused up front instead of failing half-built on 30013."""
    w, emu = world, world.emu
    emu.max_channels = w.runner.platform.max_channels = 20
    announce = await announce_post(w)
    for learner in w.learners[:8]:  # 2 groups of 4: a category and 2 text + voice pairs, 5 channels
        await emu.click(learner, announce, "checkin:in:s1")
    await w.runner.platform.ensure_capacity("earlier", 1)  # an earlier start read the layout: #general only
    client = w.runner.client
    for i in range(15):
        name = f"club-{i}"
        heard = asyncio.ensure_future(client.wait_for("guild_channel_create", check=lambda c, n=name: c.name == n))
        await emu.admin_creates_channel(name)
        await asyncio.wait_for(heard, 5)
    before = set(emu.channels)
    refused = await w.command(w.trainer, ["session", "start"], session="s1")
    assert "no room for 2 breakouts" in refused and "4 free of 20" in refused, refused
    assert set(emu.channels) == before  # nothing half-built
    assert not [code for _, code in emu.refusals]  # refused by the bot itself, not by Discord


async def test_cancelling_sessions_cancels_or_removes_their_events(world: DiscordWorld) -> None:
    """Before its start the event is cancelled; after its start time it has begun on its own, cannot be
    cancelled any more, and is removed instead (nothing Discord refuses, see the fixture)."""
    w, emu = world, world.emu
    await plan(w)
    local = (w.start + timedelta(days=1)).astimezone(PARIS)
    reply = await w.command(
        w.trainer, ["session", "plan"], cohort="c1", title="Decimals", day=local.date().isoformat(),
        time=local.strftime("%H:%M"), duration="1h",
    )  # fmt: skip
    assert "Planned session `s2`" in reply, reply
    first, second = emu.events.values()
    assert "cancelled" in await w.command(w.trainer, ["session", "cancel"], session="s2")
    assert second.status == 4
    w.clock.set(w.start + timedelta(minutes=5))  # s1's start time has passed, nobody started it
    await emu.tick_events()
    assert first.status == 2
    assert "cancelled" in await w.command(w.trainer, ["session", "cancel"], session="s1")
    assert first.id not in emu.events


async def test_a_dm_crashed_after_its_send_is_not_sent_twice_after_the_nonce_window(
    world: DiscordWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after Discord took a questionnaire DM and before the outbox recorded it; it restarts
    after the 5-minute lease, when Discord's nonce no longer dedupes: the retry finds its key in the DM channel
    and sends nothing. Each learner gets one DM, and the restart reopens no DM channel (ids are in the database)."""
    w, emu = world, world.emu
    announce = await announce_post(w)
    present = w.learners[:4]
    for learner in present:
        await emu.click(learner, announce, "checkin:in:s1")
    assert "started" in await w.command(w.trainer, ["session", "start"], session="s1")
    w.clock.set(w.start + timedelta(minutes=61))
    assert "ended" in await w.command(w.trainer, ["session", "end"], session="s1")
    w.clock.set(w.start + timedelta(hours=2))
    real_mark = w.app.core.outbox._mark

    async def crash_after_send(delivery_id: int, token: int, state: str, **kw: Any) -> bool:
        if state == "sent":
            raise SystemExit("the process died between the send and its bookkeeping")
        return await real_mark(delivery_id, token, state, **kw)

    monkeypatch.setattr(w.app.core.outbox, "_mark", crash_after_send)
    with pytest.raises(SystemExit):
        await w.app.core.deliver_due()
    crashed = [u for u in present if (dm := emu.dm_with(u)) is not None and dm.messages]
    assert len(crashed) == 1  # sent, never recorded
    monkeypatch.setattr(w.app.core.outbox, "_mark", real_mark)

    opened = emu.stats.by_route.get("POST /users/@me/channels", 0)
    await w.restart()
    assert emu.nonce_window < DELIVERY_LEASE.total_seconds()
    later = emu.clock() + DELIVERY_LEASE.total_seconds() + 60
    emu.clock = lambda: later  # past the lease, so past Discord's nonce window too
    w.clock.set(w.start + timedelta(hours=2) + DELIVERY_LEASE + timedelta(minutes=1))
    await w.app.core.deliver_due()
    for learner in present:
        dm = emu.dm_with(learner)
        assert dm is not None
        invites = [m for m in dm.messages.values() if any(i.startswith("survey:open:") for i in m.custom_ids())]
        assert len(invites) == 1, (learner.name, [m.content for m in dm.messages.values()])
    # Only the three learners not reached before the crash had a DM opened: the crashed one's id came from the db.
    assert emu.stats.by_route.get("POST /users/@me/channels", 0) == opened + len(present) - 1


async def started_with_wrapup(w: DiscordWorld) -> tuple[EmuChannel, EmuMessage]:
    """s1 running with 2 groups of 4, at its wrap-up: a breakout and its "Share takeaways" post."""
    announce = await announce_post(w)
    for learner in w.learners[:8]:
        await w.emu.click(learner, announce, "checkin:in:s1")
    assert "started" in await w.command(w.trainer, ["session", "start"], session="s1")
    w.clock.set(w.start + timedelta(minutes=52))
    await w.app.core.advance()
    room = breakouts(w.emu)[0]
    return room, last_with(w.emu.messages_in(room), "takeaways:open:")


async def test_two_members_of_a_group_fill_the_takeaways_form_at_once(world: DiscordWorld) -> None:
    """discord.py keeps open modals by custom_id: with one id per form, the second submission was dropped."""
    w, emu = world, world.emu
    room, post = await started_with_wrapup(w)
    ana, ben = [u for u in w.learners[:8] if emu.can_view(u, room)][:2]
    opened = [await emu.click(person, post, post.custom_ids()[0]) for person in (ana, ben)]
    ids = [o.modal["custom_id"] for o in opened if o.modal is not None]
    assert len(set(ids)) == 2 and all(i.startswith("takeaways:submit:") for i in ids)
    for person, form, text in zip((ana, ben), opened, ("Fractions are parts", "Halves add up"), strict=True):
        submitted = await emu.submit_modal(person, form, {"takeaways": text})
        await submitted.wait_message()
        assert "Takeaways recorded" in submitted.text, submitted.text
    async with w.app.db.transaction() as tx:
        (group,) = (await tx.exec(select(PeerGroup).where(PeerGroup.channel_id == str(room.id)))).all()
    assert group.takeaways.splitlines() == ["Fractions are parts", "Halves add up"]


async def test_a_form_opened_before_a_restart_is_answered_with_the_text_to_resend(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    room, post = await started_with_wrapup(w)
    ana = next(u for u in w.learners[:8] if emu.can_view(u, room))
    opened = await emu.click(ana, post, post.custom_ids()[0])
    await w.restart()  # the new process never opened that modal
    submitted = await emu.submit_modal(ana, opened, {"takeaways": "Fractions are parts\nof a whole"})
    assert submitted.messages[0].ephemeral
    assert "open it again" in submitted.text and "> Fractions are parts\n> of a whole" in submitted.text


async def test_check_ins_by_reaction_made_while_the_bot_was_down_are_read_back(world: DiscordWorld) -> None:
    """A ✅ made during a restart never reaches the new session's gateway: after its fresh login the bot reads
    the reactions of the open check-in post and records them as `recovered` (Discord gives no reaction time)."""
    w, emu = world, world.emu
    announce = await announce_post(w)
    awake, asleep = w.learners[0], w.learners[1]
    await emu.react(awake, announce, "✅")
    for _ in range(200):  # heard live through the gateway, before the process goes down
        if "checked in 1" in await w.command(w.trainer, ["session", "show"], session="s1"):
            break
        await asyncio.sleep(0.01)
    await w.runner.stop()  # the process is down ...
    await emu.react(asleep, announce, "✅")  # ... when this learner checks in
    await w.restart()
    await asyncio.wait_for(w.runner.client.reactions_recovered.wait(), 10)
    async with w.app.db.transaction() as tx:
        rows = (
            await tx.exec(
                select(Member.user_id, Attendance.method, Attendance.status).join(
                    Attendance, col(Attendance.member_id) == col(Member.id)
                )
            )
        ).all()
    methods = {user: method for user, method, _status in rows}
    assert methods == {str(awake.id): "reaction", str(asleep.id): "recovered"}  # the live one is kept as it was


async def test_the_whole_cycle_on_a_gated_server_with_exactly_the_invites_permissions(world: DiscordWorld) -> None:
    """The issue's acceptance run, end to end through the real discord.py client on a server whose @everyone
    sees nothing, the bot holding exactly what `peerbot discord-invite-url` asks for; the fixture fails on any
    call Discord refuses (but closed DMs), and the emulator on any interaction not answered within 3 s."""
    w, emu, t = world, world.emu, world.trainer
    await plan(w, prep="Read chapter 2")
    (event,) = emu.events.values()  # plan: the event is in the server's Events list at once
    w.clock.set(w.start - timedelta(days=1))  # prep
    await w.app.core.advance()
    prep = last_with(emu.messages_in(emu.general), "prep:done:")
    assert (await emu.click(w.learners[0], prep, "prep:done:s1")).messages[0].ephemeral
    await emu.react(w.learners[1], prep, "✅")

    w.clock.set(w.start - timedelta(minutes=10))  # check-in: button, command, ✅ live and ✅ during a restart
    await w.app.core.advance()
    announce = last_with(emu.messages_in(emu.general), "checkin:in:")
    for learner in w.learners[:5]:
        assert (await emu.click(learner, announce, "checkin:in:s1")).text.startswith("Checked in")
    assert (await w.command(w.learners[5], ["checkin"], session="s1")).startswith("Checked in")
    await emu.react(w.learners[6], announce, "✅")
    for _ in range(200):
        if "checked in 7" in await w.command(t, ["session", "show"], session="s1"):
            break
        await asyncio.sleep(0.01)
    await w.runner.stop()
    await emu.react(w.learners[7], announce, "✅")
    await w.restart()
    await asyncio.wait_for(w.runner.client.reactions_recovered.wait(), 10)
    assert "checked in 8" in await w.command(t, ["session", "show"], session="s1")

    assert "started" in await w.command(t, ["session", "start"], session="s1")  # start: 2 groups of 4
    rooms = breakouts(emu)
    assert len(rooms) == 2
    w.clock.set(w.start + timedelta(minutes=3))  # two late learners join breakouts
    assert (await emu.click(w.learners[8], announce, "checkin:in:s1")).text.startswith("Checked in")
    assert (await w.command(w.learners[9], ["checkin"], session="s1")).startswith("Checked in")
    await emu.wait_until(lambda: all(any(emu.can_view(u, r) for r in rooms) for u in w.learners[8:10]))
    mover = next(u for u in w.learners[:8] if emu.can_view(u, rooms[0]))  # a move and a swap
    assert "group 2" in await w.command(t, ["group", "move"], session="s1", member=mover, number=2)
    a = next(u for u in w.learners[:8] if emu.can_view(u, rooms[0]))
    b = next(u for u in w.learners[:8] if emu.can_view(u, rooms[1]) and u is not mover)
    assert "now group" in await w.command(t, ["group", "swap"], session="s1", first=a, second=b)
    assert emu.can_view(a, rooms[1]) and emu.can_view(b, rooms[0])

    w.clock.set(w.start + timedelta(minutes=52))  # wrap-up: takeaways from two members of one group
    await w.app.core.advance()
    post = last_with(emu.messages_in(rooms[0]), "takeaways:open:")
    writers = [u for u in w.learners if emu.can_view(u, rooms[0])][:2]
    opened = [await emu.click(u, post, post.custom_ids()[0]) for u in writers]
    for person, form, text in zip(writers, opened, ("Parts of a whole", "Halves add up"), strict=True):
        submitted = await emu.submit_modal(person, form, {"takeaways": text})
        await submitted.wait_message()
        assert "Takeaways recorded" in submitted.text

    w.clock.set(w.start + timedelta(minutes=61))  # end: breakouts archived, the event ended on its own
    assert "ended" in await w.command(t, ["session", "end"], session="s1")
    assert not [c for c in emu.channels.values() if c.type == VOICE] and event.status == 3
    for room in rooms:
        readers = [u for u in w.learners if emu.can_view(u, room)]
        assert readers and not any(emu.permissions_in(u, room) & SEND_MESSAGES for u in readers)

    later = (w.start + timedelta(hours=3)).astimezone(PARIS)  # cancel another session after its start time
    reply = await w.command(
        t, ["session", "plan"], cohort="c1", title="Decimals", day=later.date().isoformat(),
        time=later.strftime("%H:%M"), duration="1h",
    )  # fmt: skip
    assert "Planned session `s2`" in reply, reply
    second = next(e for e in emu.events.values() if e.body["name"] == "Decimals")
    w.clock.set(w.start + timedelta(hours=3, minutes=5))
    await emu.tick_events()
    assert second.status == 2
    assert "cancelled" in await w.command(t, ["session", "cancel"], session="s2")
    assert second.id not in emu.events

    nextday = (w.start + timedelta(days=1)).astimezone(PARIS)  # a nearly full server: refused up front
    reply = await w.command(
        t, ["session", "plan"], cohort="c1", title="Ratios", day=nextday.date().isoformat(),
        time=nextday.strftime("%H:%M"), duration="1h", size=4,
    )  # fmt: skip
    assert "Planned session `s3`" in reply, reply
    w.clock.set(w.start + timedelta(days=1) - timedelta(minutes=10))
    await w.app.core.advance()
    third = last_with(emu.messages_in(emu.general), "checkin:in:s3")
    for learner in w.learners[:8]:
        await emu.click(learner, third, "checkin:in:s3")
    emu.max_channels = w.runner.platform.max_channels = len(emu.channels) + 8
    client = w.runner.client
    for i in range(4):  # admins made channels after the bot read the layout
        name = f"club-{i}"
        heard = asyncio.ensure_future(client.wait_for("guild_channel_create", check=lambda c, n=name: c.name == n))
        await emu.admin_creates_channel(name)
        await asyncio.wait_for(heard, 5)
    before = set(emu.channels)
    refused = await w.command(t, ["session", "start"], session="s3")
    assert "no room for 2 breakouts" in refused, refused
    assert set(emu.channels) == before


async def test_forget_me_opens_a_confirmation_modal_and_erases_on_submit(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    assert "created" in await w.command(w.trainer, ["cohort", "create"], cohort="forgetful")  # now stored
    opened = await emu.slash(w.trainer, "peer", ["forget-me"], {}, within=10)
    await emu.wait_until(lambda: opened.modal is not None, within=10)
    assert opened.modal is not None and opened.modal["custom_id"].startswith("forget:submit:me")
    refused = await emu.submit_modal(w.trainer, opened, {"confirm": "no"})
    assert "Type ERASE to confirm" in refused.text, refused.text
    # A Discord modal closes on submit: the person runs the command again.
    again = await emu.slash(w.trainer, "peer", ["forget-me"], {}, within=10)
    await emu.wait_until(lambda: again.modal is not None, within=10)
    done = await emu.submit_modal(w.trainer, again, {"confirm": "ERASE"})
    assert "no longer knows who you are" in done.text, done.text
    async with w.app.db.transaction() as tx:
        assert (await tx.exec(select(Member).where(Member.user_id == str(w.trainer.id)))).first() is None


async def test_peer_dashboard_dms_a_sign_in_link_for_the_discord_trainer(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    w.app.settings.dashboard = "on"  # the same settings object the core reads
    reply = await w.command(w.trainer, ["dashboard"])
    assert "sign-in link to the dashboard by DM" in reply, reply
    await emu.wait_until(lambda: emu.dm_with(w.trainer) is not None)
    dm = emu.dm_with(w.trainer)
    assert dm is not None
    text = list(dm.messages.values())[-1].content
    found = re.search(r"/dashboard/login\?token=([A-Za-z0-9_.-]+)", text)
    assert found is not None, text
    viewer = await w.app.core.dashboard.redeem(found.group(1))
    assert (viewer.platform, viewer.user_id) == ("discord", str(w.trainer.id))
    assert "Only trainers" in await w.command(w.learners[0], ["dashboard"])

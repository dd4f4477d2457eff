"""The sharing and tutoring formats through the real discord.py client against the Discord emulator: the timer is
one message edited with PATCH, the agreement accepted with a button, the meeting answered in DM."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e.test_discord_app import DiscordWorld, breakouts, last_with, plan
from tests.e2e.test_discord_app import world as discord_world  # noqa: F401  (the fixture)


async def started(w: DiscordWorld, **extra: str) -> None:
    await plan(w, **extra)
    w.clock.set(w.start - timedelta(minutes=10))
    await w.app.core.advance()
    announce = last_with(w.emu.messages_in(w.emu.general), "checkin:in:")
    for learner in w.learners[:8]:
        await w.emu.click(learner, announce, "checkin:in:s1")
    w.clock.set(w.start)
    assert "started" in await w.command(w.trainer, ["session", "start"], session="s1")


async def test_sharing_timer_is_edited_in_place_on_discord(discord_world: DiscordWorld) -> None:  # noqa: F811
    w, emu = discord_world, discord_world.emu
    await started(w, format="sharing")
    room = breakouts(emu)[0]
    [timer] = [m for m in emu.messages_in(room) if "🎙️" in m.content]
    assert "speaking now" in timer.content and timer.edited is None
    w.clock.set(w.start + timedelta(minutes=13))
    await w.app.core.sweep()
    [timer] = [m for m in emu.messages_in(room) if "🎙️" in m.content]
    assert timer.edited is not None and "— done" in timer.content


async def test_tutoring_agreement_and_meeting_on_discord(discord_world: DiscordWorld) -> None:  # noqa: F811
    w, emu = discord_world, discord_world.emu
    await started(w, format="tutoring", objectives="Fractions")
    room = breakouts(emu)[0]
    post = last_with(emu.messages_in(room), "tutoring:accept:")
    learner = next(u for u in w.learners[:8] if emu.can_view(u, room))
    answered = await emu.click(learner, post, post.custom_ids()[0])
    assert answered.text.startswith("Accepted"), answered.text

    w.clock.set(w.start + timedelta(minutes=61))
    assert "ended" in await w.command(w.trainer, ["session", "end"], session="s1")
    await w.app.core.deliver_due()
    question = last_with(emu.messages_in(emu.dm_channels[learner.id]), "tutoring:met:")
    assert len(question.custom_ids()) == 7
    met = await emu.click(learner, question, question.custom_ids()[0])
    assert "did not meet" in met.text, met.text
    report = await w.command(w.trainer, ["report"], session="s1")
    assert "Tutoring agreements" in report and "did not meet" in report


async def test_peer_review_through_discord_modals(discord_world: DiscordWorld) -> None:  # noqa: F811
    w, emu = discord_world, discord_world.emu
    await plan(w, format="review", reviewers=1)
    assert "Rubric" in await w.command(w.trainer, ["review", "criteria"], session="s1", criterion1="Clarity")
    writers = w.learners[:3]
    for number, learner in enumerate(writers):
        inter = await emu.slash(learner, "peer", ["submit"], {"session": "s1"}, within=10)
        assert inter.modal is not None and inter.modal["custom_id"].startswith("review:hand:s1")
        handed = await emu.submit_modal(learner, inter, {"work": f"Essay {number}"})
        await handed.wait_message()
        assert "handed in" in handed.text, handed.text
    w.clock.set(w.start)
    assert "started" in await w.command(w.trainer, ["session", "start"], session="s1")
    await w.app.core.deliver_due()
    reviewer = writers[0]
    request = last_with(emu.messages_in(emu.dm_channels[reviewer.id]), "review:open:")
    assert "> Essay" in request.content
    opened = await emu.click(reviewer, request, request.custom_ids()[0])
    assert opened.modal is not None
    sent = await emu.submit_modal(reviewer, opened, {"c1": "3", "comment": "Clear"})
    await sent.wait_message()
    assert "Review sent" in sent.text, sent.text
    w.clock.set(w.start + timedelta(minutes=61))
    assert "ended" in await w.command(w.trainer, ["session", "end"], session="s1")
    await w.app.core.deliver_due()
    report = await w.command(w.trainer, ["report"], session="s1")
    assert "1 of 3 review(s) done" in report, report

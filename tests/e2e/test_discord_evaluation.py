"""The trainer's questionnaire, the second retention quiz and the behavioural follow-up through the real discord.py
client against the emulator: a modal of one text input (within Discord's 5 components, 45-character labels and
4,000-character values), and questionnaires shown one item at a time in DM."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e import test_discord_app
from tests.e2e.test_discord_app import DiscordWorld, component_labels, last_with, plan

world = test_discord_app.world  # the same gated guild, client and database

CUSTOM = (
    "likert: The pace suited me. // Le rythme me convenait.\n"
    "choice: Which phase helped most? [Preparation | Exchange | Synthesis]\n"
    "text: One thing you will try? // Une chose que vous essaierez ?"
)


async def held(w: DiscordWorld, count: int) -> None:
    """s1 ran with the first `count` learners checked in and has ended."""
    w.clock.set(w.start + timedelta(minutes=1))
    await w.app.core.advance()
    for learner in w.learners[:count]:
        assert (await w.command(learner, ["checkin"], session="s1")).startswith("Checked in")
    w.clock.set(w.start + timedelta(minutes=61))
    assert "ended" in await w.command(w.trainer, ["session", "end"], session="s1")


async def test_the_questionnaire_editor_is_one_modal_and_its_items_reach_the_dm(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    await plan(w)
    opened = await emu.slash(w.trainer, "peer", ["questionnaire", "edit"], {"cohort": "c1"}, within=10)
    await emu.wait_until(lambda: opened.modal is not None, within=10)
    assert opened.modal is not None and opened.modal["custom_id"].startswith("template:save:")
    refused = await emu.submit_modal(w.trainer, opened, {"items": "likert: Only one"})
    assert "3 to 10 items; this one has 1" in refused.text and "Your text is kept" in refused.text, refused.text
    again = await emu.slash(w.trainer, "peer", ["questionnaire", "edit"], {"cohort": "c1"}, within=10)
    await emu.wait_until(lambda: again.modal is not None, within=10)
    saved = await emu.submit_modal(w.trainer, again, {"items": CUSTOM})
    assert "3 items" in saved.text, saved.text
    learner_try = await w.command(w.learners[0], ["questionnaire", "edit"], cohort="c1")
    assert "Only trainers" in learner_try

    await held(w, 4)
    w.clock.set(w.start + timedelta(hours=2))
    await w.app.core.deliver_due()
    learner = w.learners[0]
    dm = emu.dm_with(learner)
    assert dm is not None
    invite = last_with(list(dm.messages.values()), "survey:open:")
    assert "3 questions" in invite.content, invite.content
    clicked = await emu.click(learner, invite, invite.custom_ids()[0])
    await emu.wait_until(lambda: len([m for m in clicked.messages if m.custom_ids()]) == 3)
    likert, choice, text = [m for m in clicked.messages if m.custom_ids()]
    assert "The pace suited me." in likert.content and len(likert.custom_ids()) == 5
    labels = [c.get("label") for c in component_labels(choice).values()]
    assert labels == ["Preparation", "Exchange", "Synthesis"]
    modal = await emu.click(learner, text, text.custom_ids()[0])
    assert modal.modal is not None
    assert "recorded" in (await emu.submit_modal(learner, modal, {"i3": "Pairing"})).text
    assert (await emu.click(learner, choice, choice.custom_ids()[1])).callback_type == 7
    assert (await emu.click(learner, likert, likert.custom_ids()[4])).callback_type == 7
    report = await w.command(w.trainer, ["report"], session="s1")
    assert "Which phase helped most?: Exchange 1" in report and "The pace suited me.: 5.0" in report, report


async def test_follow_up_and_second_quiz_arrive_once_in_dm(world: DiscordWorld) -> None:
    w, emu = world, world.emu
    await plan(w, second_retention=3)
    added = await w.command(w.trainer, ["quiz", "add"], session="s1", question="2+2?", correct="4", wrong1="5")
    assert "added" in added, added
    await held(w, 2)
    observer = w.learners[9]
    planned = await w.command(w.trainer, ["followup", "plan"], session="s1", weeks=1, observer=observer)
    assert "1 week(s) after the session" in planned and f"<@{observer.id}>" in planned, planned

    w.clock.set(w.start + timedelta(days=8, hours=1))
    await w.app.core.deliver_due()
    await w.app.core.deliver_due()  # a second pass sends nothing more
    learner = w.learners[0]
    dm = emu.dm_with(learner)
    assert dm is not None
    invites = [m for m in dm.messages.values() if "🔁" in m.content]
    assert len(invites) == 1
    opened = await emu.click(learner, invites[0], invites[0].custom_ids()[0])
    await emu.wait_until(lambda: len([m for m in opened.messages if m.custom_ids()]) == 3)
    applied, _obstacles, rating = [m for m in opened.messages if m.custom_ids()]
    modal = await emu.click(learner, applied, applied.custom_ids()[0])
    assert modal.modal is not None and len(modal.modal["components"]) == 1
    assert "recorded" in (await emu.submit_modal(learner, modal, {"applied": "Fractions daily"})).text
    assert (await emu.click(learner, rating, rating.custom_ids()[3])).callback_type == 7
    observer_dm = emu.dm_with(observer)
    assert observer_dm is not None
    about = [m for m in observer_dm.messages.values() if "🔁" in m.content]
    assert len(about) == 2 and all("observer" in m.content for m in about)

    # Three weeks after the end: the second quiz, with the one question this learner never answered.
    w.clock.set(w.start + timedelta(days=22, hours=1))
    await w.app.core.deliver_due()
    second = [m for m in dm.messages.values() if "to practise again" in m.content]
    assert len(second) == 1 and "1 question(s)" in second[0].content
    quiz = await emu.click(learner, second[0], second[0].custom_ids()[0])
    await emu.wait_until(lambda: any(m.custom_ids() for m in quiz.messages))
    question = next(m for m in quiz.messages if m.custom_ids())
    right = next(cid for cid, comp in component_labels(question).items() if comp.get("label") == "4")
    assert (await emu.click(learner, question, right)).callback_type == 7
    assert "Your score: 1/1." in question.content, question.content
    report = await w.command(w.trainer, ["report"], session="s1")
    assert "Second retention quiz: 1 answer(s), mean score 100%" in report, report
    assert "Follow-up: 1 learner answer(s), self-rating 4.0" in report, report

"""The trainer's questionnaire and the behavioural follow-up through slack-bolt against the Slack emulator: the
editor is a modal with one multi-line input (within Block Kit's 3,000 characters), a mistake is shown under
the field with the modal still open, and the follow-up DM opens its form as a modal."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e import test_slack_app
from tests.e2e.test_slack_app import T0, SlackWorld, plan_session

world = test_slack_app.world  # the same workspace, app and signed HTTP endpoint

CUSTOM = (
    "likert: The pace suited me. // Le rythme me convenait.\n"
    "choice: Which phase helped most? [Preparation | Exchange | Synthesis]\n"
    "text: One thing you will try? // Une chose que vous essaierez ?"
)


async def test_the_questionnaire_editor_modal_names_the_faulty_line_then_saves(world: SlackWorld) -> None:
    w = world
    await plan_session(w)
    await w.command(w.trainer, "questionnaire edit c1")
    (modal,) = w.emu.views.values()
    assert modal.user == w.trainer and modal.view["callback_id"].startswith("template:save:")
    view = {**modal.view, "id": modal.id}
    (field,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["element"]["multiline"] and len(field["element"]["initial_value"].splitlines()) == 6
    assert any("choice:" in b.get("text", {}).get("text", "") for b in view["blocks"] if b["type"] == "section")

    bad = (await w.driver.view_submission(w.trainer, view, {"items": "likert: A\nquestion: B\ntext: C"})).json()
    assert bad["response_action"] == "errors" and "Line 2 should start with" in bad["errors"]["items"], bad
    done = (await w.driver.view_submission(w.trainer, view, {"items": CUSTOM})).json()
    assert done["response_action"] == "update" and "3 items" in done["view"]["blocks"][0]["text"]["text"], done
    ack, form = await w.command(w.learners[0], "questionnaire edit c1")
    assert "Only trainers" in w.final_text(ack, form)


async def test_the_follow_up_dm_opens_a_modal_for_the_learner(world: SlackWorld) -> None:
    w = world
    await plan_session(w)
    await w.command(w.trainer, "session start s1")
    w.clock.set(T0 + timedelta(minutes=5))
    learner = w.learners[0]
    ack, form = await w.command(learner, "checkin s1")
    assert "Checked in" in w.final_text(ack, form)
    await w.command(w.trainer, "session end s1")
    ack, form = await w.command(w.trainer, f"followup plan s1 2 observer=<@{w.learners[7]}|x>")
    assert "2 week(s) after the session" in w.final_text(ack, form)
    w.clock.set(T0 + timedelta(weeks=2, hours=2))
    await w.app.core.deliver_due()
    await w.app.core.deliver_due()
    dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == learner)
    invites = [m for m in w.emu.history(dm.id) if "🔁" in m.text]
    assert len(invites) == 1
    open_id = invites[0].blocks[-1]["elements"][0]["action_id"]
    assert open_id.startswith("followup:open:")
    resp = await w.driver.block_action(learner, open_id, channel_id=dm.id, message_ts=invites[0].ts)
    assert resp.status == 200
    await w.runner.bot.drain()
    (modal,) = [v for v in w.emu.views.values() if v.view["callback_id"].startswith("followup:submit:")]
    view = {**modal.view, "id": modal.id}
    kinds = [b["element"]["type"] for b in view["blocks"] if b["type"] == "input"]
    assert kinds == ["plain_text_input", "plain_text_input", "radio_buttons"]
    sent = (await w.driver.view_submission(learner, view, {"applied": "Fractions daily", "rating": "4"})).json()
    assert sent["response_action"] == "update", sent
    observer_dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == w.learners[7])
    assert any("observer" in m.text for m in w.emu.history(observer_dm.id))

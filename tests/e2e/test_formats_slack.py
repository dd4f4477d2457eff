"""The sharing and tutoring formats through the real slack-bolt app against the Slack emulator: the timer is one
message edited with chat.update, the agreement is accepted with a signed click, the meeting answered by DM."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.conftest import T0
from tests.e2e.test_slack_app import SlackWorld, close_world, make_world, mentions


async def start(w: SlackWorld, extra: str) -> list[str]:
    await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>")
    await w.command(w.trainer, f"cohort add c1 {mentions(w.learners)}")
    plan = f'session plan c1 "Practices" 2026-03-02 10:00 1h groups_from=enrolled {extra}'
    assert "Planned session `s1`" in w.final_text(*await w.command(w.trainer, plan))
    w.clock.set(T0 + timedelta(hours=1))  # 10:00 Paris
    assert "started" in w.final_text(*await w.command(w.trainer, "session start s1"))
    return sorted(c.id for c in w.emu.channels.values() if c.name.startswith("peer-s1-g"))


async def test_sharing_timer_is_one_message_updated_in_place(tmp_path: Path) -> None:
    w = await make_world(tmp_path)
    try:
        rooms = await start(w, "format=sharing size=4")
        assert len(rooms) == 2
        timers = [m for m in w.emu.history(rooms[0]) if m.text.startswith("🎙️")]
        assert len(timers) == 1 and not timers[0].edited and "speaking now" in str(timers[0].blocks)
        w.clock.set(T0 + timedelta(hours=1, minutes=13))
        await w.app.core.sweep()
        await w.app.core.sweep()
        timers = [m for m in w.emu.history(rooms[0]) if m.text.startswith("🎙️")]
        assert len(timers) == 1 and timers[0].edited and "— done" in str(timers[0].blocks)
    finally:
        await close_world(w)


async def test_tutoring_agreement_click_and_meeting_answer(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=4)
    try:
        rooms = await start(w, 'format=tutoring objectives="Fractions"')
        room = w.emu.channels[rooms[0]]
        post = next(m for m in w.emu.history(room.id) if "tutoring:accept:" in str(m.blocks))
        accept = next(e["action_id"] for b in post.blocks if b["type"] == "actions" for e in b["elements"])
        learner = next(u for u in w.learners if u in room.members)
        action = w.driver.block_action_payload(learner, accept, channel_id=room.id, message_ts=post.ts)
        assert (await w.driver._interactive(action)).status == 200
        await w.runner.bot.drain()
        answers = w.emu.responses_to(action["response_url"])
        assert answers and "Accepted" in answers[-1]["text"]

        w.clock.set(T0 + timedelta(hours=2))
        await w.command(w.trainer, "session end s1")
        await w.app.core.deliver_due()
        dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == learner)
        question = w.emu.history(dm.id)[-1]
        met = [e["action_id"] for b in question.blocks if b["type"] == "actions" for e in b["elements"]]
        assert met[0].startswith("tutoring:met:") and len(met) == 7
        action = w.driver.block_action_payload(learner, met[2], channel_id=dm.id, message_ts=question.ts)
        assert (await w.driver._interactive(action)).status == 200
        await w.runner.bot.drain()
        assert "30 min" in w.emu.responses_to(action["response_url"])[-1]["text"]
        report = w.final_text(*await w.command(w.trainer, "report s1"))
        assert "Tutoring agreements" in report and "met 30 min" in report
    finally:
        await close_world(w)


async def test_peer_review_through_slack_modals(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=4)
    try:
        await w.command(w.trainer, f"cohort create c1 <#{w.general}|general>")
        await w.command(w.trainer, f"cohort add c1 {mentions(w.learners)}")
        plan = 'session plan c1 "Essays" 2026-03-02 10:00 1h groups_from=enrolled format=review reviewers=2'
        assert "Planned session `s1`" in w.final_text(*await w.command(w.trainer, plan))
        assert "Rubric" in w.final_text(*await w.command(w.trainer, 'review criteria s1 "Clarity" "Evidence"'))
        for number, learner in enumerate(w.learners):
            await w.command(learner, "submit s1")
            (modal,) = [v for v in w.emu.views.values() if v.user == learner]
            assert modal.view["callback_id"] == "review:hand:s1"
            sent = await w.driver.view_submission(learner, {**modal.view, "id": modal.id}, {"work": f"Essay {number}"})
            assert sent.status == 200 and sent.json().get("response_action") != "errors", sent.text
        w.clock.set(T0 + timedelta(hours=1))
        assert "started" in w.final_text(*await w.command(w.trainer, "session start s1"))
        await w.app.core.deliver_due()

        reviewer = w.learners[0]
        dm = next(c for c in w.emu.channels.values() if c.is_im and c.im_user == reviewer)
        requests = [m for m in w.emu.history(dm.id) if "review:open:" in str(m.blocks)]
        assert len(requests) == 2 and "> Essay" in str(requests[0].blocks)
        button = next(e["action_id"] for b in requests[0].blocks if b["type"] == "actions" for e in b["elements"])
        before = set(w.emu.views)
        assert (
            await w.driver.block_action(reviewer, button, channel_id=dm.id, message_ts=requests[0].ts)
        ).status == 200
        await w.runner.bot.drain()
        (rubric,) = [w.emu.views[v] for v in set(w.emu.views) - before]
        view = {**rubric.view, "id": rubric.id}
        wrong = (await w.driver.view_submission(reviewer, view, {"c1": "9", "c2": "3", "comment": "Good"})).json()
        assert wrong["response_action"] == "errors" and "c1" in wrong["errors"]
        done = await w.driver.view_submission(reviewer, view, {"c1": "4", "c2": "3", "comment": "Good"})
        assert done.status == 200 and done.json().get("response_action") != "errors", done.text

        w.clock.set(T0 + timedelta(hours=2))
        await w.command(w.trainer, "session end s1")
        await w.app.core.deliver_due()
        report = w.final_text(*await w.command(w.trainer, "report s1"))
        assert "4 of 4 learner(s) handed in their work; 1 of 8 review(s) done" in report, report
    finally:
        await close_world(w)

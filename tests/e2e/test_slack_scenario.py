"""The Slack issue's scenario, whole, through the real slack-bolt and slack_sdk: a trainer plans and starts a
session for 12 learners, breakouts appear with the right members, 10 check in by button and 1 by command,
the session ends, the questionnaire DMs go out and are answered through the modal, the retention quiz is
scored.

Every step is a signed request from the driver into the Bolt app, and everything the app does on Slack
lands in the emulator; only `advance()` / `deliver_due()` are called directly, playing the scheduler's part
with the fake clock. The database is read, never written, to check what was recorded as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from storage.models import (
    Answer,
    Attendance,
    Delivery,
    GroupMembership,
    Member,
    PeerGroup,
    QuestionnaireItem,
    Submission,
)
from tests.conftest import T0
from tests.e2e.test_slack_app import SlackWorld, close_world, make_world, plan_session
from tests.emulators.slack_api import Channel, View
from tests.emulators.slack_api import Message as SlackMessage

STARTS = T0 + timedelta(hours=1)  # plan_session: 10:00 Europe/Paris on T0's day, for 1 h
ENDS = STARTS + timedelta(hours=1)
QUIZ = (
    ("Which fraction equals 1/2?", "2/4", "2/3"),
    ("What is 1/3 + 1/3?", "2/3", "2/6"),
    ("Which is larger?", "3/4", "2/3"),
)
FIRST_SURVEY = {"clarity": "5", "interactions": "4", "progress": "3", "safety": "5", "focus": "2"}


# ------------------------------------------------------------------------------------------ helpers
async def user_ids_by_member(w: SlackWorld) -> dict[int, str]:
    async with w.app.db.transaction() as tx:
        return {m.id or 0: m.user_id for m in (await tx.exec(select(Member))).all()}


async def grouped_by_channel(w: SlackWorld) -> dict[str, set[str]]:
    """What the core decided: each breakout channel id → the Slack ids of the learners grouped in it."""
    users = await user_ids_by_member(w)
    async with w.app.db.transaction() as tx:
        rows = await tx.exec(
            select(PeerGroup.channel_id, GroupMembership.member_id).join(
                GroupMembership, col(GroupMembership.group_id) == col(PeerGroup.id)
            )
        )
        out: dict[str, set[str]] = {}
        for channel_id, member_id in rows.all():
            out.setdefault(channel_id, set()).add(users[member_id])
    return out


def breakouts(w: SlackWorld) -> list[Channel]:
    return sorted((c for c in w.emu.channels.values() if c.name.startswith("peer-s1-")), key=lambda c: c.name)


def dm_messages(w: SlackWorld, user: str) -> list[SlackMessage]:
    dm = next((c for c in w.emu.channels.values() if c.is_im and c.im_user == user), None)
    return w.emu.history(dm.id) if dm is not None else []


def buttons_of(message: SlackMessage, prefix: str) -> list[str]:
    return [
        e["action_id"]
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith(prefix)
    ]


def invitations(w: SlackWorld, user: str, prefix: str) -> list[tuple[SlackMessage, str]]:
    """The DMs to `user` carrying a button whose action id starts with `prefix`, with that action id."""
    return [(m, a) for m in dm_messages(w, user) for a in buttons_of(m, prefix)]


async def click(w: SlackWorld, user: str, action_id: str, message: SlackMessage) -> list[dict[str, Any]]:
    """A button click in a message; returns what the app posted back to the click's response_url."""
    payload = w.driver.block_action_payload(user, action_id, channel_id=message.channel, message_ts=message.ts)
    resp = await w.driver._interactive(payload)
    assert resp.status == 200 and resp.elapsed < 3, resp.text
    await w.runner.bot.drain()
    return w.emu.responses_to(payload["response_url"])


async def open_modal(w: SlackWorld, user: str, action_id: str, message: SlackMessage) -> dict[str, Any]:
    """Click the DM's Answer button and return the modal Slack now shows that user (as a submission sees it)."""
    before = set(w.emu.views)
    answered = await click(w, user, action_id, message)
    assert answered == [], answered  # a form opens a modal; nothing is said in the channel
    (new,) = [v for k, v in w.emu.views.items() if k not in before]
    opened: View = new
    assert opened.user == user and opened.type == "modal"
    return {**opened.view, "id": opened.id}


def inputs_of(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view["blocks"] if b["type"] == "input"]


async def submit(w: SlackWorld, user: str, view: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    resp = await w.driver.view_submission(user, view, values)
    assert resp.status == 200 and resp.elapsed < 3, resp.text
    await w.runner.bot.drain()
    answer: dict[str, Any] = resp.json()
    return answer


def view_text(answer: dict[str, Any]) -> str:
    return " ".join(b["text"]["text"] for b in answer["view"]["blocks"] if b["type"] == "section")


async def answers_of(w: SlackWorld, user: str, kind: str) -> tuple[list[Submission], dict[str, tuple[int | None, str]]]:
    """The stored submissions of `user` for `kind`, and their answers keyed by item key."""
    async with w.app.db.transaction() as tx:
        member = (await tx.exec(select(Member).where(Member.user_id == user))).one()
        subs = list(
            (await tx.exec(select(Submission).where(Submission.member_id == member.id, Submission.kind == kind))).all()
        )
        rows = await tx.exec(
            select(QuestionnaireItem.item_key, Answer.value_int, Answer.value_text)
            .join(Answer, col(Answer.item_id) == col(QuestionnaireItem.id))
            .where(col(Answer.submission_id).in_([x.id for x in subs]))
        )
        return subs, {key: (value_int, value_text) for key, value_int, value_text in rows.all()}


def quiz_choices(view: dict[str, Any], right: int) -> dict[str, str]:
    """Answer the first `right` questions correctly (option value "0") and the others wrongly."""
    chosen: dict[str, str] = {}
    for n, block in enumerate(inputs_of(view)):
        values = [o["value"] for o in block["element"]["options"]]
        assert "0" in values and len(values) == 2
        chosen[block["block_id"]] = "0" if n < right else next(v for v in values if v != "0")
    return chosen


def forged_likert(w: SlackWorld, user: str, view: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    """A submission whose radio choice was tampered with: Slack's UI offers only 1–5, a forged body can say 6."""
    payload = w.driver.view_submission_payload(user, view, FIRST_SURVEY)
    entry = payload["view"]["state"]["values"][field][field]
    entry["selected_option"] = {**entry["selected_option"], "value": value}
    return payload


def only(items: Sequence[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


# -------------------------------------------------------------------------------------------- scenario
async def test_twelve_learners_from_plan_to_scored_retention_quiz(tmp_path: Path) -> None:
    w = await make_world(tmp_path, learners=12)
    try:
        await run_scenario(w)
    finally:
        await close_world(w)


async def run_scenario(w: SlackWorld) -> None:
    # --- the trainer plans the session (groups from the 12 enrolled, size 4) and writes the quiz
    await plan_session(w)
    for n, (question, right, wrong) in enumerate(QUIZ, 1):
        reply = w.final_text(*await w.command(w.trainer, f'quiz add s1 "{question}" "{right}" "{wrong}"'))
        assert reply == f"Quiz question {n} added to `s1`.", reply

    # --- start: private breakouts with exactly the grouped learners, the trainer and the bot
    reply = w.final_text(*await w.command(w.trainer, "session start s1"))
    assert reply.startswith("Session `s1` started."), reply
    rooms = breakouts(w)
    assert [c.name for c in rooms] == ["peer-s1-g1", "peer-s1-g2", "peer-s1-g3"]
    grouped = await grouped_by_channel(w)
    assert set(grouped) == {c.id for c in rooms}
    for room in rooms:
        assert room.is_private and not room.is_archived
        assert sorted(room.members) == sorted(grouped[room.id] | {w.trainer, w.emu.bot_user_id})
        assert len(grouped[room.id]) == 4
    assert sorted(u for members in grouped.values() for u in members) == sorted(w.learners)
    room_of = {u: c for c in rooms for u in grouped[c.id]}

    # --- 10 learners check in with their breakout's button, 1 with `/peer checkin`, 1 never comes
    by_button, by_command, absent = w.learners[:10], w.learners[10], w.learners[11]
    w.clock.set(STARTS - timedelta(minutes=5))
    for user in by_button:
        intro = w.emu.history(room_of[user].id)[0]
        assert buttons_of(intro, "checkin:") == ["checkin:in:s1"]
        said = only(await click(w, user, "checkin:in:s1", intro))
        assert said["response_type"] == "ephemeral" and said["text"] == "Checked in to “Fractions”.", said
    resp, form = await w.driver.slash_command(by_command, "checkin s1", channel_id=room_of[by_command].id)
    assert resp.status == 200
    await w.runner.bot.drain()
    posted = w.emu.responses_to(form["response_url"])
    said_text = posted[-1]["text"] if posted else resp.json()["text"]
    assert said_text == "Checked in to “Fractions”.", said_text

    attendees = [*by_button, by_command]
    users = await user_ids_by_member(w)
    async with w.app.db.transaction() as tx:
        attendance = {users[a.member_id]: a for a in (await tx.exec(select(Attendance))).all()}
    assert sorted(attendance) == sorted(attendees)  # the absent learner has no row: nothing invented
    assert {u: (a.status, a.method) for u, a in attendance.items()} == {
        **{u: ("on_time", "button") for u in by_button},
        by_command: ("on_time", "command"),
    }
    for user in attendees:
        assert len([c for c in breakouts(w) if user in c.members]) == 1, user
    assert len(breakouts(w)) == 3  # checking in while grouped opened no new breakout

    # --- the trainer ends the session: breakouts closed, the summary reaches the trainer
    w.clock.set(ENDS)
    reply = w.final_text(*await w.command(w.trainer, "session end s1"))
    assert reply == "Session `s1` ended; questionnaires are on their way.", reply
    assert all(c.is_archived for c in breakouts(w))
    summary = " ".join(m.text for m in dm_messages(w, w.trainer))
    assert "Summary of `s1`" in summary and "checked in 11" in summary, summary

    # --- the questionnaire DMs go to the 11 attendees only
    assert await w.app.core.deliver_due() == 11
    assert invitations(w, absent, "survey:") == []
    surveys = {u: only(invitations(w, u, "survey:open:")) for u in attendees}

    # One learner first sends a tampered rating, then answers, then tries again: only the answer counts.
    first = attendees[0]
    view = await open_modal(w, first, surveys[first][1], surveys[first][0])
    assert view["callback_id"] == surveys[first][1].replace("open", "submit")
    assert [b["block_id"] for b in inputs_of(view)] == [*FIRST_SURVEY, "open"]
    resp = await w.driver._interactive(forged_likert(w, first, view, "progress", "6"))
    refused: dict[str, Any] = resp.json()
    assert refused["response_action"] == "errors" and "from 1 to 5" in refused["errors"]["progress"], refused
    assert (await answers_of(w, first, "feedback")) == ([], {})  # all or nothing: no half-recorded form

    answer = await submit(w, first, view, FIRST_SURVEY | {"open": "Pair work helped"})
    assert answer["response_action"] == "update" and "answers are recorded" in view_text(answer), answer
    again = await submit(w, first, view, {k: "1" for k in FIRST_SURVEY} | {"open": "Changed my mind"})
    assert again["response_action"] == "errors" and "already answered" in again["errors"]["clarity"], again
    subs, stored = await answers_of(w, first, "feedback")
    assert [x.completed for x in subs] == [True]
    assert stored == {k: (int(v), "") for k, v in FIRST_SURVEY.items()} | {"open": (None, "Pair work helped")}

    for n, user in enumerate(attendees[1:], 1):
        view = await open_modal(w, user, surveys[user][1], surveys[user][0])
        ratings = {k: str(1 + (n + i) % 5) for i, k in enumerate(FIRST_SURVEY)}
        answer = await submit(w, user, view, ratings)
        assert answer["response_action"] == "update", answer
        subs, stored = await answers_of(w, user, "feedback")
        assert [x.completed for x in subs] == [True]
        assert stored == {k: (int(v), "") for k, v in ratings.items()}  # the open question was left empty

    # --- the retention quiz: nothing a day before the two weeks, then one DM per attendee
    w.clock.set(ENDS + timedelta(days=13))
    await w.app.core.advance()
    assert all(invitations(w, u, "quiz:") == [] for u in w.learners)
    w.clock.set(ENDS + timedelta(days=14))
    await w.app.core.advance()
    assert invitations(w, absent, "quiz:") == []
    async with w.app.db.transaction() as tx:
        sent = (await tx.exec(select(Delivery).where(Delivery.kind == "retention", Delivery.state == "sent"))).all()
    assert sorted(users[d.member_id] for d in sent) == sorted(attendees)

    expected: dict[str, int] = {}
    for n, user in enumerate(attendees):
        message, action_id = only(invitations(w, user, "quiz:open:"))
        view = await open_modal(w, user, action_id, message)
        assert view["callback_id"] == action_id.replace("open", "submit")
        assert [b["label"]["text"] for b in inputs_of(view)] == [q for q, _, _ in QUIZ]
        expected[user] = n % (len(QUIZ) + 1)
        answer = await submit(w, user, view, quiz_choices(view, expected[user]))
        assert answer["response_action"] == "update", answer
        assert f"Your score: {expected[user]}/{len(QUIZ)}." in view_text(answer), answer
        shown = view_text(answer)  # retrieval practice: every question with its right answer
        lines = shown.splitlines()
        assert all(any(question in line and right in line for line in lines) for question, right, _ in QUIZ), shown
        assert sum(line.startswith("✅") for line in lines) == expected[user], shown

    for user in attendees:
        subs, stored = await answers_of(w, user, "retention")
        (quiz,) = subs
        assert (quiz.completed, quiz.score, quiz.max_score) == (True, expected[user], len(QUIZ))
        right_answers = {f"q{i}": right for i, (_, right, _) in enumerate(QUIZ, 1)}
        assert sum(1 for key, (_, text) in stored.items() if text == right_answers[key]) == expected[user]
    assert sorted(set(expected.values())) == [0, 1, 2, 3]  # every score from none to all was exercised

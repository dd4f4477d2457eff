"""The session's timing and state rules (`bot.core.rules`), without a database: step times, which step is due
for each stored state at each instant, the check-in window, the state checks of the commands, the DM retry."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import rules
from bot.core.rules import (
    ACTIVE,
    CHECKIN_OPENS,
    GONE,
    NOT_STARTED,
    OVER,
    PRESENT,
    STEP_STATES,
    SURVEY_OPEN_FOR,
    UPCOMING,
    AttendanceStatus,
    DeliveryKind,
    DeliveryState,
    GroupRole,
    Role,
    SessionState,
    Step,
)

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=60)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
ALL_STATES = list(SessionState)


@dataclass(frozen=True)
class Row:
    """A session as the rules read it (what a `PeerSession` row holds)."""

    starts_at: datetime = START
    duration_minutes: int = 60
    prep_material: str = ""
    prep_lead_minutes: int = 1440
    state: str = "planned"
    prep_reminded_at: datetime | None = None
    checkin_opened_at: datetime | None = None
    ended_at: datetime | None = None
    retention_queued_at: datetime | None = None


PREPPED = Row(prep_material="Read chapter 3")  # prep a day before, reminder 2 h before


def ran(step: Step, s: Row, now: datetime) -> Row:
    """The row once `step` has stored its effect, as the step methods of `timeline` store it."""
    if step is Step.PREP:
        return replace(s, state="prep_sent")
    if step is Step.PREP_REMINDER:
        return replace(s, prep_reminded_at=now)
    if step is Step.CHECKIN:
        return replace(s, checkin_opened_at=now)
    if step is Step.START:
        return replace(s, state="running")
    if step is Step.END:
        return replace(s, state="ended", ended_at=now, retention_queued_at=now)
    if step is Step.CLOSE:
        return replace(s, state="closed")
    return s  # the wrap-up stores an audit row, not a column of the session


def one_pass(s: Row, now: datetime) -> list[Step]:
    """What a caller does: run the first due step, reload the row, ask again, remembering this pass's steps."""
    done: list[Step] = []
    while (step := rules.next_due_step(s, now, done=done)) is not None:
        done.append(step)
        s = ran(step, s, now)
        assert len(done) <= len(Step), done
    return done


# ---------------------------------------------------------------------------------------------- stored codes


def test_enum_values_are_the_stored_strings() -> None:
    assert [x.value for x in SessionState] == ["planned", "prep_sent", "running", "ended", "closed", "cancelled"]
    assert [x.value for x in AttendanceStatus] == ["on_time", "late", "excused", "absent"]
    assert [x.value for x in DeliveryKind] == [
        "prep_reminder",
        "feedback",
        "feedback_reminder",
        "retention",
        "retention2",
        "followup",
        "observation",
        "summary",
        "alerts",
        "unreachable",
        "tutoring_check",
        "review_request",
        "review_reminder",
        "review_feedback",
    ]
    assert max(len(x.value) for x in DeliveryKind) <= 24  # Delivery.kind is a VARCHAR(24)
    assert [x.value for x in DeliveryState] == ["pending", "sending", "sent", "failed", "undeliverable", "skipped"]
    assert [x.value for x in Step] == ["prep", "prep_reminder", "checkin", "start", "wrapup", "end", "close"]
    assert [x.value for x in Role] == ["learner", "trainer"]
    assert [x.value for x in GroupRole] == ["member", "tutor", "tutee"]


def test_enums_agree_with_the_labels_the_scheduler_and_the_models() -> None:
    from bot.i18n import ATTENDANCE_STATUSES, ROLES, SESSION_STATES
    from scheduler.service import STEP_NAMES
    from storage.models import Delivery, Enrollment, GroupMembership, PeerSession

    assert list(SESSION_STATES) == list(SessionState)
    assert set(ATTENDANCE_STATUSES) == set(AttendanceStatus)
    assert set(ROLES) == set(Role)
    assert tuple(Step) == STEP_NAMES
    assert PeerSession.model_fields["state"].default == SessionState.PLANNED
    assert Delivery.model_fields["state"].default == DeliveryState.PENDING
    assert Enrollment.model_fields["role"].default == Role.LEARNER
    assert GroupMembership.model_fields["role"].default == GroupRole.MEMBER


def test_a_stored_string_is_found_in_the_named_sets() -> None:
    assert "planned" in NOT_STARTED and "running" not in NOT_STARTED
    assert "late" in PRESENT and "excused" not in PRESENT
    assert SessionState("prep_sent") is SessionState.PREP_SENT
    assert str(Step.WRAPUP) == "wrapup"  # what the scheduler's job ids are made of


def test_constants_keep_their_values() -> None:
    assert timedelta(minutes=15) == rules.CHECKIN_OPENS
    assert timedelta(minutes=10) == rules.LATE_AFTER
    assert timedelta(hours=2) == rules.PREP_REMINDER_BEFORE
    assert timedelta(minutes=10) == rules.WRAPUP_BEFORE_END
    assert timedelta(hours=24) == rules.SURVEY_REMINDER_AFTER
    assert timedelta(days=7) == rules.SURVEY_OPEN_FOR
    assert timedelta(minutes=5) == rules.DELIVERY_LEASE
    assert rules.MAX_ATTEMPTS == 5
    assert frozenset({"white_check_mark", "✅", "heavy_check_mark", "ballot_box_with_check"}) == rules.CHECK_EMOJI


def test_named_sets() -> None:
    s = SessionState
    assert {s.PLANNED, s.PREP_SENT} == NOT_STARTED
    assert ACTIVE == (s.PLANNED, s.PREP_SENT, s.RUNNING, s.ENDED)  # the order the old tuple had
    assert UPCOMING == {s.PLANNED, s.PREP_SENT, s.RUNNING} == set(ACTIVE[:3])
    assert {s.ENDED, s.CLOSED, s.CANCELLED} == OVER
    assert {s.CLOSED, s.CANCELLED} == GONE
    assert {AttendanceStatus.ON_TIME, AttendanceStatus.LATE} == PRESENT
    assert set(SessionState) == UPCOMING | OVER and not UPCOMING & OVER
    assert set(ACTIVE) | GONE == set(SessionState) and not set(ACTIVE) & GONE
    assert set(STEP_STATES) == set(Step)


def test_minutes() -> None:
    assert rules.minutes(CHECKIN_OPENS) == 15
    assert rules.minutes(rules.PREP_REMINDER_BEFORE) == 120
    assert rules.minutes(timedelta(seconds=119)) == 1


def test_rules_do_no_io() -> None:
    tree = ast.parse(Path(rules.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    stdlib = {"__future__", "collections", "dataclasses", "datetime", "enum", "typing"}
    assert {m.split(".")[0] for m in imported} <= stdlib


# ---------------------------------------------------------------------------------------------- step times


def test_step_times_without_prep() -> None:
    assert rules.end_of(Row()) == END
    assert rules.step_times(Row()) == {
        Step.CHECKIN: START - 15 * MINUTE,
        Step.START: START,
        Step.WRAPUP: END - 10 * MINUTE,
        Step.END: END,
        Step.CLOSE: END + timedelta(days=7),
    }


def test_step_times_with_prep_a_day_before() -> None:
    times = rules.step_times(PREPPED)
    assert list(times) == list(Step)  # every step, in timeline order
    assert times[Step.PREP] == START - timedelta(days=1)
    assert times[Step.PREP_REMINDER] == START - timedelta(hours=2)


@pytest.mark.parametrize(
    ("lead_minutes", "reminder"),
    [(0, False), (30, False), (119, False), (120, False), (121, True), (1440, True)],
)
def test_the_reminder_exists_only_when_the_prep_goes_out_earlier(lead_minutes: int, reminder: bool) -> None:
    times = rules.step_times(replace(PREPPED, prep_lead_minutes=lead_minutes))
    assert times[Step.PREP] == START - lead_minutes * MINUTE
    assert (Step.PREP_REMINDER in times) is reminder


@pytest.mark.parametrize(("duration", "wrapup"), [(0, 0), (5, 0), (10, 0), (11, 1), (60, 50)])
def test_the_wrapup_never_comes_before_the_start(duration: int, wrapup: int) -> None:
    times = rules.step_times(Row(duration_minutes=duration))
    assert times[Step.WRAPUP] == START + wrapup * MINUTE
    assert times[Step.END] == START + duration * MINUTE


def test_a_peer_session_row_fits_the_protocol() -> None:
    from storage.models import PeerSession

    row = PeerSession(
        short_id="s1",
        cohort_id=1,
        title="t",
        starts_at=START,
        duration_minutes=60,
        prep_material="x",
        created_by=1,
        created_at=START,
    )
    assert rules.step_times(row) == rules.step_times(PREPPED)
    assert rules.due_steps(row, START) == [Step.CHECKIN, Step.START]


# ---------------------------------------------------------------------------------------------- due steps

D, H = timedelta(days=1), timedelta(hours=1)
P, R, C, S, W, E, X = Step  # prep, prep_reminder, checkin, start, wrapup, end, close
REMINDED = {"prep_reminded_at": START - 2 * H}
OPENED = {"checkin_opened_at": START - 15 * MINUTE}
BOTH = REMINDED | OPENED


@pytest.mark.parametrize(
    ("state", "stored", "at", "expected"),
    [
        # planned, prep a day before: each step becomes due at its time, the earlier ones stay due until run
        ("planned", {}, -2 * D, []),
        ("planned", {}, -D - SECOND, []),
        ("planned", {}, -D, [P]),
        ("planned", {}, -2 * H - SECOND, [P]),
        ("planned", {}, -2 * H, [P, R]),
        ("planned", {}, -15 * MINUTE - SECOND, [P, R]),
        ("planned", {}, -15 * MINUTE, [P, R, C]),
        ("planned", {}, -SECOND, [P, R, C]),
        # from the start, prep and its reminder are too late; wrap-up and end wait for the start to be stored
        ("planned", {}, 0 * H, [C, S]),
        ("planned", {}, 55 * MINUTE, [C, S]),
        ("planned", {}, 2 * H, [C, S]),
        ("planned", {}, 8 * D, [C, S]),
        ("planned", OPENED, 0 * H, [S]),
        # prep sent
        ("prep_sent", {}, -D, []),
        ("prep_sent", {}, -2 * H, [R]),
        ("prep_sent", REMINDED, -2 * H, []),
        ("prep_sent", REMINDED, -15 * MINUTE, [C]),
        ("prep_sent", BOTH, -15 * MINUTE, []),
        ("prep_sent", {}, -SECOND, [R, C]),
        ("prep_sent", BOTH, 0 * H, [S]),
        ("prep_sent", {}, 0 * H, [C, S]),
        # running (also when started by hand before its time: no prep, reminder or check-in any more)
        ("running", {}, -H, []),
        ("running", {}, 0 * H, []),
        ("running", BOTH, 50 * MINUTE - SECOND, []),
        ("running", BOTH, 50 * MINUTE, [W]),
        ("running", BOTH, 60 * MINUTE - SECOND, [W]),
        ("running", BOTH, 60 * MINUTE, [E]),
        ("running", BOTH, 60 * MINUTE + 7 * D, [E]),
        # ended: only the close, SURVEY_OPEN_FOR after the planned end
        ("ended", {}, 55 * MINUTE, []),
        ("ended", {}, 60 * MINUTE, []),
        ("ended", {}, 60 * MINUTE + 7 * D - SECOND, []),
        ("ended", {}, 60 * MINUTE + 7 * D, [X]),
        ("ended", {}, 60 * MINUTE + 30 * D, [X]),
        # closed and cancelled sessions never move again
        *[("closed", {}, at, []) for at in (-D, -15 * MINUTE, 0 * H, 55 * MINUTE, 2 * H, 8 * D)],
        *[("cancelled", {}, at, []) for at in (-D, -15 * MINUTE, 0 * H, 55 * MINUTE, 2 * H, 8 * D)],
    ],
)
def test_due_steps_across_a_session_with_prep(
    state: str, stored: dict[str, Any], at: timedelta, expected: list[Step]
) -> None:
    s = replace(PREPPED, state=state, **stored)
    assert rules.due_steps(s, START + at) == expected
    assert rules.next_due_step(s, START + at) == (expected[0] if expected else None)


@pytest.mark.parametrize(
    ("state", "at", "expected"),
    [
        ("planned", -D, []),  # nothing to prepare: no prep step at all
        ("planned", -2 * H, []),
        ("planned", -15 * MINUTE, [C]),
        ("planned", 0 * H, [C, S]),
        ("prep_sent", -15 * MINUTE, [C]),
    ],
)
def test_due_steps_without_prep(state: str, at: timedelta, expected: list[Step]) -> None:
    assert rules.due_steps(Row(state=state), START + at) == expected


def test_a_prep_later_than_the_checkin_comes_first_in_the_pass() -> None:
    late_prep = replace(PREPPED, prep_lead_minutes=10)  # check-in opens at -15 min, prep goes out at -10 min
    assert rules.due_steps(late_prep, START - 12 * MINUTE) == [C]
    assert rules.due_steps(late_prep, START - 10 * MINUTE) == [P, C]


def test_a_session_shorter_than_the_wrapup_lead_wraps_up_from_the_start() -> None:
    short = Row(duration_minutes=5, state="running")
    assert rules.due_steps(short, START - SECOND) == []
    assert rules.due_steps(short, START) == [W]
    assert rules.due_steps(short, START + 5 * MINUTE) == [E]
    assert rules.due_steps(Row(duration_minutes=0, state="running"), START) == [E]  # no time to wrap up


def test_steps_run_in_this_pass_are_not_due_again() -> None:
    running = replace(PREPPED, state="running")
    assert rules.due_steps(running, START + 55 * MINUTE, done=[W]) == []
    assert rules.next_due_step(running, START + 55 * MINUTE, done=[W]) is None
    assert rules.due_steps(PREPPED, START - 15 * MINUTE, done={P}) == [R, C]
    ended = replace(PREPPED, state="ended", ended_at=END + 7 * D)
    assert rules.due_steps(ended, END + 7 * D) == [X]
    assert rules.due_steps(ended, END + 7 * D, done=[S, E]) == []  # not in the pass that ended it


@pytest.mark.parametrize(
    ("state", "at", "expected"),
    [
        ("planned", -15 * MINUTE, [P, R, C]),
        ("planned", 0 * H, [C, S]),
        ("planned", 55 * MINUTE, [C, S, W]),  # the wrap-up finds the session running once started
        ("planned", 2 * H, [C, S, E]),  # past the end the wrap-up is skipped (`end` asks for it)
        ("running", 55 * MINUTE, [W]),
        ("ended", 60 * MINUTE + 7 * D, [X]),
        ("running", 60 * MINUTE + 7 * D, [E]),  # the close waits for the next pass: the feedback DMs go first
        ("closed", 8 * D, []),
    ],
)
def test_a_pass_runs_each_due_step_once(state: str, at: timedelta, expected: list[Step]) -> None:
    assert one_pass(replace(PREPPED, state=state), START + at) == expected


# ---------------------------------------------------------------------------------------------- the property

instants = st.integers(min_value=-3 * 24 * 3600, max_value=10 * 24 * 3600).map(lambda s: START + s * SECOND)
maybe_instant = st.none() | instants
rows = st.builds(
    Row,
    duration_minutes=st.integers(min_value=0, max_value=300),
    prep_material=st.sampled_from(["", "Read chapter 3"]),
    prep_lead_minutes=st.integers(min_value=0, max_value=3000),
    state=st.sampled_from(ALL_STATES),
    prep_reminded_at=maybe_instant,
    checkin_opened_at=maybe_instant,
    ended_at=maybe_instant,
    retention_queued_at=maybe_instant,
)


@given(rows, instants)
def test_due_steps_are_in_order_and_respect_every_guard(s: Row, now: datetime) -> None:
    due = rules.due_steps(s, now)
    order = list(Step)
    assert due == sorted(set(due), key=order.index)
    times = rules.step_times(s)
    for step in due:
        assert s.state in STEP_STATES[step]
        assert times[step] <= now
        if step in (Step.PREP, Step.PREP_REMINDER):
            assert now < s.starts_at
        if step is Step.WRAPUP:
            assert now < rules.end_of(s)
        assert step not in rules.due_steps(ran(step, s, now), now) or step is Step.WRAPUP  # effect stored: done
    assert rules.next_due_step(s, now) == (due[0] if due else None)
    if s.state in GONE:
        assert due == []


@given(rows, instants)
def test_a_pass_never_repeats_a_step_and_follows_the_timeline(s: Row, now: datetime) -> None:
    done = one_pass(s, now)
    order = list(Step)
    assert done == sorted(set(done), key=order.index)
    assert done[:1] == rules.due_steps(s, now)[:1]


# ---------------------------------------------------------------------------------------------- attendance


def test_the_checkin_window() -> None:
    assert rules.checkin_window(Row()) == (START - 15 * MINUTE, END)


@pytest.mark.parametrize(
    ("at", "refusal", "status"),
    [
        (-15 * MINUTE - SECOND, "not_open", None),
        (-15 * MINUTE, None, AttendanceStatus.ON_TIME),
        (0 * H, None, AttendanceStatus.ON_TIME),
        (10 * MINUTE, None, AttendanceStatus.ON_TIME),
        (10 * MINUTE + SECOND, None, AttendanceStatus.LATE),
        (60 * MINUTE, None, AttendanceStatus.LATE),  # the end itself still counts
        (60 * MINUTE + SECOND, "closed", None),
    ],
)
def test_checkin_boundaries(at: timedelta, refusal: str | None, status: AttendanceStatus | None) -> None:
    for state in ("planned", "prep_sent"):
        assert rules.checkin_refusal(Row(state=state), START + at) == refusal
    # A session started early by its trainer takes check-ins at once, whatever the clock says.
    assert rules.checkin_refusal(Row(state="running"), START + at) == (None if refusal == "not_open" else refusal)
    if status is not None:
        assert rules.attendance_status(Row(), START + at) is status


def test_a_session_started_hours_early_takes_check_ins_on_time() -> None:
    early = START - 3 * H
    assert rules.checkin_refusal(Row(state="running"), early) is None
    assert rules.checkin_refusal(Row(state="planned"), early) == "not_open"
    assert rules.attendance_status(Row(state="running"), early) is AttendanceStatus.ON_TIME


@pytest.mark.parametrize("state", ["ended", "closed", "cancelled"])
def test_checkin_is_closed_once_the_session_is_over_whatever_the_time(state: str) -> None:
    for at in (-H, -15 * MINUTE, 0 * H, 30 * MINUTE):
        assert rules.checkin_refusal(Row(state=state), START + at) == "closed"


def test_an_absence_must_come_before_the_end() -> None:
    assert not rules.is_over(Row(state="running"), END - SECOND)
    assert rules.is_over(Row(state="running"), END)  # unlike a check-in, which is still taken at the end
    assert rules.is_over(Row(state="ended"), START)
    assert rules.is_over(Row(state="cancelled"), START - D)
    assert not rules.is_over(Row(state="planned"), START - D)


# ---------------------------------------------------------------------------------------------- state checks


@pytest.mark.parametrize(
    ("check", "allowed"),
    [
        (rules.can_start, {"planned", "prep_sent"}),
        (rules.can_end, {"running"}),
        (rules.can_cancel, {"planned", "prep_sent"}),
        (rules.groups_are_draft, {"planned", "prep_sent"}),
        (rules.groups_editable, {"planned", "prep_sent", "running"}),
        (rules.accepts_prep, {"planned", "prep_sent", "running"}),
    ],
)
def test_what_each_state_allows(check: Callable[[str], bool], allowed: set[str]) -> None:
    assert {state.value for state in SessionState if check(state.value)} == allowed


def test_quiz_items_can_be_added_until_the_quiz_is_queued() -> None:
    assert rules.quiz_editable(Row(state="planned"))
    assert rules.quiz_editable(Row(state="running"))
    assert not rules.quiz_editable(Row(state="ended", retention_queued_at=END))
    assert rules.quiz_editable(Row(state="ended"))  # only the queued quiz closes it, as before
    assert not rules.quiz_editable(Row(state="closed"))
    assert not rules.quiz_editable(Row(state="cancelled"))


def test_the_feedback_closes_with_the_session_or_after_the_actual_end() -> None:
    ended_early = START + 20 * MINUTE
    s = Row(state="ended", ended_at=ended_early)
    assert not rules.feedback_closed(s, ended_early + SURVEY_OPEN_FOR)
    assert rules.feedback_closed(s, ended_early + SURVEY_OPEN_FOR + SECOND)
    assert rules.feedback_closed(replace(s, state="closed"), ended_early)
    assert not rules.feedback_closed(Row(state="running"), END + 30 * D)  # never ended: no deadline


@pytest.mark.parametrize(
    ("kind", "outdated_in"),
    [
        ("prep_reminder", {"running", "ended", "closed", "cancelled"}),
        ("feedback", {"closed"}),
        ("feedback_reminder", {"closed"}),
        ("retention", {"cancelled"}),
        ("retention2", {"cancelled"}),
        ("followup", {"cancelled"}),
        ("observation", {"cancelled"}),
        ("summary", set()),  # the trainers' news goes out whatever the state, even after a restart
        ("unreachable", set()),
        ("alerts", set()),
        ("tutoring_check", set()),  # asked at the end: the answer is evidence whatever comes after
        ("review_request", {"closed", "cancelled"}),  # a late review is still welcome until the close
        ("review_reminder", {"closed", "cancelled"}),
        ("review_feedback", set()),
    ],
)
def test_a_queued_dm_the_state_made_pointless(kind: str, outdated_in: set[str]) -> None:
    assert {state.value for state in SessionState if rules.delivery_outdated(kind, state)} == outdated_in


def test_the_second_quiz_asks_the_missed_items_all_when_unanswered_none_when_perfect() -> None:
    assert rules.missed_items([1, 2, 3], {2}) == [1, 3]
    assert rules.missed_items([1, 2, 3], set()) == [1, 2, 3]  # never answered: nothing was recalled
    assert rules.missed_items([1, 2, 3], {1, 2, 3}) == []  # all right: no second quiz is sent
    assert rules.item_kind("retention2") == "retention" and rules.submission_kind("retention2") == "retention2"
    assert rules.submission_kind("feedback_reminder") == "feedback" == rules.item_kind("feedback_reminder")


def test_a_questionnaire_and_its_reminder_are_one_family_for_the_unreachable_notice() -> None:
    assert rules.dm_family("feedback_reminder") == rules.dm_family("feedback") == "feedback"
    assert rules.dm_family("retention") == "retention"


def test_a_failed_step_is_retried_later_and_later_but_within_the_hour() -> None:
    waits = [rules.step_retry_after(n) for n in range(10)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits == sorted(waits) and waits[-1] == timedelta(hours=1)


def test_an_unknown_delivery_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown delivery kind"):
        rules.delivery_outdated("newsletter", "planned")


# ---------------------------------------------------------------------------------------------- the outbox


@pytest.mark.parametrize(("attempts", "wait"), [(0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, None), (6, None)])
def test_the_retry_backoff(attempts: int, wait: int | None) -> None:
    expected = None if wait is None else START + wait * MINUTE
    assert rules.delivery_retry_due(attempts, START) == expected


def test_the_lease() -> None:
    assert rules.lease_expired_before(START) == START - 5 * MINUTE


# ---------------------------------------------------------------------------------------------- dropout


def test_dropout_signals_need_two_in_a_row() -> None:
    came, missed = rules.Record(present=True), rules.Record(present=False)
    assert rules.dropout_risks([came, missed, missed]) == [rules.Risk.ABSENT_TWICE]
    assert rules.dropout_risks([missed, came, missed]) == []
    assert rules.dropout_risks([missed]) == []
    skipped = rules.Record(present=True, prep_expected=True, prepped=False)
    no_prep = rules.Record(present=True, prep_expected=False)
    assert rules.dropout_risks([skipped, no_prep, skipped]) == [rules.Risk.PREP_SKIPPED_TWICE]
    silent = rules.Record(present=True, feedback_sent=True, feedback_answered=False)
    assert rules.dropout_risks([silent, silent]) == [rules.Risk.QUESTIONNAIRES_UNANSWERED]
    assert rules.dropout_risks([rules.Record(True, quiz_ratio=1.0), rules.Record(True, quiz_ratio=0.5)]) == [
        rules.Risk.QUIZ_FALLING
    ]
    assert rules.dropout_risks([rules.Record(True, quiz_ratio=0.5), rules.Record(True, quiz_ratio=0.5)]) == []

"""The session's timing and state rules, as pure code: no database, no platform, no clock of its own.

Every threshold, stored code and "which state allows what" of a peer session lives here once, so the
services that act on a session ask these functions instead of repeating string sets, and each rule is
tested at its exact boundaries without a database. The enum values are the strings stored in the `state`,
`status`, `kind` and `role` columns (a `StrEnum` compares equal to its string, so rows need no migration).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

# ---------------------------------------------------------------------------------------------- timing

CHECKIN_OPENS = timedelta(minutes=15)  # check-in opens this long before the start
LATE_AFTER = timedelta(minutes=10)  # a check-in later than start + this is marked late
PREP_REMINDER_BEFORE = timedelta(hours=2)  # learners who have not prepared are reminded this long before the start
WRAPUP_BEFORE_END = timedelta(minutes=10)  # groups are asked for their takeaways this long before the end
SURVEY_REMINDER_AFTER = timedelta(hours=24)  # the feedback reminder follows the questionnaire by this much
SURVEY_OPEN_FOR = timedelta(days=7)  # the feedback questionnaire stays open this long after the end
DELIVERY_LEASE = timedelta(minutes=5)  # a claimed DM older than this belongs to a crashed worker
WAIT_ALONE = timedelta(minutes=5)  # a latecomer waiting this long for others joins the smallest group
MAX_ATTEMPTS = 5  # a DM failing this many times is given up (state `failed`)
CHECK_EMOJI = frozenset({"white_check_mark", "✅", "heavy_check_mark", "ballot_box_with_check"})  # react = done


def minutes(delta: timedelta) -> int:
    """Whole minutes of `delta`, so a text such as "opens 15 minutes before" takes its number from the rule."""
    return int(delta.total_seconds() // 60)


# ---------------------------------------------------------------------------------------------- stored codes


class SessionState(StrEnum):
    """`PeerSession.state`: planned → prep_sent → running → ended → closed, or cancelled before the start."""

    PLANNED = "planned"
    PREP_SENT = "prep_sent"
    RUNNING = "running"
    ENDED = "ended"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class AttendanceStatus(StrEnum):
    """`Attendance.status`, plus ABSENT, which is never stored: reports show it for a learner without a row
    once the session has started (and `bot.i18n.ATTENDANCE_STATUSES` labels it)."""

    ON_TIME = "on_time"
    LATE = "late"
    EXCUSED = "excused"
    ABSENT = "absent"


class DeliveryKind(StrEnum):
    """`Delivery.kind`: the DMs that must arrive exactly once."""

    PREP_REMINDER = "prep_reminder"
    FEEDBACK = "feedback"
    FEEDBACK_REMINDER = "feedback_reminder"
    RETENTION = "retention"
    RETENTION2 = "retention2"  # the second retention quiz: the questions the learner missed in the first
    FOLLOWUP = "followup"  # behavioural follow-up: the learner on applying what they learned
    OBSERVATION = "observation"  # the same about the learner, to their observer (tutor or manager)
    SUMMARY = "summary"  # to each trainer at the end: attendance, groups, takeaways
    ALERTS = "alerts"  # to each trainer, once a week: the learners at risk of dropping out
    UNREACHABLE = "unreachable"  # to each trainer: the learners a kind of DM could not reach
    TUTORING_CHECK = "tutoring_check"  # to each tutoring pair member at the end: did you meet, how long
    REVIEW_REQUEST = "review_request"  # peer review: to each reviewer at the start, the work to review
    REVIEW_REMINDER = "review_reminder"  # peer review: to reviewers still late at the wrap-up
    REVIEW_FEEDBACK = "review_feedback"  # peer review: to each author at the end, the aggregated reviews


class DeliveryState(StrEnum):
    """`Delivery.state`: pending → sending → sent, or back to pending for a retry, or a final failure."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"
    SKIPPED = "skipped"


class Role(StrEnum):
    """`Enrollment.role` (the model's comment also names tutor and manager, which nothing stores today)."""

    LEARNER = "learner"
    TRAINER = "trainer"


class GroupRole(StrEnum):
    """`GroupMembership.role`: tutor and tutee only in the tutoring format."""

    MEMBER = "member"
    TUTOR = "tutor"
    TUTEE = "tutee"


class Step(StrEnum):
    """The timeline's steps, in the order `advance_session` runs them (also the scheduler's job names)."""

    PREP = "prep"
    PREP_REMINDER = "prep_reminder"
    CHECKIN = "checkin"
    START = "start"
    WRAPUP = "wrapup"
    END = "end"
    CLOSE = "close"


# ---------------------------------------------------------------------------------------------- named sets

# Not started yet: can still start, be cancelled, get prep and check-in, and its groups are only a draft.
NOT_STARTED: frozenset[SessionState] = frozenset({SessionState.PLANNED, SessionState.PREP_SENT})
# The states the timeline still moves (the catch-up pass, the session autocomplete); this order, as stored.
ACTIVE: tuple[SessionState, ...] = (
    SessionState.PLANNED,
    SessionState.PREP_SENT,
    SessionState.RUNNING,
    SessionState.ENDED,
)
# Still ahead of or in progress for a learner: "your next session", groups can still change.
UPCOMING: frozenset[SessionState] = frozenset(ACTIVE[:3])
# Over for a learner: no check-in, no prep, no absence any more.
OVER: frozenset[SessionState] = frozenset({SessionState.ENDED, SessionState.CLOSED, SessionState.CANCELLED})
# Finished for good: the scheduler forgets these sessions and nothing can be added to them.
GONE: frozenset[SessionState] = frozenset({SessionState.CLOSED, SessionState.CANCELLED})
# Came to the session: grouped at the start, asked for feedback at the end, counted as attended.
PRESENT: frozenset[AttendanceStatus] = frozenset({AttendanceStatus.ON_TIME, AttendanceStatus.LATE})

# The stored states in which each step may run (the state part of its guard).
STEP_STATES: Mapping[Step, frozenset[SessionState]] = {
    Step.PREP: frozenset({SessionState.PLANNED}),
    Step.PREP_REMINDER: NOT_STARTED,
    Step.CHECKIN: NOT_STARTED,
    Step.START: NOT_STARTED,
    Step.WRAPUP: frozenset({SessionState.RUNNING}),
    Step.END: frozenset({SessionState.RUNNING}),
    Step.CLOSE: frozenset({SessionState.ENDED}),
}


# ---------------------------------------------------------------------------------------------- the session


class SessionTimes(Protocol):
    """What the rules read of a session; a `storage.models.PeerSession` row fits as it is (read-only here)."""

    @property
    def starts_at(self) -> datetime: ...
    @property
    def duration_minutes(self) -> int: ...
    @property
    def prep_material(self) -> str: ...
    @property
    def prep_lead_minutes(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def prep_reminded_at(self) -> datetime | None: ...
    @property
    def checkin_opened_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def retention_queued_at(self) -> datetime | None: ...


def end_of(s: SessionTimes) -> datetime:
    """The planned end (the actual one, `ended_at`, can differ when a trainer ends it by hand)."""
    return s.starts_at + timedelta(minutes=s.duration_minutes)


def step_times(s: SessionTimes) -> dict[Step, datetime]:
    """When each step becomes due, in timeline order: what the scheduler wakes the core up for.

    Prep steps exist only with prep material, and the reminder only when the prep goes out earlier than the
    reminder would; the wrap-up never comes before the start (a session shorter than its wrap-up lead).
    """
    end = end_of(s)
    lead = timedelta(minutes=s.prep_lead_minutes)
    times: dict[Step, datetime] = {}
    if s.prep_material:
        times[Step.PREP] = s.starts_at - lead
        if lead > PREP_REMINDER_BEFORE:
            times[Step.PREP_REMINDER] = s.starts_at - PREP_REMINDER_BEFORE
    times[Step.CHECKIN] = s.starts_at - CHECKIN_OPENS
    times[Step.START] = s.starts_at
    times[Step.WRAPUP] = max(s.starts_at, end - WRAPUP_BEFORE_END)
    times[Step.END] = end
    times[Step.CLOSE] = end + SURVEY_OPEN_FOR
    return times


def _guard(step: Step, s: SessionTimes, at: datetime, now: datetime) -> bool:
    """The step's guard besides its state (see `STEP_STATES`), as `advance_session` and the step check it."""
    if step is Step.PREP:  # too late once the start has come: the session goes on without it
        return at <= now < s.starts_at
    if step is Step.PREP_REMINDER:
        return at <= now < s.starts_at and s.prep_reminded_at is None
    if step is Step.CHECKIN:
        return at <= now and s.checkin_opened_at is None
    if step is Step.WRAPUP:  # past the end, `end` asks for the wrap-up itself
        return at <= now < end_of(s)
    return at <= now


def due_steps(s: SessionTimes, now: datetime, *, done: Collection[Step] = ()) -> list[Step]:
    """The steps due for this stored row at `now`, in timeline order (`Timeline.advance_session` runs them).

    Each guard is checked against the row as stored, and is false once its step's effect is stored (prep →
    prep_sent, prep_reminder → prep_reminded_at, checkin → checkin_opened_at, start → running, end → ended,
    close → closed), so a caller runs the first one, reloads the row and asks again. The wrap-up's
    once-only mark is an audit row this row does not show: it stays due while running in [wrapup, end), so
    the caller passes the steps already run in this pass as `done` and the wrap-up step keeps its audit check.

    Nor is the close due in the pass that ended the session (a catch-up more than SURVEY_OPEN_FOR late), as
    before: the feedback DMs the end queues go out before a close would make them pointless.

    What else the caller does: a start that fails ends the pass (the trainers are told);
    a running session whose start is not due gets its missing breakouts each pass; `end` runs the wrap-up
    first.
    """
    return [
        step
        for step, at in step_times(s).items()
        if step not in done
        and not (step is Step.CLOSE and Step.END in done)
        and s.state in STEP_STATES[step]
        and _guard(step, s, at, now)
    ]


def next_due_step(s: SessionTimes, now: datetime, *, done: Collection[Step] = ()) -> Step | None:
    """The step to run now, if any (the first of `due_steps`)."""
    due = due_steps(s, now, done=done)
    return due[0] if due else None


# ---------------------------------------------------------------------------------------------- attendance


def checkin_window(s: SessionTimes) -> tuple[datetime, datetime]:
    """Check-in opens CHECKIN_OPENS before the start and stays open until the planned end, both included."""
    return s.starts_at - CHECKIN_OPENS, end_of(s)


def checkin_refusal(s: SessionTimes, now: datetime) -> Literal["closed", "not_open"] | None:
    """Why a check-in at `now` is refused, if it is: the learner is told which, with the opening time."""
    opens, closes = checkin_window(s)
    if s.state in OVER or now > closes:
        return "closed"
    if now < opens and s.state != SessionState.RUNNING:  # a trainer who starts early opens check-in with it
        return "not_open"
    return None


def attendance_status(s: SessionTimes, now: datetime) -> AttendanceStatus:
    """A check-in up to LATE_AFTER past the start (included) is on time; the audit reads the difference."""
    return AttendanceStatus.LATE if now > s.starts_at + LATE_AFTER else AttendanceStatus.ON_TIME


def is_over(s: SessionTimes, now: datetime) -> bool:
    """Too late for an absence reason: it must come before the planned end (the end itself is too late)."""
    return now >= end_of(s) or s.state in OVER


def accepts_prep(state: str) -> bool:
    """Preparation can be marked done until the session is over (even once it runs)."""
    return state not in OVER


# ---------------------------------------------------------------------------------------------- trainer commands


def can_start(state: str) -> bool:
    """Only a session that has not started can start (by hand or at its time)."""
    return state in NOT_STARTED


def can_end(state: str) -> bool:
    """Only a running session can end."""
    return state == SessionState.RUNNING


def can_cancel(state: str) -> bool:
    """Only a session that has not started can be cancelled."""
    return state in NOT_STARTED


def groups_are_draft(state: str) -> bool:
    """Before the start the groups are a draft: shown as such, formed on demand, reshuffled at will."""
    return state in NOT_STARTED


def groups_editable(state: str) -> bool:
    """Learners can be moved or swapped between groups until the session ends (breakouts follow)."""
    return state in UPCOMING


def quiz_editable(s: SessionTimes) -> bool:
    """Quiz items can be added until the retention quiz is queued (at the end) or the session is gone."""
    return s.state not in GONE and s.retention_queued_at is None


# ---------------------------------------------------------------------------------------------- questionnaires, DMs


def feedback_closed(s: SessionTimes, now: datetime) -> bool:
    """The feedback questionnaire closes with the session, or SURVEY_OPEN_FOR after the actual end."""
    return s.state == SessionState.CLOSED or (s.ended_at is not None and now > s.ended_at + SURVEY_OPEN_FOR)


def delivery_outdated(kind: str, state: str) -> bool:
    """A queued DM the session's state has made pointless (skipped when its turn comes): a prep reminder
    once started, feedback once closed, a quiz for a cancelled session."""
    if kind == DeliveryKind.PREP_REMINDER:
        return state not in NOT_STARTED
    if kind in (DeliveryKind.FEEDBACK, DeliveryKind.FEEDBACK_REMINDER):
        return state == SessionState.CLOSED
    if kind in (DeliveryKind.RETENTION, DeliveryKind.RETENTION2, DeliveryKind.FOLLOWUP, DeliveryKind.OBSERVATION):
        return state == SessionState.CANCELLED
    if kind in (DeliveryKind.REVIEW_REQUEST, DeliveryKind.REVIEW_REMINDER):
        return state in GONE  # a review is still welcome after the end, until the session closes
    if kind in (
        DeliveryKind.SUMMARY,
        DeliveryKind.UNREACHABLE,
        DeliveryKind.ALERTS,
        DeliveryKind.TUTORING_CHECK,
        DeliveryKind.REVIEW_FEEDBACK,
    ):
        return False  # news for the trainers: still worth sending after a restart, whatever the state
    raise ValueError(f"unknown delivery kind {kind}")


def delivery_retry_due(attempts: int, now: datetime) -> datetime | None:
    """When a DM that failed (a transient platform error) is tried again, doubling the wait each time; None
    once MAX_ATTEMPTS are used up (the DM is then `failed`). `attempts` counts the one that just failed."""
    if attempts < MAX_ATTEMPTS:
        return now + timedelta(minutes=2**attempts)
    return None


def lease_expired_before(now: datetime) -> datetime:
    """Claims older than this came from a worker that crashed mid-send: they are made pending again."""
    return now - DELIVERY_LEASE


def step_retry_after(failures: int) -> timedelta:
    """How long before a session's failed step is tried again: 1, 2, 4 … minutes, at most an hour, so a
    platform outage is ridden out without hammering it."""
    return timedelta(minutes=min(60, 2 ** min(failures, 6)))


def submission_kind(kind: str) -> str:
    """The `Submission.kind` a learner DM collects: the feedback reminder collects the feedback."""
    return DeliveryKind.FEEDBACK if kind == DeliveryKind.FEEDBACK_REMINDER else kind


def item_kind(kind: str) -> str:
    """The `QuestionnaireItem.kind` a learner DM asks: the second quiz asks (some of) the first quiz's items."""
    return DeliveryKind.RETENTION if kind == DeliveryKind.RETENTION2 else submission_kind(kind)


def missed_items(item_ids: Sequence[int], right: Collection[int]) -> list[int]:
    """What the second retention quiz asks: the first quiz's items not answered right, in order. All of them
    when the first quiz went unanswered (nothing was recalled); none when all were right (then no second quiz
    is sent: there is nothing to practise)."""
    return [item for item in item_ids if item not in right]


def dm_family(kind: str) -> str:
    """Which learner DMs an "unreachable" notice reports on: the questionnaire and its reminder are one."""
    return DeliveryKind.FEEDBACK if kind == DeliveryKind.FEEDBACK_REMINDER else kind


# ---------------------------------------------------------------------------------------------- dropout


class Risk(StrEnum):
    """Why a learner may be drifting away (the trainer reads them translated)."""

    ABSENT_TWICE = "absent_twice"
    PREP_SKIPPED_TWICE = "prep_skipped_twice"
    QUESTIONNAIRES_UNANSWERED = "questionnaires_unanswered"
    QUIZ_FALLING = "quiz_falling"


@dataclass(frozen=True, slots=True)
class Record:
    """One learner in one session that took place: what the evidence says about their engagement."""

    present: bool
    prep_expected: bool = False
    prepped: bool = False
    feedback_sent: bool = False
    feedback_answered: bool = False
    quiz_ratio: float | None = None  # their completed retention quiz, as a share of the questions


def dropout_risks(records: Sequence[Record]) -> list[Risk]:
    """The signals in a learner's records (oldest first) that a trainer should act on: the last two
    sessions missed, the last two preparations skipped, the last two questionnaires left unanswered, or a
    retention score lower than the one before."""
    risks: list[Risk] = []
    if len(records) >= 2 and not any(r.present for r in records[-2:]):
        risks.append(Risk.ABSENT_TWICE)
    preps = [r.prepped for r in records if r.prep_expected]
    if len(preps) >= 2 and not any(preps[-2:]):
        risks.append(Risk.PREP_SKIPPED_TWICE)
    answers = [r.feedback_answered for r in records if r.feedback_sent]
    if len(answers) >= 2 and not any(answers[-2:]):
        risks.append(Risk.QUESTIONNAIRES_UNANSWERED)
    scores = [r.quiz_ratio for r in records if r.quiz_ratio is not None]
    if len(scores) >= 2 and scores[-1] < scores[-2]:
        risks.append(Risk.QUIZ_FALLING)
    return risks

"""SQLModel tables: every row here is audit evidence (attendance, prep, feedback, scores), so nothing is deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _utc_column(nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Workspace(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)


class Member(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=200)
    timezone: str = Field(default="", max_length=64)
    locale: str = Field(default="", max_length=8)


class Cohort(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    name: str = Field(max_length=80)
    channel_id: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=_utc_column())


class Enrollment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("cohort_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohort.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(default="learner", max_length=16)  # learner | trainer | tutor | manager
    level: int = Field(default=3, ge=1, le=5)


class PairConstraint(SQLModel, table=True):
    """A trainer's rule for two learners of a cohort: `apart` (never in the same group) or `together`
    (in the same group when the split allows). One rule per pair, stored with the smaller member id first
    so (a, b) and (b, a) are the same row. Configuration, not evidence: `unpair` deletes the row and the
    audit log keeps the history."""

    __tablename__ = "pair_constraint"
    __table_args__ = (
        UniqueConstraint("cohort_id", "member_a_id", "member_b_id"),
        CheckConstraint("member_a_id < member_b_id", name="ck_pair_constraint_canonical_order"),
    )
    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohort.id", index=True)
    member_a_id: int = Field(foreign_key="member.id")
    member_b_id: int = Field(foreign_key="member.id")
    kind: str = Field(max_length=16)  # apart | together
    created_at: datetime = Field(sa_column=_utc_column())
    created_by: int = Field(foreign_key="member.id")


class PeerSession(SQLModel, table=True):
    __tablename__ = "peer_session"
    id: int | None = Field(default=None, primary_key=True)
    short_id: str = Field(max_length=16, unique=True, index=True)
    cohort_id: int = Field(foreign_key="cohort.id", index=True)
    title: str = Field(max_length=200)
    objectives: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    format: str = Field(default="groups", max_length=16)  # tutoring | groups | review | sharing
    group_size: int = Field(default=4)
    starts_at: datetime = Field(sa_column=_utc_column())
    duration_minutes: int
    prep_material: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    prep_lead_minutes: int = Field(default=1440)
    retention_days: int = Field(default=14)
    groups_from: str = Field(default="checked_in", max_length=16)  # checked_in | enrolled
    state: str = Field(default="planned", max_length=16, index=True)
    channel_id: str = Field(default="", max_length=64)
    prep_message_id: str = Field(default="", max_length=64)
    announce_message_id: str = Field(default="", max_length=64)
    event_id: str = Field(default="", max_length=64)
    checkin_opened_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    prep_reminded_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    started_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    ended_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    retention_queued_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    retention2_days: int = Field(default=0)  # a second retention quiz this long after the end (0: none)
    followup_weeks: int = Field(default=0)  # behavioural follow-up this many weeks after the end (0: none)
    followup_observer_id: int | None = Field(default=None)  # a member id (no foreign key: see migration 0009)
    followup_queued_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    closed_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    event_closed_at: datetime | None = Field(default=None, sa_column=_utc_column(True))  # the platform event ended
    reviewers: int = Field(default=2)  # review format: reviewers per submission
    named_reviews: bool = Field(default=False)  # review format: authors see who reviewed them
    created_by: int = Field(foreign_key="member.id")
    created_at: datetime = Field(sa_column=_utc_column())


class PeerGroup(SQLModel, table=True):
    __tablename__ = "peer_group"
    __table_args__ = (UniqueConstraint("session_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    number: int
    channel_id: str = Field(default="", max_length=64)
    takeaways: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    level_spread: int = 0
    repeated_pairs: int = 0
    closed_at: datetime | None = Field(default=None, sa_column=_utc_column(True))  # its breakout archived/deleted
    # The format's own message in the breakout (sharing: the speaking order and timer, edited in place; tutoring:
    # the pair's agreement). "claimed" while it is being posted, so a crash never leaves two of them.
    format_message_id: str = Field(default="", max_length=64)
    format_state: str = Field(default="", max_length=64)  # what the timer shows now: edited only when it changes
    speaking_order: str = Field(default="", max_length=1000)  # sharing: member ids, comma-separated
    timer_started_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class GroupMembership(SQLModel, table=True):
    __tablename__ = "group_membership"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    group_id: int = Field(foreign_key="peer_group.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: str = Field(default="member", max_length=16)  # member | tutor | tutee
    joined_at: datetime = Field(sa_column=_utc_column())


class PrepAck(SQLModel, table=True):
    __tablename__ = "prep_ack"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    at: datetime = Field(sa_column=_utc_column())
    method: str = Field(max_length=16)  # button | reaction | command


class Attendance(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    status: str = Field(max_length=16)  # on_time | late | excused
    checked_in_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    method: str = Field(default="", max_length=16)  # button | reaction | command
    absence_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class QuestionnaireItem(SQLModel, table=True):
    """Items of a session's questionnaires; feedback items are copied from the default at end time."""

    __tablename__ = "questionnaire_item"
    __table_args__ = (UniqueConstraint("session_id", "kind", "item_key"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    kind: str = Field(max_length=16)  # feedback | retention
    position: int
    item_key: str = Field(max_length=32)
    item_type: str = Field(max_length=16)  # likert | open | choice
    text: str = Field(sa_column=Column(Text, nullable=False))
    options_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    correct: str = Field(default="", max_length=200)
    text_fr: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # as asked in French
    options_fr_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))


class QuestionnaireTemplate(SQLModel, table=True):
    """A cohort's own post-session questionnaire (`bot.templates`); without one, the default applies. Copied
    into the session's `QuestionnaireItem` rows at the end, so a later edit never rewrites what was asked.
    Configuration, not evidence: the audit trail keeps each edit. `draft` keeps a refused edit for the next
    opening of the form (a Discord modal closes on submit)."""

    __tablename__ = "questionnaire_template"
    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohort.id", unique=True, index=True)
    items_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    draft: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime = Field(sa_column=_utc_column())
    updated_by: str = Field(default="", max_length=100)


class Delivery(SQLModel, table=True):
    """The outbox: one row per DM that matters; the idempotency key makes a retry a no-op."""

    __table_args__ = (UniqueConstraint("idempotency_key"),)
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=120)
    kind: str = Field(max_length=24)  # bot.core.rules.DeliveryKind
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    due_at: datetime = Field(sa_column=_utc_column())
    state: str = Field(
        default="pending", max_length=16, index=True
    )  # pending|sending|sent|failed|undeliverable|skipped
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    claimed_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    sent_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    message_id: str = Field(default="", max_length=64)
    subject_id: int | None = Field(default=None)  # an observer's DM is about this learner (a member id)


class Submission(SQLModel, table=True):
    """One answered questionnaire; unique per delivery so a second submission is refused."""

    __table_args__ = (UniqueConstraint("session_id", "member_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    kind: str = Field(max_length=16)
    submitted_at: datetime = Field(sa_column=_utc_column())
    completed: bool = False  # per-item answering (Discord) fills a submission over several clicks
    score: int | None = None
    max_score: int | None = None


class Answer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("submission_id", "item_id"),)
    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    item_id: int = Field(foreign_key="questionnaire_item.id")
    value_int: int | None = None
    value_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    correct: bool | None = None


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_utc_column())
    actor: str = Field(max_length=100)
    action: str = Field(max_length=40, index=True)
    session_id: int | None = Field(default=None, index=True)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class DmChannel(SQLModel, table=True):
    """A person's DM channel id on a platform, kept across restarts: Discord blocks bots that open many DMs
    quickly (40003), and the id never changes once opened."""

    __tablename__ = "dm_channel"
    __table_args__ = (UniqueConstraint("platform", "workspace", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)


class SeenEvent(SQLModel, table=True):
    """A platform event already handled, so a redelivery is acknowledged without being run again by any
    replica (Slack retries an event it thinks was not acknowledged, possibly to another replica)."""

    __tablename__ = "seen_event"
    platform: str = Field(max_length=16, primary_key=True)
    event_id: str = Field(max_length=100, primary_key=True)
    seen_at: datetime = Field(sa_column=_utc_column())


class PendingReply(SQLModel, table=True):
    """An answer promised ("Working on …") and not given yet. After a crash the restarted process finds it and
    apologises through `response_url` while it is valid (Slack: 30 minutes), else by DM. Kept once answered
    (`answered_at`), like every row here."""

    __tablename__ = "pending_reply"
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20, index=True)
    user_id: str = Field(max_length=64)
    what: str = Field(default="", max_length=250)
    response_url: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(sa_column=_utc_column())
    expires_at: datetime = Field(sa_column=_utc_column())
    answered_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class EvidenceLink(SQLModel, table=True):
    """One link of a session's hash chain (`storage.chain`): a version of an attendance, preparation or
    questionnaire record, hashed with the link before it. Append-only: a record changed later gets a new link."""

    __tablename__ = "evidence_link"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    seq: int
    record: str = Field(max_length=16)  # attendance | prep_ack | submission | answer
    record_id: int
    content_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class DashboardLink(SQLModel, table=True):
    """A single-use dashboard sign-in link DMed by `/peer dashboard`: only the SHA-256 of its nonce is kept, so a
    database read gives no working link; `used_at` is set by one conditional UPDATE, so two replicas never both
    accept the same link. Kept once used or expired, like the audit trail."""

    __tablename__ = "dashboard_link"
    id: int | None = Field(default=None, primary_key=True)
    nonce_hash: str = Field(max_length=64, unique=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    is_admin: bool = False
    locale: str = Field(default="", max_length=8)
    created_at: datetime = Field(sa_column=_utc_column())
    expires_at: datetime = Field(sa_column=_utc_column())
    used_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class AppSecret(SQLModel, table=True):
    """A secret generated once and shared by every replica through the database (the dashboard's signing key
    when PEERBOT_SECRET_KEY is not set)."""

    __tablename__ = "app_secret"
    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=128)
    created_at: datetime = Field(sa_column=_utc_column())


class TutoringAgreement(SQLModel, table=True):
    """A tutoring pair member's acceptance of the pair's objectives (the exact text shown and its SHA-256), and
    later their own account of whether the pair met and for how long. Evidence: chained (`storage.chain`)."""

    __tablename__ = "tutoring_agreement"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    group_id: int = Field(foreign_key="peer_group.id")
    member_id: int = Field(foreign_key="member.id")
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text_sha256: str = Field(default="", max_length=64)
    accepted_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    met: bool | None = None
    met_minutes: int | None = None
    reported_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class ReviewCriterion(SQLModel, table=True):
    """One criterion of a session's peer-review rubric (scored 1-4 by each reviewer)."""

    __tablename__ = "review_criterion"
    __table_args__ = (UniqueConstraint("session_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    position: int
    text: str = Field(max_length=200)


class WorkSubmission(SQLModel, table=True):
    """A learner's work handed in for peer review (text or a link); evidence, chained."""

    __tablename__ = "work_submission"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    content: str = Field(sa_column=Column(Text, nullable=False))
    submitted_at: datetime = Field(sa_column=_utc_column())


class ReviewAssignment(SQLModel, table=True):
    """A reviewer assigned to a submission, and their review once given (scores as JSON, one per criterion
    position, and a comment); evidence, chained."""

    __tablename__ = "review_assignment"
    __table_args__ = (UniqueConstraint("submission_id", "reviewer_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    submission_id: int = Field(foreign_key="work_submission.id", index=True)
    reviewer_id: int = Field(foreign_key="member.id", index=True)
    assigned_at: datetime = Field(sa_column=_utc_column())
    scores_json: str = Field(default="", max_length=500)
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reviewed_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class SessionNote(SQLModel, table=True):
    """A trainer's note on a session (`/peer note`): what they saw and what they will change, the evidence of
    Qualiopi indicator 32 (improvement). The trainer's own text about the session, so neither the retention
    purge nor a learner's erasure removes it (a learner's mention in it is rewritten to their pseudonym)."""

    __tablename__ = "session_note"
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="peer_session.id", index=True)
    author_id: int = Field(foreign_key="member.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_utc_column())

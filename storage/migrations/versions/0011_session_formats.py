"""session formats: the sharing timer and tutoring agreement on each group, tutoring agreements, peer review
(rubric criteria, work submissions, review assignments) and the review options of a session

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.types import UTCDateTime

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN: a batch copy of these tables would trip the foreign keys pointing at them.
    op.add_column("peer_session", sa.Column("reviewers", sa.Integer(), nullable=False, server_default="2"))
    op.add_column("peer_session", sa.Column("named_reviews", sa.Boolean(), nullable=False, server_default=sa.false()))
    text = sqlmodel.sql.sqltypes.AutoString
    op.add_column("peer_group", sa.Column("format_message_id", text(length=64), nullable=False, server_default=""))
    op.add_column("peer_group", sa.Column("format_state", text(length=64), nullable=False, server_default=""))
    op.add_column("peer_group", sa.Column("speaking_order", text(length=1000), nullable=False, server_default=""))
    op.add_column("peer_group", sa.Column("timer_started_at", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "tutoring_agreement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("accepted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("met", sa.Boolean(), nullable=True),
        sa.Column("met_minutes", sa.Integer(), nullable=True),
        sa.Column("reported_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["peer_session.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["peer_group.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "member_id"),
    )
    op.create_index("ix_tutoring_agreement_session_id", "tutoring_agreement", ["session_id"])
    op.create_table(
        "review_criterion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["peer_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "position"),
    )
    op.create_index("ix_review_criterion_session_id", "review_criterion", ["session_id"])
    op.create_table(
        "work_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["peer_session.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "member_id"),
    )
    op.create_index("ix_work_submission_session_id", "work_submission", ["session_id"])
    op.create_table(
        "review_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("scores_json", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["peer_session.id"]),
        sa.ForeignKeyConstraint(["submission_id"], ["work_submission.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_id", "reviewer_id"),
    )
    op.create_index("ix_review_assignment_session_id", "review_assignment", ["session_id"])
    op.create_index("ix_review_assignment_submission_id", "review_assignment", ["submission_id"])
    op.create_index("ix_review_assignment_reviewer_id", "review_assignment", ["reviewer_id"])


def downgrade() -> None:
    for table in ("review_assignment", "work_submission", "review_criterion", "tutoring_agreement"):
        op.drop_table(table)
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy of peer_group would trip the foreign keys
    # of the rows that point at it.
    for column in ("timer_started_at", "speaking_order", "format_state", "format_message_id"):
        op.drop_column("peer_group", column)
    op.drop_column("peer_session", "named_reviews")
    op.drop_column("peer_session", "reviewers")

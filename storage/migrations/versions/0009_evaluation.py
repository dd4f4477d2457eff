"""evaluation: cohort questionnaire templates, items asked in French, a second retention quiz, behavioural
follow-up (its weeks and observer on the session, the learner an observer's DM is about on the delivery)

Nothing is added to the chained records (submission, answer), so existing evidence chains verify unchanged. The
new member ids carry no foreign key: adding one (or dropping its column) makes SQLite copy the whole table, which
fails once other tables' rows point at it; plain `ADD COLUMN` / `DROP COLUMN` do not.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questionnaire_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("items_json", sa.Text(), nullable=False),
        sa.Column("draft", sa.Text(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.ForeignKeyConstraint(["cohort_id"], ["cohort.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("questionnaire_template", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_questionnaire_template_cohort_id"), ["cohort_id"], unique=True)
    with op.batch_alter_table("questionnaire_item") as batch:
        batch.add_column(sa.Column("text_fr", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("options_fr_json", sa.Text(), nullable=False, server_default="[]"))
    with op.batch_alter_table("peer_session") as batch:
        batch.add_column(sa.Column("retention2_days", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("followup_weeks", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("followup_observer_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("followup_queued_at", storage.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table, column in (
        ("delivery", "subject_id"),
        ("peer_session", "followup_queued_at"),
        ("peer_session", "followup_observer_id"),
        ("peer_session", "followup_weeks"),
        ("peer_session", "retention2_days"),
        ("questionnaire_item", "options_fr_json"),
        ("questionnaire_item", "text_fr"),
    ):
        op.drop_column(table, column)  # SQLite 3.35+ drops a plain column in place
    with op.batch_alter_table("questionnaire_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questionnaire_template_cohort_id"))
    op.drop_table("questionnaire_template")

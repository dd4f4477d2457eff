"""evaluation: cohort questionnaire templates, items asked in French, a second retention quiz, behavioural
follow-up (its weeks and observer on the session, the learner an observer's DM is about on the delivery)

Nothing is added to the chained records (submission, answer), so existing evidence chains verify unchanged.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0009"
down_revision = "0006"
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
        batch.create_foreign_key(
            "fk_peer_session_followup_observer_id_member", "member", ["followup_observer_id"], ["id"]
        )
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_delivery_subject_id_member", "member", ["subject_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_constraint("fk_delivery_subject_id_member", type_="foreignkey")
        batch.drop_column("subject_id")
    with op.batch_alter_table("peer_session") as batch:
        batch.drop_constraint("fk_peer_session_followup_observer_id_member", type_="foreignkey")
        batch.drop_column("followup_queued_at")
        batch.drop_column("followup_observer_id")
        batch.drop_column("followup_weeks")
        batch.drop_column("retention2_days")
    with op.batch_alter_table("questionnaire_item") as batch:
        batch.drop_column("options_fr_json")
        batch.drop_column("text_fr")
    with op.batch_alter_table("questionnaire_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questionnaire_template_cohort_id"))
    op.drop_table("questionnaire_template")

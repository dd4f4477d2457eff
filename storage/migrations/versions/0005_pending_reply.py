"""pending replies: answers promised ("Working on …") that a restart must finish or apologise for

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("what", sa.String(length=250), nullable=False),
        sa.Column("response_url", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pending_reply") as batch:
        batch.create_index(batch.f("ix_pending_reply_platform"), ["platform"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending_reply") as batch:
        batch.drop_index(batch.f("ix_pending_reply_platform"))
    op.drop_table("pending_reply")

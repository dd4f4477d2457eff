"""session notes: a trainer's notes on a session (`/peer note`), the evidence of Qualiopi indicator 32

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["peer_session.id"]),
        sa.ForeignKeyConstraint(["author_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_note") as batch:
        batch.create_index(batch.f("ix_session_note_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_note") as batch:
        batch.drop_index(batch.f("ix_session_note_session_id"))
    op.drop_table("session_note")

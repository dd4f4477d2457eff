"""resumable end: when each breakout was closed and the platform event ended

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peer_group") as batch:
        batch.add_column(sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("peer_session") as batch:
        batch.add_column(sa.Column("event_closed_at", storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("peer_session") as batch:
        batch.drop_column("event_closed_at")
    with op.batch_alter_table("peer_group") as batch:
        batch.drop_column("closed_at")

"""evidence chain: one hash-chain link per version of an attendance, preparation or questionnaire record

Existing records are chained in the order they were created (record kind, then id), so a database upgraded
from 0003 verifies clean and any later change outside peerbot shows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["peer_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "seq"),
    )
    with op.batch_alter_table("evidence_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_link_session_id"), ["session_id"], unique=False)

    from storage import chain

    conn = op.get_bind()
    for (session_id,) in conn.execute(sa.text("SELECT id FROM peer_session ORDER BY id")).all():
        records = sorted(chain.current_records(conn, session_id), key=lambda r: (list(chain.RECORDS).index(r[0]), r[1]))
        if records:
            chain.append_links(conn, session_id, records)


def downgrade() -> None:
    with op.batch_alter_table("evidence_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_link_session_id"))
    op.drop_table("evidence_link")

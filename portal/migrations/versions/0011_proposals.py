"""development proposals (usulan pembangunan): proposals, their history, their reports; the outbox's detail

Revision ID: 0011_proposals
Revises: 0010_alarm_notify
Create Date: 2026-12-04 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_proposals"
down_revision = "0010_alarm_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kecamatan", sa.String(length=32), nullable=False),
        sa.Column("kelurahan", sa.String(length=32), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("estimated_cost", sa.BigInteger(), nullable=True),
        sa.Column("funded_amount", sa.BigInteger(), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("stage_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_proposals_kecamatan", "proposals", ["kecamatan"])
    op.create_index("ix_proposals_agency", "proposals", ["agency"])
    op.create_index("ix_proposals_year_stage", "proposals", ["budget_year", "stage"])
    op.create_table(
        "proposal_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_proposal_entries_proposal_id", "proposal_entries", ["proposal_id"])
    op.create_table(
        "proposal_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id"),
    )
    op.create_index("ix_proposal_reports_proposal_id", "proposal_reports", ["proposal_id"])
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("detail", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("detail")
    op.drop_index("ix_proposal_reports_proposal_id", table_name="proposal_reports")
    op.drop_table("proposal_reports")
    op.drop_index("ix_proposal_entries_proposal_id", table_name="proposal_entries")
    op.drop_table("proposal_entries")
    op.drop_index("ix_proposals_year_stage", table_name="proposals")
    op.drop_index("ix_proposals_agency", table_name="proposals")
    op.drop_index("ix_proposals_kecamatan", table_name="proposals")
    op.drop_table("proposals")

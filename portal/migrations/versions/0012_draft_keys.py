"""offline drafts: the SHA-256 of each draft's idempotency key, unique, so a replayed draft finds its report

Revision ID: 0012_draft_keys
Revises: 0011_proposals
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_draft_keys"
down_revision = "0011_proposals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("draft_hash", sa.String(length=64), nullable=True))
        batch.create_index("ix_reports_draft_hash", ["draft_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_index("ix_reports_draft_hash")
        batch.drop_column("draft_hash")

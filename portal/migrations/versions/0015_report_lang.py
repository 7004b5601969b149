"""reports.lang: the language of the page a report was made from, so the reporter's e-mails are in it

Revision ID: 0015_report_lang
Revises: 0014_sms_channel
Create Date: 2026-12-04 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_report_lang"
down_revision = "0014_sms_channel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("lang", sa.String(length=2), nullable=False, server_default="id"))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("lang")

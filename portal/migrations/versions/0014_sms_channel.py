"""SMS notifications: the reporter's channel, the staff's phone, each outbox row's channel

Revision ID: 0014_sms_channel
Revises: 0013_agency_notify
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_sms_channel"
down_revision = "0013_agency_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column("notify_channel", sa.String(length=8), nullable=False, server_default="email")
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=8), nullable=False, server_default="email"))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("channel")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("phone")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("notify_channel")

"""alarm notifications: staff e-mail and language, outbox rows of any kind with a unique key

Revision ID: 0010_alarm_notify
Revises: 0009
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_alarm_notify"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lang", sa.String(length=2), nullable=False, server_default="id"))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="report"))
        batch.add_column(sa.Column("recipient", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("subject", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
    op.create_index("uq_notifications_dedupe_key", "notifications", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_notifications_dedupe_key", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        for column in ("dedupe_key", "body", "subject", "recipient", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("lang")
        batch.drop_column("email")

"""alarms: the evaluator's alarm states, the audit history of alarm events, the standby lease

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarm_states",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "alarm_events",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("alarm", sa.String(length=120), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_alarm_events_alarm", "alarm_events", ["alarm"])
    op.create_index("ix_alarm_events_at", "alarm_events", ["at"])
    op.create_index("ix_alarm_events_unpublished", "alarm_events", ["published_at", "seq"])
    op.create_table(
        "alarm_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("alarm_lease")
    op.drop_index("ix_alarm_events_unpublished", table_name="alarm_events")
    op.drop_index("ix_alarm_events_at", table_name="alarm_events")
    op.drop_index("ix_alarm_events_alarm", table_name="alarm_events")
    op.drop_table("alarm_events")
    op.drop_table("alarm_states")

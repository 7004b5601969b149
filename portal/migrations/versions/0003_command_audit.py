"""operator console: command audit and schedule runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("device", sa.String(length=48), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("readback", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transaction"),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule", "due_at", name="uq_schedule_runs_slot"),
    )
    with op.batch_alter_table("command_audit", schema=None) as batch_op:
        batch_op.create_index("ix_command_audit_at", ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_command_audit_device"), ["device"], unique=False)
        batch_op.create_index(batch_op.f("ix_command_audit_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_command_audit_username"), ["username"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("command_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_command_audit_username"))
        batch_op.drop_index(batch_op.f("ix_command_audit_status"))
        batch_op.drop_index(batch_op.f("ix_command_audit_device"))
        batch_op.drop_index("ix_command_audit_at")
    op.drop_table("command_audit")
    op.drop_table("schedule_runs")

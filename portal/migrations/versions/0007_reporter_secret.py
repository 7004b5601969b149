"""the reporter's secret key, apart from the public tracking code (stored as its SHA-256)

Existing reports keep ``secret_hash`` NULL: their reporters' browsers claim a key on their next visit
(docs/security.md ("Reporter secret and confidential reports"), "Reports stored before reporter keys").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("secret_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("reporter_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("reporter_key")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("secret_hash")

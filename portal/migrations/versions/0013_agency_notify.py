"""agencies answer for deadlines: at most one active head (role ``kepala_dinas``) per agency

The e-mails to officers and heads (dispatch, daily digest, escalation) are outbox rows of kind
``agency`` written whole with a unique ``dedupe_key`` (columns of 0010); only the head's uniqueness
needs the schema: a partial unique index, so two admins creating a head at once cannot both succeed.

Revision ID: 0013_agency_notify
Revises: 0012_draft_keys
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_agency_notify"
down_revision = "0012_draft_keys"
branch_labels = None
depends_on = None

ONE_HEAD = "role = 'kepala_dinas' AND active"


def upgrade() -> None:
    op.create_index(
        "uq_users_one_head",
        "users",
        ["agency"],
        unique=True,
        sqlite_where=sa.text(ONE_HEAD),
        postgresql_where=sa.text(ONE_HEAD),
    )


def downgrade() -> None:
    op.drop_index("uq_users_one_head", table_name="users")

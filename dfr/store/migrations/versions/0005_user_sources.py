"""Incident sources bound to feed accounts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Existing feed accounts get no binding: they keep reporting as any source that nobody owns (see
`dfr.api.sources`); an administrator binds them with ``dfr user sources``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_sources",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name=op.f("fk_user_sources_username_users")
        ),
        sa.PrimaryKeyConstraint("username", "source", name=op.f("pk_user_sources")),
    )
    op.create_index(op.f("ix_user_sources_source"), "user_sources", ["source"])


def downgrade() -> None:
    op.drop_index(op.f("ix_user_sources_source"), table_name="user_sources")
    op.drop_table("user_sources")

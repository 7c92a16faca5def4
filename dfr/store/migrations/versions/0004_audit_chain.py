"""Hash chain on the audit log: prev_hash and hash columns, filled in for the records already there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

The existing records are chained in id order with `dfr.store.audit_chain.record_hash`, which is the
chain's definition and so is imported rather than copied. The append-only triggers are lifted for
that one backfill and put back exactly as revision 0001 made them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dfr.store.audit_chain import GENESIS, record_hash

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = "audit_log is append-only"


def _triggers(create: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE audit_log {'ENABLE' if create else 'DISABLE'} TRIGGER audit_log_append_only")
        return
    for event in ("UPDATE", "DELETE"):
        name = f"audit_log_no_{event.lower()}"
        if create:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    from dfr.store.models import AuditLogRow  # the typed columns (UTC times, JSON details)

    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            AuditLogRow.id,
            AuditLogRow.at,
            AuditLogRow.actor,
            AuditLogRow.action,
            AuditLogRow.subject_type,
            AuditLogRow.subject_id,
            AuditLogRow.details,
        ).order_by(AuditLogRow.id)
    ).all()
    if not rows:
        return
    _triggers(create=False)
    prev = GENESIS
    for r in rows:
        digest = record_hash(prev, r.at, r.actor, r.action, r.subject_type, r.subject_id, r.details)
        conn.execute(sa.update(AuditLogRow).where(AuditLogRow.id == r.id).values(prev_hash=prev, hash=digest))
        prev = digest
    _triggers(create=True)


def downgrade() -> None:
    _triggers(create=False)
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
    _triggers(create=True)

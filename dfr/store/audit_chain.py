"""A tamper-evident audit log: every record carries a SHA-256 over its content and its predecessor's hash.

The triggers of revision 0001 already refuse UPDATE and DELETE through SQL, but whoever holds the database
file (or a superuser) can drop them, edit a row, and put them back. The hash chain makes such an edit
visible afterwards: changing, removing or inserting a record breaks the link to the next one, and
`verify_chain` names the first record that no longer fits. (A forger who rewrites the *whole* tail of the
chain is not caught by the chain alone; publishing the latest hash elsewhere, e.g. in a daily report,
pins it.)

How records get their hash: a ``before_flush`` listener on every ORM session sees the new `AuditLogRow`s
of the transaction, reads the newest stored hash and chains the new rows onto it in the order they were
added. That read happens inside the writing transaction, which holds SQLite's write lock (all dfr
writers begin IMMEDIATE) and, on PostgreSQL, a transaction-scoped advisory lock taken here, so two
transactions can never chain onto the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import event, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from dfr.store.models import AuditLogRow

__all__ = ["GENESIS", "ChainReport", "record_hash", "verify_chain"]

GENESIS: Final = "0" * 64
"""The predecessor of the first record."""

AUDIT_LOCK_KEY: Final = 0x64667261  # "dfra": serialises chain appends on PostgreSQL


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | None,
    details: Any,
) -> str:
    """SHA-256 (hex) over the predecessor's hash and a canonical JSON of the record's content."""
    body = json.dumps(
        [_canonical_time(at), actor, action, subject_type, subject_id, details],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _row_hash(prev_hash: str, row: AuditLogRow) -> str:
    return record_hash(
        prev_hash, row.at, row.actor, row.action, row.subject_type, row.subject_id, row.details
    )


@event.listens_for(Session, "before_flush")
def _chain_new_records(session: Session, _context: Any, _instances: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, AuditLogRow) and obj.hash is None]
    if not new:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    with session.no_autoflush:
        prev = session.scalar(select(AuditLogRow.hash).order_by(AuditLogRow.id.desc()).limit(1))
    prev = prev or GENESIS
    for row in sorted(new, key=lambda r: inspect(r).insert_order or 0):
        row.details = json.loads(json.dumps(row.details, default=str))  # hashed exactly as stored
        row.prev_hash = prev
        row.hash = prev = _row_hash(prev, row)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of `verify_chain`: how many records were checked and the first broken one, if any."""

    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    last_hash: str = GENESIS

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


async def _rows(engine: AsyncEngine, batch: int) -> AsyncIterator[AuditLogRow]:
    """Every record in id order, read in batches so that a long log needs little memory."""
    after = -1
    while True:
        async with AsyncSession(engine) as session:
            rows = (
                await session.scalars(
                    select(AuditLogRow).where(AuditLogRow.id > after).order_by(AuditLogRow.id).limit(batch)
                )
            ).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].id


async def verify_chain(engine: AsyncEngine, *, batch: int = 1000) -> ChainReport:
    """Recompute the chain from the first record; report the first record whose link or hash is wrong."""
    prev = GENESIS
    checked = 0
    async for row in _rows(engine, batch):
        if row.prev_hash != prev:
            return ChainReport(
                checked,
                row.id,
                "its link to the previous record does not match (a record before it was removed, "
                "inserted or changed)",
                prev,
            )
        if row.hash != _row_hash(prev, row):
            return ChainReport(checked, row.id, "its content does not match its hash (it was changed)", prev)
        prev = row.hash
        checked += 1
    return ChainReport(checked, None, None, prev)

"""The tables, as SQLAlchemy 2 ORM models; the Alembic revisions in ``migrations/`` create exactly these.

Three tables:

- ``incidents``: one row per incident, holding its first report's facts plus what merged reports changed;
- ``incident_reports``: every accepted report (the one that opened an incident and every one merged into
  it), with the normalised payload, unique on (source, external_id) so that a re-delivered report is
  recognised and never counted twice;
- ``audit_log``: an append-only record of every change, written in the same transaction as the change
  itself. The migration installs triggers that refuse UPDATE and DELETE on it.

Times are stored in UTC: as ``timestamptz`` on PostgreSQL, and as naive UTC text on SQLite (which has no
time type); `UTCDateTime` converts at the boundary so that Python only ever sees aware datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AuditLogRow", "Base", "IncidentReportRow", "IncidentRow", "UTCDateTime"]

# Deterministic constraint names, so that later migrations can refer to them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps UTC only")
        value = value.astimezone(UTC)
        # SQLite keeps text; comparing those strings is only right if all are UTC without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
"""JSONB on PostgreSQL (indexable, compact), JSON text elsewhere."""

AuditId = BigInteger().with_variant(Integer(), "sqlite")
"""SQLite only auto-increments an INTEGER PRIMARY KEY, so the 64-bit id is INTEGER there."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority_range"),
        CheckConstraint("status IN ('open', 'closed')", name="status_values"),
        CheckConstraint("report_count >= 1", name="report_count_positive"),
        # The merge search: open incidents whose latest report is recent.
        Index(None, "status", "last_reported_at"),
        Index(None, "reported_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(256))
    rounds: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8))
    merged_into: Mapped[str | None] = mapped_column(String(36), ForeignKey("incidents.id"))
    report_count: Mapped[int] = mapped_column(Integer)


class IncidentReportRow(Base):
    __tablename__ = "incident_reports"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("disposition IN ('created', 'merged')", name="disposition_values"),
        Index(None, "incident_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(36), ForeignKey("incidents.id"))
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disposition: Mapped[str] = mapped_column(String(8))
    distance_m: Mapped[float | None] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class AuditLogRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "subject_id", "id"),
        # AUTOINCREMENT: ids are never reused, so the id order is the order of events.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    # the hash chain (dfr.store.audit_chain): filled in when the record is flushed
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str | None] = mapped_column(String(64), default=None)

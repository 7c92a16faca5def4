"""The incident store: ingest (idempotent, merging, audited, atomic) and the queries the API needs.

Ingest is the one write path that matters during an emergency, so its guarantees are explicit:

- **one transaction**: the report row, the incident insert or update, and the audit record commit
  together or not at all, so an audit record is never half-written and a crash never leaves a report
  counted without its incident;
- **idempotent**: a report whose (source, external_id) is already stored returns its incident unchanged.
  MQTT delivers at least once and HTTP clients retry on timeouts, so repeats are normal traffic. A repeat
  whose content differs from the stored report is still not applied, but it is audited
  (``report.conflicting_repeat``), because a sender re-using an id for a different event is a bug the
  RTCC must hear about;
- **serialised**: deciding "merge or create" reads before it writes, so two concurrent nearby reports
  could both decide to create. Ingests therefore take a lock first: a transaction-scoped advisory lock on
  PostgreSQL (works across processes), ``BEGIN IMMEDIATE`` on SQLite (the database write lock), plus an
  in-process `asyncio.Lock` so that coroutines of one process queue fairly instead of polling SQLite's
  busy timeout. Ingest volume is a few reports per second at most, so one lock costs nothing noticeable.

The merge rule itself is in `dfr.store.merge`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dfr.domain.incidents import Incident, IncidentKind, IncidentReport, IncidentStatus, Location
from dfr.store.engine import create_engine, normalize_url
from dfr.store.merge import JOINABLE_KINDS, MergePolicy, haversine_m, lat_lon_bounds
from dfr.store.migrate import migrate
from dfr.store.models import AuditLogRow, IncidentReportRow, IncidentRow

__all__ = ["MAX_PAGE", "AuditEntry", "IngestResult", "Store", "StoredReport"]

MAX_PAGE: Final = 1000
"""Largest page a list query returns; bounds memory and response size whatever a client asks for."""

INGEST_LOCK_KEY: Final = 0x0DF2_0002
"""PostgreSQL advisory lock key held by every ingest transaction."""

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What `Store.ingest` did. Exactly one of created / merged / duplicate_of_report is true."""

    incident: Incident
    created: bool
    duplicate_of_report: bool
    merged: bool
    report_id: str
    """The stored report's id (for a repeat: the id of the report stored the first time)."""
    conflicting_fields: tuple[str, ...] = ()
    """For a repeat whose content differs from the stored report: the fields that differ (audited)."""


class AuditEntry(BaseModel):
    """One audit record, as read back."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str | None
    details: dict[str, Any]


class StoredReport(BaseModel):
    """One accepted report as stored, with how it was handled (``created`` or ``merged``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    incident_id: str
    source: str
    external_id: str
    kind: IncidentKind
    reported_at: datetime
    received_at: datetime
    disposition: str
    distance_m: float | None
    payload: dict[str, Any]


def _incident(row: IncidentRow) -> Incident:
    return Incident(
        id=row.id,
        kind=IncidentKind(row.kind),
        location=Location(lat=row.lat, lon=row.lon),
        reported_at=row.reported_at,
        last_reported_at=row.last_reported_at,
        received_at=row.received_at,
        priority=row.priority,
        source=row.source,
        external_id=row.external_id,
        address=row.address,
        rounds=row.rounds,
        confidence=row.confidence,
        note=row.note,
        status=IncidentStatus(row.status),
        merged_into=row.merged_into,
        report_count=row.report_count,
    )


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1..{MAX_PAGE}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, not {offset}")


class Store:
    """Persistent incidents, reports and audit log on SQLite or PostgreSQL. Create with `Store.open`."""

    def __init__(self, engine: AsyncEngine, *, policy: MergePolicy, clock: Clock) -> None:
        """Wrap an engine made by `dfr.store.engine.create_engine` whose schema is current; prefer `open`."""
        self._engine = engine
        self._policy = policy
        self._clock = clock
        self._backend = engine.dialect.name
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )
        self._ingest_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        policy: MergePolicy | None = None,
        clock: Clock | None = None,
        run_migrations: bool = True,
    ) -> Self:
        """Migrate the database at ``url`` to the current schema (creating a SQLite file and its directory
        as needed), then connect. ``clock`` supplies received_at and audit times (tests pin it)."""
        parsed = normalize_url(url)
        if run_migrations:
            await migrate(parsed)
        engine = create_engine(parsed)
        return cls(engine, policy=policy or MergePolicy(), clock=clock or _utcnow)

    async def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        """The engine, for stores of other tables on the same database (users, sessions)."""
        return self._engine

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend

    @property
    def policy(self) -> MergePolicy:
        return self._policy

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query (for health checks)."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # -----------------------------------------------------------------------------------------------------
    # Ingest

    async def ingest(
        self, report: IncidentReport, *, actor: str = "system", received_at: datetime | None = None
    ) -> IngestResult:
        """Store one validated report: return its incident if already stored, else merge or create.

        ``actor`` names who submitted it (``api``, ``mqtt``, an operator) for the audit log.
        """
        received = received_at if received_at is not None else self._clock()
        if received.tzinfo is None or received.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")
        async with self._ingest_lock:
            try:
                return await self._ingest(report, actor, received)
            except IntegrityError:
                # Only reachable if another writer bypassed the lock and stored the same key first:
                # the retry then finds that report and answers as for any repeat.
                return await self._ingest(report, actor, received)

    async def _ingest(self, report: IncidentReport, actor: str, received: datetime) -> IngestResult:
        async with self._writes() as session, session.begin():
            if self._backend == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INGEST_LOCK_KEY})
            payload = report.model_dump(mode="json")

            existing = await session.scalar(
                select(IncidentReportRow).where(
                    IncidentReportRow.source == report.source,
                    IncidentReportRow.external_id == report.external_id,
                )
            )
            if existing is not None:
                row = await session.get_one(IncidentRow, existing.incident_id)
                if existing.payload != payload:
                    changed = sorted(
                        k
                        for k in payload.keys() | existing.payload.keys()
                        if payload.get(k) != existing.payload.get(k)
                    )
                    self._audit(
                        session,
                        actor,
                        "report.conflicting_repeat",
                        row.id,
                        {
                            "report_id": existing.id,
                            "source": report.source,
                            "external_id": report.external_id,
                            "differing_fields": changed,
                        },
                        at=received,
                    )
                    return IngestResult(_incident(row), False, True, False, existing.id, tuple(changed))
                return IngestResult(_incident(row), False, True, False, existing.id)

            target, distance = await self._merge_target(session, report)
            report_id = str(uuid.uuid4())
            if target is None:
                row = IncidentRow(
                    id=str(uuid.uuid4()),
                    kind=report.kind.value,
                    lat=report.location.lat,
                    lon=report.location.lon,
                    reported_at=report.reported_at,
                    last_reported_at=report.reported_at,
                    received_at=received,
                    priority=report.priority,
                    source=report.source,
                    external_id=report.external_id,
                    address=report.address,
                    rounds=report.rounds,
                    confidence=report.confidence,
                    note=report.note,
                    status=IncidentStatus.OPEN.value,
                    merged_into=None,
                    report_count=1,
                )
                session.add(row)
                await session.flush()  # the incident must exist before the report's foreign key
                details: dict[str, Any] = {"priority": report.priority}
                action = "incident.created"
            else:
                row = target
                details = self._apply_merge(row, report)
                details["distance_m"] = round(distance, 1)
                action = "incident.report_merged"

            session.add(
                IncidentReportRow(
                    id=report_id,
                    incident_id=row.id,
                    source=report.source,
                    external_id=report.external_id,
                    kind=report.kind.value,
                    reported_at=report.reported_at,
                    received_at=received,
                    disposition="created" if target is None else "merged",
                    distance_m=None if target is None else distance,
                    payload=payload,
                )
            )
            self._audit(
                session,
                actor,
                action,
                row.id,
                {
                    "report_id": report_id,
                    "source": report.source,
                    "external_id": report.external_id,
                    "kind": report.kind.value,
                    "reported_at": report.reported_at.isoformat(),
                    "report_count": row.report_count,
                    **details,
                },
                at=received,
            )
            await session.flush()
            return IngestResult(_incident(row), target is None, False, target is not None, report_id)

    async def _merge_target(
        self, session: AsyncSession, report: IncidentReport
    ) -> tuple[IncidentRow | None, float]:
        """The open incident this report joins (see dfr.store.merge) and its distance, or (None, 0.0)."""
        kinds = JOINABLE_KINDS[report.kind]
        if not kinds:
            return None, 0.0
        lat, lon = report.location.lat, report.location.lon
        radius = self._policy.radius_m
        window = timedelta(seconds=self._policy.window_s)
        min_lat, max_lat, lon_range = lat_lon_bounds(lat, lon, radius)
        query = select(IncidentRow).where(
            IncidentRow.status == IncidentStatus.OPEN.value,
            IncidentRow.merged_into.is_(None),
            IncidentRow.kind.in_(sorted(k.value for k in kinds)),
            IncidentRow.last_reported_at >= report.reported_at - window,
            IncidentRow.reported_at <= report.reported_at + window,
            IncidentRow.lat.between(min_lat, max_lat),
        )
        if lon_range is not None:
            query = query.where(IncidentRow.lon.between(*lon_range))
        best: tuple[float, datetime, str, IncidentRow] | None = None
        for row in (await session.scalars(query)).all():
            distance = haversine_m(lat, lon, row.lat, row.lon)
            if distance <= radius:
                key = (distance, row.reported_at, row.id, row)
                if best is None or key[:3] < best[:3]:
                    best = key
        return (None, 0.0) if best is None else (best[3], best[0])

    @staticmethod
    def _apply_merge(row: IncidentRow, report: IncidentReport) -> dict[str, Any]:
        """Fold a report into its incident; return what changed, for the audit record.

        The location, kind and the first report's facts stay; urgency only ever rises (priority is the
        minimum); the time span widens to cover the report; a missing address is filled in; a gunshot
        report's round count and confidence raise the incident's (the largest seen is the relevant one).
        """
        changes: dict[str, Any] = {}

        def change(field: str, new: Any) -> None:
            old = getattr(row, field)
            if new != old:
                changes[field] = {"from": old, "to": new}
                setattr(row, field, new)

        change("priority", min(row.priority, report.priority))
        if report.reported_at < row.reported_at:
            change("reported_at", report.reported_at)
        if report.reported_at > row.last_reported_at:
            change("last_reported_at", report.reported_at)
        if row.address is None and report.address is not None:
            change("address", report.address)
        if report.rounds is not None:
            change("rounds", max(row.rounds or 0, report.rounds))
        if report.confidence is not None and report.kind is IncidentKind(row.kind):
            change("confidence", max(row.confidence or 0.0, report.confidence))
        row.report_count += 1
        return {k: {"from": _jsonable(v["from"]), "to": _jsonable(v["to"])} for k, v in changes.items()}

    def _audit(
        self,
        session: AsyncSession,
        actor: str,
        action: str,
        incident_id: str,
        details: dict[str, Any],
        *,
        at: datetime,
    ) -> None:
        """Add an audit record to the session's transaction, so it commits with the change it describes."""
        session.add(
            AuditLogRow(
                at=at,
                actor=actor,
                action=action,
                subject_type="incident",
                subject_id=incident_id,
                details=details,
            )
        )

    async def append_audit(
        self,
        actor: str,
        action: str,
        subject_type: str,
        subject_id: str | None,
        details: dict[str, Any],
    ) -> None:
        """Record something that is not an incident or mission change (a sign-in, a pilot command, a
        video file's hash) in the same append-only audit log, in a transaction of its own."""
        async with self._writes() as session, session.begin():
            session.add(
                AuditLogRow(
                    at=self._clock(),
                    actor=actor[:128],
                    action=action[:64],
                    subject_type=subject_type[:32],
                    subject_id=subject_id[:64] if subject_id is not None else None,
                    details=json.loads(json.dumps(details, default=str)),  # JSON-safe, detached
                )
            )

    # -----------------------------------------------------------------------------------------------------
    # Queries

    async def get_incident(self, incident_id: str) -> Incident | None:
        async with self._reads() as session:
            row = await session.get(IncidentRow, incident_id)
            return None if row is None else _incident(row)

    async def list_incidents(
        self, status: IncidentStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[Incident]:
        """Newest first (by the first report's time), optionally only one status."""
        _check_page(limit, offset)
        query = select(IncidentRow).order_by(IncidentRow.reported_at.desc(), IncidentRow.id)
        if status is not None:
            query = query.where(IncidentRow.status == IncidentStatus(status).value)
        async with self._reads() as session:
            rows = (await session.scalars(query.limit(limit).offset(offset))).all()
            return [_incident(row) for row in rows]

    async def count_incidents(self, status: IncidentStatus | None = None) -> int:
        query = select(func.count()).select_from(IncidentRow)
        if status is not None:
            query = query.where(IncidentRow.status == IncidentStatus(status).value)
        async with self._reads() as session:
            return int(await session.scalar(query) or 0)

    async def reports(self, incident_id: str) -> list[StoredReport]:
        """Every report attached to an incident, in the order they were stored."""
        query = (
            select(IncidentReportRow)
            .where(IncidentReportRow.incident_id == incident_id)
            .order_by(IncidentReportRow.received_at, IncidentReportRow.id)
        )
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
            return [
                StoredReport(
                    id=r.id,
                    incident_id=r.incident_id,
                    source=r.source,
                    external_id=r.external_id,
                    kind=IncidentKind(r.kind),
                    reported_at=r.reported_at,
                    received_at=r.received_at,
                    disposition=r.disposition,
                    distance_m=r.distance_m,
                    payload=r.payload,
                )
                for r in rows
            ]

    async def audit(
        self, subject_id: str | None = None, *, limit: int = MAX_PAGE, offset: int = 0
    ) -> list[AuditEntry]:
        """Audit records in the order they were written, optionally only those about one subject."""
        _check_page(limit, offset)
        query = select(AuditLogRow).order_by(AuditLogRow.id)
        if subject_id is not None:
            query = query.where(AuditLogRow.subject_id == subject_id)
        async with self._reads() as session:
            rows = (await session.scalars(query.limit(limit).offset(offset))).all()
            return [
                AuditEntry(
                    id=r.id,
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    subject_type=r.subject_type,
                    subject_id=r.subject_id,
                    details=r.details,
                )
                for r in rows
            ]

    async def row_counts(self) -> dict[str, int]:
        """Rows per table; cheap at this scale, and lets tests prove a rejected request wrote nothing."""
        counts = {}
        async with self._reads() as session:
            for model in (IncidentRow, IncidentReportRow, AuditLogRow):
                count = await session.scalar(select(func.count()).select_from(model))
                counts[model.__tablename__] = int(count or 0)
        return counts


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value

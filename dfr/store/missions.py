"""Mission persistence: the state machine of `dfr.domain.missions`, enforced where the state is kept.

`MissionStore` sits on an open `Store` and shares its engine, session factories, clock and audit log, so
that missions and incidents live in one database and one audit trail, and a mission can refer to its
incident by foreign key. It owns nothing: closing the `Store` closes it too.

The write guarantees mirror the incident ingest (see `dfr.store.store`):

- **one transaction**: a state change updates the mission row, appends a ``mission_events`` row and
  appends an ``audit_log`` row together or not at all, so the timeline, the audit trail and the current
  state can never disagree, and a refused or crashed change leaves no trace;
- **serialised per mission**: the transition is checked against the row *as locked* (``SELECT ... FOR NO
  KEY UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` plus an in-process lock on SQLite, as for ingest), so
  two racing commands ("recall" and "on scene", or an approval and a decline) cannot both pass the check
  against the same old state: the second sees the first's result and is refused or applied after it.
  The PostgreSQL lock mode still lets track batches (whose foreign-key check takes KEY SHARE) through;
- **checked before written**: the new state must be allowed by `dfr.domain.missions.ALLOWED` and the
  resulting mission must validate as a `Mission` (drone known once launching, a reason for unsuccessful
  ends...), or nothing is written.

Track points are telemetry, not decisions: they are appended in batches without audit records.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dfr.domain.missions import (
    INITIAL_STATES,
    TERMINAL_STATES,
    InvalidTransition,
    Mission,
    MissionEvent,
    MissionState,
    TrackPoint,
    transition,
)
from dfr.store.mission_models import MissionEventRow, MissionRow, MissionTrackRow
from dfr.store.models import AuditLogRow, IncidentRow
from dfr.store.store import MAX_PAGE, Store

__all__ = [
    "UPDATABLE_FIELDS",
    "MissionExists",
    "MissionNotFound",
    "MissionStore",
    "UnknownIncident",
]

UPDATABLE_FIELDS: Final = frozenset(
    {
        "drone_id",
        "target",
        "standoff",
        "altitude_m",
        "planned_route",
        "expected_time_to_scene_s",
        "achieved_time_to_scene_s",
        "launched_at",
        "on_scene_at",
        "landed_at",
        "decision",
        "pilot_control",
    }
)
"""Fields a transition (or `MissionStore.update`) may set. Identity, state, reason and the bookkeeping
times are the store's to manage, so passing them is a programming error (``TypeError``)."""

_OWN_COLUMNS: Final = frozenset({"id", "state", "reason", "created_at", "updated_at"})
"""Left out of event details: they have columns of their own in mission_events."""


class MissionNotFound(LookupError):
    """No mission with this id."""

    def __init__(self, mission_id: str) -> None:
        self.mission_id = mission_id
        super().__init__(f"no mission with id {mission_id}")


class MissionExists(ValueError):
    """`MissionStore.create` was given an id that is already stored; missions are never overwritten."""

    def __init__(self, mission_id: str) -> None:
        self.mission_id = mission_id
        super().__init__(f"mission {mission_id} already exists")


class UnknownIncident(LookupError):
    """A mission must answer a stored incident."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        super().__init__(f"no incident with id {incident_id}")


def _mission(row: MissionRow) -> Mission:
    return Mission.model_validate(
        {
            "id": row.id,
            "incident_id": row.incident_id,
            "drone_id": row.drone_id,
            "state": row.state,
            "reason": row.reason,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "target": {"lat": row.target_lat, "lon": row.target_lon},
            "standoff": row.standoff,
            "altitude_m": row.altitude_m,
            "planned_route": row.planned_route,
            "expected_time_to_scene_s": row.expected_time_to_scene_s,
            "achieved_time_to_scene_s": row.achieved_time_to_scene_s,
            "launched_at": row.launched_at,
            "on_scene_at": row.on_scene_at,
            "landed_at": row.landed_at,
            "decision": row.decision,
            "pilot_control": {"active": row.pilot_control, "by": row.pilot_by},
        }
    )


def _write_row(row: MissionRow, mission: Mission) -> None:
    """Copy every mutable fact of ``mission`` onto ``row`` (the id is set once, at creation)."""
    row.incident_id = mission.incident_id
    row.drone_id = mission.drone_id
    row.state = mission.state.value
    row.reason = mission.reason
    row.created_at = mission.created_at
    row.updated_at = mission.updated_at
    row.target_lat = mission.target.lat
    row.target_lon = mission.target.lon
    row.standoff = None if mission.standoff is None else mission.standoff.model_dump(mode="json")
    row.altitude_m = mission.altitude_m
    row.planned_route = [[lon, lat] for lon, lat in mission.planned_route]
    row.expected_time_to_scene_s = mission.expected_time_to_scene_s
    row.achieved_time_to_scene_s = mission.achieved_time_to_scene_s
    row.launched_at = mission.launched_at
    row.on_scene_at = mission.on_scene_at
    row.landed_at = mission.landed_at
    row.decision = None if mission.decision is None else mission.decision.model_dump(mode="json")
    row.pilot_control = mission.pilot_control.active
    row.pilot_by = mission.pilot_control.by


def _event(row: MissionEventRow) -> MissionEvent:
    return MissionEvent(
        id=row.id,
        mission_id=row.mission_id,
        at=row.at,
        actor=row.actor,
        from_state=None if row.from_state is None else MissionState(row.from_state),
        to_state=MissionState(row.to_state),
        reason=row.reason,
        details=row.details,
    )


def _track_point(row: MissionTrackRow) -> TrackPoint:
    return TrackPoint(t=row.t, lat=row.lat, lon=row.lon, alt_m=row.alt_m, speed=row.speed, mode=row.mode)


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1..{MAX_PAGE}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, not {offset}")


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")


def _changes(before: Mission, after: Mission) -> dict[str, Any]:
    """The fields a step changed, with their new JSON values (for the event and the audit record)."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: v for k, v in new.items() if k not in _OWN_COLUMNS and old.get(k) != v}


def _advance(
    before: Mission,
    new_state: MissionState | None,
    reason: str | None,
    fields: dict[str, Any],
    at: datetime,
    restate: bool = False,
) -> Mission:
    """The mission after one step, validated; fills the milestone times the caller did not give.

    ``launched_at``, ``on_scene_at`` and ``landed_at`` default to the time of the step that reaches
    them, and ``achieved_time_to_scene_s`` to on_scene_at - launched_at, so a flight procedure that only
    reports phases still yields the response-time figures; a caller with better times (the vehicle's
    own clock) passes them explicitly.
    """
    data = before.model_dump()
    data.update(fields)
    data["updated_at"] = at
    if restate and reason is not None:
        data["reason"] = reason
    if new_state is not None:
        data["state"] = new_state
        data["reason"] = reason  # explains the state it is in now; every earlier one is in the events
        milestone = {
            MissionState.LAUNCHING: "launched_at",
            MissionState.ON_SCENE: "on_scene_at",
            MissionState.LANDED: "landed_at",
        }.get(new_state)
        if milestone is not None and data.get(milestone) is None:
            data[milestone] = at
    mission = Mission.model_validate(data)
    if (
        mission.state is MissionState.ON_SCENE
        and mission.achieved_time_to_scene_s is None
        and mission.launched_at is not None
        and mission.on_scene_at is not None
    ):
        achieved = (mission.on_scene_at - mission.launched_at).total_seconds()
        mission = Mission.model_validate({**mission.model_dump(), "achieved_time_to_scene_s": achieved})
    return mission


def _iso(t: datetime) -> str:
    """UTC with a ``Z``, the way pydantic writes the times everywhere else in the API."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _line(coordinates: list[list[float]], kind: str, mission_id: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {"kind": kind, "mission_id": mission_id, **props},
    }


def _point(lon: float, lat: float, kind: str, mission_id: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"kind": kind, "mission_id": mission_id, **props},
    }


class MissionStore:
    """Missions, their timelines and flown tracks, in the database of an open `Store`.

    Construct with ``MissionStore(store)`` once the store is open; it is cheap and holds no connection.
    """

    def __init__(self, store: Store) -> None:
        # The Store's session factories are shared on purpose: one pool, and the same SQLite
        # BEGIN IMMEDIATE configuration that serialises writers. They are private to Store only because
        # it had a single client until now.
        self._store = store
        self._reads = store._reads
        self._writes = store._writes
        self._clock = store._clock
        # SQLite has one database-wide write lock anyway: queue this process's writers on an asyncio
        # lock rather than have them poll the busy timeout. PostgreSQL locks only the mission's row.
        self._serial: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if store.backend == "sqlite" else nullcontext()
        )

    @property
    def store(self) -> Store:
        return self._store

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on exit, rolled back on any exception."""
        async with self._serial, self._writes() as session, session.begin():
            yield session

    def _audit(
        self,
        session: AsyncSession,
        actor: str,
        action: str,
        mission_id: str,
        details: dict[str, Any],
        *,
        at: datetime,
    ) -> None:
        """Add an audit record to the session's transaction, so it commits with the change it describes.

        The same shape as `Store._audit`, with subject_type ``mission``: one audit trail for everything.
        """
        session.add(
            AuditLogRow(
                at=at,
                actor=actor,
                action=action,
                subject_type="mission",
                subject_id=mission_id,
                details=details,
            )
        )

    # -----------------------------------------------------------------------------------------------------
    # Writes

    async def create(self, mission: Mission, actor: str) -> Mission:
        """Store a new mission (state in `INITIAL_STATES`) with its first event and audit record.

        Raises `MissionExists` if the id is taken and `UnknownIncident` if its incident is not stored.
        A mission created in ``launching`` gets ``launched_at = created_at`` unless it says otherwise.
        """
        if mission.state not in INITIAL_STATES:
            allowed = ", ".join(sorted(s.value for s in INITIAL_STATES))
            raise ValueError(f"a new mission must start in one of {allowed}, not {mission.state.value}")
        if mission.state is MissionState.LAUNCHING and mission.launched_at is None:
            mission = Mission.model_validate({**mission.model_dump(), "launched_at": mission.created_at})
        async with self._writing() as session:
            if await session.get(MissionRow, mission.id) is not None:
                raise MissionExists(mission.id)
            if await session.get(IncidentRow, mission.incident_id) is None:
                raise UnknownIncident(mission.incident_id)
            row = MissionRow(id=mission.id)
            _write_row(row, mission)
            session.add(row)
            await session.flush()  # the mission must exist before the event's foreign key
            snapshot = mission.model_dump(mode="json", exclude=set(_OWN_COLUMNS))
            session.add(
                MissionEventRow(
                    mission_id=mission.id,
                    at=mission.created_at,
                    actor=actor,
                    from_state=None,
                    to_state=mission.state.value,
                    reason=mission.reason,
                    details=snapshot,
                )
            )
            self._audit(
                session,
                actor,
                "mission.created",
                mission.id,
                {
                    "incident_id": mission.incident_id,
                    "state": mission.state.value,
                    "reason": mission.reason,
                    "drone_id": mission.drone_id,
                    "decision": snapshot["decision"],
                },
                at=mission.created_at,
            )
            await session.flush()
        return mission

    async def transition(
        self,
        mission_id: str,
        new_state: MissionState | str,
        *,
        actor: str,
        reason: str | None = None,
        at: datetime | None = None,
        **fields: Any,
    ) -> Mission:
        """Move a mission to ``new_state``, setting ``fields`` (see `UPDATABLE_FIELDS`); return it.

        Raises `MissionNotFound`, `dfr.domain.missions.InvalidTransition` (judged against the state as
        locked, so a concurrent change is seen), or a pydantic ``ValidationError`` if the result would
        be invalid (e.g. launching without a drone, aborting without a reason); nothing is written then.
        ``at`` (default: the store's clock) is the time of the step. ``reason`` becomes the mission's
        reason (it explains the state it is now in) and is kept in the event.
        """
        return await self._step(mission_id, MissionState(new_state), actor, reason, at, fields)

    async def update(
        self,
        mission_id: str,
        *,
        actor: str,
        reason: str | None = None,
        at: datetime | None = None,
        restate: bool = False,
        **fields: Any,
    ) -> Mission:
        """Change fields without a state change (a pilot takes control, a new ETA), recorded like one.

        The event has ``from_state == to_state``. Terminal missions are closed records and refuse
        changes (`dfr.domain.missions.InvalidTransition`). ``reason`` goes into the event only, unless
        `restate`: then it also replaces the mission's reason (why a queued mission still waits changed).
        """
        return await self._step(mission_id, None, actor, reason, at, fields, restate)

    async def _step(
        self,
        mission_id: str,
        new_state: MissionState | None,
        actor: str,
        reason: str | None,
        at: datetime | None,
        fields: dict[str, Any],
        restate: bool = False,
    ) -> Mission:
        unknown = set(fields) - UPDATABLE_FIELDS
        if unknown:
            raise TypeError(f"fields that cannot be set on a mission: {', '.join(sorted(unknown))}")
        when = at if at is not None else self._clock()
        _check_aware(when)
        async with self._writing() as session:
            row = await session.scalar(
                select(MissionRow).where(MissionRow.id == mission_id).with_for_update(key_share=True)
            )
            if row is None:
                raise MissionNotFound(mission_id)
            before = _mission(row)
            if new_state is not None:
                transition(before.state, new_state)
            elif before.state in TERMINAL_STATES:
                raise InvalidTransition(before.state, before.state)
            after = _advance(before, new_state, reason, fields, when, restate)
            changes = _changes(before, after)
            _write_row(row, after)
            session.add(
                MissionEventRow(
                    mission_id=mission_id,
                    at=when,
                    actor=actor,
                    from_state=before.state.value,
                    to_state=after.state.value,
                    reason=reason,
                    details=changes,
                )
            )
            self._audit(
                session,
                actor,
                "mission.updated" if new_state is None else "mission.transition",
                mission_id,
                {"from": before.state.value, "to": after.state.value, "reason": reason, "changes": changes},
                at=when,
            )
            await session.flush()
        return after

    async def append_track(self, mission_id: str, points: Iterable[TrackPoint | Mapping[str, Any]]) -> int:
        """Append flown positions (validated first: one bad point refuses the whole batch); return how
        many were stored. Accepts the flight procedure's samples as they are (see `TrackPoint`).

        Raises `MissionNotFound` for an unknown mission (an empty batch returns 0 without checking).
        Points are kept for terminal missions too: the last batch often arrives after the landing.
        """
        batch = [p if isinstance(p, TrackPoint) else TrackPoint.model_validate(p) for p in points]
        if not batch:
            return 0
        async with self._writing() as session:
            if await session.get(MissionRow, mission_id) is None:
                raise MissionNotFound(mission_id)
            await session.execute(
                insert(MissionTrackRow),
                [{"mission_id": mission_id, **p.model_dump()} for p in batch],
            )
        return len(batch)

    # -----------------------------------------------------------------------------------------------------
    # Queries

    async def get(self, mission_id: str) -> Mission | None:
        async with self._reads() as session:
            row = await session.get(MissionRow, mission_id)
            return None if row is None else _mission(row)

    @staticmethod
    def _filter(state: MissionState | None, open_only: bool) -> builtins.list[ColumnElement[bool]]:
        where: builtins.list[ColumnElement[bool]] = []
        if state is not None:
            where.append(MissionRow.state == MissionState(state).value)
        if open_only:
            where.append(MissionRow.state.not_in(sorted(s.value for s in TERMINAL_STATES)))
        return where

    async def list(
        self,
        state: MissionState | None = None,
        open_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> builtins.list[Mission]:
        """Newest first (by creation), optionally only one state and/or only unfinished missions."""
        _check_page(limit, offset)
        query = (
            select(MissionRow)
            .where(*self._filter(state, open_only))
            .order_by(MissionRow.created_at.desc(), MissionRow.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._reads() as session:
            return [_mission(row) for row in (await session.scalars(query)).all()]

    async def count(self, state: MissionState | None = None, open_only: bool = False) -> int:
        """How many missions `list` would return over all pages."""
        query = select(func.count()).select_from(MissionRow).where(*self._filter(state, open_only))
        async with self._reads() as session:
            return int(await session.scalar(query) or 0)

    async def open_missions(self) -> builtins.list[Mission]:
        """Every mission not in a terminal state, oldest first: what a restarted dispatcher must resume
        (or close) before it does anything else. Not paged: there are only ever a handful."""
        query = (
            select(MissionRow).where(*self._filter(None, True)).order_by(MissionRow.created_at, MissionRow.id)
        )
        async with self._reads() as session:
            return [_mission(row) for row in (await session.scalars(query)).all()]

    async def events(self, mission_id: str) -> builtins.list[MissionEvent]:
        """The mission's timeline, in the order it happened; `MissionNotFound` for an unknown mission."""
        query = (
            select(MissionEventRow)
            .where(MissionEventRow.mission_id == mission_id)
            .order_by(MissionEventRow.id)
        )
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
            if not rows:  # every stored mission has its creation event
                raise MissionNotFound(mission_id)
            return [_event(row) for row in rows]

    @staticmethod
    def _track_query(mission_id: str) -> Select[MissionTrackRow]:
        return (
            select(MissionTrackRow)
            .where(MissionTrackRow.mission_id == mission_id)
            .order_by(MissionTrackRow.t, MissionTrackRow.id)
        )

    async def track(self, mission_id: str) -> builtins.list[TrackPoint]:
        """Flown positions by time (ties in the order stored); `MissionNotFound` for an unknown mission."""
        query = self._track_query(mission_id)
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
            if not rows and await session.get(MissionRow, mission_id) is None:
                raise MissionNotFound(mission_id)
            return [_track_point(row) for row in rows]

    async def as_geojson(self, mission_id: str) -> dict[str, Any]:
        """The mission as a GeoJSON FeatureCollection (RFC 7946: [lon, lat], WGS 84), for map clients.

        Features, each with ``properties.kind``: ``planned_route`` and ``flown_track`` (LineStrings, only
        when they have two or more positions, as GeoJSON requires), ``target`` and ``standoff`` (Points).
        The track is 2-D: its altitudes are above home, not the ellipsoid heights GeoJSON means.
        """
        query = self._track_query(mission_id)
        async with self._reads() as session:  # one read transaction: the mission and its track agree
            row = await session.get(MissionRow, mission_id)
            if row is None:
                raise MissionNotFound(mission_id)
            mission = _mission(row)
            track = [_track_point(r) for r in (await session.scalars(query)).all()]
        features: builtins.list[dict[str, Any]] = []
        if len(mission.planned_route) >= 2:
            route = [[lon, lat] for lon, lat in mission.planned_route]
            features.append(_line(route, "planned_route", mission.id, altitude_m=mission.altitude_m))
        if len(track) >= 2:
            features.append(
                _line(
                    [[p.lon, p.lat] for p in track],
                    "flown_track",
                    mission.id,
                    points=len(track),
                    start=_iso(track[0].t),
                    end=_iso(track[-1].t),
                )
            )
        features.append(_point(mission.target.lon, mission.target.lat, "target", mission.id))
        if mission.standoff is not None:
            s = mission.standoff
            features.append(
                _point(s.lon, s.lat, "standoff", mission.id, zone_id=s.zone_id, distance_m=s.distance_m)
            )
        return {"type": "FeatureCollection", "features": features}

    async def row_counts(self) -> dict[str, int]:
        """Rows per mission table; lets tests prove that a refused change wrote nothing."""
        counts = {}
        async with self._reads() as session:
            for model in (MissionRow, MissionEventRow, MissionTrackRow):
                count = await session.scalar(select(func.count()).select_from(model))
                counts[model.__tablename__] = int(count or 0)
        return counts

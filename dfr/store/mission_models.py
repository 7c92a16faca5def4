"""Mission tables, on the same declarative `Base` (and so the same metadata) as the incident tables.

They live in their own module so that the mission feature can grow without touching the incident
schema; `dfr.store` imports this module, so any import of the package (the Alembic env, the
"migration matches the models" test) sees every table. Revision ``0002`` creates exactly these.

- ``missions``: one row per mission, its current state and the facts the API shows. The JSON columns
  (route, stand-off, decision) are only ever read and written whole, so they need no columns of their own;
- ``mission_events``: the timeline, one row per creation or state change, append-only like
  ``audit_log`` (triggers refuse UPDATE and DELETE), because it is the record of what the drone did;
- ``mission_track``: flown positions, appended in batches by the flight procedure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dfr.domain.missions import MissionState
from dfr.store.models import AuditId, Base, JSONDocument, UTCDateTime

__all__ = ["MissionEventRow", "MissionRow", "MissionTrackRow"]


def _known_state(column: str) -> str:
    """The database refuses a state the code does not know (a typo in a hand-written fix, a downgrade)."""
    return "{} IN ({})".format(column, ", ".join(f"'{s.value}'" for s in MissionState))


class MissionRow(Base):
    __tablename__ = "missions"
    __table_args__ = (
        CheckConstraint(_known_state("state"), name="state_values"),
        CheckConstraint("altitude_m > 0", name="altitude_positive"),
        Index(None, "incident_id"),
        # Listing newest first, optionally by state; and the open missions on restart.
        Index(None, "state", "created_at"),
        Index(None, "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(36), ForeignKey("incidents.id"))
    drone_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    target_lat: Mapped[float] = mapped_column(Float)
    target_lon: Mapped[float] = mapped_column(Float)
    standoff: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    altitude_m: Mapped[float] = mapped_column(Float)
    planned_route: Mapped[list[list[float]]] = mapped_column(JSONDocument)
    expected_time_to_scene_s: Mapped[float | None] = mapped_column(Float)
    achieved_time_to_scene_s: Mapped[float | None] = mapped_column(Float)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_scene_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    landed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    pilot_control: Mapped[bool] = mapped_column(Boolean)
    pilot_by: Mapped[str | None] = mapped_column(String(128))


class MissionEventRow(Base):
    __tablename__ = "mission_events"
    __table_args__ = (
        CheckConstraint(_known_state("from_state"), name="from_state_values"),
        CheckConstraint(_known_state("to_state"), name="to_state_values"),
        Index(None, "mission_id", "id"),
        {"sqlite_autoincrement": True},  # ids never reused: their order is the order of events
    )

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    mission_id: Mapped[str] = mapped_column(String(36), ForeignKey("missions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class MissionTrackRow(Base):
    __tablename__ = "mission_track"
    __table_args__ = (Index(None, "mission_id", "t"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    mission_id: Mapped[str] = mapped_column(String(36), ForeignKey("missions.id"))
    t: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    alt_m: Mapped[float | None] = mapped_column(Float)
    speed: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[str | None] = mapped_column(String(32))

"""The events of the one live path: typed records, and the one JSON form every outbound feed sends.

Why typed: the bus used to carry ``{"type": str, "data": dict}``, so a publisher could send a field no
reader knew and a reader could look for one no publisher sent, and only a browser would notice. Each
kind is now a frozen dataclass (an event is a fact that happened; nobody downstream may change it for
the others) named by `EventKind`, and `wire` is the single place where one becomes JSON: the SSE stream
(``event: <kind>`` / ``data: <json>``), the panel that reads it and MQTT out all send exactly this.

Publishers: HTTP and MQTT ingest (`IncidentEvent`, after the commit), the dispatcher (`MissionEvent`,
after each committed mission change, pilot commands included), the live feed (`TelemetryEvent`). The bus
itself makes `OverflowEvent` for a subscriber that lost events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, ClassVar

from dfr.domain.incidents import Incident
from dfr.domain.missions import Mission
from dfr.store.store import IngestResult

__all__ = [
    "Event",
    "EventKind",
    "IncidentEvent",
    "MissionEvent",
    "OverflowEvent",
    "TelemetryEvent",
    "encode",
    "incident_event",
    "wire",
]


class EventKind(StrEnum):
    """The ``event:`` name of an SSE frame; the panel dispatches on it."""

    MISSION = "mission"  # the Mission JSON after each committed change
    TELEMETRY = "telemetry"  # one drone's throttled state
    INCIDENT = "incident"  # a new incident, or one a merged report changed
    OVERFLOW = "overflow"  # this subscriber lost events: re-read the state


class _Wire:
    """The JSON body, built once per event however many subscribers send it (a cached property on a
    frozen dataclass is allowed: it writes the instance dict, not a field)."""

    kind: ClassVar[EventKind]

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    @cached_property
    def json(self) -> str:
        """One line (JSON escapes newlines), compact, UTF-8 as is: the SSE ``data:`` and the MQTT payload."""
        return json.dumps(self.data(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class MissionEvent(_Wire):
    mission: Mission
    kind: ClassVar[EventKind] = EventKind.MISSION

    def data(self) -> dict[str, Any]:
        """The mission exactly as the API returns it."""
        return self.mission.model_dump(mode="json")


@dataclass(frozen=True)
class TelemetryEvent(_Wire):
    drone_id: str
    telemetry: Mapping[str, Any]
    """`DroneState.snapshot()`: the drone's latest state."""
    mission_id: str | None = None
    ready_in_s: float | None = None
    """Seconds until it is ready again while it charges on its dock."""
    not_ready: str | None = None
    """Why it cannot launch at once although docked and idle (being prepared), else None."""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    """Wall time of the snapshot."""
    kind: ClassVar[EventKind] = EventKind.TELEMETRY

    def data(self) -> dict[str, Any]:
        return {
            "drone_id": self.drone_id,
            "time": self.time.isoformat(),
            "mission_id": self.mission_id,
            "ready_in_s": self.ready_in_s,
            "not_ready": self.not_ready,
            "telemetry": dict(self.telemetry),
        }


@dataclass(frozen=True)
class IncidentEvent(_Wire):
    incident: Incident
    created: bool
    merged: bool
    kind: ClassVar[EventKind] = EventKind.INCIDENT

    def data(self) -> dict[str, Any]:
        return {
            "incident": self.incident.model_dump(mode="json"),
            "created": self.created,
            "merged": self.merged,
        }


@dataclass(frozen=True)
class OverflowEvent(_Wire):
    dropped: int
    kind: ClassVar[EventKind] = EventKind.OVERFLOW

    def data(self) -> dict[str, Any]:
        return {"dropped": self.dropped}


Event = MissionEvent | TelemetryEvent | IncidentEvent | OverflowEvent


def incident_event(result: IngestResult) -> IncidentEvent | None:
    """What a committed report announces: a new or changed incident; a repeat of a report: nothing."""
    if result.duplicate_of_report:
        return None
    return IncidentEvent(result.incident, created=result.created, merged=result.merged)


def wire(event: Event) -> tuple[str, str]:
    """(kind, JSON body): the one serialisation every feed sends."""
    return event.kind.value, event.json


def encode(event: Event) -> bytes:
    """The MQTT payload: the same JSON as the SSE ``data:`` line."""
    return event.json.encode()

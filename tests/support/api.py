"""The public API as tests use it: incident reports, posting them, waiting on missions and drones.

One copy instead of one per test file. Waits poll the public API (what an RTCC client would watch).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dfr.domain.incidents import Location
from dfr.domain.missions import REASON_STATES, Mission, MissionState
from tests.support.wait import until

__all__ = ["AREA", "NEAR_CIVIC", "POLICY", "drone_ready", "mission", "mission_of", "post", "report"]

ROOT = Path(__file__).resolve().parents[2]
AREA = ROOT / "missions" / "areas" / "chula-vista.yaml"
POLICY = ROOT / "missions" / "policies" / "default.yaml"
NEAR_CIVIC = (32.6450, -117.0800)
"""A scene ~650 m from the Civic Center dock (cv-1's), clear of every zone."""


def report(ext_id: str, lat: float, lon: float, kind: str = "gunshot", **extra: Any) -> dict[str, Any]:
    """A valid incident report (priority 1, from ``test-sensor``); `extra` adds or overrides fields."""
    return {
        "kind": kind,
        "location": {"lat": lat, "lon": lon},
        "reported_at": datetime.now(UTC).isoformat(),
        "priority": 1,
        "source": "test-sensor",
        "external_id": ext_id,
        **extra,
    }


def mission(state: MissionState, drone_id: str | None = "cv-1", mission_id: str | None = None) -> Mission:
    """A valid mission record (as the dispatcher would publish it) near the Civic Center dock."""
    now = datetime.now(UTC)
    return Mission(
        id=mission_id or str(uuid.uuid4()),
        incident_id=str(uuid.uuid4()),
        drone_id=drone_id,
        state=state,
        reason="test" if state in REASON_STATES else None,
        created_at=now,
        updated_at=now,
        target=Location(lat=NEAR_CIVIC[0], lon=NEAR_CIVIC[1]),
        altitude_m=60.0,
    )


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Submit a report; the id of the incident it went into."""
    r = await client.post("/api/v1/incidents", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["incident"]["id"])


async def mission_of(
    client: httpx.AsyncClient, incident_id: str, pred: Any, timeout: float
) -> dict[str, Any]:
    """Wait until the incident's mission satisfies `pred`; returns it."""
    last: dict[str, Any] | None = None

    async def matches() -> bool:
        nonlocal last
        ms = (await client.get("/api/v1/missions", params={"limit": 100})).json()["missions"]
        last = next((m for m in ms if m["incident_id"] == incident_id), None)
        return last is not None and bool(pred(last))

    try:
        await until(matches, timeout, f"the mission of incident {incident_id}", every=0.2)
    except AssertionError:
        raise AssertionError(f"mission of incident {incident_id} stuck: {last}") from None
    assert last is not None
    return last


async def drone_ready(client: httpx.AsyncClient, drone_id: str, timeout: float = 60) -> None:
    """Wait until the service reports `drone_id` connected, healthy, with a battery reading and prepared
    on its dock (launch parameters confirmed), so that an incident sent now launches at once."""

    async def ready() -> bool:
        d = (await client.get(f"/api/v1/drones/{drone_id}")).json()
        t = d.get("telemetry") or {}
        return bool(d["connected"] and t.get("health_ok") and t.get("battery_pct") and not d.get("not_ready"))

    await until(ready, timeout, f"{drone_id} connected and healthy")

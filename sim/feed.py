"""A simulated incident feed for demos: real gunshot alerts replayed onto a sample area.

The DC Metropolitan Police Department's ShotSpotter alerts (2018 Q3) give a real spatial pattern and
real alert types. Each alert's offset from the data set's centre is scaled and moved onto the
operating area's centre; alerts that land outside the area are skipped. Every few alerts a burst of
911 calls about the same shots follows (the dispatcher must merge them into one incident). Alerts are
posted to the service's HTTP API like any integrator would.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import httpx
from shapely.geometry import Point, Polygon

log = logging.getLogger(__name__)
SOURCE = "replay:dc-mpd-shotspotter-2018q3"


@dataclass(frozen=True)
class Alert:
    id: str
    type: str
    lat: float
    lon: float


def load_alerts() -> list[Alert]:
    text = resources.files("sim").joinpath("data/dc_mpd_shotspotter_2018-07-01_to_2018-10-01.csv").read_text()
    return [
        Alert(r["ID"], r["Type"], float(r["Latitude"]), float(r["Longitude"]))
        for r in csv.DictReader(text.splitlines())
    ]


@dataclass(frozen=True)
class PatternMove:
    """How a pattern of points is moved onto an area: its mean goes to the area's centroid, offsets scaled.

    One definition for the demo feed and for `dfr coverage` / `dfr replay` (``dfr.history``), so that
    both put a DC alert on the same street of the sample area.
    """

    from_lat: float
    from_lon: float
    to_lat: float
    to_lon: float
    scale: float = 0.6

    @classmethod
    def onto(cls, points: Sequence[tuple[float, float]], area: Polygon, scale: float = 0.6) -> PatternMove:
        """The move of these (lat, lon) points' pattern onto `area` (a lon/lat polygon)."""
        if not points:
            raise ValueError("no points to move")
        centre = area.centroid
        clat = sum(p[0] for p in points) / len(points)
        clon = sum(p[1] for p in points) / len(points)
        return cls(clat, clon, centre.y, centre.x, scale)

    def apply(self, lat: float, lon: float) -> tuple[float, float]:
        return (
            self.to_lat + (lat - self.from_lat) * self.scale,
            self.to_lon + (lon - self.from_lon) * self.scale,
        )


def project_onto(alerts: list[Alert], area: Polygon, scale: float = 0.6) -> Iterator[Alert]:
    """Translate/scale the alerts' pattern onto `area` (lon/lat polygon); keep those that fall inside."""
    move = PatternMove.onto([(a.lat, a.lon) for a in alerts], area, scale)
    for a in alerts:
        lat, lon = move.apply(a.lat, a.lon)
        if area.contains(Point(lon, lat)):
            yield Alert(a.id, a.type, lat, lon)


def reports_for(alert: Alert, rng: random.Random, burst: bool) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    rounds = {"Single_Gunshot": 1, "Multiple_Gunshots": rng.randint(2, 8)}.get(alert.type)
    gunshot: dict[str, Any] = {
        "kind": "gunshot",
        "location": {"lat": round(alert.lat, 6), "lon": round(alert.lon, 6)},
        "reported_at": now,
        "priority": 1,
        "source": SOURCE,
        "external_id": alert.id,
        "confidence": 0.6 if alert.type == "Gunshot_or_Firecracker" else 0.95,
        "note": f"replayed {alert.type}",
    }
    if rounds:
        gunshot["rounds"] = rounds
    out = [gunshot]
    if burst:
        for i in range(rng.randint(2, 4)):
            out.append(
                {
                    "kind": "911",
                    "location": {
                        "lat": round(alert.lat + rng.uniform(-0.0008, 0.0008), 6),
                        "lon": round(alert.lon + rng.uniform(-0.0008, 0.0008), 6),
                    },
                    "reported_at": now,
                    "priority": 2,
                    "source": "sim-cad",
                    "external_id": f"{alert.id}-call-{i}",
                    "note": "caller reports shots fired",
                }
            )
    return out


async def run_feed(
    base_url: str,
    area: Polygon,
    *,
    every_s: float = 60.0,
    seed: int = 0,
    limit: int | None = None,
    token: str | None = None,
) -> None:
    """Post one alert (and sometimes its 911 burst) every `every_s` seconds until cancelled.

    `token`: a bearer token of a feed (or pilot) account; the service refuses unsigned reports."""
    rng = random.Random(seed)
    alerts = list(project_onto(load_alerts(), area))
    rng.shuffle(alerts)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10, headers=headers) as client:
        for n, alert in enumerate(alerts):
            if limit is not None and n >= limit:
                return
            for report in reports_for(alert, rng, burst=n % 3 == 1):
                try:
                    r = await client.post("/api/v1/incidents", json=report)
                    log.info("feed: %s %s -> %s", report["kind"], report["external_id"], r.status_code)
                except httpx.HTTPError as e:
                    log.warning("feed: could not post %s: %s", report["external_id"], e)
            await asyncio.sleep(every_s)

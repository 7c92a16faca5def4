"""A load generator for the whole controller: incident reports at a fixed rate over HTTP, a mix of new
scenes, extra reports of recent scenes (to be merged) and exact repeats (to be recognised), while the
simulated fleet flies what the dispatcher launches. Used by the load test (short) and `make bench` (long).

It then checks through the store that nothing was lost or doubled, and measures the request latency
and the dispatch latency (report received → mission created, from the records' own times).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from shapely.geometry import Point

from dfr.area import load_area
from dfr.auth import Role
from dfr.geo import distance_m
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.support.auth import FEED, add_user, login_headers

ROOT = Path(__file__).resolve().parents[2]
AREA = ROOT / "missions/areas/chula-vista.yaml"
POLICY = ROOT / "missions/policies/default.yaml"


@dataclass
class LoadReport:
    seconds: float
    posted: int = 0
    new_scenes: int = 0
    merged_sent: int = 0
    repeats_sent: int = 0
    status: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    stored_reports: int = 0
    incidents: int = 0
    missions: int = 0
    incidents_without_mission: int = 0
    incidents_with_two_missions: int = 0
    dispatch_ms: list[float] = field(default_factory=list)
    flights: int = 0
    posting_s: float = 0.0
    drain_s: float = 0.0

    def pct(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    def row(self) -> dict[str, Any]:
        return {
            "load": f"{self.posted / self.seconds * 60:.0f}/min for {self.seconds:.0f} s",
            "reports": self.posted,
            "stored": self.stored_reports,
            "incidents": self.incidents,
            "missions": self.missions,
            "lost": self.posted - self.repeats_sent - self.stored_reports,
            "http p50 ms": statistics.median(self.latencies_ms) if self.latencies_ms else float("nan"),
            "http p99 ms": self.pct(self.latencies_ms, 0.99),
            "dispatch p50 ms": statistics.median(self.dispatch_ms) if self.dispatch_ms else float("nan"),
            "dispatch p99 ms": self.pct(self.dispatch_ms, 0.99),
            "flights": self.flights,
            "backlog cleared s": self.drain_s,
        }


def _scene(rng: random.Random, area: Any, taken: list[tuple[float, float, str]]) -> tuple[float, float]:
    """A point in the operating area, outside the zones, well clear (> 2 merge radii) of the recent
    scenes, so that "new" reports really are new incidents and merges are only the intended ones."""
    minx, miny, maxx, maxy = area.operating_area.bounds
    zones = [z.geometry for z in area.zones]
    for attempt in range(10_000):
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        p = Point(lon, lat)
        if not area.operating_area.contains(p) or any(z.contains(p) for z in zones):
            continue
        if attempt > 5_000 or all(distance_m(lat, lon, t[0], t[1]) > 600 for t in taken[-150:]):
            return lat, lon  # (a crowded area eventually gets a scene near an older one)
    raise RuntimeError("no point found in the operating area")


async def run_load(
    tmp: Path,
    *,
    seconds: float,
    per_minute: float,
    new_fraction: float = 0.2,
    speed: float = 20.0,
    seed: int = 1,
    **settings_overrides: Any,
) -> LoadReport:
    """Drive the real service (SQLite in `tmp`) with the simulator's drones for `seconds`."""
    area = load_area(AREA)
    rng = random.Random(seed)
    report = LoadReport(seconds=seconds)
    async with SimProcess(area=str(AREA), drones=len(area.drones), speed=speed) as sim:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp / 'load.sqlite'}",
            area=str(AREA),
            policy=str(POLICY),
            time_scale=speed,
            mavlink_base_port=sim.base_port,
            ingest_rate_per_min=0,
            **settings_overrides,
        )
        async with running_service(settings) as svc:
            for d in area.drones:
                await svc.fleet.wait_ready(d.id, 60)
            await add_user(svc.store, *FEED, Role.FEED)
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
                client.headers.update(await login_headers(client, *FEED))
                scenes: list[tuple[float, float, str]] = []  # lat, lon, first external id
                sent: dict[str, dict[str, Any]] = {}  # by external id
                gate = asyncio.Semaphore(64)
                tasks: list[asyncio.Task[None]] = []

                async def send(body: dict[str, Any]) -> None:
                    async with gate:
                        t0 = time.perf_counter()
                        r = await client.post("/api/v1/incidents", json=body)
                        report.latencies_ms.append((time.perf_counter() - t0) * 1000)
                        report.status[r.status_code] = report.status.get(r.status_code, 0) + 1

                interval = 60.0 / per_minute
                start = time.monotonic()
                n = 0
                while (now := time.monotonic() - start) < seconds:
                    due = n * interval
                    if due > now:
                        await asyncio.sleep(due - now)
                    n += 1
                    kind = rng.random()
                    if not scenes or kind < new_fraction:
                        lat, lon = _scene(rng, area, scenes)
                        ext = f"load-{n}"
                        scenes.append((lat, lon, ext))
                        report.new_scenes += 1
                    elif kind < new_fraction + (1 - new_fraction) / 2:
                        lat, lon, _ = rng.choice(scenes[-20:])  # another caller, same scene: merged
                        lat += rng.uniform(-0.0005, 0.0005)
                        ext = f"load-{n}"
                        report.merged_sent += 1
                    else:
                        lat, lon, ext = rng.choice(scenes[-20:])  # the same report again: recognised
                        report.repeats_sent += 1
                    # a repeat is the very report sent again (a retry); one with other content is a
                    # conflict (409), not a repeat
                    body = sent.get(ext) or {
                        "kind": "911",
                        "location": {"lat": lat, "lon": lon},
                        "reported_at": datetime.now(UTC).isoformat(),
                        "priority": 1,
                        "source": "load-gen",
                        "external_id": ext,
                    }
                    sent[ext] = body
                    report.posted += 1
                    tasks.append(asyncio.create_task(send(body), name=f"load-{n}"))
                await asyncio.gather(*tasks)
                report.posting_s = time.monotonic() - start

            # Dispatch runs behind the acknowledgements: wait (bounded) until every incident has its
            # mission, and record how long the backlog took to clear.
            drain_start = time.monotonic()
            while time.monotonic() - drain_start < 60:
                if await svc.missions.count() >= await svc.store.count_incidents():
                    break
                await asyncio.sleep(0.1)
            report.drain_s = time.monotonic() - drain_start

            counts = await svc.store.row_counts()
            report.stored_reports = counts["incident_reports"]
            incidents = await svc.store.list_incidents(None, 1000, 0)
            report.incidents = await svc.store.count_incidents()
            missions = await svc.missions.list(limit=1000)
            report.missions = len(missions)
            by_incident: dict[str, int] = {}
            for m in missions:
                by_incident[m.incident_id] = by_incident.get(m.incident_id, 0) + 1
            received = {i.id: i.received_at for i in incidents}
            report.incidents_without_mission = sum(1 for i in incidents if i.id not in by_incident)
            report.incidents_with_two_missions = sum(1 for c in by_incident.values() if c > 1)
            report.dispatch_ms = [
                (m.created_at - received[m.incident_id]).total_seconds() * 1000
                for m in missions
                if m.incident_id in received
            ]
            report.flights = sum(1 for m in missions if m.launched_at is not None)
    return report

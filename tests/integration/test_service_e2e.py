"""End to end: incident in over HTTP -> dispatcher -> MAVSDK -> simulator -> mission landed.

The real service stack (uvicorn, SQLite, Alembic, the fleet through one MAVSDK instance, the
dispatcher) against the real simulator process; nothing is mocked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from dfr.area import load_area
from dfr.dispatch.sortie import planner_zones
from dfr.planning import path_is_clear
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.support.api import AREA, POLICY, report
from tests.support.auth import signed_in

pytestmark = pytest.mark.integration

SPEED = 20.0


async def wait_mission(client: httpx.AsyncClient, pred: Any, timeout: float) -> list[dict[str, Any]]:
    """Poll the public API until `pred(missions)` holds (the API is what an RTCC client would watch)."""
    missions: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                missions = (await client.get("/api/v1/missions", params={"limit": 50})).json()["missions"]
                if pred(missions):
                    return missions
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"missions never reached the expected state: {missions}") from None


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        time_scale=SPEED,
    )


async def test_gunshot_posted_drone_flies_around_zone_and_lands(settings: Settings) -> None:
    area = load_area(AREA)
    async with SimProcess(area=AREA, drones=len(area.drones), speed=SPEED) as sim:
        s = settings.model_copy(update={"mavlink_base_port": sim.base_port})
        async with running_service(s) as svc:
            for d in area.drones:
                await svc.fleet.wait_ready(d.id)
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                # beyond the hospital helipad zone from the east dock: the route must bend
                r = await client.post("/api/v1/incidents", json=report("g-1", 32.6150, -117.0330, rounds=4))
                assert r.status_code == 201, r.text
                incident_id = r.json()["incident"]["id"]
                # a burst of reports of the same shots -> merged, no second mission
                for i in range(3):
                    r2 = await client.post(
                        "/api/v1/incidents", json=report(f"g-1-{i}", 32.6151, -117.0331, source=f"s{i}")
                    )
                    assert r2.status_code == 200 and r2.json()["merged"], r2.text
                missions = await wait_mission(client, lambda ms: ms and ms[0]["state"] == "landed", 120)
                assert len(missions) == 1
                m = missions[0]
                assert m["incident_id"] == incident_id
                assert m["drone_id"] == "cv-3"  # the east dock is nearest by time to scene
                assert m["expected_time_to_scene_s"] > 0 and m["achieved_time_to_scene_s"] > 0
                events = (await client.get(f"/api/v1/missions/{m['id']}/events")).json()
                states = [e["to_state"] for e in (events["events"] if isinstance(events, dict) else events)]
                assert states == ["launching", "en_route", "on_scene", "returning", "landed"]
                geo = (await client.get(f"/api/v1/missions/{m['id']}/geojson")).json()
                kinds = {f["properties"].get("kind") for f in geo["features"]}
                assert {"planned_route", "flown_track"} <= kinds, kinds
                track = next(f for f in geo["features"] if f["properties"].get("kind") == "flown_track")
                cruise = [tuple(c[:2]) for c in track["geometry"]["coordinates"]]
                assert path_is_clear(cruise, planner_zones(area), m["altitude_m"])
                print(
                    f"time to scene expected {m['expected_time_to_scene_s']} s, "
                    f"achieved {m['achieved_time_to_scene_s']} s (simulated)"
                )

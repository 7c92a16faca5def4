"""Re-tasking drones in the air, through the real service, MAVSDK and the simulator process.

A drone flying home is sent on to a new incident near it instead of landing and launching again (a real
call waited ~250 s for the only drone in range, airborne 2 km away); an urgent incident takes a drone
loitering over a routine mission when the policy allows it, unless a pilot refuses; a drone whose battery
would not cover the new sortie with the reserve is not taken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dfr.geo import distance_m
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.support.api import AREA, POLICY, mission_of, post, report
from tests.support.auth import signed_in

pytestmark = pytest.mark.integration
SPEED = 20.0
CIVIC = (32.6401, -117.0842)
FIRST = (32.6480, -117.0720)  # ~1.3 km north-east of the Civic Center dock, clear of every zone
NEXT = (32.6495, -117.0700)  # ~250 m beyond it: ~1.6 km from the Civic Center, ~3.9 km from Bayfront


def _settings(tmp_path: Path, base_port: int, **policy: Any) -> Settings:
    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    data.update(policy)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(path),
        time_scale=SPEED,
        mavlink_base_port=base_port,
    )


async def _events(client: httpx.AsyncClient, mission_id: str) -> list[dict[str, Any]]:
    return (await client.get(f"/api/v1/missions/{mission_id}/events")).json()["events"]  # type: ignore[no-any-return]


async def _audit(client: httpx.AsyncClient, mission_id: str) -> list[str]:
    r = await client.get("/api/v1/audit", params={"subject_id": mission_id, "limit": 500})
    entries = r.json()
    entries = entries["entries"] if isinstance(entries, dict) else entries
    return [e["action"] for e in entries]


async def test_a_returning_drone_is_retasked_to_a_nearby_incident_without_landing(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=2, speed=SPEED) as sim:  # cv-1 (Civic Center), cv-2 (Bayfront)
        async with running_service(_settings(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            await svc.fleet.wait_ready("cv-2")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc_a = await post(client, report("r-a", *FIRST))
                a = await mission_of(client, inc_a, lambda m: m["state"] == "returning", 90)
                assert a["drone_id"] == "cv-1"
                inc_b = await post(client, report("r-b", *NEXT))
                b = await mission_of(client, inc_b, lambda m: m["state"] == "on_scene", 60)
                assert b["drone_id"] == "cv-1", b  # not cv-2 from its dock, nor cv-1 after landing

                a = await mission_of(client, inc_a, lambda m: True, 5)
                assert a["state"] == "aborted", a
                assert a["reason"].startswith(f"re-tasked to mission {b['id']}"), a
                assert "flying home" in a["reason"]
                a_states = [e["to_state"] for e in await _events(client, a["id"])]
                assert "landed" not in a_states and a_states[-2:] == ["returning", "aborted"]
                assert "mission.retasked" in await _audit(client, a["id"])

                b_events = await _events(client, b["id"])
                assert [e["to_state"] for e in b_events] == ["launching", "en_route", "on_scene"]
                assert "re-tasked in the air" in (b_events[0]["reason"] or "")
                # the new route starts in the air where cv-1 was, not at its dock
                lon0, lat0 = b["planned_route"][0]
                assert distance_m(lat0, lon0, *CIVIC) > 300
                assert b["achieved_time_to_scene_s"] < 120, b

                # and it gets home from the new scene along its own route
                b = await mission_of(client, inc_b, lambda m: m["state"] == "landed", 150)
                # its track (written in full once it has landed) starts up there, where cv-1 was re-tasked
                track = await svc.missions.track(b["id"])
                assert distance_m(track[0].lat, track[0].lon, *CIVIC) > 300
                assert track[0].alt_m is not None and track[0].alt_m > 15, track[0]
                assert sim.control is not None
                status = await sim.control.status()
                cv1 = status["drones"][0]
                assert not cv1["armed"] and cv1["height"] < 1.0


async def test_an_urgent_incident_preempts_a_routine_mission_unless_the_pilot_refuses(tmp_path: Path) -> None:
    policy = {
        "rules": [
            {"name": "gunshot", "kinds": ["gunshot"], "action": "auto_launch"},
            {"name": "calls", "kinds": ["911"], "action": "auto_launch"},
        ],
        "loiter_s": 900,
        "retask": {"preempt_priority": 1, "routine_priority": 3, "refuse_window_s": 200},
    }
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(_settings(tmp_path, sim.base_port, **policy)) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc_a = await post(client, report("p-a", *FIRST, kind="911", priority=4, source="cad"))
                a = await mission_of(client, inc_a, lambda m: m["state"] == "on_scene", 90)

                # an urgent call: the routine mission's drone is offered; the pilot refuses within the window
                inc_b = await post(client, report("p-b", *NEXT))
                b = await mission_of(client, inc_b, lambda m: "pre-empting cv-1" in (m["reason"] or ""), 10)
                assert b["state"] == "queued"
                notes = [e["reason"] or "" for e in await _events(client, a["id"])]
                assert any("pre-emption" in n and b["id"] in n for n in notes), notes
                a = await mission_of(
                    client, inc_a, lambda m: True, 5
                )  # the live view shows it on the mission
                assert a["state"] == "on_scene" and "unless a pilot refuses" in a["reason"], a
                r = await client.post("/api/v1/drones/cv-1/commands", json={"command": "refuse_preemption"})
                assert r.status_code == 200, r.text
                assert r.json()["mission_id"] == a["id"] and not r.json()["pilot_control"]
                b = await mission_of(
                    client, inc_b, lambda m: "cv-1 busy: pilot pilot1 kept it" in (m["reason"] or ""), 10
                )
                assert b["state"] == "queued" and b["drone_id"] is None
                a = await mission_of(client, inc_a, lambda m: True, 5)
                assert a["state"] == "on_scene", a  # it kept its drone
                notes = [e["reason"] or "" for e in await _events(client, a["id"])]
                assert any("pilot1 refused the pre-emption" in n for n in notes), notes
                r = await client.post("/api/v1/drones/cv-1/commands", json={"command": "refuse_preemption"})
                assert r.status_code == 409, r.text  # nothing left to refuse

                # another urgent call, nobody refuses: after the window cv-1 leaves the routine mission
                inc_c = await post(client, report("p-c", 32.6470, -117.0740))
                c = await mission_of(client, inc_c, lambda m: m["state"] == "on_scene", 60)
                assert c["drone_id"] == "cv-1"
                a = await mission_of(client, inc_a, lambda m: True, 5)
                assert a["state"] == "aborted" and a["reason"].startswith(f"re-tasked to mission {c['id']}")
                assert "pre-empted by a priority-1 incident" in a["reason"]
                actions = await _audit(client, a["id"])
                assert actions.count("mission.preemption_offered") == 2 and "mission.retasked" in actions
                b = await mission_of(client, inc_b, lambda m: True, 5)
                assert b["state"] == "queued"  # a priority-1 mission is not pre-empted by another


async def test_a_returning_drone_without_the_battery_for_the_new_sortie_is_not_retasked(
    tmp_path: Path,
) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(_settings(tmp_path, sim.base_port)) as svc:
            drone = await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc_a = await post(client, report("b-a", *FIRST))
                await mission_of(client, inc_a, lambda m: m["state"] == "on_scene", 90)
                assert sim.control is not None
                await sim.control.request(op="battery", drone=1, pct=25.0)  # above every autopilot failsafe
                await drone.wait_for(lambda s: s.battery_pct is not None and s.battery_pct < 30, 10)
                await mission_of(client, inc_a, lambda m: m["state"] == "returning", 60)
                inc_b = await post(client, report("b-b", *NEXT))
                b = await mission_of(client, inc_b, lambda m: m["state"] == "queued", 10)
                assert "too low to be re-tasked" in b["reason"], b
                a = await mission_of(client, inc_a, lambda m: m["state"] == "landed", 120)
                assert a["reason"] is None or "re-tasked" not in a["reason"]
                b = await mission_of(client, inc_b, lambda m: True, 5)
                assert b["state"] == "queued" and b["drone_id"] is None  # 25 % is below the launch minimum

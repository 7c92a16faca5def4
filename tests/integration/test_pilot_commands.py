"""Pilot override through the real service, HTTP API, MAVSDK and the simulator process.

A pilot takes a drone from the automation in mid-flight (it stops following the route), flies it
(go-to, altitude, orbit), hands it back (the mission continues to the scene and lands), returns and
lands other missions; bad commands are refused with the reason and change nothing; a viewer may not
command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dfr.area import load_area
from dfr.auth import Role
from dfr.dispatch.sortie import planner_zones
from dfr.geo import distance_m
from dfr.live import MissionEvent
from dfr.planning import path_is_clear
from dfr.service import http_server, running_service
from sim.harness import SimProcess
from tests.integration.test_service_dispatch import SPEED, settings_for
from tests.support.api import AREA, mission_of, post, report
from tests.support.auth import add_user, login_headers, signed_in

pytestmark = pytest.mark.integration

SCENE = (32.6250, -117.0700)  # ~2 km south-east of the civic dock, clear of every zone
SCENE_2 = (32.6330, -117.0620)  # another incident (beyond the 250 m merge radius of the first)
SCENE_3 = (32.6480, -117.0720)
ASIDE = (32.6360, -117.0700)  # off the route, reachable in a straight line
HELIPAD = (32.6206, -117.0427)  # inside the sharp-cv-helipad zone (0-400 ft)
BEYOND_HELIPAD = (32.6150, -117.0330)  # reachable only around the helipad zone
CIVIC = (32.6401, -117.0842)
CMD = "/api/v1/drones/cv-1/commands"


async def drone(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/drones/cv-1")
    assert r.status_code == 200, r.text
    view: dict[str, Any] = r.json()
    return view


async def until(
    client: httpx.AsyncClient, pred: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """Poll the drone view until `pred(telemetry)` holds."""
    last: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = (await drone(client))["telemetry"] or {}
                if last.get("lat") is not None and pred(last):
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"drone never reached the expected state: {last}") from None


async def command_audits(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    entries = (await client.get("/api/v1/audit", params={"limit": 500})).json()["entries"]
    return [e for e in entries if e["action"] == "drone.command"]


async def refused(client: httpx.AsyncClient, body: dict[str, Any] | str, status: int, code: str) -> str:
    if isinstance(body, str):
        r = await client.post(CMD, content=body, headers={"content-type": "application/json"})
    else:
        r = await client.post(CMD, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail["code"] == code, detail
    return str(detail["reason"])


def near(lat: float, lon: float, tol: float) -> Callable[[dict[str, Any]], bool]:
    return lambda t: distance_m(t["lat"], t["lon"], lat, lon) <= tol


async def test_pilot_takes_over_mid_flight_flies_and_hands_back(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            svc.dispatcher.policy = svc.policy.model_copy(update={"loiter_s": 30.0})  # a shorter test
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                # on the ground: nothing to hold or fly to, and nothing changes
                await refused(client, {"command": "goto", "lat": ASIDE[0], "lon": ASIDE[1]}, 409, "on_ground")
                await refused(client, {"command": "release"}, 409, "not_piloted")
                assert await command_audits(client) == []

                inc = await post(client, report("g-pilot", *SCENE))
                m = await mission_of(client, inc, lambda m: m["state"] == "en_route", 60)
                await until(client, lambda t: t["groundspeed"] > 5, 30)

                bus = svc.app.state.bus.subscribe("test-pilot", 4096)
                sent = time.perf_counter()
                r = await client.post(CMD, json={"command": "hold"})
                acked = time.perf_counter() - sent  # the autopilot has accepted the hold when this returns
                assert r.status_code == 200, r.text
                assert r.json()["pilot_control"] is True and r.json()["mission_id"] == m["id"]
                async with asyncio.timeout(5):  # consoles hear of the change on the live stream
                    while True:
                        event = await bus.get()
                        assert event is not None
                        if isinstance(event, MissionEvent) and event.mission.pilot_control.active:
                            assert event.mission.pilot_control.by == "pilot1" and event.mission.id == m["id"]
                            break
                bus.close()
                held = await until(client, lambda t: t["groundspeed"] < 0.3, 10)
                print(f"hold: accepted by the autopilot {acked * 1000:.0f} ms after the request")
                assert distance_m(held["lat"], held["lon"], *SCENE) > 300  # stopped well short of the scene
                view = await drone(client)
                assert view["pilot_control"] is True and view["pilot_by"] == "pilot1"
                await asyncio.sleep(1.0)  # 20 simulated seconds: the automation would have flown ~240 m
                still = (await drone(client))["telemetry"]
                assert distance_m(still["lat"], still["lon"], held["lat"], held["lon"]) < 3.0
                mission = (await client.get(f"/api/v1/missions/{m['id']}")).json()
                assert mission["state"] == "en_route"
                assert mission["pilot_control"] == {"active": True, "by": "pilot1"}

                # bad input while it is in the air: refused with the reason, nothing changes
                before = (await drone(client))["telemetry"]
                n_audits = len(await command_audits(client))
                await refused(client, {"command": "goto", "lat": 32.75, "lon": -117.08}, 422, "outside_area")
                why = await refused(
                    client, {"command": "goto", "lat": HELIPAD[0], "lon": HELIPAD[1]}, 422, "in_no_fly_zone"
                )
                assert "sharp-cv-helipad" in why
                why = await refused(
                    client,
                    {"command": "goto", "lat": BEYOND_HELIPAD[0], "lon": BEYOND_HELIPAD[1]},
                    422,
                    "path_crosses_zone",
                )
                assert "sharp-cv-helipad" in why
                await refused(client, {"command": "altitude", "alt_m": 500}, 422, "altitude_out_of_limits")
                await refused(
                    client,
                    {"command": "orbit", "lat": ASIDE[0], "lon": ASIDE[1], "radius_m": 5},
                    422,
                    "radius_out_of_limits",
                )
                await refused(
                    client, '{"command": "goto", "lat": NaN, "lon": -117.07}', 422, "invalid_request"
                )
                await refused(client, {"command": "goto", "lon": -117.07}, 422, "missing_field")
                r = await client.post("/api/v1/drones/cv-9/commands", json={"command": "hold"})
                assert r.status_code == 404 and r.json()["detail"]["code"] == "not_found"
                assert len(await command_audits(client)) == n_audits
                after = (await drone(client))["telemetry"]
                assert distance_m(after["lat"], after["lon"], before["lat"], before["lon"]) < 3.0
                assert after["flight_mode"] == before["flight_mode"]

                # fly it: go to a point, change altitude, orbit
                r = await client.post(CMD, json={"command": "goto", "lat": ASIDE[0], "lon": ASIDE[1]})
                assert r.status_code == 200, r.text
                await until(client, near(*ASIDE, 4.0), 30)
                r = await client.post(CMD, json={"command": "altitude", "alt_m": 80})
                assert r.status_code == 200, r.text
                await until(client, lambda t: abs(t["rel_alt_m"] - 80) < 1.5, 30)
                r = await client.post(
                    CMD, json={"command": "orbit", "lat": ASIDE[0], "lon": ASIDE[1], "radius_m": 40}
                )
                assert r.status_code == 200, r.text
                await until(
                    client,
                    lambda t: t["groundspeed"] > 3 and abs(distance_m(t["lat"], t["lon"], *ASIDE) - 40) < 4,
                    30,
                )
                mission = (await client.get(f"/api/v1/missions/{m['id']}")).json()
                assert mission["state"] == "en_route"  # the pilot flies; the mission is not on scene

                # hand back: the mission continues to the scene, orbits and comes home
                r = await client.post(CMD, json={"command": "release"})
                assert r.status_code == 200 and r.json()["pilot_control"] is False, r.text
                assert (await drone(client))["pilot_control"] is False
                await mission_of(client, inc, lambda m: m["state"] == "on_scene", 60)
                done = await mission_of(client, inc, lambda m: m["state"] == "landed", 150)
                assert done["pilot_control"]["active"] is False

                events = (await client.get(f"/api/v1/missions/{m['id']}/events")).json()["events"]
                assert [e["to_state"] for e in events if e["from_state"] != e["to_state"]] == [
                    "launching",
                    "en_route",
                    "on_scene",
                    "returning",
                    "landed",
                ]
                pilot_events = [e for e in events[1:] if "pilot_control" in e["details"]]
                assert [e["details"]["pilot_control"]["active"] for e in pilot_events] == [True, False]
                assert all(e["actor"] == "pilot1" for e in pilot_events)
                audits = await command_audits(client)
                assert [a["details"]["command"] for a in audits] == [
                    "hold",
                    "goto",
                    "altitude",
                    "orbit",
                    "release",
                ]
                assert all(a["actor"] == "pilot1" and a["subject_id"] == m["id"] for a in audits)

                geo = (await client.get(f"/api/v1/missions/{m['id']}/geojson")).json()
                track = next(f for f in geo["features"] if f["properties"]["kind"] == "flown_track")
                coords = [tuple(p[:2]) for p in track["geometry"]["coordinates"]]
                assert path_is_clear(coords, planner_zones(load_area(AREA)), 60.0)
                assert (await until(client, lambda t: not t["armed"], 10))["in_air"] is False


async def test_pilot_reserves_returns_lands_and_viewer_may_not(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            svc.dispatcher.policy = svc.policy.model_copy(update={"loiter_s": 30.0})  # a shorter test
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await add_user(svc.store, "viewer1", "pw-viewer-1", Role.VIEWER)
                viewer = await login_headers(client, "viewer1", "pw-viewer-1")
                await signed_in(client, svc.store)
                r = await client.post(CMD, json={"command": "take_control"}, headers=viewer)
                assert r.status_code == 403 and r.json()["detail"]["code"] == "forbidden"
                r = await client.post(CMD, json={"command": "hold"}, headers={"Authorization": "Bearer nope"})
                assert r.status_code == 401

                # a pilot holds an idle drone: the automation does not launch it until it is released
                r = await client.post(CMD, json={"command": "take_control"})
                assert r.status_code == 200 and r.json()["mission_id"] is None, r.text
                inc = await post(client, report("g-reserved", *SCENE))
                await mission_of(client, inc, lambda m: m["state"] == "queued", 10)
                r = await client.post(CMD, json={"command": "release"})
                assert r.status_code == 200, r.text
                await mission_of(client, inc, lambda m: m["state"] == "en_route", 30)

                # return to launch: the mission is returning (by the pilot), then lands at the dock
                r = await client.post(CMD, json={"command": "return"})
                assert r.status_code == 200, r.text
                m = await mission_of(client, inc, lambda m: m["state"] == "returning", 5)
                assert "pilot1" in m["reason"]
                m = await mission_of(client, inc, lambda m: m["state"] == "landed", 120)
                landed = await until(client, lambda t: not t["armed"], 10)
                assert distance_m(landed["lat"], landed["lon"], *CIVIC) < 5.0
                assert (await drone(client))["pilot_control"] is False  # pilot control ended with the flight

                # land now: the mission lands where the drone is
                inc2 = await post(client, report("g-land", *SCENE_2))
                await mission_of(client, inc2, lambda m: m["state"] == "en_route", 60)
                await until(client, lambda t: distance_m(t["lat"], t["lon"], *CIVIC) > 300, 30)
                r = await client.post(CMD, json={"command": "land"})
                assert r.status_code == 200, r.text
                m2 = await mission_of(client, inc2, lambda m: m["state"] == "landed", 60)
                down = await until(client, lambda t: not t["armed"], 10)
                assert distance_m(down["lat"], down["lon"], *CIVIC) > 250
                events = (await client.get(f"/api/v1/missions/{m2['id']}/events")).json()["events"]
                returning = next(e for e in events if e["to_state"] == "returning")
                assert returning["actor"] == "pilot1" and "land" in returning["reason"]
                assert "on_scene" not in [e["to_state"] for e in events]

                # an autopilot failsafe while the pilot has the drone is recorded (and not fought)
                inc3 = await post(client, report("g-failsafe", *SCENE_3))
                await mission_of(client, inc3, lambda m: m["state"] == "en_route", 60)
                r = await client.post(CMD, json={"command": "hold"})
                assert r.status_code == 200, r.text
                assert sim.control is not None
                await sim.control.request(op="battery", drone=1, pct=6.8)  # below BAT_CRIT_THR (7 %)
                m3 = await mission_of(client, inc3, lambda m: m["state"] in ("returning", "landed"), 30)
                events = (await client.get(f"/api/v1/missions/{m3['id']}/events")).json()["events"]
                returning = next(e for e in events if e["to_state"] == "returning")
                assert "failsafe" in returning["reason"], returning
                await mission_of(client, inc3, lambda m: m["state"] == "landed", 150)


async def test_pilot_control_survives_a_controller_restart(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        settings = settings_for(tmp_path, sim.base_port)
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            svc.dispatcher.policy = svc.policy.model_copy(update={"loiter_s": 30.0})
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc = await post(client, report("g-restart-pilot", *SCENE))
                await mission_of(client, inc, lambda m: m["state"] == "en_route", 60)
                await until(client, lambda t: t["groundspeed"] > 5, 30)
                r = await client.post(CMD, json={"command": "hold"})
                assert r.status_code == 200, r.text
                held = await until(client, lambda t: t["groundspeed"] < 0.3, 10)
        # the restarted controller must not take the drone back from the pilot
        async with running_service(settings) as svc2:
            await svc2.fleet.wait_ready("cv-1")
            svc2.dispatcher.policy = svc2.policy.model_copy(update={"loiter_s": 30.0})
            async with http_server(svc2.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc2.store)
                view = await drone(client)
                assert view["pilot_control"] is True and view["pilot_by"] == "pilot1"
                await asyncio.sleep(1.0)  # 20 simulated seconds in which a resumed route would move it
                still = (await drone(client))["telemetry"]
                assert distance_m(still["lat"], still["lon"], held["lat"], held["lon"]) < 3.0
                r = await client.post(CMD, json={"command": "release"})
                assert r.status_code == 200, r.text
                done = await mission_of(client, inc, lambda m: m["state"] == "landed", 150)
                assert done["on_scene_at"] is not None

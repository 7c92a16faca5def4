"""Dispatcher behaviour through the real service, MAVSDK and the simulator process.

Approval (approve / decline), queueing when no drone is free, refusal of a scene outside the area,
stand-off for a scene inside a no-fly zone, and a controller restart in mid-flight.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from dfr.area import load_area
from dfr.dispatch.sortie import planner_zones
from dfr.geo import distance_m
from dfr.planning import path_is_clear
from dfr.service import http_server, running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.integration.mosquitto import Mosquitto
from tests.support.api import AREA, NEAR_CIVIC, POLICY, mission_of, post, report
from tests.support.auth import signed_in

pytestmark = pytest.mark.integration
SPEED = 20.0


def settings_for(tmp_path: Path, base_port: int) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        time_scale=SPEED,
        mavlink_base_port=base_port,
    )


async def test_approval_queue_and_refusal(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:  # only cv-1 is up
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                # a low-priority 911 call needs a human: decline one, approve another
                inc_a = await post(client, report("c-a", *NEAR_CIVIC, kind="911", priority=3, source="cad"))
                m_a = await mission_of(client, inc_a, lambda m: m["state"] == "pending_approval", 10)
                r = await client.post(f"/api/v1/missions/{m_a['id']}/decline", json={})
                assert r.status_code == 200 and r.json()["state"] == "declined"
                r = await client.post(f"/api/v1/missions/{m_a['id']}/approve", json={})
                assert r.status_code == 409  # declined is final: nothing changes

                inc_b = await post(
                    client, report("c-b", 32.6480, -117.0850, kind="911", priority=3, source="cad")
                )
                m_b = await mission_of(client, inc_b, lambda m: m["state"] == "pending_approval", 10)
                r = await client.post(f"/api/v1/missions/{m_b['id']}/approve", json={})
                assert r.status_code == 200 and r.json()["state"] == "launching", r.text

                # while cv-1 flies, a gunshot waits in the queue; cv-1 takes it on its way home (re-tasked)
                inc_c = await post(client, report("g-c", *NEAR_CIVIC))
                m_c = await mission_of(client, inc_c, lambda m: m["state"] == "queued", 10)
                assert "cv-1 busy" in m_c["reason"]

                # a scene far outside the operating area is refused at the door (nothing stored); one just
                # outside it (within area_margin_m) is stored, and its mission refused with the reason
                r = await client.post("/api/v1/incidents", json=report("g-far", 32.7500, -117.0800))
                assert r.status_code == 422 and r.json()["detail"]["code"] == "outside_area", r.text
                inc_d = await post(client, report("g-d", 32.6620, -117.0800))
                m_d = await mission_of(client, inc_d, lambda m: m["state"] == "aborted", 10)
                assert m_d["state"] == "aborted" and "outside" in m_d["reason"], m_d

                m_b = await mission_of(client, inc_b, lambda m: m["state"] in ("landed", "aborted"), 120)
                m_c = await mission_of(client, inc_c, lambda m: m["state"] == "landed", 150)
                assert m_c["drone_id"] == "cv-1"
                assert m_b["state"] == "aborted" and m_b["reason"].startswith(
                    f"re-tasked to mission {m_c['id']}"
                )
                events = (await client.get(f"/api/v1/missions/{m_b['id']}/events")).json()["events"]
                assert [e["to_state"] for e in events][:2] == ["pending_approval", "launching"]
                assert events[1]["actor"] == "pilot1"  # the signed-in pilot, not a field the caller fills in
                audit = (await client.get("/api/v1/audit", params={"subject_id": m_b["id"]})).json()
                assert audit, "every mission step is audited"


async def test_scene_inside_zone_gets_standoff(tmp_path: Path) -> None:
    area = load_area(AREA)
    helipad = next(z for z in area.zones if z.kind == "hospital_helipad" and z.floor_ft_agl == 0)
    c = helipad.geometry.centroid
    async with SimProcess(area=AREA, drones=3, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-3")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc = await post(client, report("g-zone", c.y, c.x))
                m = await mission_of(client, inc, lambda m: m["state"] == "landed", 150)
                assert m["standoff"] is not None and m["standoff"]["zone_id"] == helipad.id
                geo = (await client.get(f"/api/v1/missions/{m['id']}/geojson")).json()
                track = next(f for f in geo["features"] if f["properties"]["kind"] == "flown_track")
                coords = [tuple(p[:2]) for p in track["geometry"]["coordinates"]]
                assert path_is_clear(coords, planner_zones(area), m["altitude_m"])


async def test_controller_restart_mid_flight_completes_mission(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        settings = settings_for(tmp_path, sim.base_port)
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc = await post(client, report("g-restart", 32.6250, -117.0700))
                m = await mission_of(client, inc, lambda m: m["state"] == "en_route", 60)
        # the controller is gone; the drone keeps flying its last command
        assert sim.control is not None
        status = await sim.control.status()
        assert status["drones"][0]["armed"]
        async with running_service(settings) as svc2:
            mission = await svc2.missions.get(m["id"])
            assert mission is not None and mission.state.value in (
                "en_route",
                "on_scene",
                "returning",
                "landed",
            )
            async with http_server(svc2.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc2.store)
                done = await mission_of(client, inc, lambda m: m["state"] == "landed", 150)
                events = (await client.get(f"/api/v1/missions/{done['id']}/events")).json()["events"]
                assert [e["to_state"] for e in events] == [
                    "launching",
                    "en_route",
                    "on_scene",
                    "returning",
                    "landed",
                ]
                # the track flown before the restart was kept: it starts at the civic dock
                geo = (await client.get(f"/api/v1/missions/{done['id']}/geojson")).json()
                flown = next(f for f in geo["features"] if f["properties"]["kind"] == "flown_track")
                lon0, lat0 = flown["geometry"]["coordinates"][0][:2]
                assert distance_m(lat0, lon0, 32.6401, -117.0842) < 30.0
        status = await sim.control.status()
        assert not status["drones"][0]["armed"] and status["drones"][0]["height"] < 1.0


async def test_two_distant_incidents_over_mqtt_fly_two_drones(tmp_path: Path, mosquitto: Mosquitto) -> None:
    import json

    import aiomqtt

    async with SimProcess(area=AREA, drones=3, speed=SPEED) as sim:
        settings = settings_for(tmp_path, sim.base_port).model_copy(update={"mqtt_url": mosquitto.url})
        async with running_service(settings) as svc:
            for d in ("cv-1", "cv-2", "cv-3"):
                await svc.fleet.wait_ready(d)
            mqtt = svc.app.state.mqtt_ingest
            await asyncio.wait_for(mqtt.connected.wait(), 10)
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                async with aiomqtt.Client("127.0.0.1", port=mosquitto.port) as pub:
                    near_bay = report("m-bay", 32.6300, -117.0980, source="mqtt-sensor")
                    near_east = report("m-east", 32.6320, -117.0520, source="mqtt-sensor")
                    for body in (near_bay, near_east):
                        await pub.publish("dfr/incidents", json.dumps(body), qos=1)
                    await pub.publish("dfr/incidents", b"{not json", qos=1)  # rejected, changes nothing

                async def landed_both() -> list[dict[str, Any]]:
                    async with asyncio.timeout(150):
                        while True:
                            ms = (await client.get("/api/v1/missions")).json()["missions"]
                            if len(ms) == 2 and all(m["state"] == "landed" for m in ms):
                                return ms  # type: ignore[no-any-return]
                            await asyncio.sleep(0.3)

                ms = await landed_both()
                assert {m["drone_id"] for m in ms} == {"cv-2", "cv-3"}  # each from its nearest dock
                assert mqtt.counters.rejected == 1
                incidents = (await client.get("/api/v1/incidents")).json()
                assert incidents["total"] == 2


async def test_autopilot_battery_failsafe_is_reflected_not_fought(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc = await post(client, report("g-batt", 32.6480, -117.0720))
                m = await mission_of(client, inc, lambda m: m["state"] == "en_route", 60)
                assert sim.control is not None
                await sim.control.request(op="battery", drone=1, pct=6.8)  # below BAT_CRIT_THR (7 %)
                m = await mission_of(
                    client, inc, lambda m: m["state"] in ("returning", "landed", "failed"), 60
                )
                assert m["state"] != "failed", m
                m = await mission_of(client, inc, lambda m: m["state"] == "landed", 150)
                events = (await client.get(f"/api/v1/missions/{m['id']}/events")).json()["events"]
                returning = next(e for e in events if e["to_state"] == "returning")
                assert "failsafe" in (returning["reason"] or ""), returning
                assert "on_scene" not in [e["to_state"] for e in events]  # it did not fight the RTL


async def test_scene_beyond_every_dock_is_refused_not_queued(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        settings = settings_for(tmp_path, sim.base_port)
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            svc.dispatcher.policy = svc.policy.model_copy(update={"coverage_radius_m": 1000.0})
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc = await post(client, report("g-far", 32.6480, -117.0720))  # >1.4 km from every dock
                # The mission is stored as queued ("planning") and refused a moment later; wait for a
                # settled state. A mission left queued (waiting for a drone forever) times out here.
                m = await mission_of(client, inc, lambda m: m["state"] in ("aborted", "launching"), 10)
                assert m["state"] == "aborted" and "coverage" in m["reason"], m
                events = (await client.get(f"/api/v1/missions/{m['id']}/events")).json()["events"]
                assert [e["to_state"] for e in events][-1] == "aborted"


async def test_recall_sends_the_drone_home_along_its_route(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                inc = await post(client, report("g-recall", 32.6320, -117.0750))
                m = await mission_of(client, inc, lambda m: m["state"] == "en_route", 60)
                r = await client.post(f"/api/v1/missions/{m['id']}/recall", json={})
                assert r.status_code == 200, r.text
                m = await mission_of(client, inc, lambda m: m["state"] == "landed", 120)
                events = (await client.get(f"/api/v1/missions/{m['id']}/events")).json()["events"]
                assert "on_scene" not in [e["to_state"] for e in events]
                assert any(e["actor"] == "pilot1" for e in events)  # the recall is on the record
                r = await client.post(f"/api/v1/missions/{m['id']}/recall", json={})
                assert r.status_code == 409  # nothing left to recall


async def test_queued_call_expires_at_its_policy_deadline(tmp_path: Path) -> None:
    """A call that waits for a drone longer than the policy's queue deadline ends with the reason, rather
    than launching long after its moment (a real afternoon of calls stranded half of them in the queue)."""
    import yaml

    policy = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    policy["queue_deadline_s"] = 60
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:  # only cv-1 is up
        settings = settings_for(tmp_path, sim.base_port).model_copy(update={"policy": str(policy_path)})
        async with running_service(settings) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                first = await post(client, report("q-1", *NEAR_CIVIC))
                await mission_of(client, first, lambda m: m["state"] == "en_route", 30)
                waiting = await post(client, report("q-2", 32.6300, -117.0900))
                await mission_of(client, waiting, lambda m: m["state"] == "queued", 10)
                m = await mission_of(client, waiting, lambda m: m["state"] == "aborted", 30)
                assert "expired" in m["reason"] and "60 s" in m["reason"], m
                assert m["drone_id"] is None
                flying = await mission_of(client, first, lambda m: True, 5)
                assert flying["state"] in ("en_route", "on_scene", "returning")  # cv-1 was busy all along


async def test_a_drone_charging_on_its_dock_says_when_it_is_ready(tmp_path: Path) -> None:
    """The Civic Center dock charges at 2.5 %/min to a ready level of 90 %: at 50 % that is 16 minutes."""
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            drone = await svc.fleet.wait_ready("cv-1")
            parts = svc.app.state.supervisor.parts  # the service's long-lived parts run supervised
            assert {"fleet-discovery", "live-telemetry", "dispatcher-retry-queued"} <= set(parts)
            assert sim.control is not None
            await sim.control.request(op="battery", drone=1, pct=50.0)
            await drone.wait_for(lambda s: s.battery_pct is not None and s.battery_pct < 60, 10)
            async with http_server(svc.app) as url, httpx.AsyncClient(base_url=url) as client:
                await signed_in(client, svc.store)
                views = (await client.get("/api/v1/drones")).json()["drones"]
                cv1 = next(d for d in views if d["id"] == "cv-1")
                assert 600 < cv1["ready_in_s"] <= 40 / 2.5 * 60, cv1  # charging meanwhile: a little less
                assert next(d for d in views if d["id"] == "cv-2")["ready_in_s"] is None  # not connected

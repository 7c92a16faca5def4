"""Faults the controller must survive without losing a record (issue: reliability).

- the service process is killed with SIGKILL mid-mission and started again: the open mission is resumed
  and completes, the incident is not lost or doubled, the audit chain is intact;
- the MQTT broker goes down and comes back while a sensor publishes a QoS 1 burst: every report is
  stored once and each incident gets exactly one mission;
- garbage and malformed MAVLink thrown at the vehicle's and the controller's UDP ports are ignored.

Real processes throughout: `dfr serve` as a child process, the simulator process, mosquitto.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from dfr.auth import Role
from dfr.store import Store
from dfr.store.audit_chain import verify_chain
from sim.harness import SimProcess
from tests.integration.mosquitto import Mosquitto
from tests.support.api import AREA, NEAR_CIVIC, POLICY, drone_ready, mission_of, post, report
from tests.support.auth import PILOT, add_user, login_headers
from tests.support.processes import dfr_serve, free_tcp_port
from tests.support.wait import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
SPEED = 20.0


async def test_service_killed_mid_mission_resumes_and_completes(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}"
    async with await Store.open(db) as store:
        await add_user(store, *PILOT, Role.PILOT)
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        env = {
            "DFR_DATABASE_URL": db,
            "DFR_AREA": str(AREA),
            "DFR_POLICY": str(POLICY),
            "DFR_TIME_SCALE": str(SPEED),
            "DFR_MAVLINK_BASE_PORT": str(sim.base_port),
        }
        port = free_tcp_port()
        base = f"http://127.0.0.1:{port}"
        async with dfr_serve(env, port) as first, httpx.AsyncClient(base_url=base) as client:
            client.headers.update(await login_headers(client, *PILOT))

            await drone_ready(client, "cv-1")  # before the alert, as in service
            incident = await post(client, report("kill-1", *NEAR_CIVIC))
            before = await mission_of(client, incident, lambda m: m["state"] == "en_route", 60)
            first.send_signal(signal.SIGKILL)  # no shutdown code runs: as a power cut would be
            await first.wait()

        async with dfr_serve(env, port), httpx.AsyncClient(base_url=base) as client:
            client.headers.update(await login_headers(client, *PILOT))  # sessions survive the restart too
            done = await mission_of(client, incident, lambda m: m["state"] in ("landed", "failed"), 150)
            assert done["state"] == "landed" and done["id"] == before["id"], done
            assert done["on_scene_at"] is not None  # it went on to the scene, then home
            missions = (await client.get("/api/v1/missions")).json()["missions"]
            incidents = (await client.get("/api/v1/incidents")).json()
            assert len(missions) == 1 and incidents["total"] == 1  # nothing lost, nothing doubled
            events = (await client.get(f"/api/v1/missions/{done['id']}/events")).json()["events"]
            states = [e["to_state"] for e in events]
            assert states.count("launching") == 1 and states[-1] == "landed", states
    async with await Store.open(db) as store:
        assert (await verify_chain(store.engine)).intact


async def publish_all(
    broker: Mosquitto, bodies: list[dict[str, Any]], *, hold_at: int = -1, go_on: asyncio.Event | None = None
) -> int:
    """A sensor gateway that keeps publishing through a broker outage: each report is retried until the
    broker acknowledged it (PUBACK), as a QoS 1 publisher must. Returns how many attempts failed.

    With `hold_at`, it waits for `go_on` before publishing report number `hold_at`, so that a test can
    take the broker down while the rest of the burst is still to come (else a fast publisher may be
    done before the outage, and never feel it)."""
    failures = 0
    pending = list(bodies)
    while pending:
        try:
            async with aiomqtt.Client(broker.host, broker.port, identifier="sensor-gw", timeout=2) as c:
                while pending:
                    if go_on is not None and len(bodies) - len(pending) == hold_at:
                        await go_on.wait()
                    await c.publish("dfr/incidents", json.dumps(pending[0]), qos=1)
                    pending.pop(0)
                    await asyncio.sleep(0.01)
        except aiomqtt.MqttError:
            failures += 1
            await asyncio.sleep(0.2)
    return failures


async def test_broker_restart_during_a_qos1_burst_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    from dfr.service import running_service
    from dfr.settings import Settings

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        time_scale=SPEED,
        mavlink_base_port=free_tcp_port(),  # no drones: every mission waits, queued
        mqtt_url=mosquitto.url,
    )
    scenes = [(32.6450, -117.0800), (32.6300, -117.0980), (32.6320, -117.0520)]  # far apart: 3 incidents
    bodies = [
        report(f"burst-{i}", scenes[i % 3][0] + (i // 3) * 1e-5, scenes[i % 3][1], source="gw")
        for i in range(60)
    ]
    async with running_service(settings) as svc:
        ingest = svc.app.state.mqtt_ingest
        async with asyncio.timeout(20):
            await ingest.connected.wait()
        go_on = asyncio.Event()
        publisher = asyncio.create_task(publish_all(mosquitto, bodies, hold_at=30, go_on=go_on))

        async def stored() -> int:
            return int((await svc.store.row_counts())["incident_reports"])

        async def some_stored() -> bool:
            return await stored() >= 15

        await until(some_stored, 30, "the first reports")  # the outage starts mid-burst
        mosquitto.stop()
        go_on.set()  # the other 30 reports are published into the outage
        await asyncio.sleep(1.0)  # the broker stays down for a while (not a synchronisation)
        mosquitto.start()
        failures = await asyncio.wait_for(publisher, 60)

        async def all_stored() -> bool:
            return await stored() >= len(bodies)

        await until(all_stored, 60, "every report")
        assert await stored() == len(bodies)
        assert failures >= 1, "the outage was not felt by the publisher"
        assert await svc.store.count_incidents() == 3  # every report joined its scene's incident

        async def three_missions() -> bool:
            return await svc.missions.count() >= 3

        await until(three_missions, 20, "a mission per incident")
        missions = await svc.missions.list(limit=100)
        assert sorted(m.incident_id for m in missions) == sorted(
            i.id for i in await svc.store.list_incidents(None, 10, 0)
        )  # one mission per incident, none doubled by redelivery


async def test_garbage_on_the_mavlink_ports_is_ignored(tmp_path: Path) -> None:
    """Random bytes, truncated frames and frames from unknown systems at both ends of the link: the
    simulator keeps flying its vehicle and the controller keeps its drone connected and ready."""
    from pymavlink.dialects.v20 import common as mavlink2

    from dfr.service import running_service
    from dfr.settings import Settings

    async with SimProcess(area=AREA, drones=1, speed=SPEED, params={"MIS_TAKEOFF_ALT": 20.0}) as sim:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
            area=str(AREA),
            policy=str(POLICY),
            time_scale=SPEED,
            mavlink_base_port=sim.base_port,
        )
        async with running_service(settings) as svc:
            drone = await svc.fleet.wait_ready("cv-1")
            stranger = mavlink2.MAVLink(None, srcSystem=77, srcComponent=1)
            forged = stranger.command_long_encode(1, 1, 400, 0, 0, 0, 0, 0, 0, 0, 0).pack(stranger)  # disarm
            heartbeat = stranger.heartbeat_encode(2, 12, 0, 0, 4).pack(stranger)
            junk = [os.urandom(n) for n in (1, 7, 64, 280, 1400)] + [forged[:-3], b"\xfd" * 300, heartbeat]
            vehicle_port = sim.ready["drones"][0]["local_port"]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for _ in range(20):
                    for j in junk:
                        s.sendto(j, ("127.0.0.1", vehicle_port))  # at the vehicle
                        s.sendto(j, ("127.0.0.1", sim.base_port))  # at the controller's MAVSDK
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)  # let the link settle after the junk (no event exists for "nothing")
            assert drone.state.connected and drone.state.health_ok
            assert sim.control is not None
            status = (await sim.control.request(op="status"))["status"]
            assert status["drones"][0]["sysid"] == 1 and status["sim_time"] > 0  # the simulator runs on
            await drone.arm_and_takeoff(20.0)
            await drone.wait_for(lambda s: (s.rel_alt_m or 0) > 15, 30)  # still flies on command
            await drone.land()
            await drone.wait_for(lambda s: not s.in_air, 60)

"""A sortie that ends without landing its drone never leaves it as it is (real MAVSDK, simulator process).

- `make_safe` against a simulated PX4: airborne -> RTL; RTL refused (no GPS) -> land; armed on the
  ground -> disarm; a drone the pilot holds stays the pilot's.
- Through the real service: the database starts refusing writes right after the drone armed, so the
  flight procedure fails in the air. The drone must be sent home and land at its dock, and the
  dispatcher must free it even though neither the failure nor the final track can be written (both
  logged). Before the Sortie rework the drone was left hovering ("the pilot in control keeps the
  drone": an asyncio.Event is always truthy) and stayed busy until a restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from dfr.area import load_area
from dfr.dispatch.safety import SafeAction, make_safe
from dfr.domain.incidents import IncidentReport
from dfr.fleet.drone import Drone
from dfr.fleet.fleet import Fleet, default_links
from dfr.geo import distance_m
from dfr.service import running_service
from dfr.settings import Settings
from sim.harness import SimProcess
from tests.integration.test_service_e2e import AREA, POLICY, report
from tests.integration.test_store_faults import every_connection

pytestmark = pytest.mark.integration
SPEED = 20.0
NEAR_CIVIC = (32.6450, -117.0800)


async def _fleet(sim: SimProcess, ids: list[str]) -> Fleet:
    fleet = Fleet(default_links(ids, base_port=sim.base_port))
    await fleet.start()
    await fleet.wait_connected()
    for drone_id in ids:
        await fleet.wait_ready(drone_id)
    return fleet


async def _airborne(drone: Drone, height: float = 15.0) -> None:
    await drone.arm_and_takeoff(height, time_scale=SPEED)
    await drone.wait_for(lambda s: (s.rel_alt_m or 0) > height - 3, 30)


async def test_make_safe_returns_lands_or_disarms() -> None:
    area = load_area(AREA)
    ids = [d.id for d in area.drones[:3]]
    async with SimProcess(area=AREA, drones=3, speed=SPEED, params={"MIS_TAKEOFF_ALT": 15.0}) as sim:
        fleet = await _fleet(sim, ids)
        try:
            flying, grounded, no_gps = (fleet.drone(i) for i in ids)
            await asyncio.gather(_airborne(flying), _airborne(no_gps))
            await grounded.action.arm()
            await grounded.wait_for(lambda s: s.armed, 10)

            assert (await make_safe(flying, pilot_holds=True))[0] is SafeAction.PILOT_KEEPS
            assert flying.state.in_air  # nothing was commanded

            action, _ = await make_safe(flying, pilot_holds=False)
            assert action is SafeAction.RETURNED
            await flying.wait_for(lambda s: s.flight_mode == "RETURN_TO_LAUNCH", 10)

            assert sim.control is not None
            await sim.control.request(op="gps", drone=3, lost=True)
            await no_gps.wait_for(lambda s: not s.health_ok, 10)
            action, detail = await make_safe(no_gps, pilot_holds=False)
            assert action is SafeAction.LANDED, detail
            assert "return to launch" in detail

            assert (await make_safe(grounded, pilot_holds=False))[0] is SafeAction.DISARMED
            await grounded.wait_for(lambda s: not s.armed, 10)

            await flying.wait_for(lambda s: not s.armed and not s.in_air, 120)
            dock = area.dock(area.drone(ids[0]).dock)
            assert flying.distance_to(dock.lat, dock.lon) < 5.0
            assert (await make_safe(flying, pilot_holds=False))[0] is SafeAction.NONE
        finally:
            await fleet.stop()


async def test_flight_that_fails_in_the_air_sends_the_drone_home_and_frees_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        time_scale=SPEED,
    )
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        settings = settings.model_copy(update={"mavlink_base_port": sim.base_port})
        async with running_service(settings) as svc:
            drone = await svc.fleet.wait_ready("cv-1")
            result = await svc.store.ingest(IncidentReport.model_validate(report("f-1", *NEAR_CIVIC)))
            await svc.dispatcher.submit(result)
            await drone.wait_for(lambda s: s.armed, 30)
            async with every_connection(svc.store, lambda _c: "PRAGMA query_only = 1"):
                # the next mission step (en route) cannot be written: the procedure fails in the air
                await drone.wait_for(lambda s: s.flight_mode == "RETURN_TO_LAUNCH", 60)
                await drone.wait_for(lambda s: not s.armed and not s.in_air, 120)
                assert svc.dispatcher.mission_of("cv-1") is None  # freed without any write succeeding
            dock = svc.area.dock("cv-civic")
            assert drone.state.lat is not None and drone.state.lon is not None
            assert distance_m(drone.state.lat, drone.state.lon, dock.lat, dock.lon) < 5.0
    messages = [r.getMessage() for r in caplog.records]
    assert any("recording the failure failed" in m for m in messages), messages[-20:]
    assert any("sent home" in m for m in messages)


async def test_unacknowledged_command_is_sent_again_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A command nobody acknowledges (link down) is sent once more, then reported as a TIMEOUT refusal."""
    from dfr.fleet.drone import CommandRefused

    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        fleet = await _fleet(sim, ["cv-1"])
        try:
            drone = fleet.drone("cv-1")
            assert sim.control is not None
            await sim.control.request(op="link", drone=1, up=False)
            with pytest.raises(CommandRefused, match="hold refused by the autopilot: TIMEOUT"):
                await drone.hold()
            assert any("sending it again" in r.getMessage() for r in caplog.records)
        finally:
            await fleet.stop()

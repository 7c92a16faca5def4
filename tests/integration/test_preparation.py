"""Drones prepared on their docks (real MAVSDK against the simulator process).

- A connected drone is "being prepared" until its launch parameters read back as set; then it is ready.
- A prepared drone's launch sends no parameter before arming, and its take-off uses the prepared take-off
  altitude. Before preparation, the launch set the parameters right before arming and the simulator (as
  PX4 does) took off to its 2.5 m default: the value was echoed and read back but not yet applied.
- A prepared value that another ground station changed is found at launch and set again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from dfr.area import load_area
from dfr.dispatch.flight import FlightPlan, fly
from dfr.dispatch.preparation import Preparation, launch_params
from dfr.dispatch.sortie import plan_sortie
from dfr.fleet.drone import CommandRefused
from dfr.fleet.fleet import Fleet, default_links
from dfr.planning.fence import AutopilotFence, FenceCircle
from sim.harness import SimProcess

pytestmark = pytest.mark.integration

AREA = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"
SPEED = 20.0
SCENE = (32.6420, -117.0790)  # a few hundred metres from the Civic Center dock, no zone in between


def _wanted(area: Any) -> dict[str, float]:
    cfg = area.drone("cv-1")
    return launch_params(cfg.response_speed_m_s, dict(cfg.params), area.default_altitude_m)


async def test_prepared_drone_launches_without_setting_anything_and_takes_off_to_the_prepared_height() -> (
    None
):
    area = load_area(AREA)
    wanted = _wanted(area)
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        fleet = Fleet(default_links(["cv-1"], base_port=sim.base_port))
        await fleet.start()
        try:
            drone = await fleet.wait_ready("cv-1")
            ready: list[str] = []
            prep = Preparation(
                fleet,
                wanted=lambda d: wanted if d == "cv-1" else None,
                idle=lambda d: not fleet.drones[d].state.armed,
                on_ready=ready.append,
                time_scale=SPEED,
            )
            reason = prep.not_ready("cv-1")
            assert reason is not None and "being prepared" in reason
            runner = asyncio.create_task(prep.run(), name="test-preparation")
            try:
                await prep.wait_prepared("cv-1", timeout=30)
            finally:
                runner.cancel()
            assert prep.not_ready("cv-1") is None and ready == ["cv-1"]
            for name, value in wanted.items():
                assert await drone.read_param(name) == pytest.approx(value, abs=1e-4), name

            sets: list[dict[str, float]] = []
            real_set_params = drone.set_params

            async def recording_set_params(params: dict[str, float], **kw: Any) -> None:
                sets.append(dict(params))
                await real_set_params(params, **kw)

            drone.set_params = recording_set_params  # type: ignore[method-assign]
            texts_before = drone.state.status_count
            result = await fly(drone, _plan(area, wanted), _ignore)
        finally:
            await fleet.stop()
    assert sets == [], f"a prepared drone's launch set {sets}"
    texts = drone.state.status_texts[-(drone.state.status_count - texts_before) :]
    announced = [t for t in texts if t.startswith("Using default takeoff altitude")]
    assert announced == [f"Using default takeoff altitude: {area.default_altitude_m:.1f} m"], texts
    assert result.on_scene_at is not None


async def test_a_value_changed_behind_the_prepared_drone_is_set_again_at_launch() -> None:
    area = load_area(AREA)
    wanted = _wanted(area)
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        fleet = Fleet(default_links(["cv-1"], base_port=sim.base_port))
        await fleet.start()
        try:
            drone = await fleet.wait_ready("cv-1")
            await drone.set_params(wanted, time_scale=SPEED)
            assert drone.unconfirmed(wanted) == {}
            # another ground station lowers the cruise speed; dfr's record still says prepared
            await drone.param.set_param_float("MPC_XY_CRUISE", 3.0)
            assert drone.unconfirmed(wanted) == {}
            stale = await drone.recheck_params(wanted, time_scale=SPEED)
            assert stale == {"MPC_XY_CRUISE": wanted["MPC_XY_CRUISE"]}
            assert await drone.read_param("MPC_XY_CRUISE") == pytest.approx(wanted["MPC_XY_CRUISE"])
        finally:
            await fleet.stop()


async def test_a_fence_larger_than_the_autopilot_stores_fails_before_arming() -> None:
    """The fence now goes up while the drone climbs; its size is still checked before the arm command."""
    area = load_area(AREA)
    dock = area.dock("cv-civic")
    circles = tuple(FenceCircle(dock.lat + 0.01 + i * 1e-4, dock.lon, 20.0, False) for i in range(65))
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        fleet = Fleet(default_links(["cv-1"], base_port=sim.base_port))
        await fleet.start()
        try:
            drone = await fleet.wait_ready("cv-1")
            plan = dataclasses.replace(_plan(area, {}), fence=AutopilotFence(circles=circles))
            with pytest.raises(CommandRefused, match="exceeds the autopilot's 64"):
                await fly(drone, plan, _ignore)
            assert not drone.state.armed
            assert not any(t.startswith("Armed") for t in drone.state.status_texts)
        finally:
            await fleet.stop()


def _plan(area: Any, params: dict[str, float]) -> FlightPlan:
    cfg = area.drone("cv-1")
    dock = area.dock(cfg.dock)
    sortie = plan_sortie(area, (dock.lat, dock.lon), SCENE, cruise_m_s=cfg.response_speed_m_s)
    return FlightPlan(
        waypoints=sortie.route.waypoints,
        altitude_m=sortie.altitude_m,
        target=sortie.orbit_centre,
        response_speed_m_s=cfg.response_speed_m_s,
        orbit_radius_m=sortie.orbit_radius_m,
        loiter_s=5.0,
        params=dict(cfg.params),
        fence=sortie.fence,
        time_scale=SPEED,
        clear_height_m=dock.clear_height_m,
    )


async def _ignore(phase: str, info: dict[str, Any]) -> None:
    return None

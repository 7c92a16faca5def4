"""Real MAVSDK (v4, one Mavsdk instance) against the real simulator process over UDP. No mocks."""

from __future__ import annotations

import asyncio
import math
import socket
from typing import Any

import pytest
from mavsdk.asyncio.plugins.action import ActionError, OrbitYawBehavior
from mavsdk.asyncio.plugins.geofence import Circle, FenceType, GeofenceData, GeofenceError, Point, Polygon
from mavsdk.asyncio.plugins.mission_raw import MissionItem
from mavsdk.asyncio.plugins.param import ParamError
from mavsdk.asyncio.plugins.telemetry import FlightMode, LandedState

from sim.geo import ne_from_latlon
from sim.harness import SimProcess
from tests.integration.mav import (
    Drone,
    bearing_ne,
    connect_fleet,
    dist,
    first,
    new_mavsdk,
    offset,
    wait_ready,
)

pytestmark = pytest.mark.integration

SPEED = 10.0
HOME = (32.6401, -117.0842, 150.0)
# The takeoff altitude these clients use, set when the vehicle starts: like PX4, the simulator applies a
# PARAM_SET a navigator cycle after echoing it, so a takeoff sent right after set_takeoff_altitude could
# still climb to the old value (test_param_apply_delay.py); the calls below then change nothing.
TAKEOFF_30M = {"MIS_TAKEOFF_ALT": 30.0}


def hspeed(v: Any) -> float:
    return math.hypot(v.north_m_s, v.east_m_s)


def wall(sim_seconds: float) -> float:
    """A generous wall-clock timeout for `sim_seconds` of simulated flight."""
    return sim_seconds / SPEED * 2.5 + 10


async def sim_t(sim: SimProcess, sysid: int) -> float:
    assert sim.control is not None
    status = await sim.control.status()
    return float(next(d for d in status["drones"] if d["sysid"] == sysid)["t"])


async def drone_status(sim: SimProcess, sysid: int) -> dict:  # type: ignore[type-arg]
    assert sim.control is not None
    status = await sim.control.status()
    return next(d for d in status["drones"] if d["sysid"] == sysid)


async def take_off(d: Drone, alt: float = 30.0) -> None:
    await wait_ready(d)
    await d.action.set_takeoff_altitude(alt)
    await d.action.arm()
    await d.action.takeoff()
    await first(d.telemetry.subscribe_position(), lambda p: p.relative_altitude_m >= alt - 2, wall(40))
    await first(d.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.HOLD, wall(10))


async def fly_full_sortie(sim: SimProcess, d: Drone, bearing: float, timings: dict[str, float]) -> None:
    """Arm, take off to 30 m, go 300 m, orbit, return, land, disarm; record simulated durations."""
    await wait_ready(d)
    home = await first(d.telemetry.subscribe_home(), lambda h: not math.isnan(h.latitude_deg), wall(5))
    await d.action.set_takeoff_altitude(30.0)
    t0 = await sim_t(sim, d.sysid)
    await d.action.arm()
    await d.action.takeoff()
    await first(d.telemetry.subscribe_position(), lambda p: p.relative_altitude_m >= 28.0, wall(40))
    timings["takeoff_28m"] = await sim_t(sim, d.sysid) - t0
    await first(d.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.HOLD, wall(10))

    n, e = bearing_ne(300.0, bearing)
    lat, lon = offset(home.latitude_deg, home.longitude_deg, n, e)
    t1 = await sim_t(sim, d.sysid)
    await d.action.goto_location(lat, lon, home.absolute_altitude_m + 30.0, 0.0)
    pos = await first(d.telemetry.subscribe_position(), lambda p: dist(p, lat, lon) <= 5.0, wall(100))
    timings["goto_300m"] = await sim_t(sim, d.sysid) - t1
    assert dist(pos, lat, lon) <= 5.0

    await d.action.do_orbit(40.0, 5.0, OrbitYawBehavior.HOLD_FRONT_TO_CIRCLE_CENTER, lat, lon, float("nan"))
    # The orbit is real: the drone reaches the circle and keeps ~40 m from its centre while moving.
    on_circle = await first(
        d.telemetry.subscribe_position(), lambda p: abs(dist(p, lat, lon) - 40.0) < 3.0, wall(40)
    )
    status = await drone_status(sim, d.sysid)
    assert status["mode"] == "ORBIT"
    moved_from = (on_circle.latitude_deg, on_circle.longitude_deg)
    later = await first(
        d.telemetry.subscribe_position(),
        lambda p: abs(dist(p, lat, lon) - 40.0) < 4.0 and dist(p, moved_from[0], moved_from[1]) > 30.0,
        wall(40),
    )
    assert abs(dist(later, lat, lon) - 40.0) < 4.0

    t2 = await sim_t(sim, d.sysid)
    await d.action.return_to_launch()
    await first(d.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.RETURN_TO_LAUNCH, wall(10))
    await first(d.telemetry.subscribe_landed_state(), lambda s: s == LandedState.ON_GROUND, wall(200))
    await first(d.telemetry.subscribe_armed(), lambda a: not a, wall(20))
    timings["rtl_to_disarm_from_340m"] = await sim_t(sim, d.sysid) - t2
    landed = await d.telemetry.position()
    timings["landing_error_m"] = dist(landed, home.latitude_deg, home.longitude_deg)
    assert timings["landing_error_m"] < 2.0


async def test_three_drones_one_mavsdk_full_sortie() -> None:
    async with SimProcess(drones=3, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            drones = await connect_fleet(mavsdk, sim.connection_urls())
            assert sorted(drones) == [1, 2, 3]
            timings: dict[int, dict[str, float]] = {i: {} for i in drones}
            await asyncio.gather(
                *(
                    fly_full_sortie(sim, d, bearing=120.0 * (i - 1), timings=timings[i])
                    for i, d in drones.items()
                )
            )
    for i, t in timings.items():
        print(f"drone {i}: " + ", ".join(f"{k}={v:.1f}" for k, v in t.items()))
        # Real PX4 SITL (SIH, v1.16): arm->28 m 19.8-22.0 s, 300 m go-to 63.8-64.2 s (reference captures).
        assert 0.8 * 19.8 <= t["takeoff_28m"] <= 1.2 * 22.0
        assert 0.8 * 63.8 <= t["goto_300m"] <= 1.2 * 64.7


async def test_mission_and_fence_upload_read_back() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            items = []
            for seq, (n, e) in enumerate([(100, 0), (100, 100), (0, 100)]):
                lat, lon = offset(HOME[0], HOME[1], n, e)
                items.append(
                    MissionItem(
                        seq,
                        6,
                        16,
                        1 if seq == 0 else 0,
                        1,
                        0.0,
                        2.0,
                        0.0,
                        float("nan"),
                        int(lat * 1e7),
                        int(lon * 1e7),
                        40.0,
                        0,
                    )
                )
            await d.mission_raw.upload_mission(items)
            back = await d.mission_raw.download_mission()
            assert [(i.seq, i.command, i.x, i.y, i.z) for i in back] == [
                (i.seq, i.command, i.x, i.y, i.z) for i in items
            ]

            square = [
                Point(*offset(HOME[0], HOME[1], n, e))
                for n, e in [(500, -500), (500, 500), (-500, 500), (-500, -500)]
            ]
            hole = [
                Point(*offset(HOME[0], HOME[1], n, e))
                for n, e in [(150, -100), (150, 100), (250, 100), (250, -100)]
            ]
            circle = Circle(Point(*offset(HOME[0], HOME[1], -200, 0)), 30.0, FenceType.EXCLUSION)
            fence = GeofenceData(
                [Polygon(square, FenceType.INCLUSION), Polygon(hole, FenceType.EXCLUSION)], [circle]
            )
            await d.geofence.upload_geofence(fence)
            raw = await d.mission_raw.download_geofence()
            assert [i.command for i in raw] == [5001] * 4 + [5002] * 4 + [5004]
            assert abs(raw[-1].param1 - 30.0) < 1e-3
            await d.geofence.clear_geofence()
            assert await d.mission_raw.download_geofence() == []


async def test_mission_flies_its_waypoints() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            await wait_ready(d)
            wps = [offset(HOME[0], HOME[1], n, e) for n, e in [(150, 0), (150, 150)]]
            items = [
                MissionItem(
                    seq,
                    6,
                    16,
                    1 if seq == 0 else 0,
                    1,
                    0.0,
                    2.0,
                    0.0,
                    float("nan"),
                    int(lat * 1e7),
                    int(lon * 1e7),
                    40.0,
                    0,
                )
                for seq, (lat, lon) in enumerate(wps)
            ]
            await d.mission_raw.upload_mission(items)
            await d.action.arm()
            await d.mission_raw.start_mission()
            progress = await first(
                d.mission_raw.subscribe_mission_progress(), lambda p: p.current == p.total == 2, wall(150)
            )
            assert progress.total == 2
            pos = await d.telemetry.position()
            assert dist(pos, *wps[1]) < 6.0
            assert abs(pos.relative_altitude_m - 40.0) < 3.0


async def start_goto_north(d: Drone, north: float) -> tuple[float, float]:
    home = await d.telemetry.home()
    lat, lon = offset(home.latitude_deg, home.longitude_deg, north, 0.0)
    await d.action.goto_location(lat, lon, home.absolute_altitude_m + 30.0, 0.0)
    return lat, lon


@pytest.mark.parametrize(("gf_action", "expect_mode"), [(2, "LOITER"), (3, "RTL")])
async def test_fence_breach_triggers_configured_action(gf_action: int, expect_mode: str) -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            await wait_ready(d)
            await d.param.set_param_int("GF_ACTION", gf_action)
            hole = [
                Point(*offset(HOME[0], HOME[1], n, e))
                for n, e in [(100, -100), (100, 100), (200, 100), (200, -100)]
            ]
            await d.geofence.upload_geofence(GeofenceData([Polygon(hole, FenceType.EXCLUSION)], []))
            await take_off(d)
            texts = d.telemetry.subscribe_status_text()
            await start_goto_north(d, 300.0)
            text = await first(texts, lambda s: "Geofence" in s.text, wall(60))
            assert "outside geofence" in text.text
            status = await drone_status(sim, 1)
            assert status["failsafe"] or expect_mode == "RTL"
            if expect_mode == "LOITER":
                # Brakes, overshoots a little, comes back and holds at the breach point (PX4: edge +0.2 m).
                track: list[float] = []

                def north_of(p: Any) -> float:
                    return ne_from_latlon(HOME[0], HOME[1], p.latitude_deg, p.longitude_deg)[0]

                def back_at_edge(p: Any) -> bool:
                    track.append(north_of(p))
                    return max(track) > north_of(p) + 1.0 and abs(north_of(p) - 100.0) < 3.0

                await first(d.telemetry.subscribe_position(), back_at_edge, wall(40))
                status = await drone_status(sim, 1)
                assert status["mode"] == "LOITER" and status["failsafe"]
                assert max(track) < 115.0  # never deep into the zone
            else:
                await first(
                    d.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.RETURN_TO_LAUNCH, wall(10)
                )
                status = await drone_status(sim, 1)
                assert status["north"] < 110.0


async def test_link_loss_triggers_rtl() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            await wait_ready(d)
            await d.param.set_param_int("NAV_DLL_ACT", 2)  # PX4 default 0 does nothing on link loss
            await d.param.set_param_int("COM_DL_LOSS_T", 30)  # >= 3 wall heartbeats at 10x
            await take_off(d)
            await start_goto_north(d, 400.0)
            await first(d.telemetry.subscribe_position(), lambda p: p.relative_altitude_m > 25, wall(5))
            assert sim.control is not None
            await sim.control.request(op="link", drone=1, up=False)
            connected = d.system.is_connected_state()
            await first(connected, lambda c: not c, wall(30))
            status = await drone_status(sim, 1)
            deadline = asyncio.get_running_loop().time() + wall(60)
            while status["mode"] != "RTL":  # nothing reaches us over MAVLink while the link is cut
                assert asyncio.get_running_loop().time() < deadline, status
                await asyncio.sleep(0.1)
                status = await drone_status(sim, 1)
            assert status["gcs_lost"]
            await sim.control.request(op="link", drone=1, up=True)
            await first(
                d.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.RETURN_TO_LAUNCH, wall(15)
            )
            await first(d.telemetry.subscribe_armed(), lambda a: not a, wall(250))
            home = await d.telemetry.home()
            assert dist(await d.telemetry.position(), home.latitude_deg, home.longitude_deg) < 2.0


async def test_low_battery_triggers_rtl() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            await take_off(d)
            await start_goto_north(d, 200.0)
            assert sim.control is not None
            texts = d.telemetry.subscribe_status_text()
            await sim.control.request(op="battery", drone=1, pct=6.5)
            await first(texts, lambda s: "Critical battery" in s.text, wall(10))
            batt = await first(d.telemetry.subscribe_battery(), lambda b: b.remaining_percent < 7.0, wall(10))
            assert batt.remaining_percent >= 5.0
            await first(
                d.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.RETURN_TO_LAUNCH, wall(20)
            )


async def test_refused_commands_are_refused_with_the_right_result() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            await wait_ready(d)
            # take off while disarmed
            with pytest.raises(ActionError) as e:
                await d.action.takeoff()
            assert e.value.result.name == "COMMAND_DENIED"
            # go-to on the ground
            with pytest.raises(ActionError) as e:
                lat, lon = offset(HOME[0], HOME[1], 100, 0)
                await d.action.goto_location(lat, lon, HOME[2] + 30, 0.0)
            assert e.value.result.name == "COMMAND_DENIED"
            # arm without GPS
            assert sim.control is not None
            await sim.control.request(op="gps", drone=1, lost=True)
            with pytest.raises(ActionError) as e:
                await d.action.arm()
            assert e.value.result.name in ("COMMAND_DENIED", "TEMPORARILY_REJECTED")
            await sim.control.request(op="gps", drone=1, lost=False)
            await wait_ready(d)
            # disarm in flight
            await take_off(d)
            with pytest.raises(ActionError) as e:
                await d.action.disarm()
            assert e.value.result.name == "COMMAND_DENIED"
            # takeoff while already flying
            with pytest.raises(ActionError) as e:
                await d.action.takeoff()
            assert e.value.result.name == "COMMAND_DENIED"
            status = await drone_status(sim, 1)
            assert status["armed"] and status["height"] > 20  # nothing changed


async def test_parameters_read_set_and_list() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            assert await d.param.get_param_float("MPC_XY_CRUISE") == pytest.approx(5.0)
            await d.param.set_param_float("MPC_XY_VEL_MAX", 15.0)
            await d.param.set_param_float("MPC_XY_CRUISE", 12.0)
            assert await d.param.get_param_float("MPC_XY_CRUISE") == pytest.approx(12.0)
            assert await d.param.get_param_int("GF_ACTION") == 2
            await d.param.set_param_int("GF_ACTION", 3)
            assert await d.param.get_param_int("GF_ACTION") == 3
            with pytest.raises(ParamError):
                await d.param.get_param_float("NO_SUCH_PARAM")
            all_params = await d.param.get_all_params()
            names = {p.name for p in all_params.float_params} | {p.name for p in all_params.int_params}
            assert {
                "MPC_XY_CRUISE",
                "RTL_RETURN_ALT",
                "COM_DL_LOSS_T",
                "BAT_LOW_THR",
                "BAT_CRIT_THR",
            } <= names
            assert len(names) >= 900


async def test_garbage_on_vehicle_port_is_ignored() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            port = sim.ready["drones"][0]["local_port"]
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # random bytes, a MAVLink 2 frame with a bad CRC, a truncated frame
            for junk in (
                b"\x00" * 300,
                bytes(range(256)),
                b"\xfd\x09\x00\x00\x00\xff\xbe\x00\x00\x00" + b"\x01" * 11,
                b"\xfd\x20",
            ):
                s.sendto(junk, ("127.0.0.1", port))
            s.close()
            await wait_ready(d)
            await d.action.arm()  # the vehicle still takes commands
            assert await first(d.telemetry.subscribe_armed(), lambda a: a, wall(5))
            await d.action.disarm()


async def test_control_socket_rejects_bad_requests() -> None:
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        assert sim.control is not None
        from sim.control import ControlError

        for req in (
            {"op": "nope"},
            {"op": "battery", "drone": 1, "pct": 150},
            {"op": "battery", "drone": 9, "pct": 5},
            {"op": "link", "drone": 1, "up": "no"},
            {"op": "wind", "north": float("nan"), "east": 0},
        ):
            with pytest.raises(ControlError):
                await sim.control.request(**req)
        status = await drone_status(sim, 1)
        assert status["battery_pct"] == pytest.approx(100.0, abs=0.5) and not status["link_down"]


async def test_speed_hold_land_and_injected_faults() -> None:
    """Cruise speed from parameters, hold, land; GPS loss and motor failure land the vehicle."""
    async with SimProcess(drones=3, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            drones = await connect_fleet(mavsdk, sim.connection_urls())
            d1, d2, d3 = drones[1], drones[2], drones[3]
            await d1.param.set_param_float("MPC_XY_VEL_MAX", 15.0)
            await d1.param.set_param_float("MPC_XY_CRUISE", 12.0)
            await asyncio.gather(take_off(d1), take_off(d2), take_off(d3))

            # d1: fast go-to tops out near the SIH quad's ~10 m/s tilt limit, then hold stops it.
            await start_goto_north(d1, 800.0)
            fast = await first(d1.telemetry.subscribe_velocity_ned(), lambda v: hspeed(v) > 9.0, wall(30))
            assert math.hypot(fast.north_m_s, fast.east_m_s) < 10.6
            await d1.action.hold()
            await first(d1.telemetry.subscribe_velocity_ned(), lambda v: hspeed(v) < 0.3, wall(20))
            assert (await drone_status(sim, 1))["mode"] == "LOITER"
            await d1.action.land()
            await first(d1.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.LAND, wall(10))
            await first(d1.telemetry.subscribe_armed(), lambda a: not a, wall(120))

            # d2: GPS lost in flight -> failsafe landing; d3: motor failure -> lands now.
            assert sim.control is not None
            await sim.control.request(op="gps", drone=2, lost=True)
            await sim.control.request(op="motor_failure", drone=3)
            await first(d2.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.LAND, wall(20))
            await first(d3.telemetry.subscribe_flight_mode(), lambda m: m == FlightMode.LAND, wall(20))
            s2, s3 = await drone_status(sim, 2), await drone_status(sim, 3)
            assert s2["failsafe"] and s3["failsafe"]
            gps = await first(d2.telemetry.subscribe_gps_info(), lambda g: g.num_satellites == 0, wall(10))
            assert gps.fix_type.name in ("NO_GPS", "NO_FIX")
            await first(d3.telemetry.subscribe_armed(), lambda a: not a, wall(120))
            with pytest.raises(ActionError):
                await d3.action.arm()  # a failed motor cannot be re-armed


async def test_fence_over_px4_capacity_is_refused_whole() -> None:
    """PX4 stores at most 64 fence items (DM_KEY_FENCE_POINTS_MAX) and answers a larger MISSION_COUNT with
    MAV_MISSION_NO_SPACE, which MAVSDK reports as TOO_MANY_GEOFENCE_ITEMS (seen on real PX4 SITL v1.16)."""
    async with SimProcess(drones=1, speed=SPEED, home=HOME, params=TAKEOFF_30M) as sim:
        async with new_mavsdk() as mavsdk:
            d = (await connect_fleet(mavsdk, sim.connection_urls()))[1]
            ring = [
                Point(*offset(HOME[0], HOME[1], 500 * math.cos(a), 500 * math.sin(a)))
                for a in (2 * math.pi * k / 65 for k in range(65))
            ]
            with pytest.raises(GeofenceError, match="TOO_MANY_GEOFENCE_ITEMS"):
                await d.geofence.upload_geofence(GeofenceData([Polygon(ring, FenceType.INCLUSION)], []))
            assert await d.mission_raw.download_geofence() == []  # nothing of it was kept
            await d.geofence.upload_geofence(GeofenceData([Polygon(ring[:64], FenceType.INCLUSION)], []))
            assert len(await d.mission_raw.download_geofence()) == 64

"""Flight model behaviour (sim.vehicle), pure Python: modes, profiles, refusals, failsafes, determinism.

Numbers in the assertions come from the real PX4 SITL captures (shared/reference/px4-sitl, protocol.md)
with a tolerance; `test_vehicle_vs_px4.py` compares whole phases with the recorded tracks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from sim.geo import latlon_from_ne
from sim.params import Params
from sim.types import LandedState, MavResult, MissionItem, Mode, Severity, StatusText
from sim.vehicle import Vehicle

HOME = (32.6401, -117.0842, 150.0)
DT = 0.02


def make(seed: int = 0, wind: tuple[float, float] = (0.0, 0.0), **params: float) -> Vehicle:
    return Vehicle(1, *HOME, Params(params), wind_ne=wind, seed=seed)


def run(v: Vehicle, seconds: float, until: Callable[[Vehicle], bool] | None = None) -> bool:
    """Step for up to `seconds`; True as soon as `until` holds."""
    for _ in range(round(seconds / DT)):
        v.step(DT)
        if until is not None and until(v):
            return True
    return False


def texts(v: Vehicle) -> list[StatusText]:
    return v.pop_status_texts()


def text_list(v: Vehicle) -> list[str]:
    return [s.text for s in v.pop_status_texts()]


def latlon(v: Vehicle, n: float, e: float) -> tuple[float, float]:
    return latlon_from_ne(v.home_lat, v.home_lon, n, e)


def take_off(v: Vehicle, alt: float = 30.0) -> None:
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.cmd_takeoff(alt) == MavResult.ACCEPTED
    assert run(v, 60, lambda v: v.mode == Mode.LOITER and v.landed_state == LandedState.IN_AIR)
    run(v, 3)


def goto(v: Vehicle, n: float, e: float, h: float | None = None, speed: float | None = None) -> MavResult:
    lat, lon = latlon(v, n, e)
    return v.cmd_reposition(lat, lon, None if h is None else v.home_alt_amsl + h, speed)


def dist_to(v: Vehicle, n: float, e: float) -> float:
    return math.hypot(v.north - n, v.east - e)


def flying_north(v: Vehicle, target: float = 300.0) -> None:
    """Airborne at 30 m, cruising north towards `target` at 5 m/s."""
    take_off(v)
    assert goto(v, target, 0.0, 30.0) == MavResult.ACCEPTED
    assert run(v, 60, lambda v: v.groundspeed > 4.8)


def item(seq: int, cmd: int, lat: float = 0.0, lon: float = 0.0, z: float = 0.0, **kw: float) -> MissionItem:
    frame = int(kw.pop("frame", 6 if cmd != 178 else 2))
    return MissionItem(
        seq,
        frame,
        cmd,
        1 if seq == 0 else 0,
        1,
        kw.get("p1", 0.0),
        kw.get("p2", 0.0),
        kw.get("p3", 0.0),
        kw.get("p4", 0.0),
        round(lat * 1e7),
        round(lon * 1e7),
        z,
    )


def waypoint(v: Vehicle, seq: int, n: float, e: float, h: float = 40.0, **kw: float) -> MissionItem:
    lat, lon = latlon(v, n, e)
    return item(seq, 16, lat, lon, h, **kw)


def speed_item(seq: int, speed: float) -> MissionItem:
    return item(seq, 178, p1=1.0, p2=speed, p3=-1.0, z=float("nan"))


def fence_polygon(v: Vehicle, pts: list[tuple[float, float]], cmd: int = 5002) -> list[MissionItem]:
    out = []
    for i, (n, e) in enumerate(pts):
        lat, lon = latlon(v, n, e)
        out.append(
            MissionItem(i, 0, cmd, 0, 0, float(len(pts)), 0, 0, 0, round(lat * 1e7), round(lon * 1e7), 0.0, 1)
        )
    return out


def exclusion_band(v: Vehicle, south: float = 100.0, north: float = 200.0) -> list[MissionItem]:
    return fence_polygon(v, [(south, -100.0), (south, 100.0), (north, 100.0), (north, -100.0)])


# ------------------------------------------------------------------ state, arming, takeoff
def test_initial_state_is_an_idle_px4_on_the_ground() -> None:
    v = make()
    assert not v.armed and v.mode == Mode.LOITER and v.intended_mode == Mode.LOITER
    assert v.landed_state == LandedState.ON_GROUND and not v.failsafe_active
    assert (v.lat, v.lon, v.alt_amsl, v.rel_alt) == pytest.approx((HOME[0], HOME[1], HOME[2], 0.0))
    assert v.battery_pct == 100.0 and v.battery_voltage_v == pytest.approx(16.2)
    assert (v.gps_fix_type, v.satellites, v.global_position_ok) == (3, 10, True)
    assert v.mission_state == 1 and v.mission_id == 0 and v.fence_id == 0
    run(v, 5)
    assert v.boot_time_ms == 5000 and v.battery_pct == 100.0 and v.height == 0.0
    assert 0.0 <= v.heading_deg < 360.0 and v.throttle_pct == 0.0


def test_arm_is_idempotent_and_auto_disarms_without_takeoff() -> None:
    v = make()
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.armed and texts(v) == [StatusText(Severity.INFO, "Armed by external command\t")]
    assert v.cmd_arm() == MavResult.ACCEPTED  # PX4: no change
    run(v, 9.8)
    assert v.armed
    run(v, 0.4)
    assert not v.armed and v.landed_state == LandedState.ON_GROUND
    assert text_list(v) == ["Disarmed by auto preflight disarming\t"]
    assert v.cmd_disarm() == MavResult.ACCEPTED  # already disarmed


def test_takeoff_profile_states_and_texts() -> None:
    v = make(MIS_TAKEOFF_ALT=30.0)
    v.cmd_arm()
    assert v.cmd_takeoff() == MavResult.ACCEPTED
    assert v.mode == Mode.TAKEOFF and v.intended_mode == Mode.TAKEOFF
    assert text_list(v) == ["Armed by external command\t", "Using default takeoff altitude: 30.0 m\t"]
    assert run(v, 5, lambda v: v.landed_state == LandedState.TAKEOFF)
    assert 1.5 <= v.t <= 2.3 and text_list(v) == ["Takeoff detected\t"]
    assert run(v, 10, lambda v: v.height > 0.5)
    assert 4.6 <= v.t <= 5.5  # leaves the ground 4.6-5.3 s after arming
    climb_low = []
    climb_high = []
    t28 = math.inf
    while v.mode == Mode.TAKEOFF:
        v.step(DT)
        if 6.0 <= v.height <= 9.0:
            climb_low.append(v.climb_rate)
        if 17.0 <= v.height <= 24.0:
            climb_high.append(v.climb_rate)
        if v.height >= 28.0:
            t28 = min(t28, v.t)
    assert max(climb_low) == pytest.approx(1.5, abs=0.1)  # MPC_TKO_SPEED near the ground
    assert 2.5 <= max(climb_high) <= 3.05  # up to MPC_Z_V_AUTO_UP higher up
    assert 19.8 * 0.9 <= t28 <= 22.0
    assert v.landed_state == LandedState.IN_AIR and v.intended_mode == Mode.LOITER
    assert 28.9 <= v.height <= 29.5  # switched to Hold about 1 m below the target
    run(v, 10)
    assert v.height == pytest.approx(30.0, abs=0.3) and v.groundspeed < 0.05


def test_takeoff_with_explicit_altitude_and_refusals() -> None:
    v = make()
    assert v.cmd_takeoff(10.0) == MavResult.DENIED  # not armed
    v.cmd_arm()
    for bad in (float("nan"), -5.0, 0.0, float("inf")):
        assert v.cmd_takeoff(bad) == MavResult.DENIED
    assert v.cmd_takeoff(10.0) == MavResult.ACCEPTED
    assert "Using default takeoff altitude" not in " ".join(text_list(v))
    assert run(v, 40, lambda v: v.mode == Mode.LOITER)
    run(v, 8)
    assert v.height == pytest.approx(10.0, abs=0.3)
    assert v.cmd_takeoff(20.0) == MavResult.DENIED  # already flying
    assert v.cmd_arm() == MavResult.ACCEPTED


def test_disarm_in_the_air_needs_force_and_then_the_vehicle_falls() -> None:
    v = make()
    take_off(v, 20.0)
    assert v.cmd_disarm() == MavResult.DENIED and v.armed
    assert v.cmd_disarm(force=True) == MavResult.ACCEPTED
    assert not v.armed
    assert run(v, 10, lambda v: v.height <= 0.0)
    assert v.landed_state == LandedState.ON_GROUND and v.vd == 0.0


# ------------------------------------------------------------------ go-to, hold, speed
def test_goto_profile_matches_px4_and_stays_in_loiter() -> None:
    v = make()
    take_off(v)
    t0 = v.t
    assert goto(v, 300.0, 0.0, 30.0) == MavResult.ACCEPTED
    assert v.mode == Mode.LOITER and v.intended_mode == Mode.LOITER
    speeds = {}
    while dist_to(v, 300.0, 0.0) > 5.0 and v.t - t0 < 100:
        v.step(DT)
        for mark in (2.0, 11.0):
            if abs(v.t - t0 - mark) < DT / 2:
                speeds[mark] = v.groundspeed
    assert speeds[2.0] == pytest.approx(3.0, abs=0.8)  # PX4: 3.0 m/s after 2 s (model: ~0.4 s earlier)
    assert speeds[11.0] == pytest.approx(4.5, abs=0.3)  # 4.5 m/s after 11 s
    assert 64.2 * 0.9 <= v.t - t0 <= 64.2 * 1.1
    assert v.mode == Mode.LOITER
    north_max = v.north
    decel: dict[float, float] = {}
    for _ in range(1000):
        v.step(DT)
        north_max = max(north_max, v.north)
        for d in (4.0, 1.0):
            if d not in decel and 300.0 - v.north <= d:
                decel[d] = v.groundspeed
    assert decel[4.0] == pytest.approx(3.1, abs=0.4) and decel[1.0] == pytest.approx(1.7, abs=0.4)
    assert 0.3 <= north_max - 300.0 <= 2.5  # ~1 m overshoot
    assert dist_to(v, 300.0, 0.0) < 0.3 and v.height == pytest.approx(30.0, abs=0.3)


def test_goto_refusals() -> None:
    v = make()
    assert goto(v, 100.0, 0.0, 30.0) == MavResult.DENIED  # disarmed
    v.cmd_arm()
    assert goto(v, 100.0, 0.0, 30.0) == MavResult.DENIED  # on the ground
    take_off(v, 10.0)
    assert v.cmd_reposition(float("nan"), HOME[1], None, None) == MavResult.DENIED
    assert v.cmd_reposition(91.0, HOME[1], None, None) == MavResult.DENIED
    assert v.cmd_reposition(HOME[0], 181.0, None, None) == MavResult.DENIED
    assert goto(v, 10.0, 0.0, -5.0) == MavResult.DENIED  # below the ground
    assert goto(v, 10.0, 0.0) == MavResult.ACCEPTED  # altitude None: keep the height
    run(v, 15)
    assert v.height == pytest.approx(10.0, abs=0.3) and dist_to(v, 10.0, 0.0) < 0.5


def test_goto_sent_before_lift_off_is_taken_and_flown_after_it() -> None:
    """Real PX4 v1.16 SITL accepts a DO_REPOSITION sent right after NAV_TAKEOFF while still on the ground
    (probed: accepted at 0.0 m, HOLD, climbing to the point's height); the simulator refused it."""
    v = make(MIS_TAKEOFF_ALT=2.5)
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.cmd_takeoff() == MavResult.ACCEPTED
    assert v.height - v._ground_h < 0.1
    assert goto(v, 40.0, 0.0, 30.0) == MavResult.ACCEPTED
    assert v.mode == Mode.LOITER
    assert run(v, 60, lambda v: v.height > 29.0 and dist_to(v, 40.0, 0.0) < 1.0)
    assert any(t.startswith("Takeoff detected") for t in text_list(v))
    assert v.landed_state == LandedState.IN_AIR


def test_goto_with_a_height_change_climbs_along_the_straight_line_as_px4_does() -> None:
    """PX4 SITL v1.16 (SIH, dfr-class parameters): a go-to 650 m away and 28 m higher, sent at 32 m while
    flying, climbed at ~0.7 m/s and reached the height near the target. The simulator climbed at its full
    rate at once, then flew level."""
    v = make(MPC_XY_CRUISE=12.0, MPC_XY_VEL_MAX=12.0)
    take_off(v, 30.0)
    assert goto(v, 600.0, 0.0, 60.0) == MavResult.ACCEPTED
    assert run(v, 120, lambda v: v.north > 300.0)
    assert 40.0 < v.height < 50.0  # half way along, about half way up (line: 45 m)
    assert run(v, 120, lambda v: dist_to(v, 600.0, 0.0) < 1.0)
    assert v.height == pytest.approx(60.0, abs=1.0)


def test_goto_speed_and_change_speed() -> None:
    v = make()
    take_off(v)
    assert goto(v, 500.0, 0.0, 30.0, speed=3.0) == MavResult.ACCEPTED
    run(v, 30)
    assert v.groundspeed == pytest.approx(3.0, abs=0.15)
    for bad in (0.0, -1.0, float("nan")):
        assert v.cmd_change_speed(bad) == MavResult.DENIED
    assert v.cmd_change_speed(8.0) == MavResult.ACCEPTED
    run(v, 25)
    assert v.groundspeed == pytest.approx(8.0, abs=0.4)
    assert goto(v, 500.0, 0.0, 30.0) == MavResult.ACCEPTED  # speed None resets to MPC_XY_CRUISE
    run(v, 25)
    assert v.groundspeed == pytest.approx(5.0, abs=0.3)


def test_top_speed_is_tilt_limited_and_headwind_costs_ground_speed() -> None:
    v = make(MPC_XY_VEL_MAX=15.0, MPC_XY_CRUISE=12.0)
    assert v.params["MPC_XY_CRUISE"] == 12.0
    take_off(v)
    goto(v, 3000.0, 0.0, 30.0)
    top = 0.0
    for _ in range(round(40 / DT)):
        v.step(DT)
        top = max(top, v.groundspeed)
        assert math.degrees(math.hypot(v.roll, v.pitch)) <= 45.5
    assert top == pytest.approx(10.1, abs=0.1)
    assert v.airspeed == pytest.approx(10.1, abs=0.1)
    v.set_wind(-5.0, 0.0)  # 5 m/s headwind
    run(v, 20)
    assert v.airspeed == pytest.approx(10.1, abs=0.15)
    assert v.groundspeed == pytest.approx(5.1, abs=0.3)


def test_hold_brakes_to_a_stop_and_holds() -> None:
    v = make()
    flying_north(v)
    n0 = v.north
    assert v.cmd_hold() == MavResult.ACCEPTED and v.mode == Mode.LOITER
    assert run(v, 10, lambda v: v.groundspeed < 0.05)
    stop = v.north
    assert 4.0 <= stop - n0 <= 10.0
    run(v, 20)
    assert abs(v.north - stop) < 0.5 and v.height == pytest.approx(30.0, abs=0.3)


def test_hold_compensates_wind_and_attitude_leans_into_it() -> None:
    v = make(wind=(0.0, 6.0))
    take_off(v, 20.0)
    n0, e0 = v.north, v.east
    run(v, 30)
    assert math.hypot(v.north - n0, v.east - e0) < 1.0 and v.groundspeed < 0.1
    assert v.airspeed == pytest.approx(6.0, abs=0.1)
    assert math.degrees(v.roll) < -3.0  # wind from the west blows east: bank left (heading north)
    assert 40.0 < v.throttle_pct < 70.0


# ------------------------------------------------------------------ RTL and LAND
def test_rtl_returns_at_cruise_lands_without_land_mode_and_disarms() -> None:
    v = make()
    flying_north(v, 300.0)
    run(v, 60)
    t0 = v.t
    texts(v)
    assert v.cmd_rtl() == MavResult.ACCEPTED
    assert text_list(v) == ["RTL: start return at 180 m (30 m above destination)\t"]
    seen: list[tuple[str, str]] = []
    landing_text_t = None
    max_speed = 0.0
    while v.armed and v.t - t0 < 200:
        v.step(DT)
        max_speed = max(max_speed, v.groundspeed)
        state = (v.mode.name, v.landed_state.name)
        if not seen or seen[-1] != state:
            seen.append(state)
        for s in v.pop_status_texts():
            if s.text == "RTL: land at destination\t":
                landing_text_t = v.t
                assert v.landed_state == LandedState.LANDING and math.hypot(v.north, v.east) <= 2.0
            if s.text == "Landing detected\t":
                landed_t = v.t
            if s.text == "Disarmed by landing\t":
                assert v.t - landed_t == pytest.approx(2.0, abs=0.05)
    assert landing_text_t is not None
    assert seen == [
        ("RTL", "IN_AIR"),
        ("RTL", "LANDING"),
        ("RTL", "ON_GROUND"),
        ("LOITER", "ON_GROUND"),
    ]
    assert 105.0 * 0.9 <= v.t - t0 <= 108.0 * 1.1
    assert max_speed == pytest.approx(5.0, abs=0.1)
    assert math.hypot(v.north, v.east) < 1.0 and not v.failsafe_active


def test_rtl_climbs_first_when_low_and_never_descends_first() -> None:
    v = make()
    take_off(v, 10.0)
    goto(v, 100.0, 0.0)
    run(v, 40)
    assert v.cmd_rtl() == MavResult.ACCEPTED
    assert run(v, 30, lambda v: v.height >= 29.0)
    assert v.north > 97.0  # climbed in place before returning
    v2 = make()
    take_off(v2, 40.0)
    goto(v2, 100.0, 0.0)
    run(v2, 40)
    texts(v2)
    v2.cmd_rtl()
    assert "(40 m above destination)" in text_list(v2)[0]
    assert run(v2, 60, lambda v: v.landed_state == LandedState.LANDING)
    assert v2.height > 39.0  # held 40 m all the way home


def test_land_descends_in_place_with_the_px4_speed_schedule() -> None:
    v = make()
    take_off(v)
    goto(v, 50.0, 20.0)
    run(v, 30)
    assert v.cmd_land() == MavResult.ACCEPTED
    assert v.mode == Mode.LAND and v.landed_state == LandedState.LANDING
    rates: dict[str, float] = {}
    while v.height > 0.0:
        v.step(DT)
        if 20.0 < v.height < 25.0:
            rates["high"] = -v.climb_rate
        if 1.0 < v.height < 3.0:
            rates["low"] = -v.climb_rate
    assert rates["high"] == pytest.approx(1.5, abs=0.05) and rates["low"] == pytest.approx(0.7, abs=0.05)
    assert dist_to(v, 50.0, 20.0) < 0.5
    assert run(v, 12, lambda v: not v.armed)
    assert v.mode == Mode.LOITER and "Landing detected\t" in text_list(v)


def test_commands_while_disarmed_or_on_the_ground_are_refused() -> None:
    v = make()
    assert v.cmd_rtl() == MavResult.DENIED
    assert v.cmd_land() == MavResult.DENIED
    assert v.cmd_orbit(20.0, 3.0, 0, None, None) == MavResult.DENIED
    v.cmd_arm()
    assert v.cmd_rtl() == MavResult.DENIED
    assert v.cmd_orbit(20.0, 3.0, 0, None, None) == MavResult.DENIED
    for mode in (Mode.MANUAL, Mode.ALTCTL, Mode.POSCTL, Mode.OFFBOARD, Mode.STABILIZED, Mode.READY):
        assert v.cmd_set_mode(mode) == MavResult.DENIED
    assert v.cmd_set_mode(Mode.MISSION) == MavResult.DENIED  # no mission
    assert v.cmd_set_mode(Mode.LOITER) == MavResult.ACCEPTED
    assert v.cmd_set_mode(Mode.TAKEOFF) == MavResult.ACCEPTED and v.mode == Mode.TAKEOFF


# ------------------------------------------------------------------ orbit
@pytest.mark.parametrize("radius", [40.0, -40.0])
def test_orbit_flies_to_the_circle_and_circles_at_the_current_height(radius: float) -> None:
    v = make()
    take_off(v)
    lat, lon = latlon(v, 100.0, 0.0)
    assert v.cmd_orbit(radius, 5.0, 0, lat, lon) == MavResult.ACCEPTED
    assert v.mode == Mode.ORBIT and v.intended_mode == Mode.ORBIT
    assert run(v, 60, lambda v: abs(dist_to(v, 100.0, 0.0) - 40.0) < 2.0)
    run(v, 15)
    radii, speeds, heading_err, turn = [], [], [], 0.0
    prev = math.atan2(v.east, v.north - 100.0)
    for _ in range(round(40 / DT)):
        v.step(DT)
        radii.append(dist_to(v, 100.0, 0.0))
        speeds.append(v.groundspeed)
        to_centre = math.degrees(math.atan2(-v.east, 100.0 - v.north)) % 360
        heading_err.append(abs((v.heading_deg - to_centre + 180) % 360 - 180))
        ang = math.atan2(v.east, v.north - 100.0)
        turn += (ang - prev + math.pi) % (2 * math.pi) - math.pi
        prev = ang
    assert sum(radii) / len(radii) == pytest.approx(40.0, abs=2.0)
    assert min(radii) > 37.0 and max(radii) < 43.0
    assert sum(speeds) / len(speeds) == pytest.approx(4.5, abs=0.4)  # ~0.9 x commanded
    assert max(heading_err) < 5.0
    assert (turn > 0) == (radius > 0)  # positive radius: clockwise (bearing increases)
    assert v.height == pytest.approx(30.0, abs=0.3)


def test_orbit_refusals_and_default_centre() -> None:
    v = make()
    take_off(v, 20.0)
    assert v.cmd_orbit(float("nan"), 3.0, 0, None, None) == MavResult.DENIED
    assert v.cmd_orbit(0.5, 3.0, 0, None, None) == MavResult.DENIED
    assert v.cmd_orbit(20.0, 3.0, 0, float("nan"), 1.0) == MavResult.DENIED
    n0, e0 = v.north, v.east
    assert v.cmd_orbit(15.0, 3.0, 0, None, None) == MavResult.ACCEPTED  # centre: where it is
    run(v, 60)
    assert math.hypot(v.north - n0, v.east - e0) == pytest.approx(15.0, abs=1.5)


# ------------------------------------------------------------------ missions
def ref_mission(v: Vehicle, scale: float = 1.0) -> list[MissionItem]:
    """The reference mission shape: waypoints at 40 m, each followed by DO_CHANGE_SPEED 8 m/s."""
    items = []
    for i, (n, e) in enumerate([(200, 0), (200, 200), (400, 200)]):
        items.append(waypoint(v, 2 * i, n * scale, e * scale, 40.0, p2=3.0))
        items.append(speed_item(2 * i + 1, 8.0))
    return items


def test_mission_climbs_vertically_flies_waypoints_and_completes() -> None:
    v = make(MIS_TAKEOFF_ALT=30.0)
    items = ref_mission(v)
    assert v.set_mission(items) == 0
    assert v.mission_state == 2 and v.mission_id != 0 and v.mission == items
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.cmd_mission_start() == MavResult.ACCEPTED
    assert v.mode == Mode.MISSION and v.mission_state == 3
    assert text_list(v)[1:] == ["Executing Mission\t", "Climb to 40.0 meters above home\t"]
    assert run(v, 40, lambda v: v.landed_state == LandedState.IN_AIR)
    assert v.mode == Mode.MISSION and v.height > 38.5 and math.hypot(v.north, v.east) < 1.0
    reached: list[tuple[float, int, int]] = []
    legs: dict[int, float] = {}
    while v.mission_state != 5 and v.t < 300:
        v.step(DT)
        legs[v.mission_current] = max(legs.get(v.mission_current, 0.0), v.groundspeed)
        reached += [(v.t, s, v.mission_current) for s in v.pop_mission_items_reached()]
    # PX4 reports the DO_CHANGE_SPEED item after each reached waypoint; mission_current skips DO items
    assert [(s, cur) for _, s, cur in reached] == [(1, 2), (3, 4), (5, 5)]
    assert legs[0] == pytest.approx(5.0, abs=0.15)  # first leg at cruise: the speed item follows it
    assert legs[2] == pytest.approx(8.0, abs=0.3)
    assert reached[1][0] - reached[0][0] == pytest.approx(30.6, rel=0.1)  # 200 m legs at 8 m/s
    assert v.mode == Mode.LOITER and v.intended_mode == Mode.LOITER
    assert "Mission finished, loitering\t" in text_list(v)
    run(v, 10)
    assert dist_to(v, 400.0, 200.0) < 1.0
    assert v.cmd_mission_start() == MavResult.ACCEPTED  # complete: starts over
    assert v.mission_current == 0 and v.mission_state == 3


def test_mission_corner_speed_is_reduced_but_not_a_stop() -> None:
    v = make()
    v.set_mission(ref_mission(v))
    v.cmd_arm()
    v.cmd_mission_start()
    slowest = 10.0
    while v.mission_state != 5 and v.t < 300:
        v.step(DT)
        if dist_to(v, 200.0, 200.0) < 6.0:
            slowest = min(slowest, v.groundspeed)
    assert 1.5 <= slowest <= 4.0  # PX4: corners of 8 m/s legs at ~2-3.4 m/s


def test_mission_loiter_time_then_rtl_item() -> None:
    v = make()
    lat, lon = latlon(v, 60.0, 0.0)
    items = [
        waypoint(v, 0, 30.0, 0.0, 20.0),
        item(1, 19, lat, lon, 20.0, p1=10.0),
        item(2, 20, frame=2),
    ]
    assert v.set_mission(items) == 0
    v.cmd_arm()
    v.cmd_mission_start()
    assert run(v, 80, lambda v: dist_to(v, 60.0, 0.0) < 2.0)
    t_arrive = v.t
    assert run(v, 30, lambda v: v.mode == Mode.RTL)
    assert v.t - t_arrive == pytest.approx(10.0, abs=2.5)
    assert v.pop_mission_items_reached() == [0, 1, 2]
    assert run(v, 150, lambda v: not v.armed)
    assert math.hypot(v.north, v.east) < 1.0


def test_mission_land_item_lands_at_its_position() -> None:
    v = make()
    lat, lon = latlon(v, 50.0, 30.0)
    v.set_mission([waypoint(v, 0, 0.0, 30.0, 15.0), item(1, 21, lat, lon, 0.0)])
    v.cmd_arm()
    v.cmd_mission_start()
    assert run(v, 200, lambda v: not v.armed)
    assert dist_to(v, 50.0, 30.0) < 1.0 and v.mission_state == 5
    assert v.pop_mission_items_reached() == [0, 1]


def test_mission_mode_while_disarmed_starts_on_arming() -> None:
    v = make()
    v.set_mission(ref_mission(v, 0.2))
    assert v.cmd_set_mode(Mode.MISSION) == MavResult.ACCEPTED
    run(v, 2)
    assert v.height == 0.0 and v.mode == Mode.MISSION
    v.cmd_arm()
    assert run(v, 40, lambda v: v.landed_state == LandedState.IN_AIR)


def test_mission_upload_validation() -> None:
    v = make()
    good = ref_mission(v)
    assert v.set_mission([item(0, 16, 91.0, 0.0, 10.0)]) == 10  # latitude out of range
    assert v.set_mission([item(0, 16, 10.0, 200.0, 10.0)]) == 11
    assert v.set_mission([item(0, 16, 10.0, 10.0, float("nan"))]) == 12
    assert v.set_mission([item(0, 183)]) == 3  # unsupported command
    assert v.set_mission([item(0, 16, 10.0, 10.0, 10.0, frame=10)]) == 2  # terrain frame
    assert v.set_mission([good[0], good[2]]) == 13  # seq gap
    assert v.set_mission([item(0, 19, 10.0, 10.0, 10.0, p1=-1.0)]) == 6
    assert v.mission == [] and v.mission_state == 1
    assert v.set_mission(good) == 0
    first_id = v.mission_id
    assert first_id != 0 and v.set_mission(good) == 0 and v.mission_id == first_id
    assert v.set_mission_current(4) == MavResult.ACCEPTED and v.mission_current == 4
    assert v.set_mission_current(6) == MavResult.DENIED
    v.clear_mission()
    assert (v.mission, v.mission_id, v.mission_state) == ([], 0, 1)
    assert v.cmd_mission_start() == MavResult.DENIED


def test_mission_pause_holds_and_resume_continues() -> None:
    v = make()
    v.set_mission(ref_mission(v))
    v.cmd_arm()
    v.cmd_mission_start()
    run(v, 50)
    assert v.cmd_mission_pause() == MavResult.ACCEPTED
    assert v.mode == Mode.LOITER and v.mission_state == 4
    run(v, 10)
    assert v.groundspeed < 0.1
    assert v.cmd_mission_start() == MavResult.ACCEPTED and v.mission_state == 3
    assert run(v, 200, lambda v: v.mission_state == 5)


# ------------------------------------------------------------------ geofence
def test_fence_upload_validation() -> None:
    v = make()
    assert v.set_fence(exclusion_band(v)[:3]) == 5  # says 4 vertices, has 3
    assert v.set_fence(fence_polygon(v, [(0, 0), (10, 0)])) == 5  # < 3 vertices
    circle = MissionItem(0, 0, 5004, 0, 0, 0.0, 0, 0, 0, round(HOME[0] * 1e7), round(HOME[1] * 1e7), 0.0, 1)
    assert v.set_fence([circle]) == 5  # radius 0
    assert v.set_fence([MissionItem(0, 0, 5005, 0, 0, 1.0, 0, 0, 0, 0, 0, 0.0, 1)]) == 3
    assert v.fence == [] and v.fence_id == 0
    band = exclusion_band(v)
    assert v.set_fence(band) == 0 and v.fence == band and v.fence_id != 0
    v.clear_fence()
    assert v.fence == [] and v.fence_id == 0


def test_fence_hold_stops_at_the_breach_point() -> None:
    v = make()  # GF_ACTION 2 (Hold) is PX4's default
    v.set_fence(exclusion_band(v, 100.0, 200.0))
    run(v, 1)
    flying_north(v, 300.0)
    assert run(v, 60, lambda v: v.failsafe_active)
    assert v.north == pytest.approx(100.0, abs=0.3)
    msgs = texts(v)
    assert StatusText(Severity.CRITICAL, "Geofence: approaching or outside geofence") in msgs
    assert StatusText(Severity.CRITICAL, "Failsafe activated\t") in msgs
    deepest = v.north
    for _ in range(round(30 / DT)):
        v.step(DT)
        deepest = max(deepest, v.north)
    assert 3.0 <= deepest - 100.0 <= 11.0  # PX4 overshot 7.5 m at 5 m/s, then came back
    assert v.north == pytest.approx(100.0, abs=1.0) and v.groundspeed < 0.2
    assert v.mode == Mode.LOITER and v.failsafe_active  # until the user commands a mode
    assert v.cmd_rtl() == MavResult.ACCEPTED and not v.failsafe_active
    assert run(v, 200, lambda v: not v.armed)


@pytest.mark.parametrize(("action", "mode"), [(3, Mode.RTL), (5, Mode.LAND)])
def test_fence_rtl_and_land_actions(action: int, mode: Mode) -> None:
    v = make(GF_ACTION=action)
    v.set_fence(exclusion_band(v))
    flying_north(v)
    assert run(v, 60, lambda v: v.failsafe_active)
    assert v.mode == mode and v.intended_mode == Mode.LOITER
    run(v, 10)
    assert v.north < 110.0


@pytest.mark.parametrize("action", [0, 1])
def test_fence_warning_only_or_disabled(action: int) -> None:
    v = make(GF_ACTION=action)
    v.set_fence(exclusion_band(v))
    flying_north(v)
    run(v, 60)
    assert v.north > 150.0 and not v.failsafe_active and v.mode == Mode.LOITER
    warned = any("Geofence" in s.text for s in texts(v))
    assert warned == (action == 1)


def test_fence_inclusion_circle_and_max_distance() -> None:
    v = make()
    circle = MissionItem(0, 0, 5003, 0, 0, 80.0, 0, 0, 0, round(HOME[0] * 1e7), round(HOME[1] * 1e7), 0.0, 1)
    assert v.set_fence([circle]) == 0
    flying_north(v)
    assert run(v, 60, lambda v: v.failsafe_active)
    assert v.north == pytest.approx(80.0, abs=0.5)
    v2 = make(GF_MAX_HOR_DIST=60.0, GF_ACTION=3)
    take_off(v2)
    goto(v2, 300.0, 0.0)
    assert run(v2, 60, lambda v: v.failsafe_active)
    assert v2.mode == Mode.RTL and v2.north == pytest.approx(60.0, abs=0.5)
    v3 = make(GF_MAX_VER_DIST=20.0, GF_ACTION=5)
    v3.cmd_arm()
    v3.cmd_takeoff(30.0)
    assert run(v3, 40, lambda v: v.failsafe_active)
    assert v3.mode == Mode.LAND and v3.height == pytest.approx(20.0, abs=0.3)


def test_fence_is_not_checked_on_the_ground_and_blocks_arming_inside_a_zone() -> None:
    v = make()
    v.set_fence(fence_polygon(v, [(-10, -10), (-10, 10), (10, 10), (10, -10)]))  # home inside exclusion
    run(v, 2)
    assert not v.failsafe_active and texts(v) == []
    assert v.cmd_arm() == MavResult.DENIED
    v.params.set("GF_ACTION", 0)
    v.step(DT)
    assert v.cmd_arm() == MavResult.ACCEPTED


# ------------------------------------------------------------------ data link loss
def fly_with_heartbeats(v: Vehicle, seconds: float) -> float:
    """Step while a GCS sends 1 Hz heartbeats; returns the time of the last one."""
    next_hb = last = v.t
    for _ in range(round(seconds / DT)):
        if v.t >= next_hb:
            v.on_gcs_heartbeat()
            last = v.t
            next_hb += 1.0
        v.step(DT)
    return last


def test_link_loss_hold_then_rtl_and_regain() -> None:
    v = make(NAV_DLL_ACT=2)
    v.cmd_arm()
    v.cmd_takeoff(30.0)
    fly_with_heartbeats(v, 30)
    goto(v, 300.0, 0.0, 30.0)
    last_hb = fly_with_heartbeats(v, 10.5)  # then no more heartbeats
    assert run(v, 20, lambda v: v.gcs_lost)
    assert v.t - last_hb == pytest.approx(10 + 2.3, abs=0.05)  # COM_DL_LOSS_T + PX4's ~2.3 s
    assert v.failsafe_active and v.mode == Mode.LOITER
    assert run(v, 6, lambda v: v.mode == Mode.RTL)
    assert v.intended_mode == Mode.LOITER and v.failsafe_active
    msgs = text_list(v)
    assert "Failsafe activated: entering Hold for 5 seconds\t" in msgs and "Failsafe activated\t" in msgs
    run(v, 3)
    v.on_gcs_heartbeat()
    assert not v.gcs_lost and text_list(v) == ["GCS connection regained\t"]
    fly_with_heartbeats(v, 10)
    assert v.mode == Mode.RTL and v.failsafe_active  # RTL continues, still flagged until the user acts
    assert v.cmd_rtl() == MavResult.ACCEPTED and not v.failsafe_active


def test_link_regained_within_the_hold_delay_cancels_the_reaction() -> None:
    v = make(NAV_DLL_ACT=2)
    v.cmd_arm()
    v.cmd_takeoff(20.0)
    fly_with_heartbeats(v, 30)
    assert run(v, 15, lambda v: v.gcs_lost)
    assert v.failsafe_active
    run(v, 2)
    v.on_gcs_heartbeat()
    fly_with_heartbeats(v, 10)
    assert v.mode == Mode.LOITER and not v.failsafe_active and not v.gcs_lost


def test_link_loss_default_action_does_nothing() -> None:
    v = make()  # NAV_DLL_ACT 0
    v.on_gcs_heartbeat()
    take_off(v)
    goto(v, 200.0, 0.0, 30.0)
    run(v, 20)
    assert v.gcs_lost and not v.failsafe_active and v.mode == Mode.LOITER
    run(v, 40)
    assert dist_to(v, 200.0, 0.0) < 1.0  # the go-to completed
    assert not any(s.text.startswith("Failsafe") for s in texts(v))


def test_link_loss_needs_a_gcs_first_and_land_action() -> None:
    v = make(NAV_DLL_ACT=3)
    take_off(v)
    run(v, 30)
    assert not v.gcs_lost  # never heard a GCS
    v.on_gcs_heartbeat()
    assert run(v, 15, lambda v: v.gcs_lost)
    assert run(v, 6, lambda v: v.mode == Mode.LAND)
    assert v.failsafe_active and v.landed_state == LandedState.LANDING


# ------------------------------------------------------------------ battery
def test_battery_drain_voltage_and_no_reset_after_disarm() -> None:
    v = make(SIM_BAT_DRAIN=600.0)
    run(v, 60)
    assert v.battery_pct == 100.0  # negligible drain disarmed
    take_off(v)
    p0 = v.battery_pct
    run(v, 60)  # hover: 60 s of 600 s
    hover_drop = p0 - v.battery_pct
    assert hover_drop == pytest.approx(10.0, rel=0.05)
    goto(v, 2000.0, 0.0, 30.0, speed=10.0)
    run(v, 20)
    p1 = v.battery_pct
    run(v, 60)
    assert p1 - v.battery_pct > 1.3 * hover_drop  # more effort at 10 m/s
    assert v.battery_voltage_v == pytest.approx(4 * (3.5 + 0.55 * v.battery_pct / 100), abs=1e-6)
    assert v.battery_current_a > 15.0
    v.cmd_land()
    assert run(v, 100, lambda v: not v.armed)
    left = v.battery_pct
    run(v, 30)
    assert v.battery_pct == left and v.battery_current_a < 1.0


def test_battery_floor_and_arming_refused_when_critical() -> None:
    v = make(SIM_BAT_DRAIN=60.0, SIM_BAT_MIN_PCT=50.0)
    take_off(v, 10.0)
    run(v, 60)
    assert v.battery_pct == 50.0
    v2 = make()
    v2.inject_battery(6.0)
    assert v2.cmd_arm() == MavResult.TEMPORARILY_REJECTED
    v2.inject_battery(float("nan"))
    assert v2.battery_pct == 6.0


def test_battery_low_warns_critical_holds_then_rtl() -> None:
    v = make()
    flying_north(v, 400.0)
    texts(v)
    v.inject_battery(14.0)
    v.step(DT)
    assert texts(v) == [StatusText(Severity.CRITICAL, "Low battery\t")]
    assert v.mode == Mode.LOITER and not v.failsafe_active
    v.inject_battery(6.5)
    v.step(DT)
    msgs = text_list(v)
    assert msgs[:2] == ["Critical battery\t", "Failsafe activated: entering Hold for 5 seconds\t"]
    assert v.failsafe_active and v.mode == Mode.LOITER
    assert run(v, 6, lambda v: v.mode == Mode.RTL)
    assert v.intended_mode == Mode.LOITER
    assert "Failsafe activated\t" in text_list(v)


def test_battery_emergency_lands_in_place() -> None:
    v = make()
    flying_north(v)
    v.inject_battery(4.0)
    v.step(DT)
    msgs = texts(v)
    assert StatusText(Severity.EMERGENCY, "Emergency battery level\t") in msgs
    assert v.mode == Mode.LAND and v.failsafe_active and v.landed_state == LandedState.LANDING
    n0 = v.north
    assert run(v, 60, lambda v: not v.armed)
    assert 0.0 < v.north - n0 < 10.0  # landed where it braked


# ------------------------------------------------------------------ GPS loss, motor failure
def test_gps_loss_lands_drifting_with_the_wind_and_refuses_navigation() -> None:
    v = make(wind=(0.0, 3.0))
    take_off(v, 40.0)
    e0 = v.east
    v.inject_gps_loss(True)
    assert (v.gps_fix_type, v.satellites, v.global_position_ok) == (0, 0, False)
    assert v.mode == Mode.LAND and v.failsafe_active
    run(v, 10)
    assert v.east - e0 > 10.0  # no position hold: drifts with the 3 m/s wind
    assert goto(v, 0.0, 0.0, 30.0) == MavResult.DENIED
    assert v.cmd_rtl() == MavResult.DENIED
    assert v.cmd_hold() == MavResult.DENIED
    assert v.cmd_orbit(20.0, 3.0, 0, None, None) == MavResult.DENIED
    v.set_mission([waypoint(v, 0, 10.0, 0.0)])
    assert v.cmd_mission_start() == MavResult.DENIED
    v.inject_gps_loss(False)
    assert (v.gps_fix_type, v.satellites, v.global_position_ok) == (3, 10, True)
    assert v.mode == Mode.LAND  # keeps landing
    east_restored = v.east
    assert run(v, 80, lambda v: not v.armed)
    assert abs(v.east - east_restored) < 8.0  # position hold again after the fix returned
    v.inject_gps_loss(True)
    assert v.cmd_arm() == MavResult.TEMPORARILY_REJECTED
    assert v.cmd_takeoff() == MavResult.DENIED


def test_motor_failure_lands_fast_and_blocks_rearming() -> None:
    v = make()
    take_off(v)
    v.inject_motor_failure()
    assert v.faults.motor_failed and v.mode == Mode.LAND and v.failsafe_active
    assert v.cmd_rtl() == MavResult.DENIED
    t0 = v.t
    assert run(v, 60, lambda v: v.height <= 0.0)
    assert v.t - t0 < 20.0  # faster than a normal 30 m landing (~26 s)
    assert run(v, 12, lambda v: not v.armed)
    assert v.cmd_arm() == MavResult.TEMPORARILY_REJECTED


# ------------------------------------------------------------------ misc
def test_home_moves_to_the_arming_position() -> None:
    v = make()
    take_off(v, 10.0)
    goto(v, 40.0, 30.0)
    run(v, 20)
    v.cmd_land()
    assert run(v, 60, lambda v: not v.armed)
    lat, lon = v.lat, v.lon
    v.cmd_arm()
    assert (v.home_lat, v.home_lon) == pytest.approx((lat, lon), abs=1e-9)
    assert (v.north, v.east, v.height) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    assert (v.lat, v.lon) == pytest.approx((lat, lon), abs=1e-9)


def test_status_texts_end_with_a_tab_except_the_geofence_warning() -> None:
    v = make(GF_ACTION=3)
    v.set_fence(exclusion_band(v))
    flying_north(v)
    all_texts = texts(v)
    run(v, 200)
    all_texts += texts(v)
    assert len(all_texts) > 6
    for s in all_texts:
        assert s.text.endswith("\t") != s.text.startswith("Geofence"), s


def test_long_steps_are_split_and_fly_like_short_ones() -> None:
    fine, coarse = make(), make()
    for v, dt in ((fine, DT), (coarse, 0.5)):
        v.cmd_arm()
        v.cmd_takeoff(30.0)
        for _ in range(round(40 / dt)):
            v.step(dt)
    assert coarse.t == pytest.approx(40.0) and coarse.mode == Mode.LOITER
    assert coarse.height == pytest.approx(fine.height, abs=0.2)
    coarse.step(0.0)
    coarse.step(-1.0)
    assert coarse.t == pytest.approx(40.0)


def test_same_seed_and_commands_fly_identical_tracks() -> None:
    def fly(seed: int) -> list[tuple[float, ...]]:
        v = make(seed=seed, wind=(1.0, -2.0))
        v.on_gcs_heartbeat()
        v.cmd_arm()
        v.cmd_takeoff(25.0)
        track: list[tuple[float, ...]] = []
        for i in range(round(120 / DT)):
            if i == 1500:
                goto(v, 120.0, 50.0)
            if i == 4000:
                v.cmd_orbit(30.0, 4.0, 0, None, None)
            if i == 5500:
                v.cmd_rtl()
            v.step(DT)
            track.append((v.north, v.east, v.height, v.vn, v.ve, v.vd, v.heading_deg, v.battery_pct))
        return track

    assert fly(7) == fly(7)

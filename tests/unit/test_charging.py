"""Dock charging: the area field (validated with file and line), the pure model (time until ready), and the
built-in simulator charging a landed, disarmed drone on its dock, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dfr.area import AreaError, load_area
from dfr.charging import ChargeMethod, Charging, charge_after, time_until_ready_s
from sim.fleet import DroneSpec, Fleet
from sim.geo import latlon_from_ne
from sim.params import Params
from sim.types import LandedState, MavResult, Mode
from sim.vehicle import DockCharger, Vehicle
from tests.unit.test_area import base_geojson, base_spec, write_area

HOME = (32.6401, -117.0842, 150.0)
DT = 0.02
RATE = Charging(rate_pct_per_min=3.0, ready_pct=90.0)
SWAP = Charging(swap_s=120.0)


# ---------------------------------------------------------------------------------------------------------
# The area field


def test_area_dock_charging_loads(tmp_path: Path) -> None:
    spec = base_spec()
    spec["docks"][0]["charging"] = {"rate_pct_per_min": 2.5}
    spec["docks"][1]["charging"] = {"swap_s": 90, "ready_pct": 95}
    area = load_area(write_area(tmp_path, spec, base_geojson()))
    d1, d2 = area.docks
    assert d1.charging is not None and d1.charging.method is ChargeMethod.CHARGE
    assert d1.charging.ready_pct == 90.0
    assert d2.charging is not None and d2.charging.method is ChargeMethod.SWAP and d2.charging.swap_s == 90


def test_sample_area_docks_charge() -> None:
    area = load_area(Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml")
    assert all(d.charging is not None for d in area.docks)


@pytest.mark.parametrize(
    ("charging", "expected"),
    [
        ({"rate_pct_per_min": 2.5, "swap_s": 60}, "exactly one of rate_pct_per_min"),
        ({"ready_pct": 80}, "exactly one of rate_pct_per_min"),
        ({"rate_pct_per_min": -1}, "docks[1].charging.rate_pct_per_min"),
        ({"swap_s": 60, "ready_pct": 120}, "docks[1].charging.ready_pct"),
        ({"rate_pct_per_min": "fast"}, "docks[1].charging.rate_pct_per_min"),
        ({"rate": 3}, "docks[1].charging.rate"),
    ],
)
def test_area_bad_charging_names_file_line_and_field(
    tmp_path: Path, charging: dict[str, object], expected: str
) -> None:
    spec = base_spec()
    spec["docks"][1]["charging"] = charging
    text = yaml.safe_dump(spec, sort_keys=False)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith("charging:"))
    with pytest.raises(AreaError) as e:
        load_area(write_area(tmp_path, text, base_geojson()))
    msg = str(e.value)
    assert expected in msg, msg
    assert "docks[1].charging" in msg
    # the problem points at the charging block (or a line inside it), never at some other part of the file
    assert any(f"area.yaml:{n}:" in msg for n in range(line, line + 4)), msg


# ---------------------------------------------------------------------------------------------------------
# The pure model


def test_time_until_ready_rate() -> None:
    assert time_until_ready_s(30.0, RATE) == pytest.approx(20 * 60)  # 60 points at 3 %/min
    assert time_until_ready_s(90.0, RATE) == 0.0
    assert time_until_ready_s(99.0, RATE) == 0.0


def test_time_until_ready_swap_counts_time_already_on_dock() -> None:
    assert time_until_ready_s(10.0, SWAP) == 120.0
    assert time_until_ready_s(10.0, SWAP, on_dock_s=100.0) == pytest.approx(20.0)
    assert time_until_ready_s(10.0, SWAP, on_dock_s=500.0) == 0.0
    assert time_until_ready_s(95.0, SWAP) == 0.0


def test_charge_after_agrees_with_time_until_ready() -> None:
    t = time_until_ready_s(40.0, RATE)
    assert charge_after(40.0, RATE, 0.0, t) == pytest.approx(RATE.ready_pct)
    assert charge_after(99.0, RATE, 0.0, 600.0) == 100.0  # never above full
    assert charge_after(10.0, SWAP, 0.0, 119.0) == 10.0
    assert charge_after(10.0, SWAP, 119.0, 1.0) == 100.0


def test_bad_numbers_refused() -> None:
    with pytest.raises(ValueError):
        time_until_ready_s(float("nan"), RATE)
    with pytest.raises(ValueError):
        charge_after(50.0, RATE, 0.0, -1.0)


# ---------------------------------------------------------------------------------------------------------
# The simulator


def run(v: Vehicle, seconds: float) -> None:
    for _ in range(round(seconds / DT)):
        v.step(DT)


def docked(model: Charging = RATE, battery: float = 30.0) -> Vehicle:
    v = Vehicle(1, *HOME, Params({}), seed=0)
    v.charger = DockCharger(HOME[0], HOME[1], model)
    v.inject_battery(battery)
    return v


def fly_and_land(v: Vehicle, north: float) -> None:
    """Take off, fly `north` metres from the dock, land there and wait for the auto-disarm."""
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.cmd_takeoff(20.0) == MavResult.ACCEPTED
    run(v, 20)
    lat, lon = latlon_from_ne(v.home_lat, v.home_lon, north, 0.0)
    assert v.cmd_reposition(lat, lon, None, None) == MavResult.ACCEPTED
    run(v, 60)
    assert v.cmd_land() == MavResult.ACCEPTED
    run(v, 40)
    assert not v.armed and v.landed_state == LandedState.ON_GROUND


def test_sim_charges_a_disarmed_drone_on_its_dock() -> None:
    v = docked()
    volts = v.battery_voltage_v
    run(v, 60)
    assert v.battery_pct == pytest.approx(33.0, abs=0.01)  # 3 %/min for a minute
    assert v.battery_voltage_v > volts  # what the telemetry reports follows


def test_sim_swap_gives_a_full_pack_after_swap_s() -> None:
    v = docked(SWAP, battery=20.0)
    run(v, 119)
    assert v.battery_pct == 20.0
    run(v, 2)
    assert v.battery_pct == 100.0


def test_sim_recharges_after_landing_back_on_the_dock() -> None:
    v = docked(battery=80.0)
    fly_and_land(v, 0.0)  # up and straight back down on the dock
    landed = v.battery_pct
    assert landed < 80.0
    run(v, 120)
    assert v.battery_pct == pytest.approx(landed + 6.0, abs=0.05)


def test_sim_does_not_charge_away_from_the_dock() -> None:
    v = docked(battery=80.0)
    fly_and_land(v, 200.0)  # landed 200 m away
    before = v.battery_pct
    run(v, 120)
    assert v.battery_pct == before


def test_sim_does_not_charge_while_armed() -> None:
    v = docked(battery=50.0)
    assert v.cmd_arm() == MavResult.ACCEPTED
    v.params.set("COM_DISARM_PRFLT", -1.0)  # stay armed on the ground
    run(v, 5)
    assert v.armed and v.mode == Mode.LOITER
    assert v.battery_pct < 50.0  # idling drains, nothing charges


def test_sim_without_a_charger_keeps_its_charge() -> None:
    v = Vehicle(1, *HOME, Params({}), seed=0)
    v.inject_battery(30.0)
    run(v, 120)
    assert v.battery_pct == 30.0


def test_fleet_gives_each_vehicle_its_docks_model() -> None:
    specs = [
        DroneSpec(1, "a", HOME[0], HOME[1], HOME[2], charging=RATE),
        DroneSpec(2, "b", HOME[0], HOME[1], HOME[2]),
    ]
    fleet = Fleet(specs)
    assert fleet.vehicles[1].charger == DockCharger(HOME[0], HOME[1], RATE)
    assert fleet.vehicles[2].charger is None


def test_simulator_learns_the_models_from_the_area_file() -> None:
    from sim.runner import specs_from_area

    area_path = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"
    area = load_area(area_path)
    specs, _ = specs_from_area(area_path, 6)  # the area's four drones and two extra, round-robin
    for spec in specs:
        dock = min(area.docks, key=lambda d: abs(d.lat - spec.lat) + abs(d.lon - spec.lon))
        assert spec.charging == dock.charging

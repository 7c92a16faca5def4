"""Airframe profiles: validated files, applied to an area's drones, read by the planner's estimates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dfr.airframe import AirframeError, load_airframe
from dfr.area import AreaError, load_area
from dfr.dispatch.policy import load_policy
from dfr.dispatch.selection import Candidate, choose_drone

ROOT = Path(__file__).resolve().parents[2]
MISSIONS = ROOT / "missions"
NEAR_CIVIC = (32.6450, -117.0800)


@pytest.mark.parametrize("name", ["sih-quad", "dfr-class"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_airframe(MISSIONS / "airframes" / f"{name}.yaml")
    assert profile.name == name and profile.params


def test_a_bad_profile_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncruise_m_s: 90\nmax_speed_m_s: 10\nclimb_m_s: 2\n", encoding="utf-8")
    with pytest.raises(AirframeError) as e:
        load_airframe(bad)
    text = str(e.value)
    assert "cruise_m_s" in text and ":2" in text  # too fast, on line 2
    assert "descent_m_s" in text  # missing


def test_physical_time_counts_climb_acceleration_and_top_speed() -> None:
    p = load_airframe(MISSIONS / "airframes" / "dfr-class.yaml")
    # 12 s up at 5 m/s, 19/6 s to speed and back down, the rest at 19 m/s
    assert p.physical_time_s(1000.0, 60.0) == pytest.approx(12 + 2 * 19 / 6 + (1000 - 19 * 19 / 6) / 19)
    assert p.physical_time_s(10.0, 0.0) == pytest.approx(2 * (10 / 6) ** 0.5)  # never reaches top speed


def _area_with(tmp_path: Path, airframe: str) -> Path:
    (tmp_path / "areas").mkdir()
    shutil.copytree(MISSIONS / "airframes", tmp_path / "airframes")
    shutil.copy(MISSIONS / "areas" / "chula-vista.geojson", tmp_path / "areas")
    data = yaml.safe_load((MISSIONS / "areas" / "chula-vista.yaml").read_text(encoding="utf-8"))
    data["drones"].append(
        {
            "id": "cv-5",
            "name": "CV-5",
            "dock": "cv-civic",
            "response_speed_m_s": 20.0,
            "airframe": airframe,
            "params": {"NAV_DLL_ACT": 2},
        }
    )
    path = tmp_path / "areas" / "cv.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_an_area_drone_gets_its_profile(tmp_path: Path) -> None:
    area = load_area(_area_with(tmp_path, "dfr-class"))
    drone = area.drone("cv-5")
    assert drone.params["SIH_KDV"] == 0.6 and drone.params["MPC_TILTMAX_AIR"] == 70.0  # the profile's
    assert drone.params["NAV_DLL_ACT"] == 2  # the drone's own on top
    assert drone.max_speed_m_s == 19.0
    profile = area.profile("cv-5")
    assert profile is not None and profile.name == "dfr-class"
    assert area.profile("cv-2") is None  # a drone without a profile (cv-1 of the sample is DFR-class)


def test_an_unknown_profile_is_an_area_problem(tmp_path: Path) -> None:
    with pytest.raises(AreaError, match=r"drones\[4\]\.airframe.*no-such"):
        load_area(_area_with(tmp_path, "no-such"))


def test_the_planner_counts_with_the_profile(tmp_path: Path) -> None:
    area = load_area(_area_with(tmp_path, "dfr-class"))
    policy = load_policy(MISSIONS / "policies" / "default.yaml")
    civic = area.dock("cv-civic")

    def candidate(drone_id: str, speed: float) -> Candidate:
        return Candidate(drone_id, "cv-civic", civic.lat, civic.lon, True, True, 100.0, speed)

    slow = choose_drone(area, policy, [candidate("cv-2", 12.0)], NEAR_CIVIC)  # cv-2 has no profile
    fast = choose_drone(area, policy, [candidate("cv-5", 20.0)], NEAR_CIVIC)
    assert fast.eta_s < slow.eta_s - 20  # faster climb (5 vs 2.5 m/s) and top speed (19 vs 10 m/s)
    both = choose_drone(area, policy, [candidate("cv-2", 12.0), candidate("cv-5", 20.0)], NEAR_CIVIC)
    assert both.drone_id == "cv-5"

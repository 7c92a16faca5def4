"""dfr.coverage on a hand-made area whose answers are known, and dfr.history's loader (layouts, the DC
release, bad rows with their line numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dfr.area import Area, load_area
from dfr.coverage import analyse, candidate_sites
from dfr.dispatch.policy import Policy, load_policy
from dfr.history import DC_SHOTSPOTTER, Columns, HistoryError, move_onto, parse_history, select
from dfr.planning.eta import flythrough_eta_s
from sim.feed import Alert, project_onto

ROOT = Path(__file__).resolve().parents[2]
LAT0, LON0 = 32.64, -117.08
M_LAT = 1 / 110_574.0  # degrees per metre, near enough for placing test points
M_LON = 1 / 92_900.0


def area_file(tmp: Path, zones: list[dict[str, object]] | None = None) -> Area:
    half = 0.02  # about 3.7 x 4.4 km
    ring = [
        [LON0 - half, LAT0 - half],
        [LON0 + half, LAT0 - half],
        [LON0 + half, LAT0 + half],
        [LON0 - half, LAT0 + half],
        [LON0 - half, LAT0 - half],
    ]
    features = [
        {
            "type": "Feature",
            "properties": {"role": "operating_area"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
    ]
    (tmp / "a.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features + (zones or [])})
    )
    spec = {
        "name": "square",
        "description": "test",
        "illustrative": True,
        "notice": "test only",
        "geojson": "a.geojson",
        "default_altitude_m": 60,
        "docks": [{"id": "d", "name": "D", "lat": LAT0, "lon": LON0, "alt_amsl_m": 150.0}],
        "drones": [{"id": "x", "name": "X", "dock": "d", "response_speed_m_s": 10.0}],
    }
    (tmp / "a.yaml").write_text(yaml.safe_dump(spec))
    return load_area(tmp / "a.yaml")


@pytest.fixture
def policy() -> Policy:
    return load_policy(ROOT / "missions" / "policies" / "default.yaml")


def north_of_dock(metres: float, east: float = 0.0) -> tuple[float, float]:
    return (LAT0 + metres * M_LAT, LON0 + east * M_LON)


def test_known_answer(tmp_path: Path, policy: Policy) -> None:
    area = area_file(tmp_path)
    # 3 s take-off, 20 m straight up at 2.5 m/s = 8 s, then 300 m at 10 m/s with 3 m/s² ramps: 33.3 s
    # (the other 40 m of climb, 16 s, happen on the way) -> 44.3 s in all
    assert flythrough_eta_s([300], [], 10, 2.5, 60, 20, 3) == pytest.approx(44.33, abs=0.01)
    assert flythrough_eta_s([1000], [], 10, 2.5, 60, 20, 3) > 90
    calls = [north_of_dock(300)] * 3 + [north_of_dock(1000)]
    r = analyse(area, policy, calls, 90)
    assert r.calls == 4 and r.covered_now == 3 and r.share_now() == 0.75
    assert sorted(r.reach_s_now.tolist())[0] == pytest.approx(44.33, abs=0.2)
    assert r.weights.tolist() == [3, 1]  # the same point counted once, with its weight


def test_greedy_suggestion_covers_the_far_cluster(tmp_path: Path, policy: Policy) -> None:
    area = area_file(tmp_path)
    far = [north_of_dock(-1500, 1500 + 20 * k) for k in range(5)]
    calls = [north_of_dock(200)] * 2 + far
    r = analyse(area, policy, calls, 90, suggest=2, spacing_m=300)
    assert r.covered_now == 2
    assert r.covered_after[0] == 7  # one new site takes the whole cluster
    site = r.suggested[0]
    assert abs((site.lat - LAT0) / M_LAT + 1500) < 600 and abs((site.lon - LON0) / M_LON - 1540) < 600
    assert len(r.suggested) == 1 and "no further site" in r.notes[0]  # nothing left to gain


def test_candidates_avoid_zones(tmp_path: Path) -> None:
    ring = [
        [LON0 - 0.005, LAT0 - 0.005],
        [LON0 + 0.005, LAT0 - 0.005],
        [LON0 + 0.005, LAT0 + 0.005],
        [LON0 - 0.005, LAT0 + 0.005],
        [LON0 - 0.005, LAT0 - 0.005],
    ]
    zone = {
        "type": "Feature",
        "properties": {
            "role": "no_fly",
            "id": "z",
            "name": "Z",
            "kind": "other",
            "floor_ft_agl": 300,
            "ceiling_ft_agl": 400,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    area = area_file(tmp_path, [zone])
    sites = candidate_sites(area, 250, 10.0)
    assert sites and not any(abs(s.lat - LAT0) < 0.005 and abs(s.lon - LON0) < 0.005 for s in sites)
    assert all(area.operating_area.contains(__import__("shapely").Point(s.lon, s.lat)) for s in sites)


def test_beyond_the_policys_coverage_radius_is_not_covered(tmp_path: Path, policy: Policy) -> None:
    area = area_file(tmp_path)
    narrow = policy.model_copy(update={"coverage_radius_m": 250.0})
    r = analyse(area, narrow, [north_of_dock(300)], 90)
    assert r.covered_now == 0


# ---------------------------------------------------------------------------------------------------------
# History files

STANDARD_CSV = """time,lat,lon,kind,priority
2024-05-01T14:00:05,32.64,-117.08,gunshot,1
2024-05-01T14:03:00,32.65,-117.07,911,2
2024-05-01T13:59:00,32.63,-117.09,manual,3
"""


def test_standard_layout_sorted_by_time() -> None:
    calls = parse_history(STANDARD_CSV, "h.csv")
    assert [c.line for c in calls] == [4, 2, 3]
    assert calls[2].kind.value == "911" and calls[2].priority == 2


def test_bad_rows_named_with_their_line_numbers() -> None:
    text = STANDARD_CSV + "yesterday,32.6,-117.0,gunshot,1\n2024-05-01T15:00:00,95,-117.0,fire,9\n"
    with pytest.raises(HistoryError) as e:
        parse_history(text, "h.csv")
    msg = str(e.value)
    assert "h.csv:5: time: cannot read time 'yesterday'" in msg
    assert "h.csv:6: lat: 95.0 is outside [-90, 90]" in msg
    assert "h.csv:6: kind: unknown kind 'fire'" in msg
    assert "h.csv:6: priority: priority must be a whole number 1..5" in msg
    assert "(4 problems)" in msg


def test_missing_column_and_empty_file() -> None:
    with pytest.raises(HistoryError, match="missing column"):
        parse_history("when,lat,lon\n2024-01-01,1,2\n", "h.csv")
    with pytest.raises(HistoryError, match="empty file"):
        parse_history("", "h.csv")
    with pytest.raises(HistoryError, match=r"h\.csv:3: 2 fields"):
        parse_history("time,lat,lon,kind,priority\n2024-01-01,1,2,gunshot,1\n2024-01-01,1\n", "h.csv")


def test_column_mapping() -> None:
    cols = Columns.parse("time=d+t,lat=y,lon=x,kind=-,priority=-,id=n")
    calls = parse_history("n,d,t,y,x\nA1,7/4/2018,21:05:00,38.9,-77.0\n", "h.csv", cols)
    assert calls[0].ref == "A1" and calls[0].at.hour == 21 and calls[0].kind.value == "gunshot"
    with pytest.raises(ValueError, match="unknown field"):
        Columns.parse("colour=red")


DC_SLICE = ROOT / "tests" / "data" / "dc_shotspotter_2018-07-04_slice.csv"


def test_dc_release_is_recognised_and_moved_like_the_demo_feed() -> None:
    calls = parse_history(DC_SLICE.read_text(), str(DC_SLICE))
    assert calls and all(c.kind.value == "gunshot" and c.priority == 1 for c in calls)
    assert parse_history(DC_SLICE.read_text(), "x", DC_SHOTSPOTTER) == calls
    area = load_area(ROOT / "missions" / "areas" / "chula-vista.yaml")
    moved = move_onto(calls, area.operating_area)
    alerts = [Alert(c.ref, "t", c.lat, c.lon) for c in calls]
    demo = {a.id: (a.lat, a.lon) for a in project_onto(alerts, area.operating_area)}
    for c in moved:
        if c.ref in demo:
            assert (c.lat, c.lon) == demo[c.ref]  # the same move, to the last bit


def test_select_window_and_limit() -> None:
    calls = parse_history(DC_SLICE.read_text(), "x")
    first = select(calls, window_s=3600)
    assert first and all((c.at - calls[0].at).total_seconds() < 3600 for c in first)
    assert len(select(calls, limit=2)) == 2


def test_cli_writes_json_and_png(tmp_path: Path) -> None:
    from dfr.cli import main

    area = str(ROOT / "missions" / "areas" / "chula-vista.yaml")
    argv = ["coverage", "--area", area, "--history", str(DC_SLICE), "--within", "90", "--out", str(tmp_path)]
    assert main(argv) == 2  # DC calls are not in Chula Vista: says so, suggests --onto-area
    assert main([*argv, "--onto-area", "--suggest", "1", "--spacing", "800"]) == 0
    body = json.loads((tmp_path / "coverage.json").read_text())
    assert body["calls"]["rows"] == 45 and body["calls"]["used"] > 0
    assert body["suggested"][0]["share"] >= body["share_now"]
    assert (tmp_path / "coverage.png").stat().st_size > 10_000


def test_replay_summary_from_a_record() -> None:
    from dfr.sitl.replay import summarise

    calls = parse_history(STANDARD_CSV, "h.csv")
    record = {
        "drone_ids": ["a"],
        "reports": [
            {"ref": "c1", "t": 5.0, "incident_id": "i1", "created": True},
            {"ref": "c2", "t": 8.0, "incident_id": "i1", "created": False},
            {"ref": "c3", "t": 20.0, "incident_id": "i2", "created": True},
        ],
        "missions": [
            {
                "id": "m1",
                "incident_id": "i1",
                "created_at": "1",
                "state": "landed",
                "drone_id": "a",
                "t_launched": 7.0,
                "t_on_scene": 85.0,
            },
            {
                "id": "m2",
                "incident_id": "i2",
                "created_at": "2",
                "state": "queued",
                "drone_id": None,
                "t_launched": None,
                "t_on_scene": None,
            },
        ],
        "events": {"m2": [{"to_state": "queued", "reason": "no drone can respond: a busy"}]},
        "samples": [
            {"t": 0.0, "drone": "a", "src": "vehicle", "in_air": False, "battery": 100.0},
            {"t": 40.0, "drone": "a", "src": "vehicle", "in_air": True, "battery": 98.0},
        ],
    }
    s = summarise(record, calls)
    assert (s["calls"], s["merged"], s["incidents"], s["launched"], s["on_scene"]) == (3, 1, 2, 1, 1)
    assert s["share_on_scene_within_s"] == {"60": 0.0, "90": 0.5, "120": 0.5, "180": 0.5}
    assert s["waiting_s"]["max"] == 2.0
    assert s["not_served"] == [
        {
            "t": 20.0,
            "calls": ["c3"],
            "state": "queued",
            "reason": "still queued when the replay ended (no drone can respond: a busy)",
        }
    ]
    assert s["queued"] == [{"t": 20.0, "waited_s": None, "reason": "no drone can respond: a busy"}]
    assert s["drones"]["a"]["in_air_share"] == 0.5 and s["drones"]["a"]["battery"] == [
        (0.0, 100.0),
        (40.0, 98.0),
    ]

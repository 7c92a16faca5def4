"""`dfr replay` end to end on four real DC alerts (tests/data, 4 July 2018, 19:47-19:48: four alerts in 40 s)
moved onto the sample area: the real service and the built-in simulator at 30x, then the day's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfr.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SLICE = ROOT / "tests" / "data" / "dc_shotspotter_2018-07-04_slice.csv"


@pytest.mark.timeout(240)
def test_replay_four_alerts(tmp_path: Path) -> None:
    argv = [
        "replay",
        "--area",
        str(ROOT / "missions" / "areas" / "chula-vista.yaml"),
        "--history",
        str(SLICE),
        "--onto-area",
        "--start",
        "2018-07-04T19:47",
        "--window-min",
        "2",
        "--speed",
        "30",
        "--tail-min",
        "8",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    report = json.loads((tmp_path / "replay.report.json").read_text())
    assert report["calls"] == 4 and report["reports_posted"] == 4
    assert report["incidents"] + report["merged"] == 4
    assert report["launched"] >= 1 and report["on_scene"] >= 1
    assert set(report["share_on_scene_within_s"]) == {"60", "90", "120", "180"}
    assert report["waiting_s"]["n"] == report["launched"]
    flown = [d for d in report["drones"].values() if d["missions"]]
    assert flown and all(d["battery_min_pct"] < 100 for d in flown)  # the charge over the run is recorded
    for u in report["not_served"]:
        assert u["reason"]  # every call not served says why
    assert (tmp_path / "replay.report.png").stat().st_size > 5_000
    assert (tmp_path / "replay.yaml").is_file()  # the scenario, to run again with `dfr sitl run`

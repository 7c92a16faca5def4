"""The report of the airport scenario: the PNG map exists and the route drawn in it bends around the zone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapely.geometry import LineString

from dfr.sitl.report import ROUTE, TRACK_COLOURS
from dfr.sitl.runner import ScenarioResult
from dfr.sitl.scenario import load_scenario
from tests.scenarios.conftest import SHIPPED

pytestmark = pytest.mark.integration


def test_airport_report_shows_route_around_zone(run_shipped: Callable[[str], ScenarioResult]) -> None:
    result = run_shipped("airport-route-bends")
    assert result.report_json is not None and result.report_png is not None
    report = json.loads(Path(result.report_json).read_text())
    scenario = load_scenario(SHIPPED / "airport-route-bends.yaml")
    zone = next(z for z in scenario.area.zones if z.id == "test-airport").geometry

    (mission,) = report["record"]["missions"]
    route = [tuple(p) for p in mission["planned_route"]]
    assert len(route) > 2, route
    assert not LineString(route).intersects(zone)
    assert LineString([route[0], route[-1]]).intersects(zone), "the straight line must cross the zone"

    img = cv2.imread(result.report_png)
    assert img is not None and img.shape[0] > 500 and img.shape[1] >= 800
    # the map holds the planned route's colour and the drone's track colour (they were drawn)
    for colour in (ROUTE, TRACK_COLOURS[0]):
        assert int(np.all(img == np.array(colour, dtype=np.uint8), axis=2).sum()) > 50, colour

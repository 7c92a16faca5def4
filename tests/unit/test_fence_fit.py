"""The sortie's fence fits the autopilot (PX4: 64 items) and is never less safe than the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely.geometry import LineString, Polygon

from dfr.area import load_area
from dfr.dispatch.sortie import plan_sortie, planner_zones
from dfr.planning import LocalProjection, NoFlyZone
from dfr.planning.fence import (
    PX4_FENCE_CAPACITY,
    FenceDoesNotFit,
    fence_geometry,
    fit_fence,
)

ROOT = Path(__file__).resolve().parents[2]
AREA = load_area(ROOT / "missions" / "areas" / "chula-vista.yaml")
CIVIC = AREA.dock("cv-civic")
EAST = AREA.dock("cv-east")
SCENES = [(32.6450, -117.0800), (32.6150, -117.0330), (32.6000, -117.0700), (32.6300, -117.1000)]


@pytest.mark.parametrize("scene", SCENES)
def test_sample_sorties_fit_px4_and_keep_zones_out(scene: tuple[float, float]) -> None:
    for dock in (CIVIC, EAST):
        plan = plan_sortie(AREA, (dock.lat, dock.lon), scene)
        fence = plan.fence
        assert 0 < fence.item_count <= PX4_FENCE_CAPACITY  # the whole area fence had 159 items
        proj = LocalProjection.around(dock.lon, dock.lat)
        inc, exc = fence_geometry(fence, proj)
        area = proj.geom_to_xy(AREA.operating_area)
        assert len(inc) == 1 and area.buffer(0.01).covers(inc[0])  # the inclusion never grows
        for zone_id in fence.zone_ids:
            zone = proj.geom_to_xy(next(z for z in AREA.zones if z.id == zone_id).geometry)
            assert any(e.buffer(0.01).covers(zone) for e in exc), zone_id  # an exclusion never shrinks
        route = LineString([proj.to_xy(*p) for p in plan.route.waypoints])
        assert inc[0].covers(route) and not any(e.intersects(route) for e in exc)


def test_drawn_circles_go_up_as_one_circle_item() -> None:
    plan = plan_sortie(AREA, (EAST.lat, EAST.lon), (32.6150, -117.0330))
    assert "sharp-cv-helipad" in plan.fence.zone_ids
    helipad = next(c for c in plan.fence.circles if not c.inclusion)
    assert 500.0 <= helipad.radius_m <= 502.0  # the 48-gon of 500 m, covered with a small margin
    assert not plan.fence.polygons[1:]  # only the operating area stays a polygon


def test_zones_far_from_the_route_or_outside_its_altitude_band_are_left_out() -> None:
    plan = plan_sortie(AREA, (CIVIC.lat, CIVIC.lon), (32.6450, -117.0800))
    assert "nicu-amphitheatre" not in plan.fence.zone_ids  # 7 km away
    low = plan_sortie(AREA, (EAST.lat, EAST.lon), (32.6150, -117.0330), altitude_m=50.0)
    high = plan_sortie(AREA, (EAST.lat, EAST.lon), (32.6150, -117.0330), altitude_m=70.0)
    assert "sharp-cv-helipad-approach" not in low.fence.zone_ids  # its floor is 200 ft (61 m)
    assert "sharp-cv-helipad-approach" in high.fence.zone_ids


def test_many_cornered_polygons_are_simplified_conservatively() -> None:
    proj = LocalProjection.around(-117.08, 32.64)
    wiggly_area = Polygon(
        [
            proj.to_lonlat(3000 * (1 + 0.02 * (k % 2)) * _c(k, 90), 3000 * (1 + 0.02 * (k % 2)) * _s(k, 90))
            for k in range(90)
        ]
    )
    wiggly_zone = Polygon(
        [
            proj.to_lonlat(
                1000 + 300 * (1 + 0.05 * (k % 3)) * _c(k, 60), 300 * (1 + 0.05 * (k % 3)) * _s(k, 60)
            )
            for k in range(60)
        ]
    )
    zone = NoFlyZone("z", "wiggly", wiggly_zone, 0.0, 200.0)
    path = [proj.to_lonlat(-1500, 0), proj.to_lonlat(-500, 0)]
    fence = fit_fence(wiggly_area, [zone], 60.0, path, near_m=5000)
    assert fence.item_count <= PX4_FENCE_CAPACITY
    inc, exc = fence_geometry(fence, proj)
    assert proj.geom_to_xy(wiggly_area).buffer(0.01).covers(inc[0])
    assert exc[0].buffer(0.01).covers(proj.geom_to_xy(wiggly_zone))


def test_a_fence_that_cannot_fit_is_refused_before_anything_flies() -> None:
    zones = planner_zones(AREA)
    path = [(CIVIC.lon, CIVIC.lat), (-117.0800, 32.6450)]
    with pytest.raises(FenceDoesNotFit, match="stores 3"):
        fit_fence(AREA.operating_area, zones, 60.0, path, capacity=3)


def test_a_path_through_an_exclusion_is_refused() -> None:
    zones = planner_zones(AREA)
    helipad = next(z for z in zones if z.id == "sharp-cv-helipad")
    c = helipad.geometry.centroid
    with pytest.raises(FenceDoesNotFit, match="crosses"):
        fit_fence(AREA.operating_area, zones, 60.0, [(EAST.lon, EAST.lat), (c.x, c.y)])


def _c(k: int, n: int) -> float:
    import math

    return math.cos(2 * math.pi * k / n)


def _s(k: int, n: int) -> float:
    import math

    return math.sin(2 * math.pi * k / n)

"""Corner leads: how early the next go-to may be sent without the cut corner entering a zone."""

from __future__ import annotations

import pytest
from shapely.geometry import Polygon

from dfr.dispatch.sortie import climb_band_zones
from dfr.planning.corners import TRAJECTORY_MARGIN_M, braking_distance_m, corner_leads, cut_chords, shortcut
from dfr.planning.projection import LocalProjection
from dfr.planning.route import NoFlyZone

ORIGIN = (-117.08, 32.64)
PROJ = LocalProjection.around(*ORIGIN)


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = PROJ.to_lonlat(x, y)
    return (lon, lat)


def square_zone(x0: float, y0: float, x1: float, y1: float, floor: float = 0.0) -> NoFlyZone:
    ring = [lonlat(x0, y0), lonlat(x1, y0), lonlat(x1, y1), lonlat(x0, y1)]
    return NoFlyZone("z", "zone", Polygon(ring), floor, 1000.0)


# A right-angle bend: east 400 m, then north 400 m; the inside of the corner is to the north-west.
BEND = [lonlat(0, 0), lonlat(400, 0), lonlat(400, 400)]


def test_no_zone_gives_the_full_lead_and_ends_get_none() -> None:
    assert corner_leads(BEND, [], 60.0, max_lead_m=30.0) == (0.0, 30.0, 0.0)


def test_lead_is_capped_by_half_of_a_short_leg() -> None:
    short = [lonlat(0, 0), lonlat(40, 0), lonlat(40, 400)]
    assert corner_leads(short, [], 60.0, max_lead_m=30.0)[1] == 20.0


def test_a_zone_inside_the_corner_shrinks_the_lead_until_the_cut_clears_it() -> None:
    # zone 30 m inside the corner (the route was planned with a buffer): a 30 m cut would reach it
    zone = square_zone(300, 30, 370, 100)
    leads = corner_leads(BEND, [zone], 60.0, max_lead_m=60.0)
    assert 0.0 < leads[1] < 60.0
    lead = leads[1]
    turn = (400 - lead, 0.0)
    cut = Polygon([turn, (400, 0), (400, 400)]).buffer(TRAJECTORY_MARGIN_M)
    assert not cut.intersects(Polygon([(300, 30), (370, 30), (370, 100), (300, 100)]))


def test_a_zone_hugging_the_corner_means_a_stop_and_an_inactive_zone_does_not() -> None:
    zone = square_zone(380, 5, 395, 20)
    assert corner_leads(BEND, [zone], 60.0, max_lead_m=30.0)[1] == 0.0
    above = square_zone(380, 5, 395, 20, floor=100.0)  # active only above 100 m
    assert corner_leads(BEND, [above], 60.0, max_lead_m=30.0)[1] == 30.0


@pytest.mark.parametrize(("v", "a", "d"), [(12.0, 3.0, 24.0), (20.0, 6.0, 33.33), (0.0, 3.0, 0.0)])
def test_braking_distance(v: float, a: float, d: float) -> None:
    assert braking_distance_m(v, a) == pytest.approx(d, abs=0.01)


AREA_SQUARE = Polygon([lonlat(-2000, -2000), lonlat(2000, -2000), lonlat(2000, 2000), lonlat(-2000, 2000)])


def test_shortcut_drops_vertices_a_clear_straight_leg_can_skip_and_keeps_those_it_cannot() -> None:
    # a route hugging a zone's outline 30 m out, with many nearly straight vertices
    zone = square_zone(-100, 30, 100, 300)
    hug = [lonlat(-300, 0), lonlat(-100, 0), lonlat(-50, 0), lonlat(0, 0), lonlat(50, 0), lonlat(100, 0)]
    hug += [lonlat(300, 0)]
    assert shortcut(hug, [zone], 60.0, AREA_SQUARE, clearance_m=15.0) == [hug[0], hug[-1]]
    # with a 40 m clearance the straight line 30 m from the zone is not allowed: nothing is skipped
    assert shortcut(hug, [zone], 60.0, AREA_SQUARE, clearance_m=40.0) == hug


def test_shortcut_never_leaves_the_area_by_the_clearance() -> None:
    small = Polygon([lonlat(-10, -10), lonlat(410, -10), lonlat(410, 410), lonlat(-10, 410)])
    route = [lonlat(0, 0), lonlat(400, 0), lonlat(400, 400)]
    assert shortcut(route, [], 60.0, small, clearance_m=5.0) == [route[0], route[2]]  # diagonal inside
    notch = Polygon(
        [
            lonlat(-10, -10),
            lonlat(410, -10),
            lonlat(410, 410),
            lonlat(300, 410),
            lonlat(300, 100),
            lonlat(-10, 100),
        ]
    )
    assert shortcut(route, [], 60.0, notch, clearance_m=5.0) == route


def test_cut_chords_start_lead_metres_before_each_corner() -> None:
    chords = cut_chords(BEND, (0.0, 30.0, 0.0))
    assert len(chords) == 1
    (start, end) = chords[0]
    x, y = PROJ.to_xy(*start)
    assert (x, y) == pytest.approx((370.0, 0.0), abs=0.5)
    assert end == BEND[2]
    assert cut_chords(BEND, (0.0, 0.0, 0.0)) == []


def test_a_zone_below_the_transit_altitude_counts_while_the_drone_climbs_through_it() -> None:
    """The drone leaves the dock's clear height and climbs the rest en route (PX4 climbs along the line
    to each go-to target): a zone capped below the transit altitude is in its way."""
    low_cap = NoFlyZone("low", "capped at 40 m", Polygon(BEND), 0.0, 40.0)
    high = NoFlyZone("high", "above 80 m", Polygon(BEND), 80.0, 1000.0)
    at_60 = NoFlyZone("at-60", "active at 60 m", Polygon(BEND), 0.0, 1000.0)
    low = NoFlyZone("below", "below the clear height", Polygon(BEND), 0.0, 10.0)
    out = {z.id: z for z in climb_band_zones((low_cap, high, at_60, low), 20.0, 60.0)}
    assert out["low"].applies_at(60.0) and out["low"].applies_at(500.0)
    assert not out["high"].applies_at(60.0)  # above the band: not in the way
    assert out["at-60"] is at_60
    assert not out["below"].applies_at(60.0)  # under the clear height: climbed straight past at the dock

"""Route planner timings: one plan is on the launch path of every mission, so it must stay in ms.

The scene mirrors the unit tests (6 km square near Chula Vista, a circle, a rectangle, a zone with a
floor, two overlapping zones and an enclosure), plus a denser 30-zone scene for scaling.
"""

from __future__ import annotations

import functools
import math
import random
from typing import Any

from shapely.geometry import Point, box

from dfr.planning import LocalProjection, NoFlyZone, PlanRequest, eta_s, path_is_clear, plan_route
from tests.benchmarks.run import timeit

PROJ = LocalProjection.around(-117.08, 32.64)
REPEAT = 200


def _ll(x: float, y: float) -> tuple[float, float]:
    return PROJ.to_lonlat(x, y)


def _zone(zid: str, geom_xy: Any, floor: float = 0.0, ceiling: float = math.inf) -> NoFlyZone:
    return NoFlyZone(zid, zid, PROJ.geom_to_lonlat(geom_xy), floor, ceiling)


AREA = PROJ.geom_to_lonlat(box(-3000, -3000, 3000, 3000))
ZONES = (
    _zone("circle", Point(0, 0).buffer(500, quad_segs=16)),
    _zone("rect", box(-600, 1200, 600, 1600)),
    _zone("floor60", box(-500, -2400, 500, -1800), 60.0, 121.92),
    _zone("overlap-w", Point(-300, -1000).buffer(350, quad_segs=16)),
    _zone("overlap-e", Point(300, -1000).buffer(350, quad_segs=16)),
    _zone("encl-n", box(1800, 2400, 2600, 2600)),
    _zone("encl-s", box(1800, 1800, 2600, 2000)),
    _zone("encl-w", box(1800, 1800, 2000, 2600)),
    _zone("encl-e", box(2400, 1800, 2600, 2600)),
)


def _dense_zones(n: int, seed: int = 3) -> tuple[NoFlyZone, ...]:
    rng = random.Random(seed)
    zones = []
    for i in range(n):
        x, y = rng.uniform(-2400, 2400), rng.uniform(-2400, 2400)
        if math.hypot(x + 2700, y + 2700) < 600 or math.hypot(x - 2700, y - 2700) < 600:
            continue  # keep start and target clear
        r = rng.uniform(80, 250)
        geom = Point(x, y).buffer(r, quad_segs=8) if i % 2 else box(x - r, y - r, x + r, y + r)
        zones.append(_zone(f"z{i}", geom))
    return tuple(zones)


def _req(start: tuple[float, float], target: tuple[float, float], **kw: Any) -> PlanRequest:
    args: dict[str, Any] = {"area": AREA, "zones": ZONES, "altitude_m": 80.0}
    args.update(kw)
    return PlanRequest(start=_ll(*start), target=_ll(*target), **args)


def run() -> list[dict[str, Any]]:
    cases = {
        "route: direct (9 zones)": _req((-2000, 2800), (1500, 2800)),
        "route: around 1 circle": _req((-2000, 0), (2000, 0)),
        "route: several zones (9 zones, 80 m)": _req((-2500, -2100), (1500, 1400)),
        "route: stand-off in circle": _req((-2500, -2500), (50, 80)),
        "route: dense (30 zones)": _req((-2700, -2700), (2700, 2700), zones=_dense_zones(30)),
    }
    rows: list[dict[str, Any]] = []
    for name, req in cases.items():
        plan = plan_route(req)  # warm the transformer cache; report the route shape too
        stats = timeit(functools.partial(plan_route, req), REPEAT)
        rows.append({"case": name, **stats, "waypoints": len(plan.waypoints)})
    track = plan_route(cases["route: several zones (9 zones, 80 m)"]).waypoints
    rows.append(
        {
            "case": f"path_is_clear ({len(track)} waypoints, 9 zones)",
            **timeit(lambda: path_is_clear(track, ZONES, 80.0), REPEAT),
        }
    )
    rows.append({"case": "eta_s", **timeit(lambda: eta_s(3200.0, 15.0, 6.0, 80.0), REPEAT)})
    return rows


if __name__ == "__main__":
    from tests.benchmarks.run import print_table

    print_table(run())

"""Coverage of past calls from the docks: who could have had a drone overhead within N seconds, and where
k more docks would help most.

Time to a call is the dispatcher's own estimate (`dfr.dispatch.sortie.plan_sortie`: straight up to the
dock's obstacle height, then the zone-avoiding route at the drone's achievable speed, climbing the rest on
the way, with acceleration and braking wherever the drone stops), so a coverage figure means "the
dispatcher would have promised a drone within N s", not a straight-line guess. A call further than the
policy's coverage radius from a dock, or one no route reaches, is not covered from that dock, as the
dispatcher would refuse it.

Route planning costs milliseconds, so the work is kept small without changing the answer: calls at the
same point are counted once with a weight, and a site-point pair is only planned when the straight-line
ETA (a lower bound: the route is never shorter than the straight line, and corners only add time) is
within the horizon.

Suggested docks come from greedy maximum coverage over candidate grid points inside the operating area
and outside every no-fly zone: each round adds the site that covers the most not-yet-covered calls.
Greedy is within 1 - 1/e of the best choice of k sites and, unlike an exact search, fast and explainable.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Point
from shapely.prepared import prep

from dfr.area import DEFAULT_CLEAR_HEIGHT_M, Area
from dfr.dispatch.policy import Policy
from dfr.dispatch.sortie import plan_sortie
from dfr.planning import LocalProjection, PlanError
from dfr.planning.corners import PX4_ACC_HOR_DEFAULT
from dfr.planning.eta import flythrough_eta_s

__all__ = [
    "CoverageParams",
    "CoverageResult",
    "Site",
    "analyse",
    "candidate_sites",
    "dock_sites",
    "reach_times",
]


SITE_MARGIN_M = 50.0
"""Candidate sites keep this far inside the operating area: a dock on its edge could not launch (the
planner keeps routes a margin inside the area, and the autopilot fence is the area's edge)."""


@dataclass(frozen=True)
class Site:
    """Where drones launch from (an existing dock or a suggested one) and how fast they fly, m/s."""

    id: str
    lat: float
    lon: float
    cruise_m_s: float
    existing: bool = True


@dataclass(frozen=True)
class CoverageParams:
    """What "reachable within N s" means: the policy's sortie shape and the area's flight altitude."""

    within_s: float
    altitude_m: float
    climb_m_s: float
    buffer_m: float
    allow_standoff: bool
    coverage_radius_m: float

    @classmethod
    def of(cls, area: Area, policy: Policy, within_s: float) -> CoverageParams:
        if not (math.isfinite(within_s) and within_s > 0):
            raise ValueError(f"within_s must be a positive number of seconds, got {within_s!r}")
        return cls(
            within_s=within_s,
            altitude_m=policy.altitude_m if policy.altitude_m is not None else area.default_altitude_m,
            climb_m_s=policy.climb_m_s,
            buffer_m=policy.buffer_m,
            allow_standoff=policy.allow_standoff,
            coverage_radius_m=policy.coverage_radius_m,
        )


@dataclass(frozen=True)
class CoverageResult:
    """Shares are of the weighted calls given; ``reach_s`` is each call point's best time (inf: none)."""

    calls: int
    covered_now: int
    suggested: list[Site]
    covered_after: list[int]  # covered calls with the first 1, 2, ... suggested sites added
    reach_s_now: NDArray[np.float64]
    reach_s_after: NDArray[np.float64]
    points: NDArray[np.float64]  # unique call points (lat, lon)
    weights: NDArray[np.int64]
    candidates: int = 0
    planned: int = 0
    notes: list[str] = field(default_factory=list)

    def share_now(self) -> float:
        return self.covered_now / self.calls if self.calls else 0.0

    def share_after(self) -> list[float]:
        return [c / self.calls if self.calls else 0.0 for c in self.covered_after]


def _achievable(area: Area, dock_id: str) -> float | None:
    """The fastest achievable speed of the drones at a dock (response speed capped by the airframe's)."""
    speeds = [
        d.response_speed_m_s if d.max_speed_m_s is None else min(d.response_speed_m_s, d.max_speed_m_s)
        for d in area.drones_at(dock_id)
    ]
    return max(speeds) if speeds else None


def dock_sites(area: Area) -> tuple[list[Site], list[str]]:
    """The area's docks that hold a drone, as sites; and a note for each dock that holds none."""
    sites: list[Site] = []
    notes: list[str] = []
    for d in area.docks:
        speed = _achievable(area, d.id)
        if speed is None:
            notes.append(f"dock {d.id} holds no drone and covers nothing")
            continue
        sites.append(Site(d.id, d.lat, d.lon, speed))
    return sites, notes


def candidate_sites(area: Area, spacing_m: float, cruise_m_s: float) -> list[Site]:
    """Grid points ``spacing_m`` apart inside the operating area and outside every zone (any band)."""
    if not (math.isfinite(spacing_m) and spacing_m > 0):
        raise ValueError(f"spacing_m must be positive, got {spacing_m!r}")
    c = area.operating_area.centroid
    proj = LocalProjection.around(float(c.x), float(c.y))
    shape = proj.geom_to_xy(area.operating_area)
    zones = [proj.geom_to_xy(z.geometry) for z in area.zones]
    inside = prep(shape.buffer(-SITE_MARGIN_M))
    blocked = [prep(z) for z in zones]
    x0, y0, x1, y1 = shape.bounds
    out: list[Site] = []
    for y in np.arange(y0 + spacing_m / 2, y1, spacing_m):
        for x in np.arange(x0 + spacing_m / 2, x1, spacing_m):
            p = Point(float(x), float(y))
            if inside.contains(p) and not any(b.intersects(p) for b in blocked):
                lon, lat = proj.to_lonlat(float(x), float(y))
                out.append(Site(f"site-{len(out) + 1}", lat, lon, cruise_m_s, existing=False))
    return out


class _Planner:
    """Times from sites to points, planning only pairs whose straight-line lower bound is in the horizon."""

    def __init__(self, area: Area, params: CoverageParams, points: NDArray[np.float64]) -> None:
        self.area = area
        self.params = params
        self.points = points
        c = area.operating_area.centroid
        self.proj = LocalProjection.around(float(c.x), float(c.y))
        self.xy = self.proj.to_xy_array(points[:, ::-1]) if len(points) else np.zeros((0, 2))
        self.planned = 0

    def times(self, site: Site, horizon_s: float) -> NDArray[np.float64]:
        p = self.params
        out = np.full(len(self.points), np.inf)
        sx, sy = self.proj.to_xy(site.lon, site.lat)
        dist = np.hypot(self.xy[:, 0] - sx, self.xy[:, 1] - sy)
        for i in np.flatnonzero(dist <= p.coverage_radius_m):
            # the sortie's own ETA model on the straight line, which no route is shorter than
            bound = flythrough_eta_s(
                [float(dist[i])],
                [],
                site.cruise_m_s,
                p.climb_m_s,
                p.altitude_m,
                DEFAULT_CLEAR_HEIGHT_M,
                PX4_ACC_HOR_DEFAULT,
            )
            if bound > horizon_s:
                continue
            lat, lon = float(self.points[i, 0]), float(self.points[i, 1])
            self.planned += 1
            try:
                plan = plan_sortie(
                    self.area,
                    (site.lat, site.lon),
                    (lat, lon),
                    altitude_m=p.altitude_m,
                    cruise_m_s=site.cruise_m_s,
                    climb_m_s=p.climb_m_s,
                    buffer_m=p.buffer_m,
                    allow_standoff=p.allow_standoff,
                )
            except PlanError:
                continue
            out[i] = plan.eta_s
        return out


def reach_times(
    area: Area,
    sites: Sequence[Site],
    points: NDArray[np.float64],
    params: CoverageParams,
    horizon_s: float | None = None,
) -> NDArray[np.float64]:
    """Best time from any site to each (lat, lon) point, seconds; inf if none within ``horizon_s``."""
    planner = _Planner(area, params, points)
    horizon = params.within_s if horizon_s is None else horizon_s
    best = np.full(len(points), np.inf)
    for s in sites:
        best = np.minimum(best, planner.times(s, horizon))
    return best


def unique_points(latlon: Sequence[tuple[float, float]]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Distinct points (to 1e-6 degrees, about 0.1 m) and how many calls each stands for."""
    if not latlon:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    arr = np.round(np.asarray(latlon, dtype=np.float64), 6)
    pts, counts = np.unique(arr, axis=0, return_counts=True)
    return np.asarray(pts, dtype=np.float64), counts.astype(np.int64)


def analyse(
    area: Area,
    policy: Policy,
    calls: Sequence[tuple[float, float]],
    within_s: float,
    *,
    suggest: int = 0,
    spacing_m: float = 400.0,
    new_site_speed_m_s: float | None = None,
) -> CoverageResult:
    """Coverage of `calls` ((lat, lon) each) within `within_s` from the docks, and `suggest` more sites."""
    params = CoverageParams.of(area, policy, within_s)
    sites, notes = dock_sites(area)
    points, weights = unique_points(calls)
    planner = _Planner(area, params, points)
    now = np.full(len(points), np.inf)
    for s in sites:
        now = np.minimum(now, planner.times(s, within_s))
    covered = now <= within_s
    covered_now = int(weights[covered].sum())
    speed = new_site_speed_m_s or max((s.cruise_m_s for s in sites), default=None)
    suggested: list[Site] = []
    after: list[int] = []
    best = now.copy()
    candidates: list[Site] = []
    if suggest > 0:
        if speed is None:
            raise ValueError("no drone in the area to take the speed of new docks from: give a speed")
        candidates = candidate_sites(area, spacing_m, speed)
        table = [planner.times(c, within_s) for c in candidates]
        taken: set[int] = set()
        for _ in range(suggest):
            gains = [
                -1 if k in taken else int(weights[(t <= within_s) & ~covered].sum())
                for k, t in enumerate(table)
            ]
            if not gains or max(gains) <= 0:
                notes.append(f"no further site covers another call; {len(suggested)} suggested")
                break
            k = int(np.argmax(gains))  # first of the best: deterministic
            taken.add(k)
            site = candidates[k]
            suggested.append(
                Site(f"suggested-{len(suggested) + 1}", site.lat, site.lon, site.cruise_m_s, False)
            )
            covered |= table[k] <= within_s
            best = np.minimum(best, table[k])
            after.append(int(weights[covered].sum()))
    return CoverageResult(
        calls=int(weights.sum()),
        covered_now=covered_now,
        suggested=suggested,
        covered_after=after,
        reach_s_now=now,
        reach_s_after=best,
        points=points,
        weights=weights,
        candidates=len(candidates),
        planned=planner.planned,
        notes=notes,
    )

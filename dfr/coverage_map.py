"""The coverage heat map: time to reach each part of the area from the docks, with the past calls on it.

Drawn with OpenCV like the SITL reports (`dfr.sitl.report`, whose map frame and text helpers it uses):
cells coloured by the best time from any site (existing docks plus the suggested ones) up to a horizon,
grey beyond it; no-fly zones outlined; calls as dots, green if covered within N s today, orange if only
with the suggested docks, red if not; docks as squares, suggested sites as numbered diamonds.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from dfr.area import Area
from dfr.coverage import CoverageParams, CoverageResult, Site, dock_sites, reach_times
from dfr.planning import LocalProjection
from dfr.sitl.report import _text, _View

__all__ = ["draw_coverage"]

W, H = 1000, 860
Color = tuple[int, int, int]
BG: Color = (245, 245, 240)
FAR: Color = (215, 215, 215)
COVERED: Color = (40, 160, 40)
COVERED_LATER: Color = (0, 140, 240)
UNCOVERED: Color = (40, 40, 210)
DOCK: Color = (160, 80, 0)
ZONE_EDGE: Color = (30, 30, 190)


def _colour(t: float, within_s: float, horizon_s: float) -> Color:
    """Dark green at 0 s to yellow at N s, then orange to red at the horizon (BGR)."""
    if t <= within_s:
        f = t / within_s
        return (40, int(110 + 110 * f), int(40 + 200 * f))
    f = min(1.0, (t - within_s) / max(horizon_s - within_s, 1.0))
    return (40, int(200 - 160 * f), 240)


def draw_coverage(
    area: Area,
    result: CoverageResult,
    params: CoverageParams,
    *,
    cell_m: float = 200.0,
    horizon_s: float | None = None,
) -> NDArray[np.uint8]:
    """The heat map as a BGR image."""
    horizon = horizon_s if horizon_s is not None else 2.0 * params.within_s
    img = np.full((H, W, 3), BG, dtype=np.uint8)
    b = area.operating_area.bounds
    view = _View((b[0], b[1], b[2], b[3]), W, H - 60)
    c = area.operating_area.centroid
    proj = LocalProjection.around(float(c.x), float(c.y))
    x0, y0, x1, y1 = proj.geom_to_xy(area.operating_area).bounds
    xs = np.arange(x0 + cell_m / 2, x1, cell_m)
    ys = np.arange(y0 + cell_m / 2, y1, cell_m)
    gx, gy = np.meshgrid(xs, ys)
    lonlat = proj.to_lonlat_array(np.column_stack([gx.ravel(), gy.ravel()]))
    from shapely import contains_xy

    keep = contains_xy(area.operating_area, lonlat[:, 0], lonlat[:, 1])
    cells = lonlat[keep][:, ::-1]  # (lat, lon)
    sites: list[Site] = [*dock_sites(area)[0], *result.suggested]
    times = reach_times(area, sites, cells, params, horizon)
    overlay = img.copy()
    half_deg_lat = cell_m / 2 / 110_574.0
    half_deg_lon = cell_m / 2 / (111_320.0 * np.cos(np.radians(c.y)))
    for (lat, lon), t in zip(cells, times, strict=True):
        colour = FAR if not np.isfinite(t) else _colour(float(t), params.within_s, horizon)
        p0 = view.px(lon - half_deg_lon, lat + half_deg_lat)
        p1 = view.px(lon + half_deg_lon, lat - half_deg_lat)
        cv2.rectangle(overlay, p0, p1, colour, -1)
    img = np.asarray(cv2.addWeighted(overlay, 0.75, img, 0.25, 0), dtype=np.uint8)
    cv2.polylines(img, [view.poly(area.operating_area.exterior.coords)], True, (90, 90, 90), 2, cv2.LINE_AA)
    for z in area.zones:
        cv2.polylines(img, [view.poly(z.geometry.exterior.coords)], True, ZONE_EDGE, 1, cv2.LINE_AA)
    n = params.within_s
    for (lat, lon), now, after in zip(result.points, result.reach_s_now, result.reach_s_after, strict=True):
        colour = COVERED if now <= n else COVERED_LATER if after <= n else UNCOVERED
        cv2.circle(img, view.px(float(lon), float(lat)), 3, colour, -1, cv2.LINE_AA)
    for s in dock_sites(area)[0]:
        p = view.px(s.lon, s.lat)
        cv2.rectangle(img, (p[0] - 7, p[1] - 7), (p[0] + 7, p[1] + 7), DOCK, -1)
        _text(img, s.id, (p[0] + 10, p[1] - 6), DOCK, 0.45)
    for k, s in enumerate(result.suggested, start=1):
        p = view.px(s.lon, s.lat)
        pts = np.array([(p[0], p[1] - 10), (p[0] + 10, p[1]), (p[0], p[1] + 10), (p[0] - 10, p[1])], np.int32)
        cv2.fillPoly(img, [pts], (160, 0, 160))
        _text(img, f"+{k}", (p[0] + 12, p[1] + 5), (160, 0, 160), 0.55)
    share = f"{100 * result.share_now():.1f} %"
    more = ", ".join(f"+{k}: {100 * s:.1f} %" for k, s in enumerate(result.share_after(), start=1))
    _text(
        img, f"{area.name}: {result.calls} calls, within {n:g} s today {share}  {more}", (12, 24), size=0.55
    )
    _text(
        img,
        f"colour: time from the nearest dock (green 0 s, yellow {n:g} s, red {horizon:g} s, grey beyond); "
        "dots: calls (green covered, orange with the new docks, red not)",
        (12, H - 30),
        (60, 60, 60),
        0.4,
    )
    _text(
        img, "box: dock   diamond: suggested dock   red outline: no-fly zone", (12, H - 12), (60, 60, 60), 0.4
    )
    return img

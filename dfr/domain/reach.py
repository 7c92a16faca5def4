"""Is a report somewhere dfr could fly to? Reports far outside the operating area are refused.

A report hundreds of kilometres away (a typo, a swapped lat/lon, a feed for another county) used to be
stored, and its mission aborted at planning; an operator then saw an incident nobody could serve, and a
hostile feed could fill the queue with them. Such a report is now refused at the door (422, nothing
stored) with the distance and the margin in the reason. The margin (``area_margin_m``) keeps reports
just outside the boundary, which a drone may still see from inside, or serve with a stand-off point.
"""

from __future__ import annotations

from shapely.geometry import Point, Polygon
from shapely.ops import nearest_points

from dfr.domain.incidents import IncidentReport, RejectCode, ReportRejected
from dfr.geo import distance_m

__all__ = ["check_reach", "distance_outside_m"]


def distance_outside_m(area: Polygon, lat: float, lon: float) -> float:
    """Great-circle metres from the point to the area (0 inside or on the boundary)."""
    point = Point(lon, lat)
    if area.covers(point):
        return 0.0
    nearest, _ = nearest_points(area.exterior, point)
    return distance_m(lat, lon, nearest.y, nearest.x)


def check_reach(report: IncidentReport, area: Polygon, margin_m: float, area_name: str = "") -> None:
    """Raise `ReportRejected` (outside_area, field location) if the report is beyond the margin."""
    outside = distance_outside_m(area, report.location.lat, report.location.lon)
    if outside > margin_m:
        name = f" {area_name!r}" if area_name else ""
        raise ReportRejected(
            f"the location is {outside / 1000:.1f} km outside the operating area{name} (reports up to "
            f"{margin_m / 1000:g} km outside are taken); nothing was stored",
            "location",
            code=RejectCode.OUTSIDE_AREA,
        )

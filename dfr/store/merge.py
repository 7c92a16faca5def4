"""When a new report joins an existing incident instead of opening a new one.

Several sensors and callers report the same event within seconds: a gunshot sensor, then three 911 calls
about the shots, then an operator's manual entry. One drone should fly to one incident carrying all of
them, so the store merges a report into an open incident when all of these hold:

- **kind**: the report's kind may join the incident's kind (`JOINABLE_KINDS`):

  - a *gunshot* report joins only a *gunshot* incident. A detection is a precise, high-confidence
    escalation; folding it into, say, a 911 noise complaint nearby would hide it inside a lower-priority
    incident. It opens its own incident, and later calls attach to it;
  - a *911*, *manual* or *alpr* report joins an incident of any of those kinds *or* a gunshot incident
    (callers reporting shots the sensor already placed are the commonest duplicate of all);
  - *other* never merges: nothing is known about what it means, and two unrelated incidents wrongly
    merged are worse than one incident shown twice (an operator can merge by hand; un-merging is hard).

- **place**: the great-circle (haversine) distance from the report to the incident's location (its first
  report's) is at most ``radius_m``. The location does not drift as reports join, so a chain of reports
  cannot walk an incident across town.

- **time**: the report's ``reported_at`` lies within ``window_s`` of the span of the incident's reports,
  ``[reported_at - window, last_reported_at + window]``. The window slides with new reports, so an
  ongoing event stays one incident, and a late, out-of-order report still finds its incident.

- **state**: the incident is open and has not itself been merged into another.

If several incidents qualify, the nearest wins (then the earliest reported, then the smallest id), so
the choice is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from dfr.domain.incidents import IncidentKind
from dfr.geo import EARTH_RADIUS_M
from dfr.geo import distance_m as haversine_m  # one great-circle formula for all of dfr

__all__ = [
    "EARTH_RADIUS_M",
    "JOINABLE_KINDS",
    "MergePolicy",
    "can_join",
    "haversine_m",
    "lat_lon_bounds",
]


_CALLS = frozenset({IncidentKind.CALL_911, IncidentKind.MANUAL, IncidentKind.ALPR})

JOINABLE_KINDS: Final[dict[IncidentKind, frozenset[IncidentKind]]] = {
    IncidentKind.GUNSHOT: frozenset({IncidentKind.GUNSHOT}),
    IncidentKind.CALL_911: _CALLS | {IncidentKind.GUNSHOT},
    IncidentKind.MANUAL: _CALLS | {IncidentKind.GUNSHOT},
    IncidentKind.ALPR: _CALLS | {IncidentKind.GUNSHOT},
    IncidentKind.OTHER: frozenset(),
}
"""For a report of kind K, the kinds of open incidents it may join (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """The merge thresholds; built from `dfr.settings.Settings` (``merge_radius_m``, ``merge_window_s``)."""

    radius_m: float = 250.0
    window_s: float = 600.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius_m) and self.radius_m >= 0):
            raise ValueError(f"radius_m must be finite and >= 0, not {self.radius_m}")
        if not (math.isfinite(self.window_s) and self.window_s >= 0):
            raise ValueError(f"window_s must be finite and >= 0, not {self.window_s}")


def can_join(report_kind: IncidentKind, incident_kind: IncidentKind) -> bool:
    """Whether a report of ``report_kind`` may be merged into an incident of ``incident_kind``."""
    return incident_kind in JOINABLE_KINDS[report_kind]


def lat_lon_bounds(
    lat: float, lon: float, radius_m: float
) -> tuple[float, float, tuple[float, float] | None]:
    """A box that contains every point within ``radius_m`` of (lat, lon), for an indexable SQL pre-filter.

    Returns (min_lat, max_lat, (min_lon, max_lon) or None). The longitude range is None when the circle
    reaches a pole or crosses the antimeridian, where a simple range would be wrong; the exact haversine
    test runs on the candidates anyway, so the box only has to be large enough, never exact.
    """
    delta = radius_m / EARTH_RADIUS_M  # angular radius
    dlat = math.degrees(delta) * 1.000001 + 1e-9
    min_lat, max_lat = lat - dlat, lat + dlat
    cos_lat = math.cos(math.radians(lat))
    if min_lat <= -90 or max_lat >= 90 or math.sin(delta) >= cos_lat:
        return max(min_lat, -90.0), min(max_lat, 90.0), None
    # Widest longitude offset of a spherical cap of angular radius delta centred at this latitude.
    dlon = math.degrees(math.asin(math.sin(delta) / cos_lat)) * 1.000001 + 1e-9
    if lon - dlon < -180 or lon + dlon > 180:
        return min_lat, max_lat, None
    return min_lat, max_lat, (lon - dlon, lon + dlon)

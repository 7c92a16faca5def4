"""Planning failures.

Each failure is its own class with a stable `code`, because the caller (API, console, pilot UI)
must react differently: a target outside the area is a dispatcher error, an unreachable target needs
a manual flight, a target in a no-fly zone may be acceptable with a stand-off point.
"""

from __future__ import annotations


class PlanError(Exception):
    """Base class: the planner refused to produce a route; the message says why, for humans."""

    code = "plan_error"


class InvalidInput(PlanError, ValueError):
    """Malformed request: NaN/inf/out-of-range coordinates, empty or broken geometries."""

    code = "invalid_input"


class AltitudeOutOfLimits(PlanError):
    """Requested flight altitude is not above ground or exceeds the legal/configured maximum."""

    code = "altitude_out_of_limits"


class StartOutsideArea(PlanError):
    code = "start_outside_area"


class TargetOutsideArea(PlanError):
    code = "target_outside_area"


class StartInsideZone(PlanError):
    """The drone is inside an active no-fly zone (or cannot leave its buffer without crossing it)."""

    code = "start_inside_zone"

    def __init__(self, message: str, zone_id: str) -> None:
        super().__init__(message)
        self.zone_id = zone_id


class TargetInNoFlyZone(PlanError):
    """Target is inside an active zone's safety buffer and a stand-off point was not allowed."""

    code = "target_in_no_fly_zone"

    def __init__(self, message: str, zone_id: str, zone_name: str) -> None:
        super().__init__(message)
        self.zone_id = zone_id
        self.zone_name = zone_name


class TargetUnreachable(PlanError):
    """No path inside the operating area keeps the safety buffer from every active zone."""

    code = "target_unreachable"

"""Pure route planning: shortest safe path around no-fly zones, stand-off points, time to scene.

No I/O and no dependency on the rest of dfr, so the same code plans launches on the server, checks
pilot go-to commands and runs in tests and benchmarks unchanged.
"""

from dfr.planning.errors import (
    AltitudeOutOfLimits,
    InvalidInput,
    PlanError,
    StartInsideZone,
    StartOutsideArea,
    TargetInNoFlyZone,
    TargetOutsideArea,
    TargetUnreachable,
)
from dfr.planning.eta import eta_s, horizontal_time_s
from dfr.planning.projection import LocalProjection
from dfr.planning.route import (
    MAX_ALTITUDE_M,
    NoFlyZone,
    PlanRequest,
    RoutePlan,
    Standoff,
    path_is_clear,
    plan_route,
)

__all__ = [
    "MAX_ALTITUDE_M",
    "AltitudeOutOfLimits",
    "InvalidInput",
    "LocalProjection",
    "NoFlyZone",
    "PlanError",
    "PlanRequest",
    "RoutePlan",
    "Standoff",
    "StartInsideZone",
    "StartOutsideArea",
    "TargetInNoFlyZone",
    "TargetOutsideArea",
    "TargetUnreachable",
    "eta_s",
    "horizontal_time_s",
    "path_is_clear",
    "plan_route",
]

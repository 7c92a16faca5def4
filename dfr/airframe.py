"""Airframe profiles: what a kind of drone can do, in one file the planner, the battery model, the
autopilot settings and the simulator all read, so that they cannot disagree.

A profile (``missions/airframes/<name>.yaml``) holds the figures the planner needs (cruise and top speed,
climb and descent rates, horizontal acceleration, hover endurance) and the PX4 parameters that give that
behaviour, SIH's airframe parameters (``SIH_KDV`` drag, ``SIH_MASS``, ``SIH_T_MAX``) included where the
profile describes a simulated airframe. An area's drone names its profile (``airframe: dfr-class``);
the drone's own ``params`` are applied on top of the profile's.

Loading validates like areas and policies do: every problem with the file, the line and the field.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dfr.yamldoc import DocumentError, load_document

__all__ = ["AirframeError", "AirframeProfile", "airframe_path", "load_airframe"]

MAX_AIRFRAME_FILE_BYTES = 100_000
AIRFRAMES_DIR = "airframes"
"""Profiles live in ``missions/airframes/``, next to ``missions/areas/`` (an area names one by name)."""

Speed = Annotated[float, Field(gt=0.0, le=60.0, allow_inf_nan=False)]
ParamName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$")]


class AirframeError(DocumentError):
    """An airframe profile could not be loaded; ``problems`` lists every issue found."""

    kind = "airframe"


class AirframeProfile(BaseModel):
    """One airframe's performance and the autopilot parameters that produce it."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    description: str = ""
    cruise_m_s: Speed
    """Speed the drone is sent at (MPC_XY_CRUISE unless the params say otherwise)."""
    max_speed_m_s: Speed
    """Sustained top speed in still air (thrust at the tilt limit against drag), measured in flight."""
    climb_m_s: Speed
    """Vertical speed of the take-off and climbs (MPC_TKO_SPEED / MPC_Z_V_AUTO_UP)."""
    descent_m_s: Speed
    accel_m_s2: Annotated[float, Field(gt=0.0, le=30.0, allow_inf_nan=False)]
    """Horizontal acceleration the planner counts with (MPC_ACC_HOR)."""
    hover_endurance_s: Annotated[float, Field(gt=0.0, le=36_000.0, allow_inf_nan=False)]
    params: dict[ParamName, Annotated[float, Field(allow_inf_nan=False)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> AirframeProfile:
        if self.cruise_m_s > self.max_speed_m_s * 1.25:
            raise ValueError(
                f"cruise_m_s {self.cruise_m_s:g} is far above max_speed_m_s {self.max_speed_m_s:g}: "
                "the airframe cannot fly it"
            )
        return self

    def physical_time_s(self, route_m: float, climb_m: float) -> float:
        """The least time to cover `route_m` after climbing `climb_m`: climb at the climb rate, then
        accelerate to the top speed, cruise, and brake, each at the profile's acceleration."""
        v, a = self.max_speed_m_s, self.accel_m_s2
        ramp_m = v * v / a  # speeding up and slowing down together
        if route_m <= ramp_m:
            horizontal = 2.0 * math.sqrt(route_m / a)
        else:
            horizontal = 2.0 * v / a + (route_m - ramp_m) / v
        return climb_m / self.climb_m_s + horizontal


def airframe_path(area_dir: Path, name: str) -> Path:
    """Where the profile `name` of an area in `area_dir` lives (``<missions>/airframes/<name>.yaml``)."""
    return area_dir.parent / AIRFRAMES_DIR / f"{name}.yaml"


def pin_airframes(drones: list[dict[str, Any]], area_dir: Path) -> None:
    """Rewrite each drone entry's `airframe` (a profile name, or a file relative to `area_dir`) as an
    absolute path, for a copy of an area file written elsewhere (scenario and replay work folders)."""
    for d in drones:
        name = d.get("airframe")
        if isinstance(name, str):
            path = area_dir / name if name.endswith(".yaml") else airframe_path(area_dir, name)
            d["airframe"] = str(path.resolve())


def load_airframe(path: str | os.PathLike[str]) -> AirframeProfile:
    """Load and validate a profile; raise `AirframeError` listing every problem found."""
    profile, doc, _ = load_document(
        path,
        AirframeProfile,
        AirframeError,
        limit=MAX_AIRFRAME_FILE_BYTES,
        what="airframe file",
        keys="name:, cruise_m_s:, ...",
    )
    if doc.problems:
        raise AirframeError(doc.label, doc.problems)
    return profile

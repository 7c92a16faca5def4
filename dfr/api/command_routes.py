"""``POST /api/v1/drones/{drone_id}/commands``: a pilot takes over any drone and commands it.

For the panel and for other RTCC software. Every command except ``release`` puts the drone under
pilot control (the automation stops commanding it at once and resumes only on ``release``); each
command is audited with the signed-in pilot as the actor. See `dfr.control.commands` for the order of
checks and what each command does; a refused command changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from dfr.api.live_routes import AreaDep, DispatcherDep, FleetDep
from dfr.api.routes import StoreDep, _problem
from dfr.api.schemas import ErrorBody
from dfr.auth import PilotDep
from dfr.control.commands import Command, CommandError, PilotCommand, execute

__all__ = ["CommandResult", "DroneCommand", "router"]

router = APIRouter(prefix="/api/v1", tags=["pilot"])


class DroneCommand(BaseModel):
    """One override command. Which fields a command takes:

    - ``take_control``: none. The automation stops commanding; the drone keeps its current command.
    - ``release``: none. Hands back: a mission continues from where the drone is (to the scene, the
      orbit, or home), along a route replanned around the zones.
    - ``hold``: none. Stop and hold position.
    - ``goto``: ``lat``, ``lon``, optional ``alt_m`` (default: the current altitude). The straight
      path must not cross a no-fly zone (refused with the zone's name: go around it in steps).
    - ``orbit``: ``lat``, ``lon``, ``radius_m``; at the current altitude.
    - ``altitude``: ``alt_m``; holds position at the new altitude.
    - ``return``: none. Return to launch (PX4 RTL, straight home; refused if that crosses a zone).
    - ``land``: none. Land where it is.
    - ``refuse_preemption``: none. Keep the drone on its mission when an urgent incident is about to
      take it (policy pre-emption, announced on the mission); the incident goes without it.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"command": "hold"},
                {"command": "goto", "lat": 32.6350, "lon": -117.0800, "alt_m": 60},
                {"command": "orbit", "lat": 32.6350, "lon": -117.0800, "radius_m": 60},
            ]
        },
    )

    command: Command
    lat: float | None = Field(default=None, ge=-90.0, le=90.0, allow_inf_nan=False, description="WGS 84.")
    lon: float | None = Field(default=None, ge=-180.0, le=180.0, allow_inf_nan=False, description="WGS 84.")
    alt_m: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Metres above home: 10 m up to the area's ceiling (400 ft = 121.92 m by default).",
    )
    radius_m: float | None = Field(default=None, allow_inf_nan=False, description="Orbit radius, 20-500 m.")


class CommandResult(BaseModel):
    drone_id: str
    command: Command
    mission_id: str | None = Field(description="The mission the drone flies, if any.")
    pilot_control: bool = Field(description="The drone is under pilot control after this command.")
    detail: str = Field(description="What the drone is doing now, for people.")


_EXAMPLES: dict[str, Any] = {
    "take_control": {"summary": "Take control", "value": {"command": "take_control"}},
    "hold": {"summary": "Hold position", "value": {"command": "hold"}},
    "goto": {
        "summary": "Go to a point",
        "value": {"command": "goto", "lat": 32.6350, "lon": -117.0800, "alt_m": 60},
    },
    "orbit": {
        "summary": "Orbit a point",
        "value": {"command": "orbit", "lat": 32.6350, "lon": -117.0800, "radius_m": 60},
    },
    "altitude": {"summary": "Change altitude", "value": {"command": "altitude", "alt_m": 90}},
    "return": {"summary": "Return to launch", "value": {"command": "return"}},
    "land": {"summary": "Land now", "value": {"command": "land"}},
    "release": {"summary": "Hand back to the automation", "value": {"command": "release"}},
}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in."},
    403: {"model": ErrorBody, "description": "Signed in without the pilot or admin role."},
    404: {"model": ErrorBody, "description": "No drone with this id in the area."},
    409: {
        "model": ErrorBody,
        "description": "Not possible now: the drone is on the ground (hold, goto, orbit, altitude, return, "
        "land), a release without pilot control, no safe route to continue from where the drone is, or a "
        "refusal of a pre-emption nobody offered.",
    },
    422: {
        "model": ErrorBody,
        "description": "Bad input, nothing changed: a missing or non-finite field, a point outside the "
        "area or in a no-fly zone (named), a path or climb into a zone, altitude or radius out of limits.",
    },
    502: {"model": ErrorBody, "description": "The autopilot refused the command (the pilot keeps control)."},
    503: {"model": ErrorBody, "description": "The drone is not connected, or the service is not ready."},
}


@router.post(
    "/drones/{drone_id}/commands",
    response_model=CommandResult,
    summary="Pilot override: take control, hold, go to, orbit, altitude, return, land, release",
    responses=_RESPONSES,
)
async def command(
    drone_id: str,
    body: Annotated[DroneCommand, Body(openapi_examples=_EXAMPLES)],
    who: PilotDep,
    area: AreaDep,
    fleet: FleetDep,
    dispatcher: DispatcherDep,
    store: StoreDep,
) -> CommandResult:
    cmd = PilotCommand(body.command, body.lat, body.lon, body.alt_m, body.radius_m)
    try:
        outcome = await execute(
            area=area,
            fleet=fleet,
            dispatcher=dispatcher,
            store=store,
            drone_id=drone_id,
            cmd=cmd,
            who=who.username,
        )
    except CommandError as e:
        raise HTTPException(e.status, detail=_problem(e.code, e.reason, e.field)) from None
    return CommandResult(
        drone_id=outcome.drone_id,
        command=outcome.command,
        mission_id=outcome.mission_id,
        pilot_control=outcome.pilot_control,
        detail=outcome.detail,
    )

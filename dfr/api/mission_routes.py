"""The /api/v1/missions routes: read-only views of missions, their timelines and their geometry.

Missions are created and moved on by the dispatcher, never by HTTP clients, so there is no write route
here; a console that approves or recalls will go through the dispatcher, which applies its policy first.

The handlers get the `MissionStore` from ``request.app.state.missions`` (see `get_missions`). The app's
lifespan is expected to put one there next to ``app.state.store``, e.g.::

    app.state.missions = MissionStore(app.state.store)

and to reset it to None at shutdown; until then every route answers 503 ``not_ready``, like the incident
routes do before the store is open. Refusals use the same body as the rest of the API (see
dfr.api.schemas.Problem); a malformed mission id is a 422 naming ``mission_id`` once the app's
validation handler is installed (`dfr.api.create_app` does that).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dfr.api.routes import _problem
from dfr.api.schemas import MAX_OFFSET, ErrorBody
from dfr.auth import READERS, require_role
from dfr.domain.missions import Mission, MissionEvent, MissionState
from dfr.store import MAX_PAGE, MissionNotFound, MissionStore

__all__ = ["MissionEvents", "MissionPage", "get_missions", "router"]

# Every route here is a read: any signed-in viewer, pilot or admin (not a feed account).
router = APIRouter(prefix="/api/v1", tags=["missions"], dependencies=[Depends(require_role(*READERS))])

GEOJSON_MEDIA_TYPE = "application/geo+json"


class MissionPage(BaseModel):
    missions: list[Mission]
    total: int = Field(description="Missions matching the filters, over all pages.")
    limit: int
    offset: int


class MissionEvents(BaseModel):
    mission_id: str
    events: list[MissionEvent] = Field(description="Creation first, then every change, in order.")


def get_missions(request: Request) -> MissionStore:
    """The app's `MissionStore` (``app.state.missions``); 503 while it is not set up."""
    missions: MissionStore | None = getattr(request.app.state, "missions", None)
    if missions is None:
        raise HTTPException(503, detail=_problem("not_ready", "the mission store is not open"))
    return missions


MissionsDep = Annotated[MissionStore, Depends(get_missions)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No mission with this id."}
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "A path or query parameter is invalid; `field` names it."},
    503: {"model": ErrorBody, "description": "The mission store is not open yet."},
}


def _not_found(mission_id: uuid.UUID) -> HTTPException:
    return HTTPException(404, detail=_problem("not_found", f"no mission with id {mission_id}", "mission_id"))


@router.get(
    "/missions",
    response_model=MissionPage,
    summary="List missions, newest first",
    responses=_INVALID,
)
async def list_missions(
    missions: MissionsDep,
    state: Annotated[MissionState | None, Query(description="Only missions in this state.")] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="Only missions that have not ended (not terminal).")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> MissionPage:
    found = await missions.list(state, open_only, limit, offset)
    total = await missions.count(state, open_only)
    return MissionPage(missions=found, total=total, limit=limit, offset=offset)


@router.get(
    "/missions/{mission_id}",
    response_model=Mission,
    summary="One mission",
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_mission(mission_id: uuid.UUID, missions: MissionsDep) -> Mission:
    mission = await missions.get(str(mission_id))
    if mission is None:
        raise _not_found(mission_id)
    return mission


@router.get(
    "/missions/{mission_id}/geojson",
    summary="The mission on a map: planned route, flown track, target and stand-off",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection; each feature's `properties.kind` says what it is.",
            "content": {GEOJSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **_NOT_FOUND,
        **_INVALID,
    },
)
async def get_mission_geojson(mission_id: uuid.UUID, missions: MissionsDep) -> JSONResponse:
    try:
        collection = await missions.as_geojson(str(mission_id))
    except MissionNotFound:
        raise _not_found(mission_id) from None
    return JSONResponse(collection, media_type=GEOJSON_MEDIA_TYPE)


@router.get(
    "/missions/{mission_id}/events",
    response_model=MissionEvents,
    summary="The mission's timeline",
    responses={**_NOT_FOUND, **_INVALID},
)
async def get_mission_events(mission_id: uuid.UUID, missions: MissionsDep) -> MissionEvents:
    try:
        events = await missions.events(str(mission_id))
    except MissionNotFound:
        raise _not_found(mission_id) from None
    return MissionEvents(mission_id=str(mission_id), events=events)

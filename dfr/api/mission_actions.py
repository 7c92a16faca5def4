"""Operator actions on missions: approve or decline a launch waiting for approval, recall a flight.

Each action goes through the dispatcher (which owns the launch decision) and is recorded as a mission
event and an audit row naming the signed-in pilot or admin who did it (the `actor` is the account, never
a field the caller fills in).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AfterValidator, BaseModel, Field

from dfr.api.routes import _problem
from dfr.auth import PilotDep
from dfr.dispatch.dispatcher import Dispatcher
from dfr.domain.incidents import free_text
from dfr.domain.missions import InvalidTransition, Mission, MissionState
from dfr.store import MissionNotFound

router = APIRouter(prefix="/api/v1", tags=["missions"])


class Action(BaseModel):
    # shown to operators in the mission's events and audit: no control or bidi-override characters
    reason: Annotated[str, AfterValidator(free_text)] | None = Field(default=None, max_length=500)


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher | None = getattr(request.app.state, "dispatcher", None)
    if dispatcher is None:
        raise HTTPException(503, detail=_problem("not_ready", "the dispatcher is not running"))
    return dispatcher


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


async def _pending(dispatcher: Dispatcher, mission_id: str) -> Mission:
    mission = await dispatcher.missions.get(mission_id)
    if mission is None:
        raise HTTPException(404, detail=_problem("not_found", f"no mission {mission_id}", "mission_id"))
    if mission.state is not MissionState.PENDING_APPROVAL:
        raise HTTPException(
            409,
            detail=_problem("conflict", f"mission is {mission.state.value}, not pending_approval", "state"),
        )
    return mission


@router.post("/missions/{mission_id}/approve", response_model=Mission, summary="Approve a waiting launch")
async def approve(who: PilotDep, mission_id: uuid.UUID, body: Action, dispatcher: DispatcherDep) -> Mission:
    await _pending(dispatcher, str(mission_id))
    try:
        return await dispatcher.approve(str(mission_id), actor=who.username)
    except (InvalidTransition, MissionNotFound) as e:
        raise HTTPException(409, detail=_problem("conflict", str(e))) from e


@router.post("/missions/{mission_id}/decline", response_model=Mission, summary="Decline a waiting launch")
async def decline(who: PilotDep, mission_id: uuid.UUID, body: Action, dispatcher: DispatcherDep) -> Mission:
    await _pending(dispatcher, str(mission_id))
    try:
        return await dispatcher.decline(str(mission_id), actor=who.username, reason=body.reason or "declined")
    except (InvalidTransition, MissionNotFound) as e:
        raise HTTPException(409, detail=_problem("conflict", str(e))) from e


@router.post("/missions/{mission_id}/recall", summary="Send a flying mission's drone home along its route")
async def recall(
    who: PilotDep, mission_id: uuid.UUID, body: Action, dispatcher: DispatcherDep
) -> dict[str, str]:
    try:
        await dispatcher.recall(str(mission_id), actor=who.username)
    except LookupError as e:
        raise HTTPException(409, detail=_problem("conflict", str(e), "mission_id")) from e
    return {"status": "recalling"}

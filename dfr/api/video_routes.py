"""Live video over WHEP (one endpoint per drone), mission evidence files, and a minimal viewer page.

WHEP (RFC 9725): the viewer POSTs an SDP offer (``Content-Type: application/sdp``) to
``/api/v1/drones/{drone_id}/whep`` and gets ``201 Created`` with the SDP answer and a ``Location`` naming
its session; DELETE on that URL ends it. Answers are sent once ICE gathering is complete (no trickle ICE),
so one round trip sets up the stream. Refusals use the API's problem body: 400 for an offer that cannot
be answered (the reason says why), 403 for ending another account's session (admins may), 404 for an
unknown drone or session, 413 for an oversized body, 415 for another content type, 429 when the account
holds its share of sessions, 503 at the viewer limit (the last slots are kept for pilots and admins) or
during shutdown.

Evidence: a mission's recording may come in parts (the service was restarted during the mission; a part
cut short by a killed service is kept, hashed and marked ``partial``). ``GET /api/v1/missions/{id}/video``
serves the latest part, ``?part=N`` (1-based) any of them, each found through its audit record (never a
path from the request); ``.../video/meta`` gives the latest part's SHA-256 and size and ``parts``, every
part's.
"""

from __future__ import annotations

import uuid
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse

from dfr.api.routes import StoreDep, _problem, read_limited_body
from dfr.auth import COMMANDERS, Principal, Role, ViewerDep
from dfr.video.hub import (
    AccountLimit,
    BadOffer,
    HubClosed,
    NotYours,
    TooManyViewers,
    UnknownDrone,
    VideoHub,
    Viewer,
)
from dfr.video.recording import Evidence, evidence_parts
from dfr.video.service import Video

__all__ = ["MAX_SDP_BYTES", "router"]

MAX_SDP_BYTES = 65_536
"""A browser's offer is 3-10 KB; anything this large is not an offer."""

DroneIdPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
router = APIRouter()
_SDP = "application/sdp"


def _video(request: Request) -> Video:
    video: Video | None = getattr(request.app.state, "video", None)
    if video is None:
        raise HTTPException(503, detail=_problem("not_ready", "video is not running"))
    return video


def _hub(request: Request) -> VideoHub:
    return _video(request).hub


def _viewer(who: Principal) -> Viewer:
    return Viewer(who.username, commander=who.role in COMMANDERS, admin=who.role is Role.ADMIN)


def _unknown_drone(drone_id: str) -> HTTPException:
    return HTTPException(404, detail=_problem("not_found", f"no drone {drone_id!r} in this area", "drone_id"))


@router.post(
    "/api/v1/drones/{drone_id}/whep",
    status_code=201,
    summary="Watch a drone's live video (WHEP: SDP offer in, SDP answer out)",
    responses={
        201: {"content": {_SDP: {}}, "description": "The SDP answer; Location names the session."},
        429: {"description": "This account already holds video_max_viewers_per_account sessions."},
        503: {"description": "Every session slot open to this role is taken, or video is shutting down."},
    },
)
async def whep_offer(drone_id: DroneIdPath, request: Request, who: ViewerDep) -> Response:
    hub = _hub(request)
    if drone_id not in hub.drones:
        raise _unknown_drone(drone_id)
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != _SDP:
        raise HTTPException(
            415,
            detail=_problem(
                "unsupported_media_type", f"the offer must be {_SDP}, not {media_type or 'untyped'}"
            ),
        )
    body = await read_limited_body(request, MAX_SDP_BYTES)
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, detail=_problem("bad_offer", "the SDP offer is not UTF-8 text")) from None
    if not offer.lstrip().startswith("v=0"):
        raise HTTPException(400, detail=_problem("bad_offer", "not an SDP offer (it must start with v=0)"))
    try:
        session_id, answer = await hub.answer(drone_id, offer, _viewer(who))
    except AccountLimit as e:
        raise HTTPException(
            429, detail=_problem("rate_limited", str(e)), headers={"Retry-After": "5"}
        ) from None
    except BadOffer as e:
        raise HTTPException(400, detail=_problem("bad_offer", str(e))) from None
    except UnknownDrone:
        raise _unknown_drone(drone_id) from None
    except (TooManyViewers, HubClosed) as e:
        raise HTTPException(503, detail=_problem("unavailable", str(e))) from None
    return Response(
        content=answer,
        status_code=201,
        media_type=_SDP,
        headers={"Location": f"/api/v1/drones/{drone_id}/whep/{session_id}"},
    )


@router.delete(
    "/api/v1/drones/{drone_id}/whep/{session_id}",
    status_code=204,
    summary="Stop watching (end a session: one's own; admins any)",
    responses={403: {"description": "The session is another account's (only admins may end it)."}},
)
async def whep_end(
    drone_id: DroneIdPath, session_id: uuid.UUID, request: Request, who: ViewerDep
) -> Response:
    try:
        ended = await _hub(request).end(str(session_id), drone_id, by=_viewer(who))
    except NotYours as e:
        raise HTTPException(403, detail=_problem("forbidden", str(e), "session_id")) from None
    if not ended:
        raise HTTPException(
            404, detail=_problem("not_found", f"no video session {session_id} for {drone_id}", "session_id")
        )
    return Response(status_code=204)


async def _evidence(request: Request, store: Any, mission_id: uuid.UUID) -> list[Evidence]:
    video = _video(request)
    parts = [p for p in await evidence_parts(store, str(mission_id), video.evidence_dir) if p.path.is_file()]
    if not parts:
        raise HTTPException(
            404, detail=_problem("not_found", f"no recording for mission {mission_id}", "mission_id")
        )
    return parts


@router.get("/api/v1/missions/{mission_id}/video", summary="A mission's recorded video (fragmented MP4)")
async def mission_video(
    mission_id: uuid.UUID,
    request: Request,
    store: StoreDep,
    _: ViewerDep,
    part: Annotated[
        int | None, Query(ge=1, le=10_000, description="1-based part (default: the latest)")
    ] = None,
) -> Response:
    parts = await _evidence(request, store, mission_id)
    if part is not None and part > len(parts):
        raise HTTPException(
            404, detail=_problem("not_found", f"mission {mission_id} has {len(parts)} part(s)", "part")
        )
    found = parts[-1] if part is None else parts[part - 1]
    return FileResponse(found.path, media_type="video/mp4", filename=found.path.name)


def _part(p: Evidence) -> dict[str, Any]:
    return {"part": p.part, "name": p.path.name, "sha256": p.sha256, "bytes": p.bytes, "frames": p.frames,
            "partial": p.partial}  # fmt: skip


@router.get(
    "/api/v1/missions/{mission_id}/video/meta", summary="A mission recording's parts: SHA-256 and size"
)
async def mission_video_meta(
    mission_id: uuid.UUID, request: Request, store: StoreDep, _: ViewerDep
) -> dict[str, Any]:
    parts = await _evidence(request, store, mission_id)
    latest = parts[-1]
    return {"mission_id": str(mission_id), "name": latest.path.name, "sha256": latest.sha256,
            "bytes": latest.bytes, "frames": latest.frames, "parts": [_part(p) for p in parts]}  # fmt: skip


def _web(name: str) -> str:
    return resources.files("dfr.video").joinpath("web", name).read_text("utf-8")


_PAGE_HEADERS = {
    # The panel's rules: scripts only from this origin (none inline), no framing, no other connections.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; connect-src 'self'; "
    "style-src 'self' 'unsafe-inline'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@router.get("/video/whep.js", include_in_schema=False)
async def whep_js() -> Response:
    """The reusable WHEP client module (the panel imports it)."""
    return Response(_web("whep.js"), media_type="text/javascript", headers=_PAGE_HEADERS)


@router.get("/video/viewer.js", include_in_schema=False)
async def viewer_js() -> Response:
    return Response(_web("viewer.js"), media_type="text/javascript", headers=_PAGE_HEADERS)


@router.get("/video/{drone_id}", include_in_schema=False)
async def viewer_page(drone_id: DroneIdPath, request: Request) -> HTMLResponse:
    """The page itself holds no data (the drone id comes from its URL); the stream needs a sign-in."""
    if drone_id not in _hub(request).drones:
        raise _unknown_drone(drone_id)
    return HTMLResponse(_web("viewer.html"), headers=_PAGE_HEADERS)

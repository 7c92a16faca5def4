"""Live views for consoles: the event stream, the drones, the docks and the area map.

``GET /api/v1/stream`` is Server-Sent Events (``text/event-stream``), chosen over WebSockets because
the data only flows one way, browsers reconnect an ``EventSource`` by themselves, and it passes through
ordinary HTTP proxies. Each bus event becomes::

    event: mission | telemetry | incident | overflow
    data: <one line of JSON>

with a comment line (``: heartbeat``) after 15 s without events, so that proxies and load balancers
do not close an idle stream and a client can tell a quiet controller from a dead connection. The
stream starts with ``: connected``, sent only once the stream is subscribed: a client that waits for it
misses nothing published afterwards. It sends what happens from then on, not history, so a client
opens the stream first and then reads the current state (``/drones``, ``/missions?open=true``); an
``overflow`` event (the client read too slowly and lost events) means: read the state again.

A stream ends when the client disconnects and when the server shuts down. The latter needs help:
uvicorn waits for every open response to finish before it stops, and a live stream never finishes by
itself, so a server must be run as `LiveServer` (or call `end_streams` when it begins to stop).

The other routes are plain JSON reads of the area file and the fleet's latest telemetry. Handlers get
their objects from ``request.app.state`` (``bus``, ``fleet``, ``dispatcher``, ``area``); until the
service has put them there, they answer 503 ``not_ready`` like the rest of the API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import uvicorn
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from dfr.api.routes import _problem
from dfr.api.schemas import ErrorBody
from dfr.area import Area
from dfr.auth import READERS, require_role
from dfr.dispatch.dispatcher import Dispatcher
from dfr.fleet.fleet import Fleet
from dfr.live.bus import EventBus, Subscription
from dfr.live.events import Event, wire

__all__ = [
    "HEARTBEAT_S",
    "DockList",
    "DockView",
    "DroneList",
    "DroneView",
    "LiveServer",
    "end_streams",
    "format_sse",
    "router",
]

# Every route here is a read: any signed-in viewer, pilot or admin (not a feed account).
router = APIRouter(prefix="/api/v1", tags=["live"], dependencies=[Depends(require_role(*READERS))])

HEARTBEAT_S: Final = 15.0
"""Idle time after which the stream sends a comment; ``app.state.sse_heartbeat_s`` overrides it."""

RETRY_MS: Final = 3000
"""How long an ``EventSource`` waits before reconnecting after the stream ends."""

SSE_QUEUE_SIZE: Final = 512
"""Events a stream may fall behind by before it loses the oldest (and gets an ``overflow`` event)."""

GEOJSON_MEDIA_TYPE: Final = "application/geo+json"

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The service is still starting (or stopping)."}
}


# ---------------------------------------------------------------------------------------------------------
# Dependencies


def _state(request: Request, name: str, what: str) -> Any:
    value = getattr(request.app.state, name, None)
    if value is None:
        raise HTTPException(503, detail=_problem("not_ready", f"the {what} is not running"))
    return value


def get_bus(request: Request) -> EventBus:
    bus: EventBus = _state(request, "bus", "live event bus")
    return bus


def get_fleet(request: Request) -> Fleet:
    fleet: Fleet = _state(request, "fleet", "fleet")
    return fleet


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = _state(request, "dispatcher", "dispatcher")
    return dispatcher


def get_area(request: Request) -> Area:
    area: Area = _state(request, "area", "operating area")
    return area


BusDep = Annotated[EventBus, Depends(get_bus)]
FleetDep = Annotated[Fleet, Depends(get_fleet)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
AreaDep = Annotated[Area, Depends(get_area)]


# ---------------------------------------------------------------------------------------------------------
# The stream


class _Streams:
    """The open streams of one app, so that a stopping server can end them."""

    def __init__(self) -> None:
        self.open: set[Subscription] = set()
        self.ending = False

    def end(self) -> None:
        self.ending = True
        for sub in list(self.open):
            sub.close()


def _streams(app: Starlette) -> _Streams:
    streams: _Streams | None = getattr(app.state, "live_streams", None)
    if streams is None:
        streams = _Streams()
        app.state.live_streams = streams
    return streams


def end_streams(app: Starlette) -> None:
    """End every open ``/stream`` response of `app` (each finishes cleanly); later ones end at once."""
    _streams(app).end()


class LiveServer(uvicorn.Server):
    """A uvicorn server that ends the live streams when it begins to shut down.

    uvicorn's shutdown waits, without a time limit, for open responses to complete, and an SSE stream
    never completes on its own: without this, the first Ctrl+C (or ``should_exit``) would hang until
    every console closed its page.

    It also turns off uvicorn's forwarded-header handling, which believes ``X-Forwarded-For`` from any
    loopback peer: which proxies to believe is dfr's setting (`dfr.api.clients`, off by default).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        config.proxy_headers = False
        super().__init__(config)

    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.app
        if isinstance(app, Starlette):
            end_streams(app)
        await super().shutdown(sockets)


def format_sse(event: Event) -> str:
    """One event in SSE framing (`dfr.live.events.wire`: JSON escapes newlines, so ``data`` is always a
    single line)."""
    kind, data = wire(event)
    return f"event: {kind}\ndata: {data}\n\n"


async def _sse(request: Request, bus: EventBus) -> AsyncIterator[str]:
    """The body of one stream. Subscribes on its first step (after the headers are sent), so that a
    subscription exists only while the response is really being sent and is always removed after."""
    streams = _streams(request.app)
    heartbeat = float(getattr(request.app.state, "sse_heartbeat_s", HEARTBEAT_S))
    client = request.client
    name = f"sse {client.host}:{client.port}" if client else "sse"
    sub = bus.subscribe(name, SSE_QUEUE_SIZE)
    streams.open.add(sub)
    if streams.ending:
        sub.close()
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(sub.get(), heartbeat)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if event is None:  # the bus closed or the server is stopping
                return
            try:
                frame = format_sse(event)
            except Exception:  # the bus's failing-subscriber policy: logged, counted, next event
                bus.subscriber_failed(name, event)
                continue
            yield frame
    finally:
        sub.close()
        streams.open.discard(sub)


@router.get(
    "/stream",
    summary="Live events (Server-Sent Events): mission changes, drone telemetry, incidents",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`; see the module documentation for the events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_NOT_READY,
    },
)
async def stream(request: Request, bus: BusDep) -> StreamingResponse:
    return StreamingResponse(
        _sse(request, bus),
        media_type="text/event-stream",
        # no-transform / X-Accel-Buffering: proxies must pass each event on at once, not buffer them
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


# ---------------------------------------------------------------------------------------------------------
# Drones, docks, area


class DroneView(BaseModel):
    id: str
    name: str
    dock: str = Field(description="Id of the dock the drone is based at.")
    connected: bool = Field(description="The controller has a live MAVLink link to it.")
    busy: bool = Field(description="Assigned to a mission that has not ended.")
    mission_id: str | None = Field(description="The mission it is flying, if busy.")
    telemetry: dict[str, Any] | None = Field(
        description="Latest telemetry snapshot (as in `telemetry` events); null if it never connected."
    )
    telemetry_age_s: float | None = Field(description="Seconds since the last telemetry update.")
    pilot_control: bool = Field(default=False, description="A pilot has taken it from the automation.")
    pilot_by: str | None = Field(default=None, description="Username of the pilot in control, if any.")
    not_ready: str | None = Field(
        default=None,
        description="Why this docked drone cannot launch at once (e.g. its launch parameters are still being "
        "set on the autopilot), or null when it can.",
    )
    ready_in_s: float | None = Field(
        default=None,
        description="Seconds until the drone, charging on its dock, is ready again (0: ready); null when "
        "it is not on a charging dock or its battery is unknown.",
    )


class DroneList(BaseModel):
    drones: list[DroneView] = Field(description="Every drone of the area, in file order.")


class DockView(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    alt_amsl_m: float
    drones: list[str] = Field(description="Ids of the drones based here.")


class DockList(BaseModel):
    docks: list[DockView]


def _drone_view(area: Area, fleet: Fleet, dispatcher: Dispatcher, drone_id: str) -> DroneView:
    cfg = area.drone(drone_id)
    drone = fleet.drones.get(drone_id)
    mission_id = dispatcher.busy.get(drone_id)
    updated = drone.state.updated_at if drone is not None else 0.0
    return DroneView(
        id=cfg.id,
        name=cfg.name,
        dock=cfg.dock,
        connected=bool(drone is not None and drone.state.connected),
        busy=mission_id is not None,
        mission_id=mission_id,
        telemetry=drone.state.snapshot() if drone is not None else None,
        telemetry_age_s=round(time.monotonic() - updated, 2) if updated else None,
        pilot_control=dispatcher.pilot_of(drone_id) is not None,
        pilot_by=dispatcher.pilot_of(drone_id),
        ready_in_s=dispatcher.ready_in_s(drone_id),
        not_ready=dispatcher.not_ready(drone_id),
    )


@router.get("/drones", response_model=DroneList, summary="Every drone: link, assignment, telemetry")
async def list_drones(area: AreaDep, fleet: FleetDep, dispatcher: DispatcherDep) -> DroneList:
    return DroneList(drones=[_drone_view(area, fleet, dispatcher, d.id) for d in area.drones])


@router.get(
    "/drones/{drone_id}",
    response_model=DroneView,
    summary="One drone",
    responses={404: {"model": ErrorBody, "description": "No drone with this id in the area."}, **_NOT_READY},
)
async def get_drone(drone_id: str, area: AreaDep, fleet: FleetDep, dispatcher: DispatcherDep) -> DroneView:
    try:
        return _drone_view(area, fleet, dispatcher, drone_id)
    except KeyError:
        known = ", ".join(d.id for d in area.drones) or "none"
        reason = f"no drone {drone_id[:80]!r} in area {area.name!r} (drones: {known})"
        raise HTTPException(404, detail=_problem("not_found", reason, "drone_id")) from None


@router.get("/docks", response_model=DockList, summary="The docks and the drones based at each")
async def list_docks(area: AreaDep) -> DockList:
    return DockList(
        docks=[
            DockView(
                id=d.id,
                name=d.name,
                lat=d.lat,
                lon=d.lon,
                alt_amsl_m=d.alt_amsl_m,
                drones=[dr.id for dr in area.drones_at(d.id)],
            )
            for d in area.docks
        ]
    )


@router.get(
    "/area",
    summary="The operating area as GeoJSON: boundary, no-fly zones (with altitude bands), docks",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "A GeoJSON FeatureCollection; `properties.role` says what each feature is.",
            "content": {GEOJSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **_NOT_READY,
    },
)
async def get_area_geojson(area: AreaDep) -> JSONResponse:
    return JSONResponse(area.to_geojson(), media_type=GEOJSON_MEDIA_TYPE)

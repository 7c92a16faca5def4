"""`dfr serve`: the whole controller in one process — HTTP API, MQTT ingest, fleet, dispatcher.

Start-up order: store (migrated) → fleet connections → dispatcher (resumes open missions) → HTTP.
Shutdown runs in reverse, staged, on SIGTERM or SIGINT alike (`dfr.shutdown`): stop taking requests
(HTTP, then MQTT), finish and hash the recordings (audited), stop the live feed, stop supervising, close
MAVLink, close the database. Airborne drones are left to their autopilots: they keep their last command
and, once the link is gone for ``COM_DL_LOSS_T``, fly their data-link-loss failsafe (``NAV_DLL_ACT``,
RTL by default); a restarted service resumes their missions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from dfr.api.app import create_app
from dfr.api.live_routes import LiveServer  # live data
from dfr.api.live_routes import router as live_router  # live data
from dfr.api.video_routes import router as video_router  # live video
from dfr.area import Area, load_area
from dfr.dispatch.dispatcher import Dispatcher
from dfr.dispatch.policy import Policy, load_policy
from dfr.fleet.fleet import Fleet, default_links
from dfr.ingest.lifespan import mqtt_ingest_task
from dfr.live import EventBus  # live data
from dfr.live.service import Live  # live data
from dfr.settings import Settings
from dfr.shutdown import StopSignals
from dfr.store import Store
from dfr.store.merge import MergePolicy
from dfr.store.missions import MissionStore
from dfr.supervision import Supervisor
from dfr.video.service import Video  # live video

log = logging.getLogger(__name__)


class QuietServer(LiveServer):
    """A uvicorn server (ending live streams on shutdown) that installs no signal handlers: the command
    running it owns SIGTERM/SIGINT (`dfr.shutdown.StopSignals`) and stops it with ``should_exit``.
    uvicorn's own handlers would re-raise SIGTERM after it stops, killing the process before this
    module's shutdown runs."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Service:
    settings: Settings
    area: Area
    policy: Policy
    store: Store
    missions: MissionStore
    fleet: Fleet
    dispatcher: Dispatcher
    app: FastAPI


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Service]:
    """Everything but the HTTP server, started and stopped in order (used by `serve` and by tests)."""
    area = load_area(Path(settings.area))
    policy = load_policy(Path(settings.policy))
    store = await Store.open(
        settings.database_url,
        policy=MergePolicy(radius_m=settings.merge_radius_m, window_s=settings.merge_window_s),
    )
    missions = MissionStore(store)
    fleet = Fleet(
        default_links([d.id for d in area.drones], settings.mavlink_base_port, settings.mavlink_host)
    )
    bus = EventBus()  # the one live path: ingests, dispatcher and telemetry publish; SSE, MQTT, video read
    dispatcher = Dispatcher(
        area=area,
        policy=policy,
        missions=missions,
        fleet=fleet,
        time_scale=settings.time_scale,
        policy_name=Path(settings.policy).stem,
        bus=bus,
    )
    live = Live(settings, fleet, dispatcher)  # live data: telemetry feed, MQTT out
    video: Video | None = None  # live video: WHEP hub and evidence recorder, started below
    supervisor = Supervisor("dfr")  # named long-lived parts, restarted when they die; shown by healthz
    try:
        await fleet.start(supervisor)
        live.start(supervisor)  # live data: before the dispatcher, so the missions it resumes are published
        await dispatcher.start(supervisor)
        app = create_app(settings, store)
        app.state.bus = bus  # HTTP ingest publishes incident events; the stream and healthz read it
        app.state.supervisor = supervisor
        app.state.missions = missions
        app.state.dispatcher = dispatcher
        app.state.fleet = fleet
        app.state.ingest_hooks.append(dispatcher.submit)
        from dfr.api.mission_actions import router as mission_actions_router
        from dfr.api.mission_routes import router as mission_router

        app.include_router(mission_router)
        app.include_router(mission_actions_router)
        # live data: SSE stream and drone/dock/area views
        app.state.area = area
        app.include_router(live_router)
        from dfr.api.command_routes import router as command_router  # pilot override commands

        app.include_router(command_router)
        from dfr.api.panel_routes import install_panel  # web panel: /, /panel/*, /api/v1/panel/config

        install_panel(app)
        # live video: one source per drone fanned out over WHEP, each mission recorded as evidence
        video = Video(settings, area, fleet, dispatcher.busy, missions, bus)
        await video.start(supervisor)
        app.state.video = video
        app.include_router(video_router)
        async with mqtt_ingest_task(
            settings, store, [dispatcher.submit], bus=bus, supervisor=supervisor
        ) as mqtt:
            app.state.mqtt_ingest = mqtt
            yield Service(settings, area, policy, store, missions, fleet, dispatcher, app)
    finally:
        if video is not None:  # live video: finish recordings (store still open), close every viewer
            await video.close()
        await live.stop()  # live data: stops feeding and publishing, ends open streams
        await dispatcher.stop()
        await fleet.stop()
        await supervisor.stop()
        await store.close()


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down in stages (see the module docstring) and return."""
    with StopSignals() as stop:
        async with running_service(settings) as svc:
            config = uvicorn.Config(
                svc.app, host=settings.http_host, port=settings.http_port, log_level="info", lifespan="on"
            )
            server = QuietServer(config)  # ends SSE streams on shutdown; the signals are ours (StopSignals)
            http = asyncio.create_task(server.serve(), name="http-server")
            stopping = asyncio.create_task(stop.wait(), name="stop-signals")
            await asyncio.wait({http, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            # Stage 1: stop taking requests (uvicorn closes its sockets, finishes those in flight).
            server.should_exit = True
            await http
        # Leaving `running_service` ran the rest: MQTT, recordings, live feed, dispatcher, fleet, store.
    log.info("dfr serve stopped")


@contextlib.asynccontextmanager
async def http_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `app` with uvicorn in this event loop (a named task); yields the base URL."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = QuietServer(config)  # ends SSE streams on shutdown; leaves signals to the command
    task = asyncio.create_task(server.serve(), name="http-server")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task

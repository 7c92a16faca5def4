"""The video side of one running service: mission watch, hub, recorder, with one start and one close.

Kept here so that `dfr.service.running_service` stays a few lines: build `Video` after the fleet, the
dispatcher and the live bus exist, `start` it, put it on ``app.state.video``, and `close` it before the
dispatcher stops (recordings are finished and audited while the store is still open).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from aiortc.mediastreams import MediaStreamTrack

from dfr.area import Area
from dfr.fleet.drone import DroneState
from dfr.fleet.fleet import Fleet
from dfr.live.bus import EventBus
from dfr.settings import Settings
from dfr.store.missions import MissionStore
from dfr.supervision import Supervisor
from dfr.video.encoding import auto_bitrate
from dfr.video.hub import VideoHub
from dfr.video.recording import EvidenceRecorder
from dfr.video.sources import SimCameraTrack, SourceConfig, UrlCameraTrack
from dfr.video.watch import MissionWatch
from sim.camera import GroundRenderer

__all__ = ["Video"]

log = logging.getLogger(__name__)


class Video:
    """Watch + hub + (if enabled) recorder of one service."""

    def __init__(
        self,
        settings: Settings,
        area: Area,
        fleet: Fleet,
        busy: Mapping[str, str],
        missions: MissionStore,
        bus: EventBus,
    ) -> None:
        self.settings = settings
        self.area = area
        self.fleet = fleet
        self.config = SourceConfig(
            width=settings.video_width,
            height=settings.video_height,
            fps=settings.video_fps,
            overlay=settings.video_overlay,
            transit_mode=settings.video_transit_mode,
        )
        self.evidence_dir = Path(settings.video_evidence_dir)
        self.watch = MissionWatch(bus, busy, missions)
        self.hub = VideoHub(
            {d.id for d in area.drones},
            self.make_source,
            max_sessions=settings.video_max_viewers,
            max_per_account=settings.video_max_viewers_per_account,
            commander_slots=settings.video_commander_slots,
            ice_servers=list(settings.video_ice_servers),
            bitrate=settings.video_bitrate_kbps * 1000
            or auto_bitrate(settings.video_width, settings.video_height, settings.video_fps),
        )
        self.recorder: EvidenceRecorder | None = None
        if settings.video_recording:
            self.recorder = EvidenceRecorder(
                self.hub,
                self.watch,
                missions.store,
                self.evidence_dir,
                fps=min(settings.video_fps, settings.video_record_fps),
            )
        self._renderer: GroundRenderer | None = None

    def _state(self, drone_id: str) -> DroneState | None:
        drone = self.fleet.drones.get(drone_id)
        return drone.state if drone is not None else None

    def make_source(self, drone_id: str) -> MediaStreamTrack:
        """The drone's camera URL from the area file if it has one, else the simulated camera."""
        url = self.area.drone(drone_id).camera

        def state() -> DroneState | None:
            return self._state(drone_id)

        if url:
            return UrlCameraTrack(drone_id, url, state, self.watch, self.config)
        if self._renderer is None:  # not prepared by start (a drone's camera URL was removed): build here
            self._renderer = GroundRenderer(self.area)
        return SimCameraTrack(drone_id, state, self._renderer, self.watch, self.config)

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Follow missions (part ``video-mission-watch``), recover and start recording; the hub's janitor
        is the part ``video-hub-janitor`` (both of `supervisor` when given)."""
        if supervisor is not None:
            self.hub.supervise(supervisor)
        if any(not d.camera for d in self.area.drones):
            # The ground texture takes ~0.2 s to build: in a worker thread, before any viewer waits for it.
            self._renderer = await asyncio.to_thread(GroundRenderer, self.area)
        await self.watch.start(supervisor)
        if self.recorder is not None:
            await self.recorder.recover()  # parts a killed service left: hashed and audited first
            self.recorder.start()

    async def close(self) -> None:
        """Finish recordings, close every viewer's connection and the sources, stop watching."""
        try:
            if self.recorder is not None:
                await self.recorder.close()
        finally:
            try:
                await self.hub.close()
            finally:
                await self.watch.stop()

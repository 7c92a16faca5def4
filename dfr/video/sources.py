"""Per-drone video sources as aiortc tracks: the simulated camera, or a real camera by URL.

`SimCameraTrack` renders what a simulated drone sees (`sim.camera`) from its live telemetry and the
target of its current mission, at a configured size and frame rate. Telemetry arrives a few times a
second, video 30 times, so positions are extrapolated from the last two telemetry samples (with the
speed measured in wall time, which also holds when the simulator runs faster than real time) to keep the
picture moving smoothly instead of jumping at each update.

`UrlCameraTrack` reads a real camera with PyAV through aiortc's `MediaPlayer` (RTSP, an ``udp://`` or
``rtp`` H.264 stream such as PX4 SITL's camera on port 5600 via an SDP file, or anything FFmpeg opens)
and burns in the same overlay and timestamp code.

Both produce yuv420p frames: the encoders want that format, and converting once here saves each viewer
a conversion. Rendering and drawing run in a worker thread (`asyncio.to_thread`), off the event loop.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av
import cv2
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError

from dfr.domain.missions import MissionState
from dfr.fleet.drone import DroneState
from dfr.video.overlay import Telemetry, draw_overlay, draw_timestamp, now_ms
from sim.camera import CameraPose, GroundRenderer

__all__ = [
    "TRANSIT_MODES",
    "MissionView",
    "SimCameraTrack",
    "SourceConfig",
    "UrlCameraTrack",
    "apply_privacy",
]

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
TRANSIT_MODES = ("off", "blur", "blank")
REOPEN_DELAY_S = 2.0
"""Pause before a real camera that failed or ended is opened again."""
MAX_EXTRAPOLATION_S = 0.5
"""Beyond this the last telemetry is stale: the picture stops rather than flying on without data."""


class MissionView(Protocol):
    """What a source needs to know about a drone's mission (`dfr.video.watch.MissionWatch`)."""

    def mission_for(self, drone_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class SourceConfig:
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    overlay: bool = True
    transit_mode: str = "off"

    def __post_init__(self) -> None:
        if (
            self.width % 2
            or self.height % 2
            or not (160 <= self.width <= 3840 and 120 <= self.height <= 2160)
        ):
            raise ValueError("video size must be even, 160x120 to 3840x2160")
        if not 1.0 <= self.fps <= 60.0:
            raise ValueError("fps must be between 1 and 60")
        if self.transit_mode not in TRANSIT_MODES:
            raise ValueError(f"transit_mode must be one of {TRANSIT_MODES}")


def apply_privacy(frame: np.ndarray, mode: str) -> None:
    """Blank or blur `frame` in place so that nothing on the ground can be recognised."""
    if mode == "blank":
        frame[...] = 40
    elif mode == "blur":
        h, w = frame.shape[:2]
        tiny = cv2.resize(frame, (max(1, w // 48), max(1, h // 48)), interpolation=cv2.INTER_AREA)
        cv2.resize(tiny, (w, h), dst=frame, interpolation=cv2.INTER_LINEAR)


def privacy_applies(mode: str, mission: dict[str, Any] | None) -> bool:
    """Transit mode hides the picture unless the drone's mission is on scene (out, back and idle)."""
    return mode != "off" and (mission is None or mission.get("state") != MissionState.ON_SCENE.value)


def to_video_frame(bgr: np.ndarray) -> av.VideoFrame:
    yuv = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


class _Pacer:
    """Frame timing at `fps` in wall time; a consumer that fell behind skips frames rather than bursts."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.start: float | None = None
        self.n = 0

    async def next(self) -> int:
        now = time.monotonic()
        if self.start is None:
            self.start = now
            return 0
        self.n += 1
        due = self.start + self.n * self.period
        if due < now - self.period:
            self.n = int((now - self.start) / self.period)
        elif due > now:
            await asyncio.sleep(due - now)
        return round(self.n * self.period * VIDEO_CLOCK)


@dataclass
class _Sample:
    t: float
    lat: float
    lon: float
    alt: float
    heading: float


class _Smoother:
    """Extrapolates the drone's pose between telemetry updates (see the module docstring)."""

    def __init__(self) -> None:
        self.prev: _Sample | None = None
        self.last: _Sample | None = None

    def pose(self, s: DroneState, now: float) -> CameraPose | None:
        if s.lat is None or s.lon is None:
            return None
        alt = s.rel_alt_m or 0.0
        last = self.last
        if last is None or (last.lat, last.lon, last.alt, last.heading) != (s.lat, s.lon, alt, s.heading_deg):
            self.prev, self.last = last, _Sample(now, s.lat, s.lon, alt, s.heading_deg)
        last, prev = self.last, self.prev
        assert last is not None
        if prev is None or not 0.005 < last.t - prev.t < 2.0:
            return CameraPose(last.lat, last.lon, last.alt, last.heading)
        dt = last.t - prev.t
        ahead = min(now - last.t, MAX_EXTRAPOLATION_S, dt)
        f = ahead / dt
        dh = (last.heading - prev.heading + 180.0) % 360.0 - 180.0
        return CameraPose(
            last.lat + (last.lat - prev.lat) * f,
            last.lon + (last.lon - prev.lon) * f,
            last.alt + (last.alt - prev.alt) * f,
            (last.heading + dh * f) % 360.0,
        )


class SimCameraTrack(VideoStreamTrack):
    """The simulated camera of one drone; `state` returns its live `DroneState` (None: not connected)."""

    def __init__(
        self,
        drone_id: str,
        state: Callable[[], DroneState | None],
        renderer: GroundRenderer,
        missions: MissionView,
        config: SourceConfig,
    ) -> None:
        super().__init__()
        self.drone_id = drone_id
        self._state = state
        self._renderer = renderer
        self._missions = missions
        self.config = config
        self._pacer = _Pacer(config.fps)
        self._smoother = _Smoother()
        self.frames = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        state = self._state()
        pose = self._smoother.pose(state, time.monotonic()) if state is not None else None
        mission = self._missions.mission_for(self.drone_id)
        frame = await asyncio.to_thread(self._draw, pose, state, mission)
        frame.pts = pts
        frame.time_base = TIME_BASE
        self.frames += 1
        return frame

    def _draw(
        self, pose: CameraPose | None, state: DroneState | None, mission: dict[str, Any] | None
    ) -> av.VideoFrame:
        cfg = self.config
        ms = now_ms()
        target = None
        if mission is not None:
            loc = mission.get("target") or {}
            if isinstance(loc.get("lat"), float | int) and isinstance(loc.get("lon"), float | int):
                target = (float(loc["lat"]), float(loc["lon"]))
        if pose is None:
            img = np.full((cfg.height, cfg.width, 3), 60, np.uint8)
            cv2.putText(img, "NO POSITION", (cfg.width // 3, cfg.height // 2), cv2.FONT_HERSHEY_SIMPLEX,
                        1.2, (255, 255, 255), 2, cv2.LINE_AA)  # fmt: skip
        else:
            img = self._renderer.render(pose, (cfg.width, cfg.height), target)
        private = privacy_applies(cfg.transit_mode, mission)
        if private:
            apply_privacy(img, cfg.transit_mode)
        if cfg.overlay:
            draw_overlay(img, _telemetry(self.drone_id, pose, state, mission, private), ms)
        draw_timestamp(img, ms)
        return to_video_frame(img)


def _telemetry(
    drone_id: str,
    pose: CameraPose | None,
    state: DroneState | None,
    mission: dict[str, Any] | None,
    private: bool,
) -> Telemetry:
    return Telemetry(
        drone_id=drone_id,
        alt_m=pose.height_m if pose is not None else None,
        speed_m_s=state.groundspeed if state is not None else None,
        heading_deg=pose.heading_deg if pose is not None else None,
        battery_pct=state.battery_pct if state is not None else None,
        mission_state=str(mission.get("state")) if mission is not None else None,
        note="TRANSIT - PRIVACY MODE" if private else None,
    )


class UrlCameraTrack(VideoStreamTrack):
    """A real drone's camera by URL, with the overlay and timestamp code burned in.

    The player is opened lazily on the first frame (opening an RTSP stream can block for seconds, so it
    happens in a worker thread), reopened after a failure, and closed with `stop`.
    """

    def __init__(
        self,
        drone_id: str,
        url: str,
        state: Callable[[], DroneState | None],
        missions: MissionView,
        config: SourceConfig,
        *,
        options: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.drone_id = drone_id
        self.url = url
        self._state = state
        self._missions = missions
        self.config = config
        self._options = options
        self._player: MediaPlayer | None = None
        self._t0: float | None = None
        self.frames = 0

    def _open(self) -> MediaPlayer:
        options = dict(self._options or {})
        if self.url.startswith("rtsp"):
            options.setdefault("rtsp_transport", "tcp")
        if self.url.endswith(".sdp"):
            options.setdefault("protocol_whitelist", "file,udp,rtp")
        return MediaPlayer(self.url, options=options or None)

    async def recv(self) -> av.VideoFrame:
        """The next frame; a camera that cannot be opened or whose stream ends is reopened every
        `REOPEN_DELAY_S`, so viewers stay connected through a camera or network outage."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._player is None:
                try:
                    self._player = await asyncio.to_thread(self._open)
                except Exception as e:
                    log.warning("camera of %s at %s cannot be opened: %s", self.drone_id, self.url, e)
                    await asyncio.sleep(REOPEN_DELAY_S)
                    continue
            video = self._player.video
            try:
                if video is None:
                    raise MediaStreamError("no video stream")
                frame = await video.recv()
            except MediaStreamError:
                log.warning("camera stream of %s at %s ended; reopening", self.drone_id, self.url)
                self._close_player()
                await asyncio.sleep(REOPEN_DELAY_S)
                continue
            assert isinstance(frame, av.VideoFrame)
            out = await asyncio.to_thread(self._draw, frame)
            # Wall-clock timestamps: continuous across reopenings, whatever the camera's own clock says.
            if self._t0 is None:
                self._t0 = time.monotonic()
            out.pts, out.time_base = round((time.monotonic() - self._t0) * VIDEO_CLOCK), TIME_BASE
            self.frames += 1
            return out

    def _close_player(self) -> None:
        player, self._player = self._player, None
        if player is not None and player.video is not None:
            player.video.stop()  # the player's worker thread ends when its last track stops

    def _draw(self, frame: av.VideoFrame) -> av.VideoFrame:
        cfg = self.config
        ms = now_ms()
        img = frame.to_ndarray(format="bgr24")
        mission = self._missions.mission_for(self.drone_id)
        private = privacy_applies(cfg.transit_mode, mission)
        if private:
            apply_privacy(img, cfg.transit_mode)
        if cfg.overlay:
            state = self._state()
            alt = state.rel_alt_m if state is not None else None
            heading = state.heading_deg if state is not None else None
            pose = None if alt is None or heading is None else CameraPose(0.0, 0.0, alt, heading)
            draw_overlay(img, _telemetry(self.drone_id, pose, state, mission, private), ms)
        if img.shape[0] >= 120 and img.shape[1] >= 160:
            draw_timestamp(img, ms)
        if img.shape[0] % 2 or img.shape[1] % 2:
            img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
        return to_video_frame(img)

    def stop(self) -> None:
        super().stop()
        self._close_player()

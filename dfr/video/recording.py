"""Evidence: each mission's video, from launch until the mission ends, in a file whose hash is audited.

The recorder follows mission changes (`MissionWatch`): when a mission reaches a flying state it taps the
drone's video from the hub (so the source runs even when nobody watches) and writes it with PyAV
(H.264 in MP4, frames timed by wall clock so the file plays at real speed even when frames were
dropped); when the mission ends (landed, aborted, failed) the file is closed, its SHA-256 computed and an
audit record written: actor ``video``, action ``evidence.recorded``, subject the mission, details
``{path, name, sha256, bytes, frames}``. The file is looked up later through that record, never through a
path from a request.

Recording never gets in a flight's way: it runs in its own named task, encoding and hashing happen in
worker threads, and a failure is logged and audited (``evidence.failed``) without touching the mission.
A restarted controller records a resumed mission into a new file (``<id>-2.mp4``), so nothing recorded
before the restart is overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError

from dfr.domain.missions import TERMINAL_STATES, MissionState
from dfr.store.store import Store
from dfr.video.hub import VideoHub
from dfr.video.watch import MissionWatch

__all__ = ["ACTION_FAILED", "ACTION_RECORDED", "Evidence", "EvidenceRecorder", "evidence_of", "sha256_file"]

log = logging.getLogger(__name__)

ACTION_RECORDED = "evidence.recorded"
ACTION_FAILED = "evidence.failed"
ACTOR = "video"
_RECORD_STATES = frozenset(
    s.value
    for s in (MissionState.LAUNCHING, MissionState.EN_ROUTE, MissionState.ON_SCENE, MissionState.RETURNING)
)
_TERMINAL = frozenset(s.value for s in TERMINAL_STATES)
_MS = fractions.Fraction(1, 1000)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Evidence:
    path: Path
    sha256: str
    bytes: int
    frames: int


def _resolved(path: Path, base: Path) -> tuple[Path, Path]:
    return path.resolve(), base.resolve()


async def evidence_of(store: Store, mission_id: str, evidence_dir: Path) -> Evidence | None:
    """The mission's latest recording per the audit log, if its file is inside `evidence_dir`."""
    entries = [e for e in await store.audit(mission_id) if e.action == ACTION_RECORDED and e.actor == ACTOR]
    if not entries:
        return None
    d = entries[-1].details
    try:
        path, base = await asyncio.to_thread(_resolved, Path(str(d["path"])), evidence_dir)
        if not path.is_relative_to(base):
            log.error("evidence record of %s points outside %s: %s", mission_id, base, path)
            return None
        return Evidence(path, str(d["sha256"]), int(d["bytes"]), int(d["frames"]))
    except (KeyError, TypeError, ValueError):
        return None


class _Writer:
    """One MP4 being written (used from a worker thread only)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.container = av.open(str(path), mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=round(fps))
        self.stream.pix_fmt = "yuv420p"
        # ultrafast: the least CPU, so recording never competes with flights; files are ~2x larger.
        self.stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
        self.stream.codec_context.time_base = _MS
        self.t0: float | None = None
        self.last_pts = -1
        self.frames = 0

    def write(self, shared: av.VideoFrame, at: float) -> None:
        # The relay hands the same frame object to every viewer's encoder: re-time a copy, never it.
        frame = av.VideoFrame.from_ndarray(shared.to_ndarray(format="yuv420p"), format="yuv420p")
        if self.t0 is None:
            self.t0 = at
            self.stream.width, self.stream.height = frame.width, frame.height
        pts = max(self.last_pts + 1, round((at - self.t0) * 1000))
        frame.pts, frame.time_base = pts, _MS
        self.last_pts = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        try:
            if self.frames:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
        finally:
            self.container.close()


class EvidenceRecorder:
    """Records every flying mission of the service (see the module docstring)."""

    def __init__(
        self, hub: VideoHub, watch: MissionWatch, store: Store, evidence_dir: Path, *, fps: float = 30.0
    ) -> None:
        self.hub = hub
        self.watch = watch
        self.store = store
        self.dir = evidence_dir
        self.fps = fps
        self.active: dict[str, asyncio.Event] = {}  # mission id -> set to end its recording
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    def start(self) -> None:
        self.watch.listeners.append(self.on_mission)
        for mission in list(self.watch.by_drone.values()):  # resumed missions
            self._begin(mission)

    async def on_mission(self, mission: dict[str, Any]) -> None:
        state = mission.get("state")
        mission_id = str(mission.get("id"))
        if state in _RECORD_STATES:
            self._begin(mission)
        elif state in _TERMINAL and mission_id in self.active:
            self.active[mission_id].set()

    def _begin(self, mission: dict[str, Any]) -> None:
        mission_id, drone_id = str(mission.get("id")), mission.get("drone_id")
        if self._closing or mission_id in self.active or not isinstance(drone_id, str):
            return
        if mission.get("state") not in _RECORD_STATES:
            return
        stop = asyncio.Event()
        self.active[mission_id] = stop
        task = asyncio.create_task(
            self._record(mission_id, drone_id, stop), name=f"video-record-{mission_id}"
        )
        self.tasks[mission_id] = task
        task.add_done_callback(lambda _t: self._done(mission_id))

    def _done(self, mission_id: str) -> None:
        self.active.pop(mission_id, None)
        self.tasks.pop(mission_id, None)

    def _path(self, mission_id: str) -> Path:
        path = self.dir / f"{mission_id}.mp4"
        n = 2
        while path.exists():
            path = self.dir / f"{mission_id}-{n}.mp4"
            n += 1
        return path

    async def _record(self, mission_id: str, drone_id: str, stop: asyncio.Event) -> None:
        writer: _Writer | None = None
        track = None
        try:
            await asyncio.to_thread(self.dir.mkdir, parents=True, exist_ok=True)
            path = self._path(mission_id)
            writer = await asyncio.to_thread(_Writer, path, self.fps)
            track = self.hub.tap(drone_id)
            log.info("recording mission %s (%s) to %s", mission_id, drone_id, path)
            ended = asyncio.create_task(stop.wait(), name=f"video-record-stop-{mission_id}")
            next_at = 0.0
            try:
                while not stop.is_set():
                    nxt = asyncio.create_task(track.recv(), name=f"video-record-frame-{mission_id}")
                    done, _ = await asyncio.wait({nxt, ended}, return_when=asyncio.FIRST_COMPLETED)
                    if nxt not in done:
                        nxt.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await nxt
                        break
                    try:
                        frame = nxt.result()
                    except MediaStreamError:
                        break  # the source ended (shutdown): keep what was recorded
                    assert isinstance(frame, av.VideoFrame)
                    now = time.monotonic()
                    if now < next_at:
                        continue  # the source runs at the live rate; evidence is kept at self.fps
                    next_at = max(next_at + 1.0 / self.fps, now - 0.5 / self.fps)
                    await asyncio.to_thread(writer.write, frame, now)
            finally:
                ended.cancel()
            await self._finish(mission_id, writer)
            writer = None
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("recording of mission %s failed", mission_id)
            await self._audit_failure(mission_id, f"{type(e).__name__}: {e}")
        finally:
            if track is not None:
                self.hub.untap(drone_id, track)
            if writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(writer.close)

    async def _finish(self, mission_id: str, writer: _Writer) -> None:
        await asyncio.to_thread(writer.close)
        digest = await asyncio.to_thread(sha256_file, writer.path)
        size = (await asyncio.to_thread(writer.path.stat)).st_size
        details = {
            "path": str(writer.path.resolve()),
            "name": writer.path.name,
            "sha256": digest,
            "bytes": size,
            "frames": writer.frames,
        }
        await self.store.append_audit(ACTOR, ACTION_RECORDED, "mission", mission_id, details)
        log.info(
            "mission %s recorded: %s (%d frames, %d bytes)", mission_id, writer.path, writer.frames, size
        )

    async def _audit_failure(self, mission_id: str, reason: str) -> None:
        try:
            await self.store.append_audit(
                ACTOR, ACTION_FAILED, "mission", mission_id, {"reason": reason[:500]}
            )
        except Exception:
            log.exception("cannot audit the failed recording of mission %s", mission_id)

    async def close(self) -> None:
        """Finish every recording (files closed, hashed and audited), then stop following missions."""
        self._closing = True
        with contextlib.suppress(ValueError):
            self.watch.listeners.remove(self.on_mission)
        for stop in self.active.values():
            stop.set()
        tasks = list(self.tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=10.0)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

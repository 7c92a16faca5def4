"""Evidence: each mission's video, from launch until the mission ends, in files whose hashes are audited.

The recorder follows mission changes (`MissionWatch`): when a mission reaches a flying state it taps the
drone's video from the hub (so the source runs even when nobody watches) and writes it with PyAV
(H.264 in MP4, frames timed by wall clock so the file plays at real speed even when frames were
dropped); when the mission ends (landed, aborted, failed) or the service stops, the file is closed, its
SHA-256 computed from the bytes on disk and an audit record written: actor ``video``, action
``evidence.recorded``, subject the mission, details ``{path, name, sha256, bytes, frames, partial}``.
Files are looked up later through those records, never through a path from a request.

The file stays playable however the process ends. It is a *fragmented* MP4 (an empty ``moov`` first,
then one ``moof``+``mdat`` fragment per keyframe, a keyframe every second), and `_BoxFile` hands the
operating system only whole top-level boxes, each fragment in a single ``write``: a killed process
(SIGKILL, OOM, power to the process) leaves a file that ends on a box boundary and decodes to its last
complete fragment, losing at most the last second. A ``<file>.recording`` marker lives beside a file
while it is written; a service that starts and finds one (it was killed) hashes and audits that file
as it is (``partial: true``, ``recovered: true``) before it records anything, so the part recorded
before a crash is kept, hashed and served. A restarted controller records a resumed mission into a new
file (``<id>-2.mp4``): a mission's evidence is the list of its parts (`evidence_parts`).

Recording never gets in a flight's way: it runs in its own named task, and encoding, writing and
hashing run in the recorder's own small thread pool (not asyncio's default one, which any blocking
call elsewhere can fill); a failure is logged and audited (``evidence.failed``), what was written before
it is kept and audited too, and the mission is not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
from aiortc.mediastreams import MediaStreamError

from dfr.domain.missions import TERMINAL_STATES, MissionState
from dfr.store.store import Store
from dfr.video.hub import VideoHub
from dfr.video.watch import MissionWatch

__all__ = [
    "ACTION_FAILED",
    "ACTION_RECORDED",
    "Evidence",
    "EvidenceRecorder",
    "evidence_of",
    "evidence_parts",
    "sha256_file",
]

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
MARKER_SUFFIX = ".recording"
"""Beside a file being written; its presence at start-up means the writer was killed."""
KEYFRAME_INTERVAL_S = 1.0
"""A fragment per keyframe: at most this much video (plus a frame) is lost if the process is killed."""
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
_NAME = re.compile(r"^(?P<mission>[0-9a-fA-F-]{36})(?:-(?P<n>\d+))?\.mp4$")
_T = TypeVar("_T")
_FLUSH_AFTER = frozenset({b"moov", b"mdat", b"mfra"})
"""Top-level boxes after which the file on disk is a playable whole."""


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
    part: int = 1
    partial: bool = False
    """The recording ended before the mission did (the service was killed, or the recording failed)."""


def _resolved(path: Path, base: Path) -> tuple[Path, Path]:
    return path.resolve(), base.resolve()


async def evidence_parts(store: Store, mission_id: str, evidence_dir: Path) -> list[Evidence]:
    """Every recorded part of the mission per the audit log, in recording order, if inside `evidence_dir`."""
    entries = [e for e in await store.audit(mission_id) if e.action == ACTION_RECORDED and e.actor == ACTOR]
    parts: list[Evidence] = []
    seen: set[Path] = set()
    for entry in entries:
        d = entry.details
        try:
            path, base = await asyncio.to_thread(_resolved, Path(str(d["path"])), evidence_dir)
            if not path.is_relative_to(base):
                log.error("evidence record of %s points outside %s: %s", mission_id, base, path)
                continue
            if path in seen:  # audited twice (killed between the record and removing the marker)
                continue
            seen.add(path)
            parts.append(
                Evidence(
                    path,
                    str(d["sha256"]),
                    int(d["bytes"]),
                    int(d["frames"]),
                    part=len(parts) + 1,
                    partial=bool(d.get("partial", False)),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return parts


async def evidence_of(store: Store, mission_id: str, evidence_dir: Path) -> Evidence | None:
    """The mission's latest recorded part per the audit log, if its file is inside `evidence_dir`."""
    parts = await evidence_parts(store, mission_id, evidence_dir)
    return parts[-1] if parts else None


class _BoxFile(io.RawIOBase):
    """The file PyAV writes to: only whole top-level MP4 boxes reach the OS, a fragment in one ``write``.

    The muxer writes sequentially (fragmented MP4 never seeks back) in 32 KiB pieces that cut boxes
    anywhere; this holds bytes until a box is complete, writes ``ftyp`` with its ``moov`` and each
    ``moof`` with its ``mdat``, so a process killed at any instant leaves a file that ends between
    fragments (or no bytes at all). A regular file's ``write``
    is not cut short by a signal, so each fragment is on disk entirely or not at all.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._pending = bytearray()  # bytes not yet given to the OS
        self._complete = 0  # length of the prefix of _pending made of whole boxes that may be written
        self._scan = 0  # where the next box header starts in _pending
        self._position = 0  # bytes received from the muxer
        self.written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # the muxer then never seeks (a fragmented MP4 has no need to)

    def tell(self) -> int:
        return self._position

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._pending += chunk
        self._position += len(chunk)
        while True:
            header = self._pending[self._scan : self._scan + 16]
            if len(header) < 8:
                break
            size, kind = int.from_bytes(header[:4], "big"), bytes(header[4:8])
            if size == 1:
                if len(header) < 16:
                    break
                size = int.from_bytes(header[8:16], "big")
            if size < 8:
                raise OSError(f"unexpected MP4 box size {size} in {self.path.name}")
            end = self._scan + size
            if len(self._pending) < end:
                break
            self._scan = end
            if kind in _FLUSH_AFTER:  # the header waits for its moov, a moof for its mdat
                self._complete = end
        if self._complete:
            self._emit(self._complete)
        return len(chunk)

    def _emit(self, n: int) -> None:
        view = memoryview(self._pending)[:n]
        try:
            done = 0
            while done < n:
                done += os.write(self._fd, view[done:])
        finally:
            view.release()
        del self._pending[:n]
        self._scan -= n
        self._complete = 0
        self.written += n

    def flush(self) -> None:
        pass  # only whole boxes are written, when complete (see write)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._pending:  # the trailer: whatever the muxer wrote last (complete at a clean close)
                self._emit(len(self._pending))
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            super().close()


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


def _marker(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def count_frames(path: Path) -> int:
    """Video packets that can be read back from `path` (decoding stops at the first unreadable one)."""
    n = 0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(video=0):
                if packet.size:
                    n += 1
    except av.FFmpegError:
        pass
    return n


class _Writer:
    """One fragmented MP4 being written (used from the recorder's worker threads only, one at a time)."""

    def __init__(self, path: Path, fps: float, marker: dict[str, Any]) -> None:
        self.path = path
        _marker(path).write_text(json.dumps(marker))
        self.file = _BoxFile(path)
        self.container = av.open(self.file, mode="w", format="mp4", options={"movflags": _MOVFLAGS})
        rate = max(1, round(fps))
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.pix_fmt = "yuv420p"
        # ultrafast: the least CPU, so recording never competes with flights; files are ~2x larger.
        # A keyframe every KEYFRAME_INTERVAL_S closes a fragment: the most a killed process loses.
        gop = str(max(1, round(rate * KEYFRAME_INTERVAL_S)))
        self.stream.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "crf": "23",
            "g": gop,
            "keyint_min": gop,
        }
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
            try:
                self.container.close()
            finally:
                self.file.close()


class EvidenceRecorder:
    """Records every flying mission of the service (see the module docstring)."""

    def __init__(
        self,
        hub: VideoHub,
        watch: MissionWatch,
        store: Store,
        evidence_dir: Path,
        *,
        fps: float = 30.0,
        workers: int = 2,
    ) -> None:
        self.hub = hub
        self.watch = watch
        self.store = store
        self.dir = evidence_dir
        self.fps = fps
        self.active: dict[str, asyncio.Event] = {}  # mission id -> set to end its recording
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        # Its own threads: a flood of other blocking work in asyncio's default pool cannot starve encoding.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dfr-evidence")

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def start(self) -> None:
        self.watch.listeners.append(self.on_mission)
        for mission in list(self.watch.by_drone.values()):  # resumed missions
            self._begin(mission)

    async def recover(self) -> int:
        """Hash and audit the files a killed service left being written (their markers say which), so
        that nothing recorded before a crash goes unhashed or unserved. Call before `start`."""
        markers = await self._run(lambda: sorted(self.dir.glob(f"*.mp4{MARKER_SUFFIX}")))
        recovered = 0
        for marker in markers:
            path = marker.with_name(marker.name.removesuffix(MARKER_SUFFIX))
            m = _NAME.match(path.name)
            try:
                if m is None:
                    log.error("evidence marker %s does not name a mission recording; left alone", marker)
                    continue
                mission_id = m.group("mission")
                size = await self._run(_size, path)
                if not size:  # killed before the header was written: nothing to keep
                    log.warning("recording %s was killed before its first bytes; nothing to keep", path)
                    await self._audit_failure(mission_id, f"killed before {path.name} had any video")
                    await self._run(path.unlink, True)
                else:
                    audited = {
                        str(e.details.get("name"))
                        for e in await self.store.audit(mission_id)
                        if e.action == ACTION_RECORDED and e.actor == ACTOR
                    }
                    if path.name not in audited:  # else: killed after the record, before the marker went
                        frames = await self._run(count_frames, path)
                        await self._audit_recorded(mission_id, path, frames, partial=True, recovered=True)
                        recovered += 1
                await self._run(marker.unlink, True)
            except Exception:
                log.exception("cannot recover the recording %s; left for the next start", path)
        return recovered

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
        while path.exists() or _marker(path).exists():
            path = self.dir / f"{mission_id}-{n}.mp4"
            n += 1
        return path

    def _open(self, mission_id: str, drone_id: str) -> _Writer:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(mission_id)
        marker = {"mission_id": mission_id, "drone_id": drone_id, "started": time.time()}
        return _Writer(path, self.fps, marker)

    async def _record(self, mission_id: str, drone_id: str, stop: asyncio.Event) -> None:
        writer: _Writer | None = None
        track = None
        try:
            writer = await self._run(self._open, mission_id, drone_id)
            track = self.hub.tap(drone_id)
            log.info("recording mission %s (%s) to %s", mission_id, drone_id, writer.path)
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
                    await self._run(writer.write, frame, now)
            finally:
                ended.cancel()
            await self._finish(mission_id, writer, partial=self._closing)
            writer = None
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("recording of mission %s failed", mission_id)
            await self._audit_failure(mission_id, f"{type(e).__name__}: {e}")
            if writer is not None:  # keep, hash and audit what was written before the failure
                with contextlib.suppress(Exception):
                    await self._finish(mission_id, writer, partial=True)
                    writer = None
        finally:
            if track is not None:
                self.hub.untap(drone_id, track)
            if writer is not None:  # cancelled: the file stays playable; the marker has it recovered
                with contextlib.suppress(Exception):
                    await self._run(writer.close)

    async def _finish(self, mission_id: str, writer: _Writer, *, partial: bool) -> None:
        try:
            await self._run(writer.close)
        except Exception:  # the fragments already on disk still play: audit them as they are
            log.exception("closing the recording of mission %s failed", mission_id)
            partial = True
        await self._audit_recorded(mission_id, writer.path, writer.frames, partial=partial)
        await self._run(_marker(writer.path).unlink, True)

    async def _audit_recorded(
        self, mission_id: str, path: Path, frames: int, *, partial: bool, recovered: bool = False
    ) -> None:
        """Hash the file as it is on disk now and audit it: what is served is what was hashed."""
        digest = await self._run(sha256_file, path)
        size = (await self._run(path.stat)).st_size
        details: dict[str, Any] = {
            "path": str(await self._run(path.resolve)),
            "name": path.name,
            "sha256": digest,
            "bytes": size,
            "frames": frames,
            "partial": partial,
        }
        if recovered:
            details["recovered"] = True
        await self.store.append_audit(ACTOR, ACTION_RECORDED, "mission", mission_id, details)
        what = "recovered" if recovered else "recorded"
        log.info("mission %s %s: %s (%d frames, %d bytes, %s)", mission_id, what, path, frames, size, digest)

    async def _audit_failure(self, mission_id: str, reason: str) -> None:
        try:
            await self.store.append_audit(
                ACTOR, ACTION_FAILED, "mission", mission_id, {"reason": reason[:500]}
            )
        except Exception:
            log.exception("cannot audit the failed recording of mission %s", mission_id)

    async def close(self) -> None:
        """Finish every recording (files closed, hashed and audited, ``partial`` if the mission goes on),
        then stop following missions and release the worker threads."""
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
        self._pool.shutdown(wait=False)

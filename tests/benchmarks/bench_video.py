"""Live video costs: render time, glass-to-glass latency, CPU per viewer, viewers per core.

Everything runs on this host over loopback: a `VideoHub` with a simulated camera flying a straight
line, and aiortc client peers (receive-only, as a browser would be) that decode VP8 and read the
timestamp code burned into each frame; latency = receive clock - capture clock (same host, same clock),
so it covers render, encode, RTP over loopback, the jitter buffer and decode. The hub runs in a child
process (signalled over a pipe), so its CPU time is the server's alone; the clients decode in this one.
On a 2-core machine the clients compete with the server, so latency with many viewers is pessimistic.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from dfr.area import load_area
from dfr.fleet.drone import DroneState
from dfr.video.encoding import auto_bitrate
from dfr.video.hub import VideoHub
from dfr.video.overlay import Telemetry, decode_timestamp, draw_overlay, draw_timestamp, now_ms
from dfr.video.sources import SimCameraTrack, SourceConfig, to_video_frame
from sim.camera import CameraPose, GroundRenderer
from tests.benchmarks.run import timeit

AREA = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"
START = (32.6401, -117.0842)
SCENE = {"lat": 32.6450, "lon": -117.0800}
WARMUP_S = 2.5
MEASURE_S = 6.0


class _Missions:
    def mission_for(self, drone_id: str) -> dict[str, Any] | None:
        return {"id": "bench", "state": "en_route", "target": SCENE}


def _flying_state() -> DroneState:
    """A drone flying north-east at 12 m/s, 60 m up (a fresh state each call, as telemetry would be)."""
    t = time.monotonic()
    return DroneState(
        lat=START[0] + (t % 60) * 8e-5,
        lon=START[1] + (t % 60) * 6e-5,
        rel_alt_m=60.0,
        heading_deg=36.0,
        vn=9.6,
        ve=7.2,
        battery_pct=90.0,
    )


class _Client:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.latencies: list[int] = []
        self.frames = 0
        self.measuring = False
        self.task: asyncio.Task[None] | None = None

    async def consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.VideoFrame)
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
            ts = decode_timestamp(luma)
            if self.measuring:
                self.frames += 1
                if ts is not None:
                    self.latencies.append(now_ms() - ts)


def _server(conn: Any, size: tuple[int, int]) -> None:
    """The hub in its own process, so that its CPU time is its own (the clients decode elsewhere)."""

    async def main() -> None:
        renderer = GroundRenderer(load_area(AREA))
        config = SourceConfig(width=size[0], height=size[1], fps=30.0)
        hub = VideoHub(
            {"cv-1"},
            lambda d: SimCameraTrack(d, _flying_state, renderer, _Missions(), config),
            max_sessions=100,
            bitrate=auto_bitrate(*size, 30.0),
        )
        loop = asyncio.get_running_loop()
        while True:
            op, arg = await loop.run_in_executor(None, conn.recv)
            if op == "offer":
                _sid, answer = await hub.answer("cv-1", arg)
                conn.send(answer)
            elif op == "cpu":
                feed = hub.feeds.get("cv-1")
                rendered = getattr(feed.source, "frames", 0) if feed else 0
                sent = sum(getattr(v, "sent", 0) for v in feed.viewers) if feed else 0
                conn.send((time.process_time(), rendered, sent))
            else:
                await hub.close()
                conn.send(None)
                return

    asyncio.run(main())


async def _connect(conn: Any) -> _Client:
    c = _Client()
    c.pc.addTransceiver("video", direction="recvonly")

    @c.pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        c.task = asyncio.create_task(c.consume(track), name="bench-video-client")

    await c.pc.setLocalDescription(await c.pc.createOffer())
    answer = await _ask(conn, "offer", c.pc.localDescription.sdp)
    await c.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return c


async def _ask(conn: Any, op: str, arg: Any = None) -> Any:
    conn.send((op, arg))
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _measure(size: tuple[int, int], viewers: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    server = ctx.Process(target=_server, args=(child, size), name="bench-video-server")
    server.start()
    try:
        clients = [await _connect(conn) for _ in range(viewers)]
        await asyncio.sleep(WARMUP_S)
        for c in clients:
            c.measuring = True
        (cpu0, src0, sent0), t0 = await _ask(conn, "cpu"), time.monotonic()
        await asyncio.sleep(MEASURE_S)
        (cpu1, src1, sent1), t1 = await _ask(conn, "cpu"), time.monotonic()
        for c in clients:
            c.measuring = False
        await _ask(conn, "stop")
        for c in clients:
            await c.pc.close()
            if c.task is not None:
                c.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await c.task
    finally:
        server.join(10)
        if server.is_alive():
            server.kill()
    lat = sorted(x for c in clients for x in c.latencies)
    wall = t1 - t0
    return {
        "p50": statistics.median(lat) if lat else float("nan"),
        "p95": lat[int(0.95 * (len(lat) - 1))] if lat else float("nan"),
        "fps": sum(c.frames for c in clients) / viewers / wall,
        "server_core": (cpu1 - cpu0) / wall,
        "server_cpu_s": cpu1 - cpu0,
        "rendered": src1 - src0,
        "sent": sent1 - sent0,
    }


def _costs(one: dict[str, float], many: dict[str, float]) -> tuple[float, float]:
    """Server CPU seconds per rendered+encoded frame and per frame sent to one viewer, solved from
    cpu = rendered * a + sent * b at two loads. Counted on the server, so a busy machine (the clients
    decode on the same cores) that delivers fewer frames does not make video look cheaper."""
    r1, v1, c1 = one["rendered"], one["sent"], one["server_cpu_s"]
    r2, v2, c2 = many["rendered"], many["sent"], many["server_cpu_s"]
    det = r1 * v2 - r2 * v1
    if abs(det) < 1e-9:
        return float("nan"), float("nan")
    return (c1 * v2 - c2 * v1) / det, (r1 * c2 - r2 * c1) / det


def _render_row(renderer: GroundRenderer, size: tuple[int, int]) -> dict[str, Any]:
    i = [0]

    def frame() -> None:
        i[0] += 1
        pose = CameraPose(START[0] + i[0] * 3e-5, START[1], 60.0, float(i[0] % 360))
        img = renderer.render(pose, size, (SCENE["lat"], SCENE["lon"]))
        ms = now_ms()
        draw_overlay(img, Telemetry("cv-1", 60.0, 12.0, 36.0, 90.0, "en_route"), ms)
        draw_timestamp(img, ms)
        to_video_frame(img)

    r = timeit(frame, 150)
    return {"case": f"video frame {size[0]}x{size[1]} (render+overlay+yuv)", **r}


async def _run() -> list[dict[str, Any]]:
    renderer = GroundRenderer(load_area(AREA))
    rows: list[dict[str, Any]] = [_render_row(renderer, s) for s in ((640, 480), (1280, 720))]
    for size in ((640, 480), (1280, 720)):
        one = await _measure(size, 1)
        many_n = 8
        many = await _measure(size, many_n)
        per_frame, per_sent = _costs(one, many)
        per_viewer = max(0.0, per_sent * 30)  # share of a core per viewer at 30 fps
        source = max(0.0, per_frame * 30)
        for n, m in ((1, one), (many_n, many)):
            rows.append(
                {
                    "case": f"WHEP {size[0]}x{size[1]} 30fps, {n} viewer(s)",
                    "p50 ms": m["p50"],
                    "p95 ms": m["p95"],
                    "note": f"glass-to-glass; {m['fps']:.1f} fps received; "
                    f"server {100 * m['server_core']:.0f}% of a core",
                }
            )
        per_core = (
            f"~{(1 - source) / per_viewer:.0f} beside the source, ~{1 / per_viewer:.0f} per core of their own"
            if per_viewer > 0.002
            else f"more than {many_n} (below what this run can resolve)"
        )
        rows.append(
            {
                "case": f"WHEP {size[0]}x{size[1]} CPU per viewer",
                "mean ms": 1000 * max(0.0, per_sent),
                "note": f"server CPU per frame sent; {100 * per_viewer:.1f}% of a core per viewer at 30 fps "
                f"(+{100 * source:.0f}% for render and the one encode); viewers: {per_core}",
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    return asyncio.run(_run())

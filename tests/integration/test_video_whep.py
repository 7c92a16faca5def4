"""Live video through the real service: aiortc client peers watch a simulated drone fly a mission.

The service runs as `dfr serve` does (simulator process, MAVSDK, uvicorn); the viewers are real WebRTC
peers (aiortc, receive-only) that speak WHEP over HTTP, decode VP8 and read the picture: the timestamp
code (glass-to-glass latency), the overlay's altitude line, and whether the ground moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import statistics
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from dfr.auth import Role
from dfr.domain.missions import MissionState
from dfr.live.bus import EventBus
from dfr.live.events import MissionEvent
from dfr.service import http_server, running_service
from dfr.settings import Settings
from dfr.store import Store
from dfr.store.missions import MissionStore
from dfr.video.hub import VideoHub
from dfr.video.overlay import decode_timestamp, now_ms, read_overlay_line
from dfr.video.recording import EvidenceRecorder, evidence_of
from dfr.video.watch import MissionWatch
from sim.harness import SimProcess
from tests.integration.test_service_e2e import wait_mission
from tests.support.api import AREA, POLICY, mission, report
from tests.support.auth import signed_in

pytestmark = pytest.mark.integration
SPEED = 20.0
NEAR_CIVIC = (32.6450, -117.0800)  # ~650 m from the civic dock
W, H = 640, 480
ALTS = [f"ALT {a} m AGL" for a in range(0, 200)]


@dataclass
class Viewer:
    """One WHEP client peer and what it has seen."""

    pc: RTCPeerConnection
    location: str = ""
    frames: int = 0
    latencies_ms: list[int] = field(default_factory=list)
    first: np.ndarray | None = None
    last: np.ndarray | None = None
    task: asyncio.Task[None] | None = None
    got_frame: asyncio.Event = field(default_factory=asyncio.Event)

    async def consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.VideoFrame)
            luma = frame.to_ndarray(format="yuv420p")[: frame.height]
            ts = decode_timestamp(luma)
            if ts is not None:
                self.latencies_ms.append(now_ms() - ts)
            self.frames += 1
            if self.first is None:
                self.first = luma
            self.last = luma
            self.got_frame.set()

    async def frames_after(self, n: int, timeout: float = 20.0) -> None:
        """Wait until `n` more frames have arrived."""
        target = self.frames + n
        async with asyncio.timeout(timeout):
            while self.frames < target:
                self.got_frame.clear()
                await self.got_frame.wait()


async def open_viewer(client: httpx.AsyncClient, drone_id: str) -> Viewer:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = Viewer(pc)
    pc.addTransceiver("video", direction="recvonly")

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        viewer.task = asyncio.create_task(viewer.consume(track), name="test-video-viewer")

    await pc.setLocalDescription(await pc.createOffer())
    r = await client.post(
        f"/api/v1/drones/{drone_id}/whep",
        content=pc.localDescription.sdp,
        headers={"Content-Type": "application/sdp"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/sdp")
    viewer.location = r.headers["location"]
    assert viewer.location.startswith(f"/api/v1/drones/{drone_id}/whep/")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
    return viewer


async def close_viewer(viewer: Viewer) -> None:
    await viewer.pc.close()
    if viewer.task is not None:
        viewer.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await viewer.task


def settings_for(tmp_path: Path, base_port: int) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}",
        area=str(AREA),
        policy=str(POLICY),
        time_scale=SPEED,
        mavlink_base_port=base_port,
        video_width=W,
        video_height=H,
        video_fps=20.0,
        video_evidence_dir=str(tmp_path / "evidence"),
    )


async def refusals(url: str, client: httpx.AsyncClient) -> None:
    """Unauthenticated, unknown drone, wrong type, not SDP: each refused with its reason."""
    offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    async with httpx.AsyncClient(base_url=url) as anonymous:
        r = await anonymous.post(
            "/api/v1/drones/cv-1/whep", content=offer, headers={"Content-Type": "application/sdp"}
        )
        assert r.status_code == 401, r.text
    r = await client.post(
        "/api/v1/drones/nope/whep", content=offer, headers={"Content-Type": "application/sdp"}
    )
    assert r.status_code == 404 and r.json()["detail"]["field"] == "drone_id"
    r = await client.post("/api/v1/drones/cv-1/whep", json={"sdp": offer})
    assert r.status_code == 415 and "application/sdp" in r.json()["detail"]["reason"]
    r = await client.post(
        "/api/v1/drones/cv-1/whep", content="hello", headers={"Content-Type": "application/sdp"}
    )
    assert r.status_code == 400 and "v=0" in r.json()["detail"]["reason"]
    r = await client.post(
        "/api/v1/drones/cv-1/whep", content=offer, headers={"Content-Type": "application/sdp"}
    )
    assert r.status_code == 400 and "m=video" in r.json()["detail"]["reason"], r.text
    garbage = offer + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"  # no ICE, no DTLS
    r = await client.post(
        "/api/v1/drones/cv-1/whep", content=garbage, headers={"Content-Type": "application/sdp"}
    )
    assert r.status_code == 400 and r.json()["detail"]["code"] == "bad_offer", r.text
    r = await client.post(
        "/api/v1/drones/cv-1/whep",
        content="v=0\r\n" + "a=x\r\n" * 20000,
        headers={"Content-Type": "application/sdp"},
    )
    assert r.status_code == 413
    r = await client.delete("/api/v1/drones/cv-1/whep/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404


async def test_viewers_watch_a_mission_and_it_is_recorded(tmp_path: Path) -> None:
    async with SimProcess(area=AREA, drones=1, speed=SPEED) as sim:
        async with running_service(settings_for(tmp_path, sim.base_port)) as svc:
            await svc.fleet.wait_ready("cv-1")
            async with (
                http_server(svc.app) as url,
                httpx.AsyncClient(base_url=url) as pilot,
                httpx.AsyncClient(base_url=url) as client,
            ):
                await signed_in(pilot, svc.store, Role.PILOT)
                await signed_in(client, svc.store, Role.VIEWER)
                await refusals(url, client)
                hub = svc.app.state.video.hub
                assert not hub.feeds, "refused offers leave no source running"

                viewers = [await open_viewer(client, "cv-1") for _ in range(3)]
                assert len(hub.sessions) == 3 and hub.watching("cv-1") == 3  # one source, three viewers
                for v in viewers:
                    await v.frames_after(5)

                r = await pilot.post("/api/v1/incidents", json=report("v-1", *NEAR_CIVIC))
                assert r.status_code == 201, r.text
                incident_id = r.json()["incident"]["id"]
                ms = await wait_mission(
                    pilot,
                    lambda ms: any(m["incident_id"] == incident_id and m["state"] == "en_route" for m in ms),
                    60,
                )
                mission = next(m for m in ms if m["incident_id"] == incident_id)

                # at cruise altitude: the overlay's altitude line says what the telemetry says
                cruise = float(mission["altitude_m"])
                await svc.fleet.drone("cv-1").wait_for(lambda s: abs((s.rel_alt_m or 0) - cruise) < 1.0, 30)
                await viewers[0].frames_after(8)
                assert viewers[0].last is not None
                seen = read_overlay_line(viewers[0].last, 1, ALTS)
                assert seen is not None
                assert abs(int(seen.split()[1]) - cruise) <= 2, (seen, cruise)
                assert read_overlay_line(viewers[0].last, 5, ["MISSION en_route", "MISSION on_scene"])

                # one viewer leaves; the others keep receiving
                r = await client.delete(viewers[2].location)
                assert r.status_code == 204
                r = await client.delete(viewers[2].location)
                assert r.status_code == 404
                await close_viewer(viewers[2])
                for v in viewers[:2]:
                    await v.frames_after(10)
                assert hub.watching("cv-1") >= 2
                for v in viewers[:2]:
                    assert v.first is not None and v.last is not None
                    change = float(np.mean(cv2.absdiff(v.first, v.last)[60:400, 150:640]))
                    assert change > 8.0, "the picture changes as the drone flies (dock vs. in flight)"
                    assert len(v.latencies_ms) > 0.9 * v.frames, (
                        "the timestamp code decodes on almost every frame"
                    )

                await wait_mission(
                    pilot,
                    lambda ms: any(m["id"] == mission["id"] and m["state"] == "landed" for m in ms),
                    150,
                )
                lat = sorted(viewers[0].latencies_ms)
                print(
                    f"\nglass-to-glass latency {W}x{H}: p50 {statistics.median(lat):.0f} ms, "
                    f"p95 {lat[int(0.95 * (len(lat) - 1))]:.0f} ms over {len(lat)} frames"
                )
                # a viewer that vanishes without DELETE (closed tab): its dead peer is cleaned up
                await close_viewer(viewers[1])
                async with asyncio.timeout(20):
                    while True:
                        if len(hub.sessions) == 1:
                            break
                        await asyncio.sleep(0.1)
                assert (await client.delete(viewers[0].location)).status_code == 204
                await close_viewer(viewers[0])

                # the recording: written, hashed and audited once the mission ended
                audit: list[dict[str, Any]] = []
                async with asyncio.timeout(30):
                    while not any(a["action"] == "evidence.recorded" for a in audit):
                        await asyncio.sleep(0.2)
                        audit = (
                            await client.get("/api/v1/audit", params={"subject_id": mission["id"]})
                        ).json()["entries"]
                record = next(a for a in audit if a["action"] == "evidence.recorded")
                assert record["actor"] == "video" and record["subject_type"] == "mission"
                r = await client.get(f"/api/v1/missions/{mission['id']}/video")
                assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
                assert hashlib.sha256(r.content).hexdigest() == record["details"]["sha256"]
                assert len(r.content) == record["details"]["bytes"]
                meta = (await client.get(f"/api/v1/missions/{mission['id']}/video/meta")).json()
                assert meta["sha256"] == record["details"]["sha256"]
                with av.open(str(tmp_path / "evidence" / meta["name"])) as container:
                    decoded = sum(1 for _ in container.decode(video=0))
                assert decoded == record["details"]["frames"] > 20
                r = await client.get("/api/v1/missions/not-a-uuid/video")
                assert r.status_code == 422
                r = await client.get(f"/api/v1/missions/{incident_id}/video")
                assert r.status_code == 404
                async with asyncio.timeout(10):
                    while True:  # nobody watches, nothing records: the source is stopped
                        if not hub.feeds:
                            break
                        await asyncio.sleep(0.1)


async def _audited(store: Store, mission_id: str, action: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            found = [e for e in await store.audit(mission_id) if e.action == action]
            if found:
                return found[-1].details
            await asyncio.sleep(0.05)


async def test_recorder_follows_mission_events_and_audits_failures(tmp_path: Path) -> None:
    """Without the simulator: mission events on the bus start and end recordings; a source that cannot
    be opened is audited as a failed recording, and nothing else is disturbed."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'dfr.sqlite'}")
    bus = EventBus()
    watch = MissionWatch(bus, {}, MissionStore(store))

    def source(drone_id: str) -> MediaStreamTrack:
        if drone_id == "broken":
            raise OSError("camera unreachable")
        return VideoStreamTrack()  # aiortc's 640x480 test pattern at 30 fps

    hub = VideoHub({"cv-1", "broken"}, source)
    recorder = EvidenceRecorder(hub, watch, store, tmp_path / "evidence")
    await watch.start()
    recorder.start()
    try:
        ok, bad = str(uuid.uuid4()), str(uuid.uuid4())
        for mission_id, drone_id in ((ok, "cv-1"), (bad, "broken")):
            bus.publish(MissionEvent(mission(MissionState.LAUNCHING, drone_id, mission_id)))
        failed = await _audited(store, bad, "evidence.failed")
        assert "camera unreachable" in failed["reason"]
        async with asyncio.timeout(10):
            while True:  # the recorder has taken cv-1's video: its source runs though nobody watches
                if "cv-1" in hub.feeds:
                    break
                await asyncio.sleep(0.05)
        assert hub.watching("cv-1") == 0
        await asyncio.sleep(1.0)  # a second of flight to record (a duration, not a synchronisation)
        bus.publish(MissionEvent(mission(MissionState.LANDED, "cv-1", ok)))
        details = await _audited(store, ok, "evidence.recorded")
        path = Path(details["path"])
        assert path.parent == (tmp_path / "evidence").resolve() and path.name == f"{ok}.mp4"
        data = await asyncio.to_thread(path.read_bytes)
        assert hashlib.sha256(data).hexdigest() == details["sha256"]
        assert details["frames"] >= 1 and details["bytes"] == len(data)
        found = await evidence_of(store, ok, tmp_path / "evidence")
        assert found is not None and found.sha256 == details["sha256"]
        assert not hub.feeds, "the source stops when the recording ends and nobody watches"
    finally:
        await recorder.close()
        await hub.close()
        await watch.stop()
        await store.close()

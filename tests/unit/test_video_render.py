"""The simulated camera, the telemetry overlay and the timestamp code, checked on real pixels.

Each picture property is checked through what a viewer gets: lossy JPEG or an H.264 encode/decode at a
low bitrate, as a WebRTC receiver would see it.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dfr.area import load_area
from dfr.fleet.drone import DroneState
from dfr.video.overlay import (
    Telemetry,
    decode_timestamp,
    draw_overlay,
    draw_timestamp,
    now_ms,
    read_overlay_line,
)
from dfr.video.sources import SourceConfig, UrlCameraTrack, _Smoother, apply_privacy, privacy_applies
from sim.camera import CameraPose, GroundRenderer

AREA = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"
CIVIC = (32.6401, -117.0842)
SCENE = (32.6450, -117.0800)
SIZE = (640, 480)


@pytest.fixture(scope="module")
def renderer() -> GroundRenderer:
    return GroundRenderer(load_area(AREA))


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(cv2.absdiff(a, b)))


def red_pixels(img: np.ndarray) -> int:
    b, g, r = img[..., 0].astype(int), img[..., 1].astype(int), img[..., 2].astype(int)
    return int(np.count_nonzero((r > 200) & (g < 60) & (b < 60)))


def jpeg(img: np.ndarray, quality: int = 50) -> np.ndarray:
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def test_view_moves_turns_and_scales(renderer: GroundRenderer) -> None:
    base = renderer.render(CameraPose(*CIVIC, 60.0, 0.0), SIZE)
    assert base.shape == (480, 640, 3)
    assert diff(base, renderer.render(CameraPose(*CIVIC, 60.0, 0.0), SIZE)) == 0.0  # pure: same in, same out
    moved = renderer.render(CameraPose(CIVIC[0] + 0.0001, CIVIC[1], 60.0, 0.0), SIZE)  # 11 m north
    turned = renderer.render(CameraPose(*CIVIC, 60.0, 90.0), SIZE)
    higher = renderer.render(CameraPose(*CIVIC, 120.0, 0.0), SIZE)
    for other in (moved, turned, higher):
        assert diff(base, other) > 10.0
    # 11 m north at 60 m (0.13 m/px): the ground slides down the picture by ~84 px, nothing else changes
    shift = round(11.1 / renderer.metres_per_px(60.0, SIZE[0]))
    assert diff(base[100:300, 200:440], moved[100 + shift : 300 + shift, 200:440]) < 12.0
    # a nadir camera with a 70-degree field of view: the footprint is 2 h tan(35 deg) wide
    assert renderer.metres_per_px(60.0, 640) * 640 == pytest.approx(2 * 60 * np.tan(np.radians(35)))
    assert renderer.metres_per_px(120.0, 640) == pytest.approx(2 * renderer.metres_per_px(60.0, 640))


def test_incident_marker_in_view_and_arrow_when_far(renderer: GroundRenderer) -> None:
    over = CameraPose(SCENE[0] - 0.00005, SCENE[1], 60.0, 0.0)  # 5.5 m south of the scene
    plain = renderer.render(over, SIZE)
    marked = renderer.render(over, SIZE, target=SCENE)
    assert red_pixels(marked) > red_pixels(plain) + 200
    # the marker is drawn where the scene is: just above the centre
    ys, xs = np.nonzero(cv2.absdiff(marked, plain).max(axis=2) > 60)
    assert abs(np.median(xs) - 320) < 30 and 180 < np.median(ys) < 240
    # far away (at the dock, 670 m): an arrow at the edge points north-east towards it
    far = renderer.render(CameraPose(*CIVIC, 60.0, 0.0), SIZE, target=SCENE)
    ys, xs = np.nonzero(
        cv2.absdiff(far, renderer.render(CameraPose(*CIVIC, 60.0, 0.0), SIZE)).max(axis=2) > 60
    )
    assert len(xs) > 100 and np.median(xs) > 320 and np.median(ys) < 240


def test_overlay_text_survives_jpeg(renderer: GroundRenderer) -> None:
    for size in (SIZE, (1280, 720)):
        img = renderer.render(CameraPose(*CIVIC, 87.0, 45.0), size)
        draw_overlay(img, Telemetry("cv-1", 87.2, 10.4, 45.0, 91.0, "en_route"), now_ms())
        got = jpeg(img)
        alts = [f"ALT {a} m AGL" for a in range(0, 200)]
        assert read_overlay_line(got, 1, alts) == "ALT 87 m AGL"
        assert read_overlay_line(got, 5, ["MISSION en_route", "MISSION on_scene", "MISSION --"]) == (
            "MISSION en_route"
        )
    off = renderer.render(CameraPose(*CIVIC, 87.0, 45.0), SIZE)
    assert read_overlay_line(off, 1, alts) is None  # nothing there: nothing read


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_timestamp_code_round_trips_h264_and_jpeg(renderer: GroundRenderer, size: tuple[int, int]) -> None:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.bit_rate = 300_000  # below what WebRTC gives a 640x480 stream
    enc.time_base = fractions.Fraction(1, 30)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
    dec = av.CodecContext.create("h264", "r")
    start = now_ms()
    sent, got = [], []
    for i in range(20):
        img = renderer.render(CameraPose(CIVIC[0] + i * 3e-5, CIVIC[1], 40.0, 10.0 * i), size, target=SCENE)
        ms = start + 33 * i
        draw_timestamp(img, ms)
        sent.append(ms)
        if i == 0:
            assert decode_timestamp(jpeg(img, 30)) == ms
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        frame.pts = i
        for packet in enc.encode(frame):
            for decoded in dec.decode(packet):
                got.append(decode_timestamp(decoded.to_ndarray(format="yuv420p")[: size[1]]))
    assert got and got == sent[: len(got)]


def test_no_code_means_none(renderer: GroundRenderer) -> None:
    img = renderer.render(CameraPose(*CIVIC, 60.0, 0.0), SIZE)
    assert decode_timestamp(img) is None
    draw_timestamp(img, 1_800_000_000_123)
    img[-20:-12, 40:48] = 255 - img[-20:-12, 40:48]  # one block flipped: the CRC refuses it
    assert decode_timestamp(img) is None


def test_transit_privacy_hides_the_scene(renderer: GroundRenderer) -> None:
    over = CameraPose(SCENE[0], SCENE[1], 60.0, 0.0)
    for mode in ("blur", "blank"):
        img = renderer.render(over, SIZE, target=SCENE)
        apply_privacy(img, mode)
        assert red_pixels(img) == 0
        assert float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()) < 5.0


def test_smoother_extrapolates_between_telemetry_updates() -> None:
    s = _Smoother()
    state = DroneState(lat=32.0, lon=-117.0, rel_alt_m=50.0, heading_deg=350.0)
    assert s.pose(state, 10.0) == CameraPose(32.0, -117.0, 50.0, 350.0)
    state.lat, state.heading_deg = 32.0001, 10.0
    p = s.pose(state, 10.2)
    assert p is not None and p.lat == pytest.approx(32.0001)
    mid = s.pose(state, 10.3)  # half a telemetry interval later: half a step further, turning through north
    assert mid is not None and mid.lat == pytest.approx(32.00015) and mid.heading_deg == pytest.approx(20.0)
    late = s.pose(state, 30.0)  # stale telemetry: extrapolation is capped, not flown on forever
    assert late is not None and late.lat == pytest.approx(32.0002)


def test_transit_mode_applies_until_on_scene() -> None:
    assert not privacy_applies("off", None)
    for mode in ("blur", "blank"):
        assert privacy_applies(mode, None)  # idle or unknown: private
        assert privacy_applies(mode, {"state": "en_route"})
        assert not privacy_applies(mode, {"state": "on_scene"})
        assert privacy_applies(mode, {"state": "returning"})


class _NoMission:
    def mission_for(self, drone_id: str) -> None:
        return None


async def test_url_camera_gets_overlay_and_timestamp(tmp_path: Path, renderer: GroundRenderer) -> None:
    """A real camera by URL (here a file; RTSP and udp:// go through the same PyAV input)."""
    path = tmp_path / "camera.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(15):
            img = renderer.render(CameraPose(CIVIC[0] + i * 1e-5, CIVIC[1], 60.0, 0.0), (320, 240))
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    state = DroneState(lat=CIVIC[0], lon=CIVIC[1], rel_alt_m=42.0, heading_deg=90.0, battery_pct=80.0)
    track = UrlCameraTrack(
        "cv-1", str(path), lambda: state, _NoMission(), SourceConfig(width=320, height=240)
    )
    try:
        frame = await track.recv()
        before = now_ms()
        frame = await track.recv()
        img = frame.to_ndarray(format="bgr24")
        assert (frame.width, frame.height) == (320, 240)
        ts = decode_timestamp(img)
        assert ts is not None and abs(ts - before) < 2000
        assert read_overlay_line(img, 1, [f"ALT {a} m AGL" for a in range(100)]) == "ALT 42 m AGL"
    finally:
        track.stop()

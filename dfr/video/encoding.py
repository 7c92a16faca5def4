"""Encode once per drone, send to every viewer: why many viewers cost little.

aiortc normally encodes a track separately for each peer connection, so each viewer costs a full VP8
encode (10-15 ms of CPU per 720p frame): two or three viewers per core. But its senders also accept
already-encoded packets and only packetise and encrypt them. `EncodedTrack` encodes a drone's frames
once (libvpx VP8, real-time settings, a fixed bitrate suited to a LAN) and the hub relays the packets to
every viewer; `KeyframeGate` starts each viewer at a keyframe (one is made at once when a viewer
joins, and every `KEYFRAME_INTERVAL_S` so that a lost packet heals quickly) and drops a viewer's backlog
back to the next keyframe if its sender falls behind.

What is given up: per-viewer bitrate adaptation (every viewer gets the same stream; an RTCC LAN has the
bandwidth) and the viewers' picture-loss requests (the periodic keyframe answers them).
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["KEYFRAME_INTERVAL_S", "MAX_BACKLOG", "EncodedTrack", "KeyframeGate", "auto_bitrate"]

KEYFRAME_INTERVAL_S = 2.0
MAX_BACKLOG = 30
"""Packets a viewer may have queued (one second at 30 fps) before its backlog is dropped."""


def auto_bitrate(width: int, height: int, fps: float) -> int:
    """About 0.06 bit per pixel: 1.7 Mbit/s at 720p30, 550 kbit/s at 480p30 (VP8, real time)."""
    return int(max(200_000, min(8_000_000, width * height * fps * 0.06)))


class EncodedTrack(MediaStreamTrack):
    """VP8 packets of `frames` (a relay proxy of the drone's source), encoded in a worker thread."""

    kind = "video"

    def __init__(self, frames: MediaStreamTrack, bitrate: int) -> None:
        super().__init__()
        self._frames = frames
        self.bitrate = bitrate
        self._codec: av.VideoCodecContext | None = None
        self._want_keyframe = True
        self._last_keyframe = -1e9

    def request_keyframe(self) -> None:
        self._want_keyframe = True

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self._frames.recv()  # MediaStreamError when the source ends
            assert isinstance(frame, av.VideoFrame)
            packet = await asyncio.to_thread(self._encode, frame)
            if packet is not None:
                return packet

    def _encode(self, frame: av.VideoFrame) -> av.Packet | None:
        if self._codec is None or (self._codec.width, self._codec.height) != (frame.width, frame.height):
            self._codec = self._open(frame.width, frame.height)
        now = time.monotonic()
        key = self._want_keyframe or now - self._last_keyframe >= KEYFRAME_INTERVAL_S
        # The frame object is shared with other consumers (the recorder): encode a re-timed reference to
        # its planes without changing it, so the forced keyframe flag stays here.
        src = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
        src.pts, src.time_base = frame.pts, frame.time_base
        if key:
            src.pict_type = av.video.frame.PictureType.I
        data = b""
        is_key = False
        for p in self._codec.encode(src):
            data += bytes(p)
            is_key = is_key or p.is_keyframe
        if not data:
            return None
        if is_key:
            self._want_keyframe = False
            self._last_keyframe = now
        packet = av.Packet(data)
        packet.pts = frame.pts
        packet.time_base = frame.time_base if frame.time_base is not None else fractions.Fraction(1, 90_000)
        packet.is_keyframe = is_key
        return packet

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.bit_rate = self.bitrate
        codec.time_base = fractions.Fraction(1, 90_000)
        codec.gop_size = 100_000  # keyframes are forced, on a viewer's arrival and on the interval
        codec.qmin, codec.qmax = 4, 56
        codec.thread_count = 2
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "error-resilient": "1",
            "static-thresh": "100",
            "undershoot-pct": "95",
            "overshoot-pct": "15",
            "bufsize": str(self.bitrate),
            "maxrate": str(self.bitrate),
        }
        return codec

    def stop(self) -> None:
        super().stop()
        self._frames.stop()


class KeyframeGate(MediaStreamTrack):
    """One viewer's packets: from a keyframe on, and back to the next keyframe if it falls behind."""

    kind = "video"

    def __init__(self, packets: MediaStreamTrack, encoder: EncodedTrack) -> None:
        super().__init__()
        self._packets = packets
        self._encoder = encoder
        self._started = False
        self.dropped = 0
        self.sent = 0

    def _backlog(self) -> int:
        queue = getattr(self._packets, "_queue", None)  # aiortc's buffered relay proxy keeps one
        return queue.qsize() if isinstance(queue, asyncio.Queue) else 0

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._started and self._backlog() > MAX_BACKLOG:
                self._started = False  # skip to the next keyframe rather than play a growing delay
                self._encoder.request_keyframe()
            packet = await self._packets.recv()
            assert isinstance(packet, av.Packet)
            if self._started or packet.is_keyframe:
                self._started = True
                self.sent += 1
                return packet
            self.dropped += 1

    def stop(self) -> None:
        super().stop()
        self._packets.stop()

"""What is burned into every video frame: the telemetry overlay and a machine-readable capture time.

The overlay (UTC time, altitude, speed, heading, battery, mission state) is for people: a recording shown
later, or a still sent to an officer, carries its own context. It can be switched off for a clean picture.

The timestamp code is for machines: a 16 x 4 grid of black and white blocks in the bottom-left corner
holding the capture time (milliseconds since the Unix epoch, 48 bits) and a CRC-16 of it. A receiver that
decodes it and compares with its own clock (same host, or NTP-synchronised hosts) measures the real
glass-to-glass latency: render, encode, network, jitter buffer and decode. The blocks are 8 px at 480
lines and 16 px at 720 (aligned to the codecs' 8/16 px block grid) and are read at their centres, so they
survive H.264/VP8 at low bitrates; the CRC rejects a frame whose code was damaged rather than returning a
wrong time.
"""

from __future__ import annotations

import binascii
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np

__all__ = [
    "CODE_COLS",
    "CODE_ROWS",
    "OverlayLayout",
    "Telemetry",
    "code_block_px",
    "decode_timestamp",
    "draw_overlay",
    "draw_timestamp",
    "now_ms",
    "read_overlay_line",
]

CODE_COLS, CODE_ROWS = 16, 4
_TS_BITS = 48
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE, _BLACK, _GREY = 235, 16, 128  # video-range luma: what survives a YUV round trip unchanged


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def code_block_px(height: int) -> int:
    """Side of one code block: 8 px up to 600 lines, 16 px above (a multiple of 8, for the codecs)."""
    return 8 if height <= 600 else 16


def _code_origin(width: int, height: int) -> tuple[int, int, int]:
    b = code_block_px(height)
    if width < b * (CODE_COLS + 2) or height < b * (CODE_ROWS + 2):
        raise ValueError(f"a {width}x{height} frame is too small for the timestamp code")
    return b, height - b * (CODE_ROWS + 1), b


def _bits(ms: int) -> np.ndarray:
    payload = ms.to_bytes(_TS_BITS // 8, "big")
    crc = binascii.crc_hqx(payload, 0xFFFF)
    word = (ms << 16) | crc
    return np.array([(word >> (63 - i)) & 1 for i in range(64)], np.uint8)


def draw_timestamp(frame: np.ndarray, ms: int) -> None:
    """Write the capture time `ms` (0 <= ms < 2**48) into the bottom-left corner of `frame`, in place."""
    if not 0 <= ms < 2**_TS_BITS:
        raise ValueError("timestamp out of range")
    h, w = frame.shape[:2]
    x0, y0, b = _code_origin(w, h)
    pad = b // 2
    frame[y0 - pad : y0 + CODE_ROWS * b + pad, x0 - pad : x0 + CODE_COLS * b + pad] = _GREY
    grid = np.where(_bits(ms).reshape(CODE_ROWS, CODE_COLS), _WHITE, _BLACK).astype(np.uint8)
    block = np.repeat(np.repeat(grid, b, axis=0), b, axis=1)
    region = frame[y0 : y0 + CODE_ROWS * b, x0 : x0 + CODE_COLS * b]
    if frame.ndim == 3:
        region[...] = block[..., None]
    else:
        region[...] = block


def decode_timestamp(frame: np.ndarray) -> int | None:
    """The capture time in a frame (BGR, or a single luma/grey plane), or None if no valid code is there."""
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = frame.shape[:2]
    try:
        x0, y0, b = _code_origin(w, h)
    except ValueError:
        return None
    q = b // 4
    region = frame[y0 : y0 + CODE_ROWS * b, x0 : x0 + CODE_COLS * b].astype(np.float32)
    centres = region.reshape(CODE_ROWS, b, CODE_COLS, b)[:, q : b - q, :, q : b - q].mean(axis=(1, 3))
    bits = (centres.reshape(-1) > _GREY).astype(np.uint64)
    word = 0
    for bit in bits:
        word = (word << 1) | int(bit)
    ms, crc = word >> 16, word & 0xFFFF
    if binascii.crc_hqx(ms.to_bytes(_TS_BITS // 8, "big"), 0xFFFF) != crc:
        return None
    return ms


@dataclass(frozen=True)
class Telemetry:
    """What the overlay shows; None = unknown (shown as ``--``)."""

    drone_id: str
    alt_m: float | None
    speed_m_s: float | None
    heading_deg: float | None
    battery_pct: float | None
    mission_state: str | None
    note: str | None = None


@dataclass(frozen=True)
class OverlayLayout:
    """Where the overlay's lines go for a frame size; shared with receivers that read the text back."""

    width: int
    height: int

    @property
    def scale(self) -> float:
        return 0.5 if self.height <= 600 else 0.75

    @property
    def thickness(self) -> int:
        return 1 if self.height <= 600 else 2

    @property
    def line_height(self) -> int:
        return int(26 * self.scale / 0.5)

    def origin(self, line: int) -> tuple[int, int]:
        """Baseline origin of text line `line` (0 = top)."""
        return 12, 12 + self.line_height * (line + 1)

    def lines(self, t: Telemetry, ms: int) -> list[str]:
        def num(v: float | None, fmt: str) -> str:
            return "--" if v is None else format(v, fmt)

        utc = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return [
            f"{t.drone_id}  {utc}",
            f"ALT {num(t.alt_m, '.0f')} m AGL",
            f"SPD {num(t.speed_m_s, '.1f')} m/s",
            f"HDG {num(None if t.heading_deg is None else t.heading_deg % 360, '03.0f')}",
            f"BAT {num(t.battery_pct, '.0f')} %",
            f"MISSION {t.mission_state or '--'}",
        ]

    def draw_line(self, frame: np.ndarray, line: int, text: str) -> None:
        org = self.origin(line)
        cv2.putText(frame, text, org, _FONT, self.scale, (255, 255, 255), self.thickness, cv2.LINE_AA)

    def line_box(self, line: int, chars: int = 24) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a text line holding up to `chars` characters."""
        x, y = self.origin(line)
        (cw, ch), base = cv2.getTextSize("M" * chars, _FONT, self.scale, self.thickness)
        return x - 2, y - ch - 4, min(self.width, x + cw + 2), y + base + 2


def draw_overlay(frame: np.ndarray, t: Telemetry, ms: int) -> None:
    """Burn the telemetry lines into the top-left corner of a BGR `frame`, on a darkened panel."""
    lay = OverlayLayout(frame.shape[1], frame.shape[0])
    lines = lay.lines(t, ms)
    if t.note:
        lines.append(t.note)
    x0, y0, _, _ = lay.line_box(0)
    _, _, _, y1 = lay.line_box(len(lines) - 1)
    x1 = min(
        frame.shape[1], x0 + max(cv2.getTextSize(s, _FONT, lay.scale, lay.thickness)[0][0] for s in lines) + 8
    )
    panel = frame[max(0, y0) : y1, max(0, x0) : x1]
    panel >>= 2  # a quarter of the brightness: white text reads on any ground
    for i, text in enumerate(lines):
        lay.draw_line(frame, i, text)


def read_overlay_line(frame: np.ndarray, line: int, candidates: list[str]) -> str | None:
    """Which of `candidates` is written on overlay line `line` of a received frame (BGR or luma).

    A tiny OCR by template: each candidate is drawn as the overlay would draw it and compared with the
    frame's bright (text) pixels; the best match wins if it explains most of them. Used by tests and
    monitoring to check that what a viewer sees says what the telemetry says, through a lossy codec.
    """
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    h, w = grey.shape[:2]
    lay = OverlayLayout(w, h)
    x0, y0, _, y1 = lay.line_box(line)
    # Only as wide as the longest candidate: right of the text panel is the (bright) picture.
    widest = max((cv2.getTextSize(t, _FONT, lay.scale, lay.thickness)[0][0] for t in candidates), default=0)
    x1 = min(w, lay.origin(line)[0] + widest + 3)
    seen = grey[max(0, y0) : y1, max(0, x0) : x1] > 150
    best, best_score = None, 0.0
    for text in candidates:
        canvas = np.zeros((h, w), np.uint8)
        cv2.putText(canvas, text, lay.origin(line), _FONT, lay.scale, 255, lay.thickness, cv2.LINE_AA)
        drawn = canvas[max(0, y0) : y1, max(0, x0) : x1] > 150
        union = np.count_nonzero(drawn | seen)
        score = np.count_nonzero(drawn & seen) / union if union else 0.0
        if score > best_score:
            best, best_score = text, score
    return best if best_score >= 0.5 else None

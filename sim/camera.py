"""The simulated drone camera: a synthetic aerial view of an operating area, rendered with OpenCV.

A pure renderer (no I/O, no clock): give it where the drone is (lat, lon, height above ground, heading)
and where the incident is, and it returns a BGR picture of what a nadir camera with a ~70° horizontal
field of view would see. The point is not realism but that a person watching can tell what the drone is
doing: the ground moves under it as it flies, turns with its heading and shrinks as it climbs, and the
incident spot, the no-fly zones, the docks and the operating-area boundary are drawn where they are.
When the scene is out of view an arrow at the edge of the picture points to it with the distance, so a
viewer sees the drone closing in.

Cost: one ``warpAffine`` of a precomputed, seamlessly tiling ground texture (``BORDER_WRAP`` makes it
cover any position without a world-sized bitmap) plus a few vector shapes. A 1280x720 frame renders in a
few milliseconds, and OpenCV releases the GIL meanwhile, so a caller can render in a worker thread.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from shapely.geometry import Polygon

from dfr.area import Area
from dfr.planning.projection import LocalProjection

__all__ = ["DEFAULT_HFOV_DEG", "CameraPose", "GroundRenderer", "ground_tile"]

DEFAULT_HFOV_DEG = 70.0
"""Horizontal field of view: a typical DFR payload's wide camera (DJI Dock-class drones are 70-84°)."""

TILE_M = 128.0
"""The ground texture repeats every this many metres: a city block, so that repetition is not obvious."""

TILE_PX = 1024
"""Texture resolution: 8 px per metre, enough detail at the lowest altitudes the tests fly (30 m)."""

MAX_LEVEL = 6
"""Coarsest mip level (16 px tile): beyond it the texture is minified, which only happens above ~1 km."""

MIN_HEIGHT_M = 2.0
"""On the ground the camera still sees something (a few metres of dock) rather than dividing by zero."""

# Colours (BGR).
_ZONE = (40, 40, 220)
_AREA = (0, 215, 255)
_DOCK = (255, 160, 0)
_TARGET = (0, 0, 255)
_TEXT = (255, 255, 255)


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is: WGS 84 position, height above the ground (m) and heading (deg from north)."""

    lat: float
    lon: float
    height_m: float
    heading_deg: float


@functools.lru_cache(maxsize=2)
def ground_tile(seed: int = 7) -> np.ndarray:
    """A seamlessly tiling city-block texture (BGR, TILE_PX square): grass noise, a road around the
    block with lane marks, buildings and a 16 m survey grid. Cached: every renderer shares one copy."""
    rng = np.random.default_rng(seed)
    k = TILE_PX / TILE_M  # px per metre
    # Grass: low-frequency noise (upsampled, wrapped so it tiles) plus fine grain.
    seed_noise = np.tile(rng.normal(0.0, 1.0, (16, 16)).astype(np.float32), (3, 3))
    big = cv2.resize(seed_noise, (TILE_PX * 3, TILE_PX * 3), interpolation=cv2.INTER_CUBIC)
    coarse = big[TILE_PX : 2 * TILE_PX, TILE_PX : 2 * TILE_PX]
    fine = rng.normal(0.0, 1.0, (TILE_PX, TILE_PX)).astype(np.float32)
    shade = 10.0 * coarse + 8.0 * fine
    img = np.empty((TILE_PX, TILE_PX, 3), np.float32)
    img[..., 0] = 60 + shade
    img[..., 1] = 110 + shade * 1.2
    img[..., 2] = 70 + shade
    tile = np.clip(img, 0, 255).astype(np.uint8)

    # Buildings: roofs of a few greys and browns, kept off the road.
    road = int(10 * k)  # half a 20 m road on each edge of the tile
    for _ in range(14):
        w, h = (int(v) for v in rng.integers(int(8 * k), int(22 * k), size=2))
        x = int(rng.integers(road + 8, TILE_PX - road - 8 - w))
        y = int(rng.integers(road + 8, TILE_PX - road - 8 - h))
        grey = int(rng.integers(90, 200))
        colour = (grey, grey, min(255, grey + int(rng.integers(0, 50))))
        cv2.rectangle(tile, (x + 6, y + 6), (x + w + 6, y + h + 6), (30, 45, 30), -1)  # shadow
        cv2.rectangle(tile, (x, y), (x + w, y + h), colour, -1)
        cv2.rectangle(tile, (x, y), (x + w, y + h), (40, 40, 40), 2)
        cv2.line(tile, (x, y + h // 2), (x + w, y + h // 2), (grey - 30,) * 3, 2)  # roof ridge
    # Road along the tile's edges (so neighbouring tiles join into a street grid), with lane marks.
    asphalt = (70, 70, 72)
    tile[:road, :] = asphalt
    tile[-road:, :] = asphalt
    tile[:, :road] = asphalt
    tile[:, -road:] = asphalt
    dash = int(3 * k)
    for p in range(0, TILE_PX, 2 * dash):
        cv2.line(tile, (p, 0), (p + dash, 0), (220, 220, 220), 3)
        cv2.line(tile, (0, p), (0, p + dash), (220, 220, 220), 3)
    # Survey grid every 16 m: fine structure that makes motion visible at any altitude.
    step = int(16 * k)
    for p in range(0, TILE_PX, step):
        cv2.line(tile, (p, 0), (p, TILE_PX - 1), (200, 200, 200), 1)
        cv2.line(tile, (0, p), (TILE_PX - 1, p), (200, 200, 200), 1)
    return tile


@functools.lru_cache(maxsize=8)
def _mosaic(level: int, n: int) -> np.ndarray:
    """``n`` x ``n`` copies of the ground tile at mip ``level`` (each level halves the resolution)."""
    tile = ground_tile()
    size = TILE_PX >> level
    if level:
        tile = cv2.resize(tile, (size, size), interpolation=cv2.INTER_AREA)
    return np.tile(tile, (n, n, 1))


def _ring_xy(proj: LocalProjection, poly: Polygon) -> np.ndarray:
    return proj.to_xy_array(np.asarray(poly.exterior.coords)[:, :2])


class GroundRenderer:
    """Renders the view of one area; create once per area (cheap to keep, reused for every frame)."""

    def __init__(self, area: Area, *, hfov_deg: float = DEFAULT_HFOV_DEG) -> None:
        if not 5.0 <= hfov_deg <= 170.0:
            raise ValueError("hfov_deg must be between 5 and 170 degrees")
        c = area.operating_area.centroid
        self.proj = LocalProjection.around(c.x, c.y)
        self.half_tan = math.tan(math.radians(hfov_deg) / 2.0)
        self.tile = ground_tile()
        self.area_xy = _ring_xy(self.proj, area.operating_area)
        self.zones_xy = [_ring_xy(self.proj, z.geometry) for z in area.zones]
        self.docks_xy = [(d.id, self.proj.to_xy(d.lon, d.lat)) for d in area.docks]

    def metres_per_px(self, height_m: float, width_px: int) -> float:
        """Ground sampling distance at the centre of a nadir picture ``width_px`` wide."""
        return 2.0 * max(height_m, MIN_HEIGHT_M) * self.half_tan / width_px

    def render(
        self,
        pose: CameraPose,
        size: tuple[int, int],
        target: tuple[float, float] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The picture (BGR, ``size`` = (width, height)) seen from `pose`; `target` = (lat, lon) of the
        incident. ``out`` may be a reusable buffer of the right shape."""
        w, h = size
        x0, y0 = self.proj.to_xy(pose.lon, pose.lat)
        s = 1.0 / self.metres_per_px(pose.height_m, w)  # px per metre
        psi = math.radians(pose.heading_deg)
        cos, sin = math.cos(psi), math.sin(psi)
        cx, cy = w / 2.0, h / 2.0
        # World metres (east x, north y) -> image: right = (cos, -sin), up = forward = (sin, cos).
        a = np.array([[s * cos, -s * sin], [-s * sin, -s * cos]])

        def to_img(xy: np.ndarray) -> np.ndarray:
            d = np.asarray(xy, float).reshape(-1, 2) - (x0, y0)
            return d @ a.T + (cx, cy)

        frame = self._ground(x0, y0, a, size, out)
        lw = max(2, w // 320)
        self._zones(frame, to_img, lw)
        area_px = to_img(self.area_xy).round().astype(np.int32)
        cv2.polylines(frame, [area_px], True, _AREA, lw + 1, cv2.LINE_AA)
        for dock_id, xy in self.docks_xy:
            p = to_img(np.asarray(xy))[0]
            if -50 < p[0] < w + 50 and -50 < p[1] < h + 50:
                self._dock(frame, p, max(10.0, 3.0 * s), dock_id, lw)
        if target is not None:
            tp = to_img(np.asarray(self.proj.to_xy(target[1], target[0])))[0]
            self._target(frame, tp, s, (x0, y0), target, lw)
        return frame

    def _ground(
        self, x0: float, y0: float, a: np.ndarray, size: tuple[int, int], out: np.ndarray | None
    ) -> np.ndarray:
        """The textured ground, rendered at half resolution (a quarter of the pixels) and scaled up: the
        texture is soft anyway, and that halves the cost of a 720p frame."""
        w, h = size
        f = 2 if w >= 960 else 1
        wg, hg = w // f, h // f
        ag = a / f  # world metres -> ground-image px
        s_g = math.sqrt(abs(np.linalg.det(ag)))  # px per metre in the ground image
        # Mip level: the texture is never minified more than 2x (no aliasing shimmer at altitude).
        k = TILE_PX / TILE_M
        level = max(0, min(MAX_LEVEL, math.floor(math.log2(k / s_g)))) if s_g < k else 0
        k_l = k / 2**level
        diag_m = math.hypot(wg, hg) / s_g
        j = max(1, math.ceil(diag_m / (2 * TILE_M)))
        mosaic = _mosaic(level, 2 * j + 1)
        # Mosaic px (p, q) is world (p / k_l, (n * T) - q / k_l) shifted by whole tiles; the drone, taken
        # modulo the tile, sits j tiles in from the mosaic's west and south edges, so the whole view is
        # inside the mosaic and no border handling (slow in warpAffine) is needed.
        n_m = (2 * j + 1) * TILE_M
        xd, yd = x0 % TILE_M + j * TILE_M, y0 % TILE_M + j * TILE_M
        t = np.array([[1.0 / k_l, 0.0], [0.0, -1.0 / k_l]])
        lin = ag @ t
        # image = ag @ (world - drone) + centre, world = t @ (p, q) + (0, n_m)
        off = np.array([wg / 2.0, hg / 2.0]) + ag @ (np.array([0.0, n_m]) - np.array([xd, yd]))
        m = np.hstack([lin, off.reshape(2, 1)])
        if f == 1:
            return cv2.warpAffine(
                mosaic, m, (w, h), dst=out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        small = cv2.warpAffine(mosaic, m, (wg, hg), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(small, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)

    def _zones(self, frame: np.ndarray, to_img: object, lw: int) -> None:
        h, w = frame.shape[:2]
        visible = []
        for ring in self.zones_xy:
            px = to_img(ring)  # type: ignore[operator]
            lo, hi = px.min(axis=0), px.max(axis=0)
            if hi[0] < 0 or hi[1] < 0 or lo[0] > w or lo[1] > h:
                continue
            visible.append(np.clip(px, -4 * w, 5 * w).round().astype(np.int32))
        if not visible:
            return
        tint = frame.copy()
        cv2.fillPoly(tint, visible, _ZONE)
        cv2.addWeighted(tint, 0.35, frame, 0.65, 0.0, dst=frame)
        cv2.polylines(frame, visible, True, _ZONE, lw, cv2.LINE_AA)

    @staticmethod
    def _dock(frame: np.ndarray, p: np.ndarray, r: float, dock_id: str, lw: int) -> None:
        c = (int(p[0]), int(p[1]))
        ri = int(min(r, 200))
        cv2.circle(frame, c, ri, _DOCK, lw, cv2.LINE_AA)
        cv2.putText(frame, "H", (c[0] - ri // 3, c[1] + ri // 3), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, ri / 30), _DOCK, lw, cv2.LINE_AA)  # fmt: skip
        cv2.putText(frame, dock_id, (c[0] + ri + 4, c[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _DOCK, 1)

    def _target(
        self,
        frame: np.ndarray,
        p: np.ndarray,
        s: float,
        here: tuple[float, float],
        target: tuple[float, float],
        lw: int,
    ) -> None:
        h, w = frame.shape[:2]
        r = int(max(14.0, min(4.0 * s, h / 6)))  # a 4 m ring, never too small to see or filling the view
        inside = 0 <= p[0] < w and 0 <= p[1] < h
        if inside:
            c = (int(p[0]), int(p[1]))
            cv2.circle(frame, c, r, _TARGET, lw + 1, cv2.LINE_AA)
            cv2.circle(frame, c, max(3, r // 5), _TARGET, -1, cv2.LINE_AA)
            cv2.line(frame, (c[0] - 2 * r, c[1]), (c[0] - r, c[1]), _TARGET, lw)
            cv2.line(frame, (c[0] + r, c[1]), (c[0] + 2 * r, c[1]), _TARGET, lw)
            cv2.line(frame, (c[0], c[1] - 2 * r), (c[0], c[1] - r), _TARGET, lw)
            cv2.line(frame, (c[0], c[1] + r), (c[0], c[1] + 2 * r), _TARGET, lw)
            return
        # Off screen: an arrow from the centre towards it, stopped at the edge, with the distance.
        cx, cy = w / 2.0, h / 2.0
        dx, dy = p[0] - cx, p[1] - cy
        norm = math.hypot(dx, dy) or 1.0
        reach = min((cx - 40) / abs(dx) if dx else math.inf, (cy - 40) / abs(dy) if dy else math.inf)
        tip = (int(cx + dx * reach), int(cy + dy * reach))
        tail = (int(tip[0] - dx / norm * 60), int(tip[1] - dy / norm * 60))
        cv2.arrowedLine(frame, tail, tip, _TARGET, lw + 2, cv2.LINE_AA, tipLength=0.4)
        tx, ty = self.proj.to_xy(target[1], target[0])
        dist = math.hypot(tx - here[0], ty - here[1])
        label = f"SCENE {dist:,.0f} m" if dist < 10_000 else f"SCENE {dist / 1000:.1f} km"
        org = (min(max(tail[0] - 60, 4), w - 170), min(max(tail[1] + 8, 20), h - 8))
        cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, _TEXT, 1, cv2.LINE_AA)

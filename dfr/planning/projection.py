"""Local metric projection for planning.

Buffers, distances and "is this segment inside that polygon" only make sense in metres, and a
drone's operating area is a few kilometres across, so every computation happens in an azimuthal
equidistant projection centred on the area. Over 10 km the scale error of that projection is below
1 ppm, far under the metre-level margins the planner adds, so straight lines in this plane are
treated as the flown segments.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.enums import TransformDirection

# Centres are rounded to this many decimals (about 10 m) so that every request for the same area
# hits the same cached transformer even if the centroid wobbles in the last floating-point digits.
_CENTRE_DECIMALS = 4


@functools.lru_cache(maxsize=64)
def _transformer(lon0: float, lat0: float) -> Transformer:
    """WGS84 lon/lat -> local AEQD metres. Cached because building a Transformer costs ~ms."""
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m +no_defs")
    return Transformer.from_crs(CRS.from_epsg(4326), local, always_xy=True)


@dataclass(frozen=True)
class LocalProjection:
    """A metric plane tangent at (`lon0`, `lat0`); use `around` to build one (it rounds the centre)."""

    lon0: float
    lat0: float

    @classmethod
    def around(cls, lon: float, lat: float) -> LocalProjection:
        """Projection centred near (`lon`, `lat`), rounded so repeated calls share a transformer."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError(f"projection centre must be finite, got ({lon}, {lat})")
        return cls(round(lon, _CENTRE_DECIMALS), round(lat, _CENTRE_DECIMALS))

    @property
    def transformer(self) -> Transformer:
        return _transformer(self.lon0, self.lat0)

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self.transformer.transform(lon, lat)
        return float(x), float(y)

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.transformer.transform(x, y, direction=TransformDirection.INVERSE)
        return float(lon), float(lat)

    def to_xy_array(self, lonlat: np.ndarray) -> np.ndarray:
        """(N, 2) lon/lat -> (N, 2) metres, vectorised (one pyproj call for the whole array)."""
        pts = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        x, y = self.transformer.transform(pts[:, 0], pts[:, 1])
        return np.column_stack([x, y])

    def to_lonlat_array(self, xy: np.ndarray) -> np.ndarray:
        pts = np.asarray(xy, dtype=float).reshape(-1, 2)
        lon, lat = self.transformer.transform(pts[:, 0], pts[:, 1], direction=TransformDirection.INVERSE)
        return np.column_stack([lon, lat])

    def geom_to_xy(self, geom: Any) -> Any:
        """Project a shapely geometry (any type) from lon/lat into this plane."""
        return shapely.transform(geom, self.to_xy_array)

    def geom_to_lonlat(self, geom: Any) -> Any:
        return shapely.transform(geom, self.to_lonlat_array)

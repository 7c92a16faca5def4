"""Flat-earth conversion between WGS84 and a local north/east frame around a home point.

Accurate to centimetres over the few kilometres a DFR flight spans, and much cheaper than pyproj in the
simulator's inner loop.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_000.0


def ne_from_latlon(home_lat: float, home_lon: float, lat: float, lon: float) -> tuple[float, float]:
    """North/east metres of (lat, lon) from the home point."""
    north = math.radians(lat - home_lat) * EARTH_RADIUS_M
    east = math.radians(lon - home_lon) * EARTH_RADIUS_M * math.cos(math.radians(home_lat))
    return north, east


def latlon_from_ne(home_lat: float, home_lon: float, north: float, east: float) -> tuple[float, float]:
    """(lat, lon) of a point north/east metres from the home point."""
    lat = home_lat + math.degrees(north / EARTH_RADIUS_M)
    lon = home_lon + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(home_lat))))
    return lat, lon


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))

"""Operating areas: where a fleet's docks are, which drones they hold, and where the drones must not fly.

An area is a small YAML file (docks, drones, altitudes, wind) plus a GeoJSON FeatureCollection beside it
(the operating-area polygon and the no-fly zones), so that the polygons can be drawn and checked in any GIS
tool while the rest stays readable and diffable. See ``missions/areas/README.md`` for the format.

`load_area` validates everything before it returns, because a half-valid area is worse than none: a dock
outside its area or a zone with its band upside down would let the planner send a drone somewhere it must
not go. Every problem found is reported at once, each with the file, the field path and (where cheap) the
line, so that a person fixing a file by hand can fix it in one pass. Nothing but `AreaError` escapes the
loader, whatever the input, so callers need a single ``except``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, ValidationError
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.validation import explain_validity

from dfr.airframe import AirframeError, AirframeProfile, airframe_path, load_airframe
from dfr.charging import Charging
from dfr.yamldoc import (
    DocumentError,
    Problem,
    YamlDoc,
    flag_duplicate_keys,
    load_document,
    read_text,
    short_repr,
)

__all__ = [
    "METRES_PER_FOOT",
    "ZONE_KINDS",
    "Area",
    "AreaError",
    "AreaFile",
    "Charging",
    "Dock",
    "Drone",
    "NoFlyZone",
    "Problem",
    "Wind",
    "ZoneKind",
    "load_area",
]

METRES_PER_FOOT = 0.3048
"""Exact by definition; zones are in feet AGL (as US airspace is) while the flight code works in metres."""

MAX_AREA_FILE_BYTES = 1_000_000
"""An area YAML is a few kilobytes; anything this big is a mistake, and refusing it bounds parse time."""

MAX_GEOJSON_BYTES = 20_000_000
"""Generous for hand-drawn or exported zones, small enough that a wrong path to a huge file fails fast."""

"""Junk input can produce thousands of errors; the first fifty are enough to see what is wrong."""

ZoneKind = Literal["airport", "hospital_helipad", "stadium", "prison", "other"]
ZONE_KINDS: tuple[str, ...] = get_args(ZoneKind)

# Ids end up in MQTT topics, URLs and file names, so they are kept to characters that are safe in all three.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
# PX4 parameter names are upper case and at most 16 characters (the MAVLink param_id field).
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,15}$")]


def _param_value(value: Any) -> float:
    """Accept an int or a finite float and keep its Python type.

    PX4 parameters are INT32 or FLOAT, and the type decides which MAVLink setter is used, so ``2`` must stay
    an int rather than become ``2.0``. Booleans are refused because YAML's ``true`` is almost always a
    mistake for a PX4 int flag, where the intended value should be written out.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a PX4 parameter value must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a PX4 parameter value must be finite")
    return value


# Annotated as float so that the values pass where the simulator expects dict[str, float]; ints stay ints.
ParamValue = Annotated[float, PlainValidator(_param_value)]


DEFAULT_CLEAR_HEIGHT_M = 20.0
"""A dock's obstacle height when its entry does not say: above most trees and two-storey roofs."""


class _Strict(BaseModel):
    """Strict, closed, immutable: a typo'd key or ``lat: "32.6"`` is an error rather than a silent default."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Wind(_Strict):
    """Steady wind the simulator applies and the planner may use for ground-speed estimates."""

    north_m_s: float = Field(default=0.0, ge=-50.0, le=50.0, allow_inf_nan=False)
    east_m_s: float = Field(default=0.0, ge=-50.0, le=50.0, allow_inf_nan=False)


class Dock(_Strict):
    """A drone-in-a-box station; ``alt_amsl_m`` is the ground elevation there, the drones' home altitude."""

    id: Id
    name: Name
    lat: Latitude
    lon: Longitude
    alt_amsl_m: float = Field(ge=-500.0, le=9000.0, allow_inf_nan=False)
    # None: the dock does not restore batteries (a landed drone keeps the charge it came back with).
    charging: Charging | None = None
    # Height above the dock of the highest obstacle near it (trees, roofs, masts) plus a margin: a launch
    # climbs straight up to here, then starts towards the scene and climbs the rest of the way en route.
    clear_height_m: float = Field(default=DEFAULT_CLEAR_HEIGHT_M, gt=0.0, le=120.0, allow_inf_nan=False)

    @property
    def point(self) -> Point:
        """The dock as a shapely point in lon/lat order, like the area's geometries."""
        return Point(self.lon, self.lat)


class Drone(_Strict):
    """One aircraft, parked at ``dock``, with the PX4 parameters it should be given on connect."""

    id: Id
    name: Name
    dock: Id
    response_speed_m_s: float = Field(gt=0.0, le=40.0, allow_inf_nan=False)
    # The airframe's sustained top speed in still air (thrust at the tilt limit against drag), if known
    # from a test flight: the autopilot cannot go faster whatever it is told, so time-to-scene and battery
    # estimates use the lower of the two.
    max_speed_m_s: float | None = Field(default=None, gt=0.0, le=40.0, allow_inf_nan=False)
    params: dict[ParamName, ParamValue] = Field(default_factory=dict)
    camera: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
    # The airframe profile: a name in missions/airframes/ (or a path to a profile file). Its parameters
    # go first, the drone's own `params` on top; its top speed is the default `max_speed_m_s`.
    airframe: str | None = Field(default=None, pattern=r"^([a-z0-9][a-z0-9-]{0,63}|[^\x00]{1,500}\.yaml)$")


class AreaFile(_Strict):
    """The area YAML as written; `load_area` turns it, with its GeoJSON, into an `Area`."""

    name: Name
    description: str
    illustrative: bool
    notice: str | None = None
    geojson: str = Field(min_length=1, max_length=1000)
    home_alt_amsl_m: float | None = Field(default=None, ge=-500.0, le=9000.0, allow_inf_nan=False)
    max_altitude_ft_agl: float = Field(default=400.0, gt=0.0, le=1000.0, allow_inf_nan=False)
    default_altitude_m: float = Field(default=60.0, gt=0.0, allow_inf_nan=False)
    wind: Wind = Field(default_factory=lambda: Wind())
    docks: list[Dock] = Field(min_length=1)
    drones: list[Drone] = Field(default_factory=list)


# GeoJSON, restricted to what an area needs: Polygons in WGS 84 lon/lat (RFC 7946, so no "crs" member).
Position = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=3)]


class _PolygonGeometry(_Strict):
    type: Literal["Polygon"]
    coordinates: list[list[Position]] = Field(min_length=1)


class _Feature(_Strict):
    type: Literal["Feature"]
    geometry: _PolygonGeometry
    properties: dict[str, Any]


class _FeatureCollection(_Strict):
    type: Literal["FeatureCollection"]
    name: str | None = None
    features: list[_Feature]


class _OperatingAreaProps(_Strict):
    role: Literal["operating_area"]
    name: str | None = None
    description: str | None = None


class _NoFlyProps(_Strict):
    role: Literal["no_fly"]
    id: Id
    name: Name
    kind: ZoneKind
    floor_ft_agl: float = Field(ge=0.0, allow_inf_nan=False)
    ceiling_ft_agl: float = Field(gt=0.0, allow_inf_nan=False)
    description: str | None = None


_ROLE_MODELS: dict[str, type[_Strict]] = {"operating_area": _OperatingAreaProps, "no_fly": _NoFlyProps}


_CALM = Wind()
"""Shared default wind; models are frozen, so sharing one instance is safe."""


@dataclass(frozen=True)
class NoFlyZone:
    """A polygon (lon/lat) the drones must avoid while their altitude is inside [floor, ceiling] ft AGL."""

    id: str
    name: str
    kind: ZoneKind
    floor_ft_agl: float
    ceiling_ft_agl: float
    geometry: Polygon
    description: str | None = None

    def applies_at(self, alt_ft_agl: float) -> bool:
        """True if a drone flying at ``alt_ft_agl`` must keep out (the band includes both ends)."""
        return self.floor_ft_agl <= alt_ft_agl <= self.ceiling_ft_agl

    def overlaps_band(self, low_ft_agl: float, high_ft_agl: float) -> bool:
        """True if any altitude in [low, high] is in the zone's band: for climbs and descents."""
        return self.floor_ft_agl <= high_ft_agl and low_ft_agl <= self.ceiling_ft_agl


@dataclass(frozen=True)
class Area:
    """A validated operating area. Geometries are shapely objects in lon/lat (x=lon, y=lat) order.

    Build one with `load_area`, which checks everything; constructing it directly (e.g. in a planner's
    unit test) trusts the caller.
    """

    name: str
    description: str
    illustrative: bool
    notice: str | None
    docks: tuple[Dock, ...]
    drones: tuple[Drone, ...]
    operating_area: Polygon
    zones: tuple[NoFlyZone, ...]
    wind: Wind = _CALM
    max_altitude_ft_agl: float = 400.0
    default_altitude_m: float = 60.0
    home_alt_amsl_m: float = 0.0
    source: Path | None = None
    profiles: dict[str, AirframeProfile] = field(default_factory=dict)
    """Drone id -> its airframe profile, for drones that name one."""

    def profile(self, drone_id: str) -> AirframeProfile | None:
        """The airframe profile of a drone, if its entry names one."""
        return self.profiles.get(drone_id)

    def dock(self, dock_id: str) -> Dock:
        """The dock with this id; KeyError if there is none."""
        for d in self.docks:
            if d.id == dock_id:
                return d
        raise KeyError(dock_id)

    def drone(self, drone_id: str) -> Drone:
        """The drone with this id; KeyError if there is none."""
        for d in self.drones:
            if d.id == drone_id:
                return d
        raise KeyError(drone_id)

    def drones_at(self, dock_id: str) -> tuple[Drone, ...]:
        """The drones based at a dock, in file order."""
        return tuple(d for d in self.drones if d.dock == dock_id)

    def zones_at(self, alt_ft_agl: float) -> tuple[NoFlyZone, ...]:
        """The zones a drone cruising at ``alt_ft_agl`` must avoid."""
        return tuple(z for z in self.zones if z.applies_at(alt_ft_agl))

    def zones_in_band(self, low_ft_agl: float, high_ft_agl: float) -> tuple[NoFlyZone, ...]:
        """The zones that matter anywhere between two altitudes, e.g. over a climb from the dock."""
        if low_ft_agl > high_ft_agl:
            low_ft_agl, high_ft_agl = high_ft_agl, low_ft_agl
        return tuple(z for z in self.zones if z.overlaps_band(low_ft_agl, high_ft_agl))

    def no_fly_at(self, alt_ft_agl: float) -> BaseGeometry:
        """Union of the zones active at an altitude (empty geometry if none), for one-shot tests."""
        return unary_union([z.geometry for z in self.zones_at(alt_ft_agl)])

    def is_flyable(self, lat: float, lon: float, alt_ft_agl: float) -> bool:
        """True if the point is inside the operating area, under the ceiling and outside active zones."""
        if not 0.0 <= alt_ft_agl <= self.max_altitude_ft_agl:
            return False
        pt = Point(lon, lat)
        if not self.operating_area.covers(pt):
            return False
        return not any(z.geometry.intersects(pt) for z in self.zones_at(alt_ft_agl))

    def to_geojson(self) -> dict[str, Any]:
        """A FeatureCollection for maps: the area, its zones and its docks (as points, with their drones).

        The illustrative notice travels with it (as foreign members) so that a display can show it.
        """
        features: list[dict[str, Any]] = [
            {
                "type": "Feature",
                "properties": {"role": "operating_area", "name": self.name},
                "geometry": _polygon_to_geojson(self.operating_area),
            }
        ]
        for z in self.zones:
            props: dict[str, Any] = {
                "role": "no_fly",
                "id": z.id,
                "name": z.name,
                "kind": z.kind,
                "floor_ft_agl": z.floor_ft_agl,
                "ceiling_ft_agl": z.ceiling_ft_agl,
            }
            if z.description is not None:
                props["description"] = z.description
            features.append(
                {"type": "Feature", "properties": props, "geometry": _polygon_to_geojson(z.geometry)}
            )
        for d in self.docks:
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "role": "dock",
                        "id": d.id,
                        "name": d.name,
                        "alt_amsl_m": d.alt_amsl_m,
                        "drones": [dr.id for dr in self.drones_at(d.id)],
                    },
                    "geometry": {"type": "Point", "coordinates": [d.lon, d.lat]},
                }
            )
        return {
            "type": "FeatureCollection",
            "name": self.name,
            "illustrative": self.illustrative,
            "notice": self.notice,
            "features": features,
        }


def _polygon_to_geojson(poly: Polygon) -> dict[str, Any]:
    rings = [poly.exterior, *poly.interiors]
    return {"type": "Polygon", "coordinates": [[[x, y] for x, y, *_ in ring.coords] for ring in rings]}


# ---------------------------------------------------------------------------------------------------------
# Errors


class AreaError(DocumentError):
    """An area could not be loaded; ``problems`` lists every issue found, ``path`` is the area file."""

    kind = "area"


# ---------------------------------------------------------------------------------------------------------
# Reading files


def _resolve_geojson(area_path: Path, rel: str) -> tuple[Path | None, str | None]:
    """The GeoJSON path, which must stay inside the area file's directory (no ``..``, no absolute path)."""
    if "\x00" in rel:
        return None, "must not contain a NUL character"
    if PurePath(rel).is_absolute() or rel.startswith(("/", "\\")):
        return None, "must be a path relative to the area file's directory, not an absolute path"
    try:
        base = area_path.parent.resolve()
        target = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError) as e:
        return None, f"cannot resolve path: {e}"
    if not target.is_relative_to(base):
        return None, f"{rel!r} escapes the area file's directory {str(base)!r}"
    return target, None


# ---------------------------------------------------------------------------------------------------------
# Geometry


def _polygon(doc: YamlDoc, rings: list[list[list[float]]], loc: tuple[str | int, ...]) -> Polygon | None:
    """Build a shapely polygon from GeoJSON rings after checking what shapely would accept or misread."""
    ok = True
    for r, ring in enumerate(rings):
        bad = 0
        for p, pos in enumerate(ring):
            lon, lat = pos[0], pos[1]
            if not -180.0 <= lon <= 180.0:
                doc.add((*loc, r, p), f"longitude {lon} is outside [-180, 180] (GeoJSON order is [lon, lat])")
                bad += 1
            if not -90.0 <= lat <= 90.0:
                doc.add((*loc, r, p), f"latitude {lat} is outside [-90, 90] (GeoJSON order is [lon, lat])")
                bad += 1
            if bad >= 3:
                break
        if bad:
            ok = False
            continue
        pts = [(pos[0], pos[1]) for pos in ring]
        if len({*pts}) < 3:
            doc.add((*loc, r), f"a ring needs at least 3 distinct points, got {len(set(pts))}")
            ok = False
        elif pts[0] != pts[-1]:
            doc.add(
                (*loc, r), f"ring is not closed: first point {list(pts[0])} != last point {list(pts[-1])}"
            )
            ok = False
        elif len(pts) < 4:
            doc.add((*loc, r), "a closed ring needs at least 4 positions")
            ok = False
    if not ok:
        return None
    poly = Polygon([(p[0], p[1]) for p in rings[0]], [[(p[0], p[1]) for p in ring] for ring in rings[1:]])
    if not poly.is_valid:
        doc.add(loc, f"invalid polygon: {explain_validity(poly)} (shapely; lon lat)")
        return None
    if poly.area <= 0.0:
        doc.add(loc, "polygon has zero area")
        return None
    return poly


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_area(path: str | os.PathLike[str]) -> Area:
    """Load and validate an area YAML and its GeoJSON; raise `AreaError` listing every problem found."""
    spec, ydoc, area_path = load_document(
        path, AreaFile, AreaError, limit=MAX_AREA_FILE_BYTES, what="area file", keys="name:, docks:, ..."
    )
    label = ydoc.label

    _check_spec(ydoc, spec)
    drones, profiles = _resolve_airframes(ydoc, spec, area_path)

    gj_label = str(area_path.parent / spec.geojson)
    gdoc = YamlDoc(gj_label)
    geo = _load_geojson(ydoc, gdoc, area_path, spec.geojson)
    operating_area: Polygon | None = None
    zones: list[NoFlyZone] = []
    if geo is not None:
        operating_area, zones = _check_geojson(gdoc, geo)
    if operating_area is not None and not gdoc.problems:
        _check_docks(ydoc, spec, operating_area, zones)

    problems = [*ydoc.problems, *gdoc.problems]
    if problems or operating_area is None:
        raise AreaError(label, problems)

    return Area(
        name=spec.name,
        description=spec.description,
        illustrative=spec.illustrative,
        notice=spec.notice,
        docks=tuple(spec.docks),
        drones=drones,
        operating_area=operating_area,
        zones=tuple(zones),
        wind=spec.wind,
        max_altitude_ft_agl=spec.max_altitude_ft_agl,
        default_altitude_m=spec.default_altitude_m,
        home_alt_amsl_m=spec.home_alt_amsl_m
        if spec.home_alt_amsl_m is not None
        else spec.docks[0].alt_amsl_m,
        source=area_path,
        profiles=profiles,
    )


def _resolve_airframes(
    doc: YamlDoc, spec: AreaFile, area_path: Path
) -> tuple[tuple[Drone, ...], dict[str, AirframeProfile]]:
    """Each drone with its profile applied (profile params first, its own on top), and the profiles."""
    drones: list[Drone] = []
    profiles: dict[str, AirframeProfile] = {}
    for i, d in enumerate(spec.drones):
        if d.airframe is None:
            drones.append(d)
            continue
        path = (
            area_path.parent / d.airframe
            if d.airframe.endswith(".yaml")
            else airframe_path(area_path.parent, d.airframe)
        )
        try:
            profile = load_airframe(path)
        except AirframeError as e:
            first = e.problems[0].message if e.problems else "unreadable"
            doc.add(("drones", i, "airframe"), f"airframe {d.airframe!r} ({path}): {first}")
            drones.append(d)
            continue
        profiles[d.id] = profile
        update = {
            "params": {**profile.params, **d.params},
            "max_speed_m_s": d.max_speed_m_s if d.max_speed_m_s is not None else profile.max_speed_m_s,
        }
        drones.append(d.model_copy(update=update))
    return tuple(drones), profiles


def _duplicates(doc: YamlDoc, ids: Sequence[str], prefix: str, what: str) -> None:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            doc.add((prefix, i, "id"), f"duplicate {what} id {ident!r}")
        seen.add(ident)


def _check_spec(doc: YamlDoc, spec: AreaFile) -> None:
    """Checks across fields of the YAML, which pydantic's per-field validation cannot see."""
    if spec.illustrative and not (spec.notice and spec.notice.strip()):
        doc.add(("notice",), "an illustrative area needs a notice saying it is not for real flight")
    _duplicates(doc, [d.id for d in spec.docks], "docks", "dock")
    _duplicates(doc, [d.id for d in spec.drones], "drones", "drone")
    dock_ids = {d.id for d in spec.docks}
    for i, drone in enumerate(spec.drones):
        if drone.dock not in dock_ids:
            doc.add(
                ("drones", i, "dock"), f"unknown dock {drone.dock!r} (docks: {', '.join(sorted(dock_ids))})"
            )
        vmax = drone.params.get("MPC_XY_VEL_MAX")
        if vmax is not None and drone.response_speed_m_s > vmax:
            doc.add(
                ("drones", i, "response_speed_m_s"),
                f"{drone.response_speed_m_s} m/s is above the drone's MPC_XY_VEL_MAX of {vmax} m/s",
            )
    default_ft = spec.default_altitude_m / METRES_PER_FOOT
    if default_ft > spec.max_altitude_ft_agl:
        doc.add(
            ("default_altitude_m",),
            f"{spec.default_altitude_m} m ({default_ft:.0f} ft) is above max_altitude_ft_agl "
            f"({spec.max_altitude_ft_agl:g} ft)",
        )


def _load_geojson(ydoc: YamlDoc, gdoc: YamlDoc, area_path: Path, rel: str) -> _FeatureCollection | None:
    """Resolve, read and schema-check the GeoJSON; problems with the path itself go on the YAML's field."""
    target, why = _resolve_geojson(area_path, rel)
    if target is None:
        ydoc.add(("geojson",), why or "bad path")
        return None
    text, prob = read_text(target, gdoc.label, MAX_GEOJSON_BYTES, "GeoJSON file")
    if prob is not None or text is None:
        ydoc.add(("geojson",), prob.message if prob else "cannot read")
        return None
    gdoc.keep_text(text)
    dup = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal dup
        out = dict(items)
        dup = dup or len(out) != len(items)
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        gdoc.problems.append(Problem(gdoc.label, "", f"not GeoJSON: invalid JSON: {e.msg}", e.lineno))
        return None
    except (ValueError, RecursionError) as e:
        gdoc.problems.append(Problem(gdoc.label, "", f"not GeoJSON: invalid JSON: {e}"))
        return None
    if dup:
        flag_duplicate_keys(gdoc)
        if not gdoc.problems:
            gdoc.add((), "duplicate keys in a JSON object")
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        got = data.get("type") if isinstance(data, dict) else type(data).__name__
        gdoc.add((), f"not a GeoJSON FeatureCollection (got {short_repr.repr(got)})")
        return None
    try:
        return _FeatureCollection.model_validate(data)
    except ValidationError as e:
        gdoc.add_validation_errors(e, _FeatureCollection, ())
        return None
    except RecursionError:
        gdoc.add((), "nested too deeply")
        return None


def _check_geojson(doc: YamlDoc, fc: _FeatureCollection) -> tuple[Polygon | None, list[NoFlyZone]]:
    """Properties by role, polygon validity, bands and unique zone ids; returns what was valid."""
    area: Polygon | None = None
    area_seen = False
    zones: list[NoFlyZone] = []
    zone_ids: set[str] = set()
    for i, feat in enumerate(fc.features):
        ploc: tuple[str | int, ...] = ("features", i, "properties")
        role = feat.properties.get("role")
        model = _ROLE_MODELS.get(role) if isinstance(role, str) else None
        if model is None:
            if "role" not in feat.properties:
                doc.add(ploc, "missing required key 'role' (operating_area or no_fly)")
            else:
                doc.add(
                    (*ploc, "role"),
                    f"unknown role {short_repr.repr(role)} (expected operating_area or no_fly)",
                )
            continue
        try:
            props = model.model_validate(feat.properties)
        except ValidationError as e:
            doc.add_validation_errors(e, model, ploc)
            continue
        poly = _polygon(doc, feat.geometry.coordinates, ("features", i, "geometry", "coordinates"))
        if isinstance(props, _OperatingAreaProps):
            if area_seen:
                doc.add((*ploc, "role"), "more than one feature has role operating_area")
            area_seen = True
            area = poly
        elif isinstance(props, _NoFlyProps):
            if props.floor_ft_agl >= props.ceiling_ft_agl:
                doc.add(
                    (*ploc, "floor_ft_agl"),
                    f"floor_ft_agl ({props.floor_ft_agl:g}) must be below ceiling_ft_agl "
                    f"({props.ceiling_ft_agl:g})",
                )
                continue
            if props.id in zone_ids:
                doc.add((*ploc, "id"), f"duplicate zone id {props.id!r}")
            zone_ids.add(props.id)
            if poly is not None:
                zones.append(
                    NoFlyZone(
                        id=props.id,
                        name=props.name,
                        kind=props.kind,
                        floor_ft_agl=props.floor_ft_agl,
                        ceiling_ft_agl=props.ceiling_ft_agl,
                        geometry=poly,
                        description=props.description,
                    )
                )
    if not area_seen:
        doc.add(("features",), "no feature has role operating_area (one Polygon is required)")
    return area, zones


def _check_docks(doc: YamlDoc, spec: AreaFile, area: Polygon, zones: Sequence[NoFlyZone]) -> None:
    """A dock must be inside the area, and not where a zone starts at the ground (no take-off there)."""
    for i, dock in enumerate(spec.docks):
        pt = dock.point
        if not area.contains(pt):
            doc.add(
                ("docks", i), f"dock {dock.id!r} at ({dock.lat}, {dock.lon}) is outside the operating area"
            )
        for z in zones:
            if z.floor_ft_agl <= 0.0 and z.geometry.intersects(pt):
                doc.add(
                    ("docks", i),
                    f"dock {dock.id!r} at ({dock.lat}, {dock.lon}) is inside no-fly zone {z.id!r}, "
                    "which starts at the ground",
                )

"""dfr.area: the sample area loads, each class of bad input is an AreaError that points at the field, and
no input whatsoever makes the loader raise anything else.

Bad inputs are small mutations of one valid synthetic area written to tmp_path, so that each test shows
exactly which edit breaks the file.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point

from dfr.area import METRES_PER_FOOT, Area, AreaError, NoFlyZone, load_area

SAMPLE = Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml"


# ---------------------------------------------------------------------------------------------------------
# A small valid area: a ~3.7 x 4.4 km square, two docks, three zones (one with a 200 ft floor).


def square(lon: float, lat: float, half: float) -> list[list[float]]:
    return [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]


def zone(zid: str, kind: str, floor: float, ceiling: float, ring: list[list[float]]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {
            "role": "no_fly",
            "id": zid,
            "name": zid.title(),
            "kind": kind,
            "floor_ft_agl": floor,
            "ceiling_ft_agl": ceiling,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def base_geojson() -> dict[str, Any]:
    area = [[-117.10, 32.62], [-117.06, 32.62], [-117.06, 32.66], [-117.10, 32.66], [-117.10, 32.62]]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"role": "operating_area", "name": "test"},
                "geometry": {"type": "Polygon", "coordinates": [area]},
            },
            zone("helipad", "hospital_helipad", 0, 400, square(-117.07, 32.65, 0.003)),
            zone("shelf", "other", 200, 400, square(-117.08, 32.63, 0.004)),
            zone("field", "airport", 0, 1000, square(-117.065, 32.625, 0.002)),
        ],
    }


def base_spec() -> dict[str, Any]:
    return {
        "name": "Test area",
        "description": "synthetic",
        "illustrative": True,
        "notice": "illustrative, not for real flight; zones are not the FAA's",
        "geojson": "area.geojson",
        "home_alt_amsl_m": 150.0,
        "max_altitude_ft_agl": 400,
        "default_altitude_m": 60,
        "wind": {"north_m_s": 1.0, "east_m_s": -2.0},
        "docks": [
            {"id": "d1", "name": "Dock 1", "lat": 32.64, "lon": -117.09, "alt_amsl_m": 150.0},
            {"id": "d2", "name": "Dock 2", "lat": 32.63, "lon": -117.07, "alt_amsl_m": 150.0},
        ],
        "drones": [
            {
                "id": "a1",
                "name": "A1",
                "dock": "d1",
                "response_speed_m_s": 12.0,
                "params": {"MPC_XY_CRUISE": 12.0, "MPC_XY_VEL_MAX": 15.0, "NAV_DLL_ACT": 2},
                "camera": "rtsp://127.0.0.1:8554/a1",
            },
            {"id": "a2", "name": "A2", "dock": "d2", "response_speed_m_s": 10.0},
        ],
    }


def write_area(tmp: Path, spec: Any, geo: Any = None) -> Path:
    """Write the YAML (and the GeoJSON, as JSON text or raw text) into ``tmp``; return the YAML's path."""
    if geo is not None:
        text = geo if isinstance(geo, str) else json.dumps(geo, indent=1)
        (tmp / "area.geojson").write_text(text, encoding="utf-8")
    path = tmp / "area.yaml"
    path.write_text(
        spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False), encoding="utf-8"
    )
    return path


def load_error(tmp: Path, spec: Any, geo: Any = None) -> str:
    with pytest.raises(AreaError) as info:
        load_area(write_area(tmp, spec, geo))
    return str(info.value)


# ---------------------------------------------------------------------------------------------------------
# The sample


@pytest.fixture(scope="module")
def sample() -> Area:
    return load_area(SAMPLE)


def test_sample_loads(sample: Area) -> None:
    assert sample.illustrative
    assert sample.notice is not None and "not the FAA" in sample.notice
    assert [d.id for d in sample.docks] == ["cv-civic", "cv-bayfront", "cv-east"]
    assert [d.id for d in sample.drones] == ["cv-1", "cv-2", "cv-3", "cv-4"]
    civic = sample.dock("cv-civic")
    assert (civic.lat, civic.lon, civic.alt_amsl_m) == (32.6401, -117.0842, 150.0)  # PX4 reference home
    assert sample.home_alt_amsl_m == 150.0
    assert {d.dock for d in sample.drones[:3]} == {"cv-civic", "cv-bayfront", "cv-east"}  # `make demo`
    assert [d.id for d in sample.drones_at("cv-civic")] == ["cv-1", "cv-4"]
    assert sample.drone("cv-1").params["NAV_DLL_ACT"] == 2
    assert isinstance(sample.drone("cv-1").params["NAV_DLL_ACT"], int)  # INT32 stays int
    assert sample.default_altitude_m == 60 and sample.max_altitude_ft_agl == 400
    minx, miny, maxx, maxy = sample.operating_area.bounds
    width_km = (maxx - minx) * 111.32 * math.cos(math.radians(32.62))
    height_km = (maxy - miny) * 110.9
    assert 7 < width_km < 12 and 7 < height_km < 10


def test_sample_zones(sample: Area) -> None:
    kinds = {z.kind for z in sample.zones}
    assert {"airport", "hospital_helipad", "stadium"} <= kinds
    assert any(z.floor_ft_agl > 0 for z in sample.zones)
    by_id = {z.id: z for z in sample.zones}
    assert by_id["sharp-cv-helipad"].geometry.contains(Point(-117.0427, 32.6206))
    assert by_id["nicu-amphitheatre"].geometry.contains(Point(-117.0052, 32.5875))
    # OurAirports ends of KSDM runway 08L/26R (rows copied in missions/areas/README.md)
    runway = by_id["ksdm-runway"].geometry
    assert runway.contains(Point(-116.99299621582031, 32.57379913330078))
    assert runway.contains(Point(-116.96800231933594, 32.57170104980469))
    for dock in sample.docks:
        assert sample.operating_area.contains(dock.point)
        assert not any(z.geometry.intersects(dock.point) for z in sample.zones if z.floor_ft_agl == 0)


def test_sample_has_a_zone_between_docks_and_incidents(sample: Area) -> None:
    """Direct routes from two docks to the south-east cross a zone at cruise altitude, so routes must bend."""
    cruise_ft = sample.default_altitude_m / METRES_PER_FOOT
    incident = (-117.028, 32.612)
    for dock_id in ("cv-civic", "cv-east"):
        d = sample.dock(dock_id)
        line = LineString([(d.lon, d.lat), incident])
        assert any(z.geometry.intersects(line) for z in sample.zones_at(cruise_ft)), dock_id
    assert sample.operating_area.contains(Point(incident))


def test_sample_zones_at_bands(sample: Area) -> None:
    cruise_ft = sample.default_altitude_m / METRES_PER_FOOT  # 196.9 ft: under the 200 ft floors
    assert {z.id for z in sample.zones_at(cruise_ft)} == {
        "ksdm-runway",
        "sharp-cv-helipad",
        "nicu-amphitheatre",
    }
    assert len(sample.zones_at(250)) == 5
    assert {z.id for z in sample.zones_at(1000)} == {"ksdm-runway", "ksdm-approach-08"}
    assert sample.zones_at(1000.1) == ()


def test_sample_to_geojson(sample: Area) -> None:
    gj = json.loads(json.dumps(sample.to_geojson()))
    assert gj["type"] == "FeatureCollection" and "not the FAA" in gj["notice"]
    roles = [f["properties"]["role"] for f in gj["features"]]
    assert roles.count("operating_area") == 1 and roles.count("no_fly") == 5 and roles.count("dock") == 3
    civic = next(f for f in gj["features"] if f["properties"].get("id") == "cv-civic")
    assert civic["geometry"]["coordinates"] == [-117.0842, 32.6401]
    assert civic["properties"]["drones"] == ["cv-1", "cv-4"]


# ---------------------------------------------------------------------------------------------------------
# The synthetic base and the helpers


def test_base_loads(tmp_path: Path) -> None:
    area = load_area(write_area(tmp_path, base_spec(), base_geojson()))
    assert [z.id for z in area.zones] == ["helipad", "shelf", "field"]
    assert (area.wind.north_m_s, area.wind.east_m_s) == (1.0, -2.0)
    assert area.drone("a2").params == {} and area.drone("a2").camera is None
    assert area.source == tmp_path / "area.yaml"


def test_defaults(tmp_path: Path) -> None:
    spec = base_spec()
    for key in ("home_alt_amsl_m", "max_altitude_ft_agl", "default_altitude_m", "wind", "drones"):
        del spec[key]
    area = load_area(write_area(tmp_path, spec, base_geojson()))
    assert area.max_altitude_ft_agl == 400 and area.default_altitude_m == 60
    assert (area.wind.north_m_s, area.wind.east_m_s) == (0.0, 0.0)
    assert area.home_alt_amsl_m == 150.0 and area.drones == ()


def test_zones_at_filters_by_band(tmp_path: Path) -> None:
    area = load_area(write_area(tmp_path, base_spec(), base_geojson()))
    ids = lambda zs: {z.id for z in zs}  # noqa: E731
    assert ids(area.zones_at(0)) == {"helipad", "field"}
    assert ids(area.zones_at(199.9)) == {"helipad", "field"}
    assert ids(area.zones_at(200)) == {"helipad", "shelf", "field"}  # both ends of a band count
    assert ids(area.zones_at(400)) == {"helipad", "shelf", "field"}
    assert ids(area.zones_at(400.1)) == {"field"}
    assert ids(area.zones_at(1001)) == set()
    assert ids(area.zones_in_band(0, 100)) == {"helipad", "field"}
    assert ids(area.zones_in_band(450, 150)) == {"helipad", "shelf", "field"}
    assert area.no_fly_at(300).contains(Point(-117.08, 32.63))
    assert not area.no_fly_at(100).contains(Point(-117.08, 32.63))


def test_is_flyable(tmp_path: Path) -> None:
    area = load_area(write_area(tmp_path, base_spec(), base_geojson()))
    assert area.is_flyable(32.64, -117.09, 200)
    assert area.is_flyable(32.63, -117.08, 150)  # under the shelf
    assert not area.is_flyable(32.63, -117.08, 250)
    assert not area.is_flyable(32.65, -117.07, 10)  # helipad
    assert not area.is_flyable(32.70, -117.09, 100)  # outside the area
    assert not area.is_flyable(32.64, -117.09, 401)  # above the ceiling


def test_zone_band_helpers() -> None:
    z = NoFlyZone("z", "Z", "other", 200, 400, Point(0, 0).buffer(1))
    assert z.applies_at(200) and z.applies_at(400) and not z.applies_at(199)
    assert z.overlaps_band(0, 200) and not z.overlaps_band(0, 199) and z.overlaps_band(399, 1000)


# ---------------------------------------------------------------------------------------------------------
# Bad inputs: each gives an AreaError naming the file and the field.

Mutation = Callable[[dict[str, Any], dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Mutation that sets a dotted path ('docks.0.lat', or 'geo:features.1.properties.kind')."""

    def apply(spec: dict[str, Any], geo: dict[str, Any]) -> None:
        target: Any = geo if path.startswith("geo:") else spec
        parts = path.removeprefix("geo:").split(".")
        for p in parts[:-1]:
            target = target[int(p)] if isinstance(target, list) else target[p]
        last = parts[-1]
        if value is _DELETE:
            del target[int(last) if isinstance(target, list) else last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


_DELETE = object()
BOWTIE = [[-117.09, 32.63], [-117.07, 32.65], [-117.07, 32.63], [-117.09, 32.65], [-117.09, 32.63]]


def _dup_dock(spec: dict[str, Any], geo: dict[str, Any]) -> None:
    spec["docks"].append({**spec["docks"][0], "lat": 32.645})


def _dup_drone(spec: dict[str, Any], geo: dict[str, Any]) -> None:
    spec["drones"].append({**spec["drones"][1]})


def _dup_zone(spec: dict[str, Any], geo: dict[str, Any]) -> None:
    geo["features"].append(copy.deepcopy(geo["features"][1]))


def _two_areas(spec: dict[str, Any], geo: dict[str, Any]) -> None:
    geo["features"].append(copy.deepcopy(geo["features"][0]))


BAD: dict[str, tuple[Mutation, list[str]]] = {
    "unknown top key": (_set("colour", "red"), ["colour", "unknown key"]),
    "typo key hint": (
        _set("max_altitude_ft", 300),
        ["max_altitude_ft", "did you mean 'max_altitude_ft_agl'"],
    ),
    "unknown dock key": (_set("docks.0.elevation", 3), ["docks[0].elevation", "unknown key"]),
    "unknown wind key": (_set("wind.up_m_s", 3), ["wind.up_m_s", "north_m_s"]),
    "missing name": (_set("name", _DELETE), ["name", "missing required key"]),
    "missing dock lat": (_set("docks.1.lat", _DELETE), ["docks[1].lat", "missing required key 'lat'"]),
    "missing docks": (_set("docks", _DELETE), ["docks", "missing"]),
    "no docks": (_set("docks", []), ["docks", "at least 1"]),
    "lat as text": (_set("docks.0.lat", "32.64"), ["docks[0].lat", "valid number", "'32.64'"]),
    "illustrative as text": (_set("illustrative", "yes"), ["illustrative", "valid boolean"]),
    "docks not a list": (_set("docks", {"d1": 1}), ["docks", "valid list"]),
    "wind not a mapping": (_set("wind", 3), ["wind", "dictionary"]),
    "id with slash": (_set("drones.0.id", "a/1"), ["drones[0].id", "pattern"]),
    "lat above 90": (_set("docks.0.lat", 91.0), ["docks[0].lat", "less than or equal to 90"]),
    "lat below -90": (_set("docks.0.lat", -90.5), ["docks[0].lat", "greater than or equal to -90"]),
    "lon above 180": (_set("docks.1.lon", 180.5), ["docks[1].lon", "less than or equal to 180"]),
    "lon below -180": (_set("docks.1.lon", -181.0), ["docks[1].lon", "greater than or equal to -180"]),
    "lat nan": (_set("docks.0.lat", math.nan), ["docks[0].lat", "finite"]),
    "lon inf": (_set("docks.0.lon", math.inf), ["docks[0].lon", "finite"]),
    "wind -inf": (_set("wind.north_m_s", -math.inf), ["wind.north_m_s", "finite"]),
    "speed zero": (
        _set("drones.1.response_speed_m_s", 0),
        ["drones[1].response_speed_m_s", "greater than 0"],
    ),
    "param lower case": (
        _set("drones.0.params.mpc_xy_cruise", 3),
        ["drones[0].params.mpc_xy_cruise", "pattern"],
    ),
    "param bool": (_set("drones.0.params.NAV_DLL_ACT", True), ["drones[0].params.NAV_DLL_ACT", "number"]),
    "param nan": (_set("drones.0.params.MPC_XY_CRUISE", math.nan), ["MPC_XY_CRUISE", "finite"]),
    "speed above vel max": (
        _set("drones.0.response_speed_m_s", 16.0),
        ["drones[0].response_speed_m_s", "MPC_XY_VEL_MAX"],
    ),
    "camera no scheme": (_set("drones.0.camera", "camera-1"), ["drones[0].camera", "pattern"]),
    "no notice": (_set("notice", _DELETE), ["notice", "illustrative"]),
    "default above max": (_set("default_altitude_m", 150), ["default_altitude_m", "max_altitude_ft_agl"]),
    "duplicate dock id": (_dup_dock, ["docks[2].id", "duplicate dock id 'd1'"]),
    "duplicate drone id": (_dup_drone, ["drones[2].id", "duplicate drone id 'a2'"]),
    "duplicate zone id": (_dup_zone, ["features[4].properties.id", "duplicate zone id 'helipad'"]),
    "unknown dock": (_set("drones.1.dock", "d9"), ["drones[1].dock", "unknown dock 'd9'", "d1, d2"]),
    "dock outside area": (_set("docks.0.lat", 32.70), ["docks[0]", "'d1'", "outside the operating area"]),
    "dock in ground zone": (_set("docks.1.lat", 32.65), ["docks[1]", "inside no-fly zone 'helipad'"]),
    "missing geojson file": (_set("geojson", "nope.geojson"), ["geojson", "not found"]),
    "geojson traversal": (_set("geojson", "../../etc/passwd"), ["geojson", "escapes"]),
    "geojson absolute": (_set("geojson", "/etc/passwd"), ["geojson", "relative"]),
    "geojson is dir": (_set("geojson", "."), ["geojson", "not a regular file"]),
    "geojson not fc": (_set("geo:type", "Feature"), ["not a GeoJSON FeatureCollection", "'Feature'"]),
    "geojson crs": (_set("geo:crs", {"type": "name"}), ["crs", "unknown key"]),
    "not polygon": (
        _set("geo:features.1.geometry.type", "Point"),
        ["features[1].geometry.type", "'Polygon'"],
    ),
    "missing role": (_set("geo:features.1.properties.role", _DELETE), ["features[1].properties", "'role'"]),
    "unknown role": (
        _set("geo:features.1.properties.role", "maybe"),
        ["features[1].properties.role", "maybe"],
    ),
    "unknown kind": (
        _set("geo:features.1.properties.kind", "zoo"),
        ["features[1].properties.kind", "airport"],
    ),
    "unknown zone key": (
        _set("geo:features.1.properties.stroke", "#f00"),
        ["properties.stroke", "unknown key"],
    ),
    "floor above ceiling": (
        _set("geo:features.2.properties.floor_ft_agl", 500),
        ["features[2].properties.floor_ft_agl", "must be below ceiling_ft_agl"],
    ),
    "negative floor": (_set("geo:features.2.properties.floor_ft_agl", -1), ["floor_ft_agl", "greater than"]),
    "ceiling as text": (
        _set("geo:features.2.properties.ceiling_ft_agl", "400"),
        ["ceiling_ft_agl", "number"],
    ),
    "self-intersecting": (
        _set("geo:features.1.geometry.coordinates", [BOWTIE]),
        ["features[1].geometry.coordinates", "Self-intersection"],
    ),
    "unclosed ring": (
        _set("geo:features.1.geometry.coordinates", [square(-117.07, 32.65, 0.003)[:-1]]),
        ["features[1].geometry.coordinates[0]", "not closed"],
    ),
    "two distinct points": (
        _set("geo:features.1.geometry.coordinates", [[[-117.07, 32.65], [-117.06, 32.65], [-117.07, 32.65]]]),
        ["features[1].geometry.coordinates[0]", "3 distinct points"],
    ),
    "collinear": (
        _set("geo:features.1.geometry.coordinates", [[[0, 0], [1, 1], [2, 2], [0, 0]]]),
        ["features[1].geometry.coordinates"],
    ),
    "position lat out of range": (
        _set("geo:features.0.geometry.coordinates.0.2", [-117.06, 95.0]),
        ["features[0].geometry.coordinates[0][2]", "latitude 95.0"],
    ),
    "position swapped": (
        _set("geo:features.0.geometry.coordinates.0.1", [32.62, -117.06]),
        ["features[0].geometry.coordinates[0][1]", "[lon, lat]"],
    ),
    "position too short": (
        _set("geo:features.0.geometry.coordinates.0.1", [1.0]),
        ["coordinates[0][1]", "at least 2"],
    ),
    "no operating area": (_set("geo:features.0", _DELETE), ["no feature has role operating_area"]),
    "two operating areas": (_two_areas, ["features[4].properties.role", "more than one"]),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input(tmp_path: Path, case: str) -> None:
    mutate, expected = BAD[case]
    spec, geo = base_spec(), base_geojson()
    mutate(spec, geo)
    msg = load_error(tmp_path, spec, geo)
    assert str(tmp_path / "area.") in msg  # names the file
    for text in expected:
        assert text in msg, f"{text!r} not in:\n{msg}"


def test_reports_yaml_line_and_all_problems(tmp_path: Path) -> None:
    text = yaml.safe_dump(base_spec(), sort_keys=False)
    lines = text.splitlines()
    lat_line = next(i for i, line in enumerate(lines, 1) if "lat: 32.63" in line)
    text = text.replace("lat: 32.63", "lat: 95.0").replace(
        "response_speed_m_s: 10.0", "response_speed_m_s: fast"
    )
    msg = load_error(tmp_path, text, base_geojson())
    assert f"area.yaml:{lat_line}: docks[1].lat" in msg
    assert "drones[1].response_speed_m_s" in msg and "(2 problems)" in msg  # not just the first


def test_reports_geojson_line(tmp_path: Path) -> None:
    geo = base_geojson()
    geo["features"][2]["properties"]["kind"] = "zoo"
    text = json.dumps(geo, indent=1)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"zoo"' in row)
    msg = load_error(tmp_path, base_spec(), text)
    assert f"area.geojson:{line}: features[2].properties.kind" in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
        ("name: x\nname: y\n", "area.yaml:2: name: duplicate key 'name'"),
        ("!!python/object:os.system {}\n", "not valid YAML"),
        ("when: 2001-02-30\n", "not valid YAML"),
        ("a: &a [*a]\n", "unknown key 'a'"),
        ("just text", "top level must be a mapping"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(tmp_path, text)


def test_bad_geojson_text(tmp_path: Path) -> None:
    assert "not GeoJSON: invalid JSON" in load_error(tmp_path, base_spec(), "{not json")
    assert "not a GeoJSON FeatureCollection" in load_error(tmp_path, base_spec(), "[1, 2]")
    dup = json.dumps(base_geojson()).replace(
        '"type": "FeatureCollection"', '"type": "FeatureCollection", "type": "X"'
    )
    assert "duplicate key 'type'" in load_error(tmp_path, base_spec(), dup)
    (tmp_path / "area.geojson").write_bytes(b"\x80\x81")
    assert "not UTF-8" in load_error(tmp_path, base_spec())


def test_area_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "area.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(AreaError, match="not UTF-8"):
        load_area(path)


def test_missing_and_unreadable_area_file(tmp_path: Path) -> None:
    with pytest.raises(AreaError, match="area file not found"):
        load_area(tmp_path / "nope.yaml")
    with pytest.raises(AreaError, match="not a regular file"):
        load_area(tmp_path)
    with pytest.raises(AreaError):
        load_area("bad\x00path.yaml")


def test_dock_under_raised_floor_is_allowed(tmp_path: Path) -> None:
    spec = base_spec()
    spec["docks"][1]["lat"], spec["docks"][1]["lon"] = 32.63, -117.08  # inside the 200-400 ft shelf
    assert load_area(write_area(tmp_path, spec, base_geojson())).dock("d2").lon == -117.08


def test_polygon_with_hole_loads(tmp_path: Path) -> None:
    geo = base_geojson()
    outer = square(-117.08, 32.64, 0.015)
    hole = square(-117.08, 32.64, 0.005)
    geo["features"][3]["geometry"]["coordinates"] = [outer, hole]
    geo["features"][3]["properties"]["floor_ft_agl"] = 100  # docks sit inside it
    area = load_area(write_area(tmp_path, base_spec(), geo))
    field = next(z for z in area.zones if z.id == "field")
    assert len(field.geometry.interiors) == 1 and not field.geometry.contains(Point(-117.08, 32.64))


# ---------------------------------------------------------------------------------------------------------
# Junk never escapes as anything but AreaError.

JUNK_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def only_area_errors(path: Path) -> None:
    try:
        load_area(path)
    except AreaError as e:
        assert e.problems and str(e)


@JUNK_SETTINGS
@given(text=st.text(max_size=300))
def test_junk_yaml_text(tmp_path: Path, text: str) -> None:
    only_area_errors(write_area(tmp_path, text, base_geojson()))


@JUNK_SETTINGS
@given(value=json_values)
def test_junk_yaml_values(tmp_path: Path, value: Any) -> None:
    only_area_errors(write_area(tmp_path, yaml.safe_dump(value), base_geojson()))


@JUNK_SETTINGS
@given(text=st.text(max_size=300) | json_values.map(json.dumps))
def test_junk_geojson(tmp_path: Path, text: str) -> None:
    only_area_errors(write_area(tmp_path, base_spec(), text))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


SPEC_PATHS = _paths(base_spec())
GEO_PATHS = _paths(base_geojson())


@JUNK_SETTINGS
@given(
    in_geo=st.booleans(),
    spec_path=st.sampled_from(SPEC_PATHS),
    geo_path=st.sampled_from(GEO_PATHS),
    value=json_values,
    delete=st.booleans(),
)
def test_mutated_area_gives_area_or_area_error(
    tmp_path: Path,
    in_geo: bool,
    spec_path: tuple[Any, ...],
    geo_path: tuple[Any, ...],
    value: Any,
    delete: bool,
) -> None:
    """Replace or delete one node of a valid area: the result loads or is an AreaError, nothing else."""
    spec, geo = base_spec(), base_geojson()
    root, path = (geo, geo_path) if in_geo else (spec, spec_path)
    target: Any = root
    for p in path[:-1]:
        target = target[p]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    only_area_errors(write_area(tmp_path, spec, geo))

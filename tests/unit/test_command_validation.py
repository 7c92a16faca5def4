"""Pilot command checks against the sample area: points, paths, climbs, orbits, limits, request shape."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dfr.area import load_area
from dfr.control.commands import Command, CommandError, PilotCommand, _check_request
from dfr.control.validation import (
    CommandInvalid,
    Limits,
    check_altitude,
    check_climb,
    check_orbit,
    check_path,
    check_point,
    check_radius,
)
from dfr.geo import distance_m

AREA = load_area(Path(__file__).resolve().parents[2] / "missions" / "areas" / "chula-vista.yaml")
LIMITS = Limits.for_area(AREA)
HELIPAD = (32.6206, -117.0427)  # sharp-cv-helipad: 500 m circle, 0-400 ft
EAST_OF_HELIPAD = (
    32.6206,
    -117.0320,
)  # ~1 km east: outside the helipad, inside its 200-400 ft approach circle
EAST_DOCK = (32.6290, -117.0570)
BEYOND_HELIPAD = (32.6150, -117.0330)
CIVIC = (32.6401, -117.0842)


def _code(e: pytest.ExceptionInfo[CommandInvalid]) -> str:
    return e.value.code


def test_limits_come_from_the_area_ceiling() -> None:
    assert LIMITS.max_alt_m == pytest.approx(121.92)
    assert check_altitude(121.92, LIMITS) == 121.92
    for bad in (500.0, 5.0, math.nan):
        with pytest.raises(CommandInvalid) as e:
            check_altitude(bad, LIMITS)
        assert e.value.field == "alt_m"
    with pytest.raises(CommandInvalid) as e:
        check_radius(600.0, LIMITS)
    assert _code(e) == "radius_out_of_limits" and e.value.field == "radius_m"
    assert check_radius(60.0, LIMITS) == 60.0


def test_point_outside_area_or_inside_a_zone_is_refused_with_the_zone() -> None:
    with pytest.raises(CommandInvalid) as e:
        check_point(AREA, 32.7500, -117.0800, [60.0])
    assert _code(e) == "outside_area"
    with pytest.raises(CommandInvalid) as e:
        check_point(AREA, *HELIPAD, [60.0])
    assert _code(e) == "in_no_fly_zone" and "sharp-cv-helipad" in e.value.reason
    check_point(AREA, *CIVIC, [60.0])


def test_zone_bands_follow_the_altitude() -> None:
    assert distance_m(*EAST_OF_HELIPAD, *HELIPAD) > 700
    check_point(AREA, *EAST_OF_HELIPAD, [60.0])  # 197 ft: under the approach circle's 200 ft floor
    with pytest.raises(CommandInvalid) as e:
        check_point(AREA, *EAST_OF_HELIPAD, [60.0, 100.0])  # a climb to 328 ft enters it
    assert "sharp-cv-helipad-approach" in e.value.reason
    with pytest.raises(CommandInvalid) as e:
        check_climb(AREA, *EAST_OF_HELIPAD, 60.0, 100.0)
    assert _code(e) == "altitude_enters_zone"
    check_climb(AREA, *CIVIC, 60.0, 100.0)
    check_climb(AREA, *EAST_OF_HELIPAD, 100.0, 60.0)  # a drone inside a zone may always leave it


def test_straight_path_through_a_zone_is_refused() -> None:
    with pytest.raises(CommandInvalid) as e:
        check_path(AREA, EAST_DOCK, BEYOND_HELIPAD, [60.0])
    assert _code(e) == "path_crosses_zone" and "sharp-cv-helipad" in e.value.reason
    check_path(AREA, EAST_DOCK, CIVIC, [60.0])
    with pytest.raises(CommandInvalid):
        check_path(AREA, HELIPAD, CIVIC, [60.0])
    check_path(AREA, HELIPAD, CIVIC, [60.0], now_m=60.0)  # flying out of a zone it is in
    with pytest.raises(CommandInvalid):
        check_path(AREA, CIVIC, HELIPAD, [60.0], now_m=60.0)


def test_orbit_circle_must_clear_the_zones() -> None:
    near = (32.6206, -117.0352)  # ~700 m east of the helipad centre
    check_orbit(AREA, *near, 60.0, 60.0)
    with pytest.raises(CommandInvalid) as e:
        check_orbit(AREA, *near, 300.0, 60.0)
    assert _code(e) == "orbit_enters_zone"


@pytest.mark.parametrize(
    ("cmd", "code", "field"),
    [
        (PilotCommand(Command.GOTO, lon=-117.08), "missing_field", "lat"),
        (PilotCommand(Command.ORBIT, lat=32.635, lon=-117.08), "missing_field", "radius_m"),
        (PilotCommand(Command.ALTITUDE), "missing_field", "alt_m"),
        (PilotCommand(Command.GOTO, lat=math.nan, lon=-117.08), "invalid_field", "lat"),
        (PilotCommand(Command.HOLD, lat=32.635), "unsupported_field", "lat"),
        (PilotCommand(Command.ALTITUDE, alt_m=500.0), "altitude_out_of_limits", "alt_m"),
        (PilotCommand(Command.GOTO, lat=32.75, lon=-117.08), "outside_area", "lat"),
        (
            PilotCommand(Command.ORBIT, lat=32.635, lon=-117.08, radius_m=5.0),
            "radius_out_of_limits",
            "radius_m",
        ),
    ],
)
def test_bad_requests_are_refused_before_the_drone_is_asked(cmd: PilotCommand, code: str, field: str) -> None:
    with pytest.raises(CommandError) as e:
        _check_request(AREA, cmd, LIMITS)
    assert (e.value.status, e.value.code, e.value.field) == (422, code, field)

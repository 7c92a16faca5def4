"""PX4 acknowledges a PARAM_SET (its PARAM_VALUE echo) before the value takes effect: on real PX4 SITL a
takeoff sent 4 ms after MIS_TAKEOFF_ALT was echoed climbed to the old 2.5 m default. The simulator's link
stores and echoes at once (a read-back shows the new value) but the vehicle uses it only a navigator
cycle later. Before this the simulator applied it at once, kinder than PX4."""

from __future__ import annotations

from sim.link import VehicleLink, mavlink
from sim.params import PARAM_APPLY_DELAY_S
from sim.types import MavResult
from tests.unit.test_vehicle_model import make, run

GCS = mavlink.MAVLink(None, srcSystem=245, srcComponent=190)


def _from_gcs(msg: object) -> object:
    msg.pack(GCS)  # type: ignore[attr-defined]
    return msg


def _set_over_the_link(link: VehicleLink, name: str, value: float) -> None:
    link.handle(_from_gcs(mavlink.MAVLink_param_set_message(1, 1, name.encode(), value, 9)))


def test_takeoff_right_after_param_set_uses_the_old_value() -> None:
    v = make()
    link = VehicleLink(v, ("127.0.0.1", 9))
    _set_over_the_link(link, "MIS_TAKEOFF_ALT", 40.0)
    assert v.params.get("MIS_TAKEOFF_ALT").value == 40.0  # stored: a read-back already shows it
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.cmd_takeoff() == MavResult.ACCEPTED  # in the same instant: not applied yet
    assert any("Using default takeoff altitude: 2.5 m" in t.text for t in v.pop_status_texts())
    run(v, 20.0)
    assert v.rel_alt < 4.0


def test_param_set_takes_effect_after_the_delay() -> None:
    v = make()
    link = VehicleLink(v, ("127.0.0.1", 9))
    _set_over_the_link(link, "MIS_TAKEOFF_ALT", 40.0)
    run(v, PARAM_APPLY_DELAY_S + 0.02)
    assert v.params["MIS_TAKEOFF_ALT"] == 40.0
    assert v.cmd_arm() == MavResult.ACCEPTED
    assert v.cmd_takeoff() == MavResult.ACCEPTED
    assert any("Using default takeoff altitude: 40.0 m" in t.text for t in v.pop_status_texts())
    run(v, 40.0)
    assert v.rel_alt > 35.0


def test_setting_the_same_value_again_does_not_delay_it_again() -> None:
    v = make()
    link = VehicleLink(v, ("127.0.0.1", 9))
    _set_over_the_link(link, "MIS_TAKEOFF_ALT", 40.0)
    run(v, PARAM_APPLY_DELAY_S + 0.02)
    _set_over_the_link(link, "MIS_TAKEOFF_ALT", 40.0)  # a client confirming what it already set
    assert v.params["MIS_TAKEOFF_ALT"] == 40.0


def test_the_flight_reads_the_takeoff_height_px4_announces() -> None:
    """Real PX4 sometimes took off to its 2.5 m default although MIS_TAKEOFF_ALT had been read back as
    60: the flight procedure reads PX4's announcement and climbs at once instead of waiting."""
    from dfr.dispatch.flight import _announced_takeoff_m

    assert _announced_takeoff_m("Using default takeoff altitude: 2.5 m\t") == 2.5
    assert _announced_takeoff_m("Using default takeoff altitude: 60.0 m") == 60.0
    assert _announced_takeoff_m("Takeoff detected") is None

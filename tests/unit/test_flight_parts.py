"""The simulated flight model's parts on their own (sim.flight): failsafe tables, battery levels, profiles.

Whole-vehicle behaviour is covered by test_vehicle_model.py and test_vehicle_vs_px4.py; these pin the
decision tables and schedules the navigator relies on, where a wrong entry would be hard to see in a track.
"""

from __future__ import annotations

import pytest

from sim.flight.battery import Battery
from sim.flight.failsafe import Reaction, battery_reaction, fence_reaction, link_loss_reaction
from sim.flight.profiles import TAKEOFF_SPOOL_S, VerticalProfiles
from sim.flight.states import BatteryLevel
from sim.params import Params
from sim.types import Mode


@pytest.mark.parametrize(
    ("act", "mode", "expected"),
    [
        (0, Mode.LOITER, None),
        (1, Mode.RTL, Reaction.HOLD),
        (2, Mode.LOITER, Reaction.HOLD_THEN_RTL),
        (2, Mode.RTL, None),  # already returning
        (2, Mode.LAND, None),  # a failsafe never interrupts a landing
        (3, Mode.MISSION, Reaction.HOLD_THEN_LAND),
        (5, Mode.LOITER, Reaction.HOLD_THEN_LAND),  # terminate, simulated as land
        (3, Mode.LAND, None),
    ],
)
def test_link_loss_reaction_follows_nav_dll_act(act: int, mode: Mode, expected: Reaction | None) -> None:
    assert link_loss_reaction(act, mode) is expected


@pytest.mark.parametrize(
    ("level", "act", "mode", "expected"),
    [
        (BatteryLevel.LOW, 3, Mode.LOITER, None),  # low only warns
        (BatteryLevel.CRITICAL, 0, Mode.LOITER, None),
        (BatteryLevel.CRITICAL, 1, Mode.LOITER, Reaction.HOLD_THEN_RTL),
        (BatteryLevel.CRITICAL, 2, Mode.RTL, Reaction.HOLD_THEN_LAND),
        (BatteryLevel.CRITICAL, 3, Mode.RTL, None),
        (BatteryLevel.EMERGENCY, 1, Mode.LOITER, Reaction.RTL),
        (BatteryLevel.EMERGENCY, 3, Mode.RTL, Reaction.LAND),
        (BatteryLevel.EMERGENCY, 2, Mode.LAND, None),
    ],
)
def test_battery_reaction_follows_com_low_bat_act(
    level: BatteryLevel, act: int, mode: Mode, expected: Reaction | None
) -> None:
    assert battery_reaction(level, act, mode) is expected


def test_fence_reaction_follows_gf_action() -> None:
    assert fence_reaction(1, True) is None
    assert fence_reaction(2, True) is Reaction.HOLD
    assert fence_reaction(3, True) is Reaction.RTL
    assert fence_reaction(3, False) is Reaction.LAND  # no position to return with
    assert fence_reaction(4, True) is Reaction.LAND
    assert fence_reaction(5, True) is Reaction.LAND


def test_battery_level_is_announced_only_when_it_rises() -> None:
    b = Battery()
    b.load(Params({}))
    b.pct = b.low - 1.0
    assert b.update_level() is BatteryLevel.LOW
    assert b.update_level() is None
    b.pct = b.emerg - 1.0
    assert b.update_level() is BatteryLevel.EMERGENCY
    b.pct = 100.0  # recharged: the level drops silently and can be announced again
    assert b.update_level() is None and b.level is BatteryLevel.OK
    b.pct = b.crit - 1.0
    assert b.update_level() is BatteryLevel.CRITICAL


def test_profiles_ramp_the_climb_and_slow_the_landing_near_the_ground() -> None:
    p = Params({})
    v = VerticalProfiles()
    v.load(p)
    up, dn = p["MPC_Z_V_AUTO_UP"], p["MPC_Z_V_AUTO_DN"]
    assert v.climb_cap(0.0, TAKEOFF_SPOOL_S, up) == 0.0  # the ramp starts from zero
    assert v.climb_cap(1.0, TAKEOFF_SPOOL_S + 100.0, up) == pytest.approx(p["MPC_TKO_SPEED"])
    assert v.climb_cap(10.0 * v.alt1, TAKEOFF_SPOOL_S + 100.0, up) == pytest.approx(up)
    assert v.descent(v.alt1 + 1.0, dn) == dn
    assert v.descent(v.alt2 - 0.01, dn) == pytest.approx(v.land_speed)
    assert v.descent(0.0, dn) == pytest.approx(v.crawl)
    speeds = [v.descent(h, dn) for h in (0.0, v.alt3 + 0.01, v.alt2, (v.alt1 + v.alt2) / 2, v.alt1)]
    assert speeds == sorted(speeds)  # never faster lower down

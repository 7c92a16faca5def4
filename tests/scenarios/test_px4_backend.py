"""The px4 backend against real PX4 SITL (SIH). PX4 cannot be installed on CI machines: without
PX4_SITL_BIN (the built build/px4_sitl_default/bin/px4) these tests skip and say so."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dfr.sitl.px4 import Px4Backend, parse_attach
from dfr.sitl.runner import RunOptions, run_scenario
from dfr.sitl.scenario import load_scenario
from tests.scenarios.conftest import SHIPPED

PX4_BIN = os.environ.get("PX4_SITL_BIN")
needs_px4 = pytest.mark.skipif(
    not PX4_BIN,
    reason="PX4 SITL not available: set PX4_SITL_BIN to a built PX4-Autopilot build/px4_sitl_default/bin/px4 "
    "(see README, 'Against real PX4 SITL') to run the scenarios against real PX4",
)


def test_attach_urls_must_be_consecutive_ports() -> None:
    assert parse_attach(["udp://:14540", "udp://:14541"]) == 14540
    assert parse_attach(["udpin://127.0.0.1:14600"]) == 14600
    with pytest.raises(ValueError, match="consecutive"):
        parse_attach(["udp://:14540", "udp://:14542"])
    with pytest.raises(ValueError, match="expected udp"):
        parse_attach(["tcp://x"])


def test_instance_command_follows_px4_conventions(tmp_path: Path) -> None:
    scenario = load_scenario(SHIPPED / "two-incidents-two-drones.yaml")
    backend = Px4Backend(scenario, 20.0, tmp_path, binary="/opt/px4/build/px4_sitl_default/bin/px4")
    args, env, cwd = backend.command(1)
    assert args[:4] == ["/opt/px4/build/px4_sitl_default/bin/px4", "-i", "1", "-d"]
    dock = scenario.area.dock(scenario.area.drone("cv-3").dock)  # the scenario's second drone
    assert float(env["PX4_HOME_LAT"]) == pytest.approx(dock.lat) and float(
        env["PX4_HOME_LON"]
    ) == pytest.approx(dock.lon)
    assert env["PX4_SIM_MODEL"] == "sihsim_quadx" and env["PX4_SIM_SPEED_FACTOR"] == "20"
    assert cwd != backend.command(0)[2]  # one working directory per instance
    assert backend.base_port == 14540


@needs_px4
@pytest.mark.integration
@pytest.mark.parametrize("name", ["single-gunshot", "airport-route-bends", "approval-approved"])
def test_scenario_passes_on_real_px4(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SHIPPED / f"{name}.yaml")
    result = asyncio.run(
        run_scenario(scenario, RunOptions(backend="px4", px4_bin=PX4_BIN, speed=5.0, report_dir=tmp_path))
    )
    assert result.verdict == "pass", "\n".join(result.failures)


def test_fault_scenarios_are_skipped_on_px4_with_a_reason(tmp_path: Path) -> None:
    scenario = load_scenario(SHIPPED / "link-loss-failsafe.yaml")
    result = asyncio.run(run_scenario(scenario, RunOptions(backend="px4", px4_bin="/nonexistent/px4")))
    assert result.verdict == "skipped" and "fault injection" in (result.error or "")

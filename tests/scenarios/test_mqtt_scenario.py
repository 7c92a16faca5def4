"""A scenario whose reports go over MQTT, through a real mosquitto broker; skipped (saying why) without one,
and skipped by the runner itself, with the reason, when no broker is given."""

from __future__ import annotations

import asyncio

import pytest

from dfr.sitl.runner import RunOptions, run_scenario
from dfr.sitl.scenario import load_scenario
from tests.integration.mosquitto import Mosquitto
from tests.scenarios.conftest import DATA

pytestmark = pytest.mark.integration


def test_mqtt_scenario_without_broker_is_skipped_with_reason() -> None:
    result = asyncio.run(run_scenario(load_scenario(DATA / "mqtt-burst.yaml")))
    assert result.verdict == "skipped" and "--mqtt-url" in (result.error or "")


def test_mqtt_reports_merge_and_none_is_lost(mosquitto: Mosquitto) -> None:
    scenario = load_scenario(DATA / "mqtt-burst.yaml")
    result = asyncio.run(run_scenario(scenario, RunOptions(mqtt_url=mosquitto.url)))
    assert result.verdict == "pass", "\n".join(result.failures)
    assert {r["via"] for r in result.record["reports"]} == {"mqtt"}
    assert len({r["incident_id"] for r in result.record["reports"]}) == 1

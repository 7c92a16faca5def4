"""Every shipped scenario passes against the builtin simulator, at its own speed (20-30x).

Real parts throughout: the simulator process, MAVSDK, the service with its SQLite store and HTTP API.
The scenarios run one after another (each starts its own simulator and service; CI has two cores).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dfr.sitl.runner import ScenarioResult
from dfr.sitl.scenario import load_scenario, scenario_files
from tests.scenarios.conftest import SHIPPED

pytestmark = pytest.mark.integration

FILES = scenario_files([SHIPPED])


def test_at_least_twelve_scenarios_ship_and_all_run_fast_enough() -> None:
    assert len(FILES) >= 12
    for f in FILES:
        assert load_scenario(f).spec.speed >= 10, f"{f.name}: scenarios must run at 10x or faster"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_shipped_scenario_passes(path: Path, run_shipped: Callable[[str], ScenarioResult]) -> None:
    result = run_shipped(load_scenario(path).name)
    assert result.verdict == "pass", "\n".join(result.failures)
    assert result.checks and all(c.ok for c in result.checks)
    assert result.report_json is not None and Path(result.report_json).exists()

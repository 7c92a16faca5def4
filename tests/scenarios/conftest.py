"""Shared runs of the shipped scenarios: each runs once per session (real simulator, real service), and
the report tests read the same run's report instead of flying it again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dfr.sitl.runner import RunOptions, ScenarioResult, run_scenario
from dfr.sitl.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "missions" / "scenarios"
DATA = Path(__file__).resolve().parent / "data"

_results: dict[str, ScenarioResult] = {}


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sitl-reports")


@pytest.fixture(scope="session")
def run_shipped(report_dir: Path) -> object:
    """`run_shipped("airport-route-bends")` -> the result of that scenario's one run this session."""

    def run(name: str) -> ScenarioResult:
        if name not in _results:
            scenario = load_scenario(SHIPPED / f"{name}.yaml")
            _results[name] = asyncio.run(run_scenario(scenario, RunOptions(report_dir=report_dir)))
        return _results[name]

    return run

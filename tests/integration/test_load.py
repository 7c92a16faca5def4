"""Load: 1,000 reports a minute (new scenes, merges and repeats) for 30 s while the fleet flies; nothing
lost, every repeat recognised, every merge merged, one mission per incident. The long run is in
`make bench` (tests/benchmarks/bench_load.py); this test prints the same figures, asserts no timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.load import run_load

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_a_thousand_reports_a_minute_lose_nothing(tmp_path: Path) -> None:
    r = await run_load(tmp_path, seconds=30, per_minute=1000)
    print(r.row())
    assert r.posted >= 480
    assert set(r.status) <= {200, 201}, r.status  # no 429, no 5xx
    assert r.status.get(201, 0) == r.new_scenes  # a new incident exactly for each new scene...
    assert r.stored_reports == r.posted - r.repeats_sent  # ...every other report stored once...
    assert r.incidents == r.new_scenes  # ...and merged into its scene's incident
    assert r.incidents_without_mission == 0 and r.incidents_with_two_missions == 0
    assert r.missions == r.incidents
    assert r.flights >= 1  # the fleet was flying meanwhile

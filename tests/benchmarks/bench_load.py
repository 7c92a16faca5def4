"""Load benchmark: 1,000 incident reports a minute for three minutes (20 % new scenes, the rest merges
and repeats) against the real service while the simulated fleet flies. Prints whether anything was
lost or doubled, HTTP latency and dispatch latency (report received → mission created) p50/p99.

`DFR_BENCH_LOAD_S` shortens or lengthens the run (default 180 s)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.support.load import run_load


def run() -> list[dict[str, Any]]:
    seconds = float(os.environ.get("DFR_BENCH_LOAD_S", "180"))
    with tempfile.TemporaryDirectory() as tmp:
        report = asyncio.run(run_load(Path(tmp), seconds=seconds, per_minute=1000, new_fraction=0.2))
    row = {"bench": "load: reports over HTTP, 4 drones flying", **report.row()}
    row["one mission per incident"] = (
        report.incidents_without_mission == 0 and report.incidents_with_two_missions == 0
    )
    return [row]

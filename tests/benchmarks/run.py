"""`make bench`: measure, print a table. Performance lives here, never as timed assertions in tests."""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

BENCH_MODULES = [
    "tests.benchmarks.bench_sim",
    "tests.benchmarks.bench_route",
    "tests.benchmarks.bench_video",
    "tests.benchmarks.bench_load",
    "tests.benchmarks.bench_time_to_scene",
]


def timeit(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Mean and p95 of `repeat` calls, in milliseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"mean ms": statistics.fmean(samples), "p95 ms": samples[int(0.95 * (len(samples) - 1))]}


def print_table(rows: list[dict[str, Any]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> int:
    rows: list[dict[str, Any]] = []
    for name in BENCH_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        rows += mod.run()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`dfr sitl run <files or dirs>`: run scenarios, print a verdict table, exit non-zero on any failure.
`dfr sitl compare <files or dirs>`: run each on the builtin simulator and on real PX4 SITL at one speed,
print (or write, as Markdown) verdict and time to scene side by side with their ratio, exit non-zero when
the verdicts differ or a ratio falls outside `RATIO_BAND`.

Scenarios run one after another: each starts its own simulator (or PX4 instances) and its own service,
and the machines this runs on in CI have two cores. Every file is loaded (and validated) before the first
one runs, so a typo in the last file is reported at once rather than after minutes of flying.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TextIO

from dfr.sitl.runner import RunOptions, ScenarioResult, run_scenario
from dfr.sitl.scenario import Scenario, ScenarioError, load_scenario, scenario_files

__all__ = ["RATIO_BAND", "add_arguments", "comparison_table", "format_table", "main"]

RATIO_BAND = (0.85, 1.15)
"""PX4 / builtin time to scene must fall in this band for the simulator to count as matching PX4."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sitl_command", required=True)
    run = sub.add_parser("run", help="run scenario files (or every *.yaml in the directories given)")
    run.add_argument("paths", nargs="+", help="scenario files or directories")
    run.add_argument("--backend", choices=("builtin", "px4"), default="builtin")
    run.add_argument("--speed", type=float, help="simulated-time speed-up (default: each scenario's own)")
    run.add_argument("--report", type=Path, help="directory for a JSON report and a PNG map per scenario")
    run.add_argument(
        "--attach",
        help="px4 backend: connect to running PX4 instances instead of starting them, e.g. udp://:14540,udp://:14541",
    )
    run.add_argument("--px4-bin", help="px4 backend: the built bin/px4 (default: $PX4_SITL_BIN)")
    run.add_argument("--mqtt-url", help="broker for scenarios that send reports over MQTT")
    cmp = sub.add_parser(
        "compare", help="run scenarios on the builtin simulator and on PX4 SITL, side by side"
    )
    cmp.add_argument("paths", nargs="+", help="scenario files or directories")
    cmp.add_argument("--speed", type=float, default=5.0, help="one speed-up for both backends (default 5)")
    cmp.add_argument("--px4-bin", help="the built bin/px4 (default: $PX4_SITL_BIN)")
    cmp.add_argument("--mqtt-url", help="broker for scenarios that send reports over MQTT")
    cmp.add_argument("--markdown", type=Path, help="also write the table to this file (Markdown)")


def _ratio(builtin: ScenarioResult, px4: ScenarioResult) -> float | None:
    if builtin.time_to_scene_s and px4.time_to_scene_s is not None:
        return px4.time_to_scene_s / builtin.time_to_scene_s
    return None


def comparison_problems(builtin: ScenarioResult, px4: ScenarioResult) -> list[str]:
    """Why a pair does not match: different verdicts, or a time-to-scene ratio outside the band."""
    problems: list[str] = []
    if px4.verdict == "skipped" and px4.error:
        return problems  # PX4 cannot express the scenario (the reason is in the notes): not compared
    if builtin.verdict != px4.verdict:
        problems.append(f"verdict {builtin.verdict} on builtin, {px4.verdict} on px4")
    ratio = _ratio(builtin, px4)
    if ratio is not None and not RATIO_BAND[0] <= ratio <= RATIO_BAND[1]:
        problems.append(f"time-to-scene ratio {ratio:.2f} outside {RATIO_BAND[0]}-{RATIO_BAND[1]}")
    return problems


def comparison_table(pairs: list[tuple[ScenarioResult, ScenarioResult]], speed: float) -> str:
    """A Markdown table: per scenario, verdict and time to scene on each backend and their ratio."""
    lines = [
        "| scenario | builtin | time to scene | PX4 SIH | time to scene | PX4 / builtin | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, p in pairs:
        ratio = _ratio(b, p)
        notes = "; ".join(comparison_problems(b, p)) or (p.error if p.verdict == "skipped" else "") or ""
        lines.append(
            f"| {b.name} | {b.verdict} | {_fmt(b.time_to_scene_s)} | {p.verdict} | {_fmt(p.time_to_scene_s)} "
            f"| {'-' if ratio is None else f'{ratio:.2f}'} | {notes.replace('|', '/')} |"
        )
    agree = sum(not comparison_problems(b, p) and p.verdict != "skipped" for b, p in pairs)
    skipped = sum(p.verdict == "skipped" for _, p in pairs)
    lines.append("")
    lines.append(
        f"{agree} of {len(pairs)} scenarios agree (same verdict, ratio in {RATIO_BAND}), {skipped} cannot "
        f"run on PX4 SIH (reason in the notes); speed {speed:g}x."
    )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} s"


def format_table(results: list[ScenarioResult]) -> str:
    """The summary: one line per scenario, then each failure with its reason on its own line."""
    rows = [("scenario", "verdict", "time to scene", "flight time", "wall", "failures")]
    for r in results:
        fails = r.failures
        first = fails[0] if fails else ""
        rows.append(
            (
                r.name,
                r.verdict.upper(),
                _fmt(r.time_to_scene_s),
                _fmt(r.flight_time_s),
                f"{r.wall_s:.0f} s",
                first[:90],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:5])) + "  " + row[5])
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 8)
    for r in results:
        for f in r.failures:
            lines.append(f"{r.name}: {f}")
    passed = sum(r.verdict == "pass" for r in results)
    skipped = sum(r.verdict == "skipped" for r in results)
    lines.append(f"{passed} passed, {len(results) - passed - skipped} failed, {skipped} skipped")
    return "\n".join(lines)


async def run_all(scenarios: list[Scenario], opts: RunOptions, out: TextIO) -> list[ScenarioResult]:
    results = []
    for scn in scenarios:
        print(f"running {scn.name} ({scn.path}) ...", file=out, flush=True)
        r = await run_scenario(scn, opts)
        eff = r.record.get("effective_speed")
        pace = f" (simulator at {eff:g}x of {r.speed:g}x)" if eff else ""
        first = f": {r.failures[0]}" if r.failures else ""
        print(f"  {r.verdict.upper()} in {r.wall_s:.0f} s{pace}{first}", file=out, flush=True)
        results.append(r)
    return results


async def compare_all(
    scenarios: list[Scenario], builtin: RunOptions, px4: RunOptions, out: TextIO
) -> list[tuple[ScenarioResult, ScenarioResult]]:
    pairs = []
    for scn in scenarios:
        b = (await run_all([scn], builtin, out))[0]
        p = (await run_all([scn], px4, out))[0]
        pairs.append((b, p))
    return pairs


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout  # looked up now: tests capture it per call
    files = scenario_files(args.paths)
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    scenarios: list[Scenario] = []
    bad = False
    for f in files:
        try:
            scenarios.append(load_scenario(f))
        except ScenarioError as e:
            print(e, file=sys.stderr)
            bad = True
    if bad:
        return 2
    if args.speed is not None and not 1.0 <= args.speed <= 100.0:
        print(f"--speed must be within 1..100, got {args.speed:g}", file=sys.stderr)
        return 2
    if args.sitl_command == "compare":
        return _compare(args, scenarios, out)
    attach = [a.strip() for a in args.attach.split(",") if a.strip()] if args.attach else None
    opts = RunOptions(
        backend=args.backend,
        speed=args.speed,
        report_dir=args.report,
        attach=attach,
        mqtt_url=args.mqtt_url,
        px4_bin=args.px4_bin or os.environ.get("PX4_SITL_BIN"),
    )
    if opts.backend == "px4" and not opts.px4_bin and not attach:
        print("the px4 backend needs PX4_SITL_BIN (the built bin/px4) or --attach", file=sys.stderr)
        return 2
    results = asyncio.run(run_all(scenarios, opts, out))
    print(format_table(results), file=out)
    return 0 if all(r.verdict in ("pass", "skipped") for r in results) else 1


def _compare(args: argparse.Namespace, scenarios: list[Scenario], out: TextIO) -> int:
    px4_bin = args.px4_bin or os.environ.get("PX4_SITL_BIN")
    if not px4_bin:
        print("dfr sitl compare needs PX4_SITL_BIN (the built bin/px4) or --px4-bin", file=sys.stderr)
        return 2
    builtin = RunOptions(backend="builtin", speed=args.speed, mqtt_url=args.mqtt_url)
    px4 = RunOptions(backend="px4", speed=args.speed, mqtt_url=args.mqtt_url, px4_bin=px4_bin)
    pairs = asyncio.run(compare_all(scenarios, builtin, px4, out))
    table = comparison_table(pairs, args.speed)
    print(table, file=out)
    if args.markdown is not None:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0 if all(not comparison_problems(b, p) for b, p in pairs) else 1

"""`dfr coverage`: the share of past calls a drone could have reached within N s, a heat map, and where
k more docks would help most. The computation is `dfr.coverage` (pure); this reads files and writes the
JSON and PNG."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from dfr.history_cli import add_history_arguments, calls_from_args

__all__ = ["add_arguments", "main"]

DEFAULT_POLICY = "missions/policies/default.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", type=Path, required=True, help="area file (docks, drones, zones)")
    p.add_argument("--policy", type=Path, default=Path(DEFAULT_POLICY), help="launch policy (sortie shape)")
    add_history_arguments(p)
    p.add_argument("--within", type=float, default=90.0, help="seconds from launch to overhead (default 90)")
    p.add_argument("--suggest", type=int, default=0, help="suggest this many more docks (greedy)")
    p.add_argument("--spacing", type=float, default=400.0, help="metres between candidate dock sites")
    p.add_argument(
        "--drone-speed", type=float, help="m/s of drones at suggested docks (default: fastest now)"
    )
    p.add_argument("--out", type=Path, required=True, help="directory for coverage.json and coverage.png")


def _site(s: Any) -> dict[str, Any]:
    return {"id": s.id, "lat": round(s.lat, 6), "lon": round(s.lon, 6), "cruise_m_s": s.cruise_m_s}


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout  # looked up now: tests capture it per call
    import cv2

    from dfr.area import AreaError, load_area
    from dfr.coverage import CoverageParams, analyse, dock_sites
    from dfr.coverage_map import draw_coverage
    from dfr.dispatch.policy import PolicyError, load_policy
    from dfr.history import HistoryError

    try:
        area = load_area(args.area)
        policy = load_policy(args.policy)
        calls, counts = calls_from_args(args, area)
    except (AreaError, PolicyError, HistoryError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    if args.suggest < 0 or not args.within > 0:
        print("--suggest must be >= 0 and --within > 0", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    result = analyse(
        area,
        policy,
        [(c.lat, c.lon) for c in calls],
        args.within,
        suggest=args.suggest,
        spacing_m=args.spacing,
        new_site_speed_m_s=args.drone_speed,
    )
    params = CoverageParams.of(area, policy, args.within)
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "coverage.png"
    if not cv2.imwrite(str(png), draw_coverage(area, result, params)):
        print(f"could not write {png}", file=sys.stderr)
        return 1
    body = {
        "area": str(args.area),
        "history": str(args.history),
        "within_s": args.within,
        "calls": counts,
        "docks": [_site(s) for s in dock_sites(area)[0]],
        "covered_now": result.covered_now,
        "share_now": round(result.share_now(), 4),
        "suggested": [
            {**_site(s), "covered": c, "share": round(sh, 4)}
            for s, c, sh in zip(result.suggested, result.covered_after, result.share_after(), strict=True)
        ],
        "candidates": result.candidates,
        "routes_planned": result.planned,
        "notes": result.notes,
        "seconds": round(time.monotonic() - t0, 1),
        "png": str(png),
    }
    (args.out / "coverage.json").write_text(json.dumps(body, indent=1), encoding="utf-8")
    print(
        f"{result.calls} calls; within {args.within:g} s from today's docks: "
        f"{100 * result.share_now():.1f} %",
        file=out,
    )
    for k, (s, sh) in enumerate(zip(result.suggested, result.share_after(), strict=True), start=1):
        print(f"  + dock {k} at {s.lat:.5f}, {s.lon:.5f}: {100 * sh:.1f} %", file=out)
    for note in result.notes:
        print(f"  note: {note}", file=out)
    print(f"wrote {args.out / 'coverage.json'} and {png}", file=out)
    return 0

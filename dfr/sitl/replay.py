"""`dfr replay`: a day of real calls against an area, with the real service and the built-in simulator.

A history file (`dfr.history`) becomes a SITL scenario: one timeline incident per call at its time since
the first call, in simulated seconds, so that ``--speed 20`` plays an hour of calls in three minutes. The
scenario is written as a YAML file next to the report (it can be run again with ``dfr sitl run``) and run
by the scenario runner (`dfr.sitl.runner.run_scenario`): the same simulator start, service start, posting
and record collection as every scenario. What this module adds is the day's figures, computed from that
record (`summarise`, pure): calls, merges, launches, arrivals, the share on scene within 60/90/120/180 s
of the call, waiting times, each drone's time in the air and charge over the day, and every call that was
not served with the reason the record gives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

from dfr.airframe import pin_airframes
from dfr.history import Call
from dfr.sitl.report import _text
from dfr.sitl.runner import TERMINAL, RunOptions, ScenarioResult, run_scenario
from dfr.sitl.scenario import load_scenario

__all__ = ["WITHIN_S", "add_arguments", "main", "summarise", "write_scenario"]

WITHIN_S = (60, 90, 120, 180)
"""Seconds from the call at which the share of calls with a drone overhead is reported."""

LEAD_S = 5.0
"""Simulated seconds before the first call, so that the service has seen every drone's telemetry."""

MAX_TIMEOUT_S = 14_400.0
"""The scenario format's longest run (4 h simulated); a longer window is refused, not cut silently."""


def _extra_drones(data: dict[str, Any], count: int) -> None:
    """Grow the area's drone list to `count`, cloning its drones round-robin (same dock, speed, params)."""
    base = list(data.get("drones") or [])
    if not base:
        raise ValueError("the area has no drones to replay with")
    k = 0
    while len(data["drones"]) < count:
        src = base[k % len(base)]
        k += 1
        data["drones"].append({**src, "id": f"{src['id']}-x{k}", "name": f"{src['name']} (extra {k})"})


def write_scenario(
    area_path: Path,
    policy_path: Path,
    calls: Sequence[Call],
    directory: Path,
    *,
    name: str = "replay",
    speed: float = 20.0,
    drones: int | None = None,
    tail_s: float = 1800.0,
    seed: int = 0,
) -> Path:
    """Write ``<name>.yaml`` (and its area, with `drones` drones) into `directory`; return its path."""
    if not calls:
        raise ValueError("no calls to replay")
    directory.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = yaml.safe_load(area_path.read_text(encoding="utf-8"))
    geojson = area_path.parent / str(data["geojson"])
    shutil.copyfile(geojson, directory / geojson.name)
    data["geojson"] = geojson.name
    if drones is not None:
        if drones < 1:
            raise ValueError("--drones must be at least 1")
        data["drones"] = list(data.get("drones") or [])[:drones]
        _extra_drones(data, drones)
    pin_airframes(data.get("drones") or [], area_path.parent)  # profiles are next to the original area
    area_out = directory / f"{name}.area.yaml"
    area_out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    t0 = calls[0].at
    timeline: list[dict[str, Any]] = []
    for i, c in enumerate(calls):
        at = LEAD_S + (c.at - t0).total_seconds()
        incident = {
            "ref": f"c{i + 1}",
            "kind": c.kind.value,
            "lat": round(c.lat, 7),
            "lon": round(c.lon, 7),
            "priority": c.priority,
            "source": "replay",
            "note": f"history line {c.line} ({c.ref}, {c.at.isoformat()})"[:500],
        }
        timeline.append({"at_s": round(at, 1), "incident": incident})
    last = float(timeline[-1]["at_s"])
    timeout = last + tail_s
    if timeout > MAX_TIMEOUT_S:
        raise ValueError(
            f"the calls span {last / 3600:.1f} h; a replay may cover at most {MAX_TIMEOUT_S / 3600:.0f} h "
            f"of simulated time including the {tail_s:.0f} s tail: choose a shorter --window-min"
        )
    scenario = {
        "name": name,
        "description": f"{len(calls)} calls from {t0.isoformat()} replayed (dfr replay)",
        "area": str(area_out.resolve()),
        "policy": str(policy_path.resolve()),
        "speed": speed,
        "seed": seed,
        "timeout_s": timeout,
        "timeline": timeline,
        "expect": [{"never_in_no_fly_zone": {}}],
    }
    out = directory / f"{name}.yaml"
    out.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------------------
# The day's figures


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 1),
        "p90": round(p90, 1),
        "max": round(ordered[-1], 1),
    }


def summarise(record: dict[str, Any], calls: Sequence[Call]) -> dict[str, Any]:
    """The day's figures from a run's record (`ScenarioResult.record`). Pure.

    Response time is from the call (the first report of the incident) to the drone overhead; waiting
    time from the call to the launch. Each incident counts once, however many calls merged into it.
    """
    reports = record.get("reports", [])
    missions = record.get("missions", [])
    events = record.get("events", {})
    first_t: dict[str, float] = {}
    for rep in reports:
        inc = rep.get("incident_id")
        if inc is not None and inc not in first_t:
            first_t[inc] = float(rep["t"])
    merged = sum(1 for rep in reports if rep.get("created") is False)
    by_incident: dict[str, dict[str, Any]] = {}
    for m in sorted(missions, key=lambda m: m["created_at"]):
        by_incident[m["incident_id"]] = m  # the newest mission of each incident
    launched = [m for m in by_incident.values() if m.get("t_launched") is not None]
    on_scene = [m for m in by_incident.values() if m.get("t_on_scene") is not None]
    response = {
        inc: float(m["t_on_scene"]) - first_t[inc]
        for inc, m in by_incident.items()
        if inc in first_t and m.get("t_on_scene") is not None
    }
    waits = [
        float(m["t_launched"]) - first_t[i]
        for i, m in by_incident.items()
        if i in first_t and m.get("t_launched") is not None
    ]
    incidents = len(first_t)
    within = {
        str(s): round(sum(1 for r in response.values() if r <= s) / incidents, 3) if incidents else 0.0
        for s in WITHIN_S
    }
    unserved = []
    for inc, t in sorted(first_t.items(), key=lambda kv: kv[1]):
        m = by_incident.get(inc)
        if m is not None and m.get("t_on_scene") is not None:
            continue
        refs = [r["ref"] for r in reports if r.get("incident_id") == inc]
        if m is None:
            unserved.append({"t": t, "calls": refs, "state": None, "reason": "no mission was created"})
            continue
        reasons = [e.get("reason") for e in events.get(m["id"], []) if e.get("reason")]
        reason = m.get("reason") or (reasons[-1] if reasons else None)
        if m["state"] not in TERMINAL:
            reason = f"still {m['state']} when the replay ended" + (f" ({reason})" if reason else "")
        unserved.append({"t": t, "calls": refs, "state": m["state"], "reason": reason})
    return {
        "calls": len(calls),
        "reports_posted": len(reports),
        "merged": merged,
        "incidents": incidents,
        "missions": len(by_incident),
        "launched": len(launched),
        "on_scene": len(on_scene),
        "share_on_scene_within_s": within,
        "response_s": _stats(list(response.values())),
        "waiting_s": _stats(waits),
        "drones": _drone_figures(record),
        "not_served": unserved,
        "queued": _queued(by_incident, first_t, events),
        "incident_times": [
            {"t": t, "on_scene_s": round(response[i], 1) if i in response else None}
            for i, t in sorted(first_t.items(), key=lambda kv: kv[1])
        ],
    }


def _queued(
    by_incident: dict[str, dict[str, Any]], first_t: dict[str, float], events: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every mission that waited in the queue: when its call came, how long it waited, and why."""
    out = []
    for inc, m in by_incident.items():
        why = [e.get("reason") for e in events.get(m["id"], []) if e.get("to_state") == "queued"]
        if not why or inc not in first_t:
            continue
        launched = m.get("t_launched")
        wait = round(float(launched) - first_t[inc], 1) if launched is not None else None
        out.append({"t": first_t[inc], "waited_s": wait, "reason": why[0]})
    return sorted(out, key=lambda q: q["t"])


def _drone_figures(record: dict[str, Any]) -> dict[str, Any]:
    """Per drone: share of the samples in the air (armed), missions flown, and the charge over time."""
    samples = [s for s in record.get("samples", []) if s.get("src") == "vehicle"]
    out: dict[str, Any] = {}
    for drone in record.get("drone_ids", []):
        mine = [s for s in samples if s["drone"] == drone]
        flown = sum(
            1
            for m in record.get("missions", [])
            if m.get("drone_id") == drone and m.get("t_launched") is not None
        )
        series: list[tuple[float, float]] = []
        for s in mine:
            if s.get("battery") is not None and (not series or s["t"] - series[-1][0] >= 30.0):
                series.append((s["t"], round(float(s["battery"]), 1)))
        out[drone] = {
            "in_air_share": round(sum(1 for s in mine if s.get("in_air")) / len(mine), 3) if mine else None,
            "missions": flown,
            "battery_min_pct": min((b for _, b in series), default=None),
            "battery_end_pct": series[-1][1] if series else None,
            "battery": series,
        }
    return out


def draw_day(summary: dict[str, Any], title: str) -> NDArray[np.uint8]:
    """Each drone's charge over the run (one row each, 0-100 %) and the incidents as ticks along the top
    (green: a drone got there, red: none did)."""
    drones = summary["drones"]
    w, row = 1000, 46
    h = 70 + row * max(1, len(drones)) + 40
    img = np.full((h, w, 3), (245, 245, 240), dtype=np.uint8)
    t_end = max([1.0] + [p[0] for d in drones.values() for p in d["battery"]])
    x0, x1 = 150, w - 20

    def tx(t: float) -> int:
        return int(x0 + (x1 - x0) * max(0.0, t) / t_end)

    _text(img, title, (12, 22), size=0.55)
    for inc in summary.get("incident_times", []):
        served = inc["on_scene_s"] is not None
        cv2.line(img, (tx(inc["t"]), 32), (tx(inc["t"]), 44), (40, 160, 40) if served else (40, 40, 210), 2)
    for k in range(0, int(t_end) + 1, max(300, round(t_end / 10 / 300) * 300)):
        cv2.line(img, (tx(k), 34), (tx(k), h - 30), (220, 220, 220), 1)
        _text(img, f"{k // 60} min", (tx(k) - 12, h - 12), (90, 90, 90), 0.35)
    for i, (drone, d) in enumerate(drones.items()):
        top = 50 + i * row
        _text(img, f"{drone[:14]} ({d['missions']})", (6, top + 24), (40, 40, 40), 0.4)
        cv2.rectangle(img, (x0, top), (x1, top + row - 8), (200, 200, 200), 1)
        pts = [(tx(t), int(top + (row - 8) * (1 - b / 100.0))) for t, b in d["battery"]]
        if len(pts) >= 2:
            cv2.polylines(img, [np.array(pts, np.int32)], False, (200, 110, 0), 2, cv2.LINE_AA)
    return img


def write_day_report(
    summary: dict[str, Any], result: ScenarioResult, directory: Path, name: str
) -> tuple[Path, Path]:
    body = {
        **summary,
        "verdict": result.verdict,
        "error": result.error,
        "wall_s": result.wall_s,
        "speed": result.speed,
    }
    body["effective_speed"] = result.record.get("effective_speed")
    json_path = directory / f"{name}.report.json"
    png_path = directory / f"{name}.report.png"
    json_path.write_text(json.dumps(body, indent=1, default=str), encoding="utf-8")
    title = (
        f"{name}: {summary['calls']} calls, {summary['incidents']} incidents, "
        f"{summary['launched']} launched, {summary['on_scene']} on scene; charge per drone (missions flown); "
        "ticks: incidents"
    )
    if not cv2.imwrite(str(png_path), draw_day(summary, title)):
        raise OSError(f"could not write {png_path}")
    return json_path, png_path


# ---------------------------------------------------------------------------------------------------------
# Command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dfr.history_cli import add_history_arguments

    p.add_argument("--area", type=Path, required=True, help="area file")
    p.add_argument("--policy", type=Path, default=Path("missions/policies/default.yaml"))
    add_history_arguments(p)
    p.add_argument("--speed", type=float, default=20.0, help="simulated seconds per wall second (1..100)")
    p.add_argument("--drones", type=int, help="number of drones (the area's, then copies round-robin)")
    p.add_argument(
        "--tail-min", type=float, default=30.0, help="simulated minutes to run after the last call"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="directory for the scenario, JSON and PNG")


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout  # looked up now: tests capture it per call
    from dfr.area import AreaError, load_area
    from dfr.history import HistoryError
    from dfr.history_cli import calls_from_args
    from dfr.sitl.scenario import ScenarioError

    if not 1.0 <= args.speed <= 100.0:
        print("--speed must be within 1..100", file=sys.stderr)
        return 2
    try:
        area = load_area(args.area)
        calls, counts = calls_from_args(args, area)
        if not calls:
            raise ValueError("no calls in the chosen window")
        path = write_scenario(
            args.area,
            args.policy,
            calls,
            args.out,
            speed=args.speed,
            drones=args.drones,
            tail_s=args.tail_min * 60,
            seed=args.seed,
        )
        scenario = load_scenario(path)
    except (AreaError, HistoryError, ScenarioError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    span = (calls[-1].at - calls[0].at).total_seconds()
    wall_min = (span + args.tail_min * 60) / args.speed / 60
    print(
        f"replaying {len(calls)} calls over {span / 60:.0f} simulated min ({counts}) with "
        f"{len(scenario.drone_ids)} drones at {args.speed:g}x: about {wall_min:.0f} min",
        file=out,
        flush=True,
    )
    started = datetime.now()
    result = asyncio.run(run_scenario(scenario, RunOptions(speed=args.speed)))
    summary = summarise(result.record, calls)
    summary["history"] = {"file": str(args.history), "first_call": calls[0].at.isoformat(), "counts": counts}
    summary["started"] = started.isoformat(timespec="seconds")
    json_path, png_path = write_day_report(summary, result, args.out, scenario.name)
    print(format_summary(summary), file=out)
    if result.error:
        print(f"note: {result.error}", file=out)
    print(f"wrote {path}, {json_path} and {png_path}", file=out)
    return 0 if result.record else 1


def format_summary(s: dict[str, Any]) -> str:
    within = "  ".join(f"{k} s: {100 * v:.0f} %" for k, v in s["share_on_scene_within_s"].items())
    lines = [
        f"calls {s['calls']}  merged {s['merged']}  incidents {s['incidents']}  missions {s['missions']}  "
        f"launched {s['launched']}  on scene {s['on_scene']}",
        f"on scene within (from the call)  {within}",
        f"response s {s['response_s']}   waiting to launch s {s['waiting_s']}",
    ]
    for drone, d in s["drones"].items():
        lines.append(
            f"  {drone}: {d['missions']} missions, in the air {100 * (d['in_air_share'] or 0):.0f} % "
            f"of the time, battery min {d['battery_min_pct']} % end {d['battery_end_pct']} %"
        )
    for q in s.get("queued", []):
        lines.append(f"  queued: call at {q['t']:.0f} s waited {q['waited_s']} s: {q['reason']}")
    for u in s["not_served"]:
        lines.append(
            f"  not served: call at {u['t']:.0f} s ({', '.join(u['calls'])}): {u['state']}: {u['reason']}"
        )
    return "\n".join(lines)

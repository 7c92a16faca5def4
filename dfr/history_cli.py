"""Command-line options shared by `dfr coverage` and `dfr replay` for reading a history file."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from dfr.area import Area
from dfr.history import Call, Columns, inside, load_history, move_onto, select

__all__ = ["add_history_arguments", "calls_from_args"]


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history", type=Path, required=True, help="CSV of past calls (time, lat, lon, kind, priority)"
    )
    p.add_argument(
        "--columns",
        help="column mapping for other layouts, e.g. "
        "time=Date+Time,lat=Latitude,lon=Longitude,kind=-,priority=- (- : no such column)",
    )
    p.add_argument(
        "--onto-area",
        action="store_true",
        help="move the calls' pattern onto the area as the demo feed moves the DC alerts "
        "(for a history recorded elsewhere)",
    )
    p.add_argument("--start", help="first call time to use, e.g. 2018-07-04T12:00 (default: the first call)")
    p.add_argument("--window-min", type=float, help="minutes of calls from --start to use")
    p.add_argument("--limit", type=int, help="use at most this many calls")


def calls_from_args(args: argparse.Namespace, area: Area) -> tuple[list[Call], dict[str, int]]:
    """The calls to use (inside the area, after any move and selection) and how many were dropped where.

    Raises `dfr.history.HistoryError` for a bad file and `ValueError` for bad options.
    """
    columns = Columns.parse(args.columns) if args.columns else None
    calls = load_history(args.history, columns)
    counts = {"rows": len(calls)}
    if args.onto_area:
        calls = move_onto(calls, area.operating_area)  # the whole file's pattern, as the demo feed
    start = datetime.fromisoformat(args.start) if args.start else None
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    window_s = args.window_min * 60.0 if args.window_min is not None else None
    chosen = select(calls, start=start, window_s=window_s)
    counts["in_window"] = len(chosen)
    ins, outside = inside(chosen, area.operating_area)
    counts["outside_area"] = len(outside)
    if not ins and outside and not args.onto_area:
        raise ValueError(
            f"all {len(outside)} calls are outside the operating area of {area.name}; "
            "give --onto-area to move their pattern onto it (as the demo feed does)"
        )
    if args.limit is not None:
        ins = ins[: args.limit]
    counts["used"] = len(ins)
    return ins, counts

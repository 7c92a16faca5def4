"""Past calls for service from a CSV file, for `dfr coverage` and `dfr replay`.

A history file is what an agency can export from its CAD or gunshot-detection system: one row per call
with a time, a location, and optionally a kind and a priority. The standard layout has the columns
``time, lat, lon, kind, priority`` (``id`` optional); other layouts are read through a column mapping
(`Columns.parse`, ``--columns time=Date+Time,lat=Latitude,...``), and the DC MPD ShotSpotter release
(``ID,Type,Date,Time,Source,Latitude,Longitude``) is recognised by its header.

Every bad row is reported with the file, the line and the column, all at once (`HistoryError`, the same
listing as the area and scenario files), because a half-read history would give coverage figures for a
different city than the one in the file.

`move_onto` puts a history recorded elsewhere (the DC alerts) onto an area the way the demo feed does,
with the one definition of that move, `sim.feed.PatternMove`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from shapely.geometry import Point, Polygon

from dfr.domain.incidents import IncidentKind
from dfr.yamldoc import DocumentError, Problem, read_text
from sim.feed import PatternMove

__all__ = [
    "DC_SHOTSPOTTER",
    "STANDARD",
    "Call",
    "Columns",
    "HistoryError",
    "load_history",
    "move_onto",
    "parse_history",
    "select",
]

MAX_HISTORY_BYTES = 200_000_000
"""A year of a large city's calls is tens of megabytes; far more is a wrong file."""

TIME_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
"""Besides ISO 8601: the US month/day/year layout many CAD exports (and MPD's) use."""


class HistoryError(DocumentError):
    """A history file could not be read; ``problems`` lists every bad row with its line and column."""

    kind = "history file"


@dataclass(frozen=True)
class Call:
    """One past call: when, where, what. ``line`` is its line in the file, for messages and reports."""

    ref: str
    at: datetime
    lat: float
    lon: float
    kind: IncidentKind
    priority: int
    line: int


@dataclass(frozen=True)
class Columns:
    """Which CSV columns hold what. ``time`` may join several columns with a space (a date and a time);
    a missing ``kind`` or ``priority`` column gives every call the default."""

    time: tuple[str, ...] = ("time",)
    lat: str = "lat"
    lon: str = "lon"
    kind: str | None = "kind"
    priority: str | None = "priority"
    id: str | None = "id"
    default_kind: IncidentKind = IncidentKind.GUNSHOT
    default_priority: int = 1

    @classmethod
    def parse(cls, spec: str, base: Columns | None = None) -> Columns:
        """``time=Date+Time,lat=Latitude,lon=Longitude,kind=-`` (``-``: no such column) over `base`."""
        out = base or STANDARD
        for item in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, col = item.partition("=")
            name, col = name.strip(), col.strip()
            if not sep or not col:
                raise ValueError(f"column mapping {item!r}: expected FIELD=COLUMN")
            if name == "time":
                out = replace(out, time=tuple(c.strip() for c in col.split("+")))
            elif name == "lat":
                out = replace(out, lat=col)
            elif name == "lon":
                out = replace(out, lon=col)
            elif name == "kind":
                out = replace(out, kind=None if col == "-" else col)
            elif name == "priority":
                out = replace(out, priority=None if col == "-" else col)
            elif name == "id":
                out = replace(out, id=None if col == "-" else col)
            else:
                raise ValueError(
                    f"column mapping {item!r}: unknown field {name!r} (time, lat, lon, kind, priority, id)"
                )
        return out

    def required(self) -> list[str]:
        return [*self.time, self.lat, self.lon]


STANDARD = Columns()
DC_SHOTSPOTTER = Columns(
    time=("Date", "Time"), lat="Latitude", lon="Longitude", kind=None, priority=None, id="ID"
)
"""The DC MPD ShotSpotter release: every row is a gunshot alert, priority 1 (as the demo feed posts it)."""


def _detect(header: Sequence[str]) -> Columns:
    names = set(header)
    if set(DC_SHOTSPOTTER.required()) <= names and "ID" in names:
        return DC_SHOTSPOTTER
    return STANDARD


def _time(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"cannot read time {text!r} (ISO 8601 or M/D/YYYY H:MM[:SS])")


def _kinds() -> str:
    return ", ".join(k.value for k in IncidentKind)


def parse_history(text: str, label: str, columns: Columns | None = None) -> list[Call]:
    """The calls in a CSV text, sorted by time; raises `HistoryError` listing every bad row."""
    reader = csv.reader(io.StringIO(text))
    problems: list[Problem] = []
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise HistoryError(label, [Problem(label, "", "empty file: expected a header row", 1)]) from None
    except csv.Error as e:
        raise HistoryError(label, [Problem(label, "", f"not CSV: {e}", 1)]) from None
    cols = columns or _detect(header)
    optional = [c for c in (cols.kind, cols.priority, cols.id) if c is not None and columns is not None]
    missing = [c for c in cols.required() + optional if c not in header]
    if missing:
        have = ", ".join(header)
        raise HistoryError(
            label,
            [Problem(label, "", f"missing column(s) {', '.join(missing)} (the header has: {have})", 1)],
        )
    index = {h: i for i, h in enumerate(header)}
    kind_col = cols.kind if cols.kind in index else None
    prio_col = cols.priority if cols.priority in index else None
    id_col = cols.id if cols.id in index else None
    calls: list[Call] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                problems.append(Problem(label, "", f"{len(row)} fields, the header has {len(header)}", line))
                continue
            call = _row(label, line, row, index, cols, kind_col, prio_col, id_col, problems)
            if call is not None:
                calls.append(call)
    except csv.Error as e:
        problems.append(Problem(label, "", f"not CSV: {e}", reader.line_num))
    if problems:
        raise HistoryError(label, problems)
    if not calls:
        raise HistoryError(label, [Problem(label, "", "no calls in the file (only a header)", 1)])
    calls.sort(key=lambda c: (c.at, c.line))
    return calls


def _row(
    label: str,
    line: int,
    row: list[str],
    index: dict[str, int],
    cols: Columns,
    kind_col: str | None,
    prio_col: str | None,
    id_col: str | None,
    problems: list[Problem],
) -> Call | None:
    before = len(problems)

    def bad(col: str, message: str) -> None:
        problems.append(Problem(label, col, message, line))

    at = None
    time_text = " ".join(row[index[c]].strip() for c in cols.time)
    try:
        at = _time(time_text)
    except ValueError as e:
        bad("+".join(cols.time), str(e))
    coords: list[float] = []
    for col, lo, hi in ((cols.lat, -90.0, 90.0), (cols.lon, -180.0, 180.0)):
        cell = row[index[col]].strip()
        try:
            value = float(cell)
        except ValueError:
            bad(col, f"not a number: {cell!r}")
            continue
        if not lo <= value <= hi:  # also refuses nan
            bad(col, f"{value} is outside [{lo:g}, {hi:g}]")
            continue
        coords.append(value)
    kind = cols.default_kind
    if kind_col is not None:
        cell = row[index[kind_col]].strip().lower()
        try:
            kind = IncidentKind(cell)
        except ValueError:
            bad(kind_col, f"unknown kind {cell!r} (one of: {_kinds()})")
    priority = cols.default_priority
    if prio_col is not None:
        cell = row[index[prio_col]].strip()
        if cell.isdigit() and 1 <= int(cell) <= 5:
            priority = int(cell)
        else:
            bad(prio_col, f"priority must be a whole number 1..5, got {cell!r}")
    if len(problems) > before or at is None:
        return None
    ref = row[index[id_col]].strip() if id_col is not None else ""
    return Call(ref or f"line-{line}", at, coords[0], coords[1], kind, priority, line)


def load_history(path: str | os.PathLike[str], columns: Columns | None = None) -> list[Call]:
    """Read and check a history CSV (`parse_history`); `columns` None: standard or DC, by the header."""
    p = Path(path)
    label = str(p)
    text, problem = read_text(p, label, MAX_HISTORY_BYTES, "history file")
    if problem is not None or text is None:
        raise HistoryError(label, [problem or Problem(label, "", "cannot read")])
    return parse_history(text, label, columns)


def move_onto(calls: Sequence[Call], area: Polygon, scale: float = 0.6) -> list[Call]:
    """The calls' pattern moved onto `area` as the demo feed moves the DC alerts (`sim.feed.PatternMove`)."""
    move = PatternMove.onto([(c.lat, c.lon) for c in calls], area, scale)
    out = []
    for c in calls:
        lat, lon = move.apply(c.lat, c.lon)
        out.append(replace(c, lat=lat, lon=lon))
    return out


def inside(calls: Sequence[Call], area: Polygon) -> tuple[list[Call], list[Call]]:
    """(calls in the area, calls outside it)."""
    ins: list[Call] = []
    out: list[Call] = []
    for c in calls:
        (ins if area.covers(Point(c.lon, c.lat)) else out).append(c)
    return ins, out


def select(
    calls: Sequence[Call],
    *,
    start: datetime | None = None,
    window_s: float | None = None,
    limit: int | None = None,
) -> list[Call]:
    """The calls from `start` (default: the first call) for `window_s` seconds, at most `limit` of them."""
    if not calls:
        return []
    t0 = start if start is not None else calls[0].at
    end = t0 + timedelta(seconds=window_s) if window_s is not None else None
    out = [c for c in calls if c.at >= t0 and (end is None or c.at < end)]
    return out[:limit] if limit is not None else out

"""Fault-injection and status interface of a running simulator.

A JSON-lines TCP socket on loopback: one request object per line, one answer per line. Tests and the
scenario runner use it to cut a link, lose GPS, drain a battery, fail a motor or change the wind while
MAVSDK flies the vehicles over MAVLink. `SimControl` is the client.

Requests (`drone` is the MAVLink system id):
  {"op": "status"}                                   -> {"ok": true, "status": {...}}
  {"op": "link", "drone": 1, "up": false}            cut / restore both directions
  {"op": "gps", "drone": 1, "lost": true}
  {"op": "battery", "drone": 1, "pct": 12.5}
  {"op": "motor_failure", "drone": 1}
  {"op": "wind", "north": 3.0, "east": -2.0}         all drones, or one with "drone"
Errors answer {"ok": false, "error": "<reason>"} and change nothing.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from sim.fleet import Fleet

MAX_LINE = 65536


class ControlError(ValueError):
    """A request the simulator refused; the message says why."""


def _num(req: dict[str, Any], key: str, lo: float, hi: float) -> float:
    val = req.get(key)
    if isinstance(val, bool) or not isinstance(val, int | float):
        raise ControlError(f"'{key}' must be a number")
    if math.isnan(val) or not lo <= val <= hi:
        raise ControlError(f"'{key}' must be within {lo}..{hi}, got {val}")
    return float(val)


def _bool(req: dict[str, Any], key: str) -> bool:
    val = req.get(key)
    if not isinstance(val, bool):
        raise ControlError(f"'{key}' must be true or false")
    return val


def _drone(fleet: Fleet, req: dict[str, Any]) -> int:
    d = req.get("drone")
    if isinstance(d, bool) or not isinstance(d, int):
        raise ControlError("'drone' must be a system id (integer)")
    if d not in fleet.vehicles:
        raise ControlError(f"no drone with system id {d}")
    return d


def apply_request(fleet: Fleet, req: Any) -> dict[str, Any]:
    """Validate and carry out one control request (raises ControlError before changing anything)."""
    if not isinstance(req, dict):
        raise ControlError("request must be a JSON object")
    op = req.get("op")
    if op == "status":
        return {"status": fleet.status()}
    if op == "link":
        d, up = _drone(fleet, req), _bool(req, "up")
        fleet.set_link(d, up)
    elif op == "gps":
        d, lost = _drone(fleet, req), _bool(req, "lost")
        fleet.vehicle(d).inject_gps_loss(lost)
    elif op == "battery":
        d, pct = _drone(fleet, req), _num(req, "pct", 0, 100)
        fleet.vehicle(d).inject_battery(pct)
    elif op == "motor_failure":
        d = _drone(fleet, req)
        fleet.vehicle(d).inject_motor_failure()
    elif op == "wind":
        north, east = _num(req, "north", -40, 40), _num(req, "east", -40, 40)
        targets = [_drone(fleet, req)] if "drone" in req else list(fleet.vehicles)
        for d in targets:
            fleet.vehicle(d).set_wind(north, east)
    else:
        raise ControlError(f"unknown op {op!r}; expected status, link, gps, battery, motor_failure, wind")
    return {"drone": fleet.drone_status(d)} if "drone" in req and op != "wind" else {}


class ControlServer:
    """Serves `apply_request` on a loopback TCP port."""

    def __init__(self, fleet: Fleet, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, self.host, self.port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(b'{"ok": false, "error": "request line too long"}\n')
                    break
                if not line:
                    break
                try:
                    answer = {"ok": True, **apply_request(self.fleet, json.loads(line))}
                except json.JSONDecodeError as e:
                    answer = {"ok": False, "error": f"malformed JSON: {e.msg}"}
                except ControlError as e:
                    answer = {"ok": False, "error": str(e)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class SimControl:
    """Async client of a simulator's control socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def request(self, **req: Any) -> dict[str, Any]:
        """Send one request; raises ControlError when the simulator refuses it."""
        async with self._lock:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            self._writer.write(json.dumps(req).encode() + b"\n")
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise ConnectionError("simulator closed the control connection")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "refused"))
        return answer

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = (await self.request(op="status"))["status"]
        return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

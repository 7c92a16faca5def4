"""`dfr sim`: run a simulated fleet until interrupted.

Prints one JSON line `{"event": "ready", ...}` on stdout once every vehicle socket and the control
socket are open, so that scripts and tests can wait on an event rather than a sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from dfr.shutdown import StopSignals
from sim.control import ControlServer
from sim.fleet import DroneSpec, Fleet


def specs_from_area(area_path: Path, count: int) -> tuple[list[DroneSpec], tuple[float, float]]:
    """Park `count` drones at the area's docks: the area's own drones first, then extra ones round-robin.

    Each drone gets its dock's charging model, so that a landed drone recharges as the area says."""
    from dfr.area import load_area

    area = load_area(area_path)
    docks = {d.id: d for d in area.docks}
    specs: list[DroneSpec] = []
    for drone in area.drones[:count]:
        dock = docks[drone.dock]
        specs.append(
            DroneSpec(
                len(specs) + 1,
                drone.id,
                dock.lat,
                dock.lon,
                dock.alt_amsl_m,
                dict(drone.params or {}),
                dock.charging,
            )
        )
    dock_list = list(docks.values())
    while len(specs) < count:
        dock = dock_list[len(specs) % len(dock_list)]
        specs.append(
            DroneSpec(
                len(specs) + 1,
                f"sim-{len(specs) + 1}",
                dock.lat,
                dock.lon,
                dock.alt_amsl_m,
                charging=dock.charging,
            )
        )
    return specs, (area.wind.north_m_s, area.wind.east_m_s)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", type=Path, help="area YAML whose docks the drones start at")
    p.add_argument("--home", help="lat,lon,alt_amsl for all drones when no area is given")
    p.add_argument("--drones", type=int, default=1, help="number of vehicles (system ids 1..N)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1", help="where vehicles send MAVLink (PX4: 127.0.0.1)")
    p.add_argument("--base-port", type=int, default=14540, help="vehicle i sends to base-port + i - 1")
    p.add_argument("--control-port", type=int, default=0, help="fault-injection socket (0: any free)")
    p.add_argument("--wind", help="north,east wind in m/s (overrides the area's)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="PX4 parameter for every drone (repeatable)",
    )


def build_fleet(args: argparse.Namespace) -> Fleet:
    if not 1 <= args.drones <= 250:
        raise SystemExit("--drones must be within 1..250")
    if args.area is not None:
        specs, wind = specs_from_area(args.area, args.drones)
    elif args.home:
        try:
            lat, lon, alt = (float(x) for x in args.home.split(","))
        except ValueError:
            raise SystemExit("--home must be lat,lon,alt_amsl") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise SystemExit("--home: latitude/longitude out of range")
        specs = [DroneSpec(i + 1, f"sim-{i + 1}", lat, lon, alt) for i in range(args.drones)]
        wind = (0.0, 0.0)
    else:
        raise SystemExit("give --area or --home")
    if args.wind:
        try:
            wn, we = (float(x) for x in args.wind.split(","))
        except ValueError:
            raise SystemExit("--wind must be north,east in m/s") from None
        wind = (wn, we)
    extra: dict[str, float] = {}
    for item in args.param:
        name, _, value = item.partition("=")
        try:
            extra[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"--param {item!r}: expected NAME=number") from None
    for s in specs:
        s.params = {**s.params, **extra}
    try:
        return Fleet(
            specs, speed=args.speed, seed=args.seed, host=args.host, base_port=args.base_port, wind_ne=wind
        )
    except ValueError as e:  # includes unknown parameter names
        raise SystemExit(str(e)) from None


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT (handled from the start, so one sent right after the ready line still
    stops the simulator in order and exits 0), or until the clock is given up (exit 1)."""
    with StopSignals() as stop:
        fleet = build_fleet(args)
        await fleet.start()
        control = ControlServer(fleet, "127.0.0.1", args.control_port)
        port = await control.start()
        ready = {
            "event": "ready",
            "control_port": port,
            "speed": fleet.speed,
            "drones": [
                {
                    "sysid": d.sysid,
                    "name": d.name,
                    "port": fleet.port_of(d.sysid),
                    "local_port": fleet.local_port_of(d.sysid),
                    "lat": d.lat,
                    "lon": d.lon,
                    "alt_amsl": d.alt_amsl,
                }
                for d in fleet.specs
            ],
        }
        print(json.dumps(ready), flush=True)
        stopped = asyncio.create_task(stop.wait(), name="stop-signals")
        gave_up = asyncio.create_task(fleet.supervisor.escalated.wait(), name="sim-escalated")
        await asyncio.wait({stopped, gave_up}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        gave_up.cancel()
        await control.stop()
        await fleet.stop()
    failed = [p.as_dict() for p in fleet.supervisor.down()]
    print(json.dumps({"event": "stopped", "sim_time": fleet.sim_time, "failed": failed}), flush=True)
    if failed:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dfr sim", description="PX4-compatible simulated drone fleet")
    add_arguments(p)
    args = p.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `dfr` command: one entry point for the service, the simulator and the tools around them."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dfr.area import Area

DEMO_AREA = "missions/areas/chula-vista.yaml"
DEMO_POLICY = "missions/policies/default.yaml"


def _service_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--area", help="area file (default: DFR_AREA or the Chula Vista sample)")
    p.add_argument(
        "--policy", help="launch policy file (default: DFR_POLICY or missions/policies/default.yaml)"
    )
    p.add_argument("--database-url", help="SQLAlchemy URL (default: DFR_DATABASE_URL or ./var/dfr.sqlite)")
    p.add_argument("--host", dest="http_host", help="HTTP address (default 127.0.0.1)")
    p.add_argument("--port", dest="http_port", type=int, help="HTTP port (default 8000)")
    p.add_argument("--mavlink-base-port", type=int, help="drone i listens on base+i-1 (default 14540)")
    p.add_argument("--mqtt-url", help="broker for the MQTT ingest, e.g. mqtt://127.0.0.1:1883")


def _settings(args: argparse.Namespace, **extra: object) -> object:
    from dfr.settings import Settings

    given = {
        k: v
        for k, v in vars(args).items()
        if k in ("area", "policy", "database_url", "http_host", "http_port", "mavlink_base_port", "mqtt_url")
        and v is not None
    }
    return Settings(**{**given, **extra})


async def _demo(args: argparse.Namespace, area: Area) -> None:
    """Simulator + service + a replayed incident feed, all on embedded defaults, until SIGTERM/SIGINT.

    Shutdown is staged as `dfr serve`'s, then the simulator child is stopped; it is also started to die
    with this process (`dfr.children`), so even a SIGKILLed demo leaves no simulator sending MAVLink.
    """
    from dfr.service import http_server, running_service
    from dfr.shutdown import StopSignals
    from dfr.supervision import Supervisor
    from sim.feed import run_feed
    from sim.harness import SimProcess

    area_path = args.area or DEMO_AREA
    base_port = args.mavlink_base_port or 14540
    with StopSignals() as stop:
        async with SimProcess(
            area=area_path, drones=len(area.drones), speed=args.speed, base_port=base_port
        ) as sim:
            settings = _settings(
                args,
                area=area_path,
                time_scale=args.speed,
                mavlink_base_port=sim.base_port,
                database_url=args.database_url or "sqlite+aiosqlite:///var/demo.sqlite",
            )
            async with running_service(settings) as svc:  # type: ignore[arg-type]
                from dfr.auth.cli import DEMO_ACCOUNTS, ensure_demo_accounts

                feed_token = await ensure_demo_accounts(svc.store)
                host, port = svc.settings.http_host, svc.settings.http_port
                async with http_server(svc.app, host, port) as url:
                    ready = {"event": "demo-ready", "url": url, "drones": sim.ready["drones"]}
                    print(json.dumps(ready), flush=True)
                    every = f"incidents every {args.every:.0f} s"
                    print(f"dfr demo: service on {url} (API docs {url}/docs); {every}")
                    logins = ", ".join(
                        f"{u} / {pw} ({role.value})" for u, (pw, role) in DEMO_ACCOUNTS.items()
                    )
                    print(f"dfr demo: sign in at {url} as {logins}", flush=True)
                    # the replayed feed is a part of the service's supervisor: restarted if it dies
                    supervisor: Supervisor = svc.app.state.supervisor
                    supervisor.spawn(
                        "demo-feed",
                        functools.partial(
                            run_feed, url, area.operating_area, every_s=args.every, token=feed_token
                        ),
                    )
                    try:
                        await stop.wait()
                    finally:
                        await supervisor.stop_part("demo-feed")
    print(json.dumps({"event": "demo-stopped"}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dfr", description="Drone-as-First-Responder mission controller")
    sub = parser.add_subparsers(dest="command", required=True)

    from sim import runner as sim_runner

    p_sim = sub.add_parser("sim", help="run the built-in PX4-compatible simulated fleet")
    sim_runner.add_arguments(p_sim)

    p_serve = sub.add_parser("serve", help="run the dfr service (API, MQTT ingest, fleet, dispatcher)")
    _service_args(p_serve)

    p_demo = sub.add_parser("demo", help="simulated drones + the service + a replayed incident feed")
    _service_args(p_demo)
    p_demo.add_argument("--speed", type=float, default=1.0, help="simulated-time speed-up")
    p_demo.add_argument("--every", type=float, default=60.0, help="seconds between replayed alerts")
    p_demo.add_argument("--drones", type=int, help=argparse.SUPPRESS)  # accepted for `make demo DRONES=`

    from dfr.auth import cli as user_cli

    p_user = sub.add_parser("user", help="manage accounts: add, passwd, disable, enable, list")
    user_cli.add_arguments(p_user)
    from dfr.store import audit_cli

    audit_cli.add_arguments(sub.add_parser("audit", help="check the audit log's hash chain"))
    from dfr.sitl import cli as sitl_cli  # scenarios for testers

    sitl_cli.add_arguments(sub.add_parser("sitl", help="run SITL scenarios: dfr sitl run <files or dirs>"))

    from dfr import coverage_cli

    coverage_cli.add_arguments(
        sub.add_parser("coverage", help="share of past calls reachable within N s from the docks; new sites")
    )

    from dfr.sitl import replay

    replay.add_arguments(
        sub.add_parser("replay", help="replay past calls into the real service with the built-in simulator")
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command in ("user", "audit"):
            from dfr.settings import Settings

            tool = user_cli if args.command == "user" else audit_cli
            return tool.main(args, args.database_url or Settings().database_url)
        if args.command == "sitl":
            logging.getLogger().setLevel(logging.WARNING)  # the verdict table, not the service's log
            return sitl_cli.main(args)
        if args.command == "coverage":
            return coverage_cli.main(args)
        if args.command == "replay":
            logging.getLogger().setLevel(logging.WARNING)  # the day's figures, not the service's log
            return replay.main(args)
        if args.command == "sim":
            asyncio.run(sim_runner.serve(args))
        elif args.command == "serve":
            from dfr.service import serve

            asyncio.run(serve(_settings(args)))  # type: ignore[arg-type]
        elif args.command == "demo":
            from dfr.area import load_area

            Path("var").mkdir(exist_ok=True)
            asyncio.run(_demo(args, load_area(Path(args.area or DEMO_AREA))))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `dfr` command: one entry point for the service, the simulator and the tools around them."""

from __future__ import annotations

import argparse
import asyncio
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dfr", description="Drone-as-First-Responder mission controller")
    sub = parser.add_subparsers(dest="command", required=True)

    from sim import runner as sim_runner

    p_sim = sub.add_parser("sim", help="run the built-in PX4-compatible simulated fleet")
    sim_runner.add_arguments(p_sim)

    p_demo = sub.add_parser("demo", help="run the simulated fleet for a first look (service: next release)")
    sim_runner.add_arguments(p_demo)

    args = parser.parse_args(argv)
    if args.command in ("sim", "demo"):
        try:
            asyncio.run(sim_runner.serve(args))
        except KeyboardInterrupt:
            pass
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

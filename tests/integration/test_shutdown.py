"""Stopping dfr: SIGTERM and SIGINT shut down in order and exit 0; no signal, SIGKILL included, leaves
a child process behind (issue 12).

`dfr demo` runs as a real process on free ports in a temporary directory; its children are read from
``/proc`` while it runs and must all be gone once it has been stopped or killed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from sim.harness import SimProcess, free_udp_base_port
from tests.support.api import AREA, POLICY
from tests.support.processes import alive, descendants, dfr_demo, free_tcp_port, reap, udp_sockets
from tests.support.wait import until_sync

SCENARIOS = Path(__file__).resolve().parents[2] / "missions" / "scenarios"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def demo_args(tmp_path: Path) -> list[str]:
    return [
        "--area",
        str(AREA),
        "--policy",
        str(POLICY),
        "--port",
        str(free_tcp_port()),
        "--mavlink-base-port",
        str(free_udp_base_port(4)),
        "--database-url",
        f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite'}",
        "--speed",
        "10",
        "--every",
        "3600",
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
async def test_demo_leaves_no_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    env = {"DFR_VIDEO_EVIDENCE_DIR": str(tmp_path / "evidence")}
    children: list[int] = []
    try:
        async with dfr_demo(tmp_path, demo_args(tmp_path), env) as (proc, _ready):
            children = descendants(proc.pid)
            assert children, "dfr demo should run its simulator as a child process"
            proc.send_signal(sig)
            code = await asyncio.wait_for(proc.wait(), 60)
        if sig is not signal.SIGKILL:
            assert code == 0, f"dfr demo exited with {code} after {sig.name}"
        await until_sync(lambda: not any(alive(p) for p in children), 15, "the children of dfr demo to end")
    finally:
        reap(children)


_PARENT = """
import asyncio, sys
from dfr.children import die_with_parent

async def main():
    child = await asyncio.create_subprocess_exec("sleep", "120", preexec_fn=die_with_parent())
    print(child.pid, flush=True)
    await child.wait()

asyncio.run(main())
"""


async def test_a_child_started_to_die_with_its_parent_dies_on_sigkill() -> None:
    """The mechanism the simulator and the PX4 instances are started with (`dfr.children`)."""
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PARENT, stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    child = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    try:
        assert alive(child)
        parent.kill()
        await parent.wait()
        await until_sync(lambda: not alive(child), 10, "the child of a SIGKILLed parent to end")
    finally:
        reap([child])


async def test_dfr_sim_exits_0_on_sigterm() -> None:
    async with SimProcess(drones=1, speed=1) as sim:
        assert await sim.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
async def test_scenario_runner_leaves_no_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    """`dfr sitl run` starts the simulator (and, on the px4 backend, PX4 instances) the same way."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dfr.cli",
        "sitl",
        "run",
        str(SCENARIOS / "single-gunshot.yaml"),
        "--report",
        str(tmp_path / "report"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    children: list[int] = []
    try:
        # Under way: the service (in the runner) listens for MAVLink, which it starts after the simulator
        # reported ready; the simulator's output pipes are then quiet, so only PDEATHSIG can end it.
        await until_sync(
            lambda: bool(descendants(proc.pid)) and udp_sockets(proc.pid) > 0, 60, "the scenario under way"
        )
        children = descendants(proc.pid)
        proc.send_signal(sig)
        await asyncio.wait_for(proc.wait(), 60)
        await until_sync(lambda: not any(alive(p) for p in children), 5, "the runner's children to end")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reap(children)

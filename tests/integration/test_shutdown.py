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

from sim.harness import free_udp_base_port
from tests.integration.test_service_e2e import AREA, POLICY
from tests.support.processes import alive, descendants, dfr_demo, free_tcp_port, reap
from tests.support.wait import until_sync

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

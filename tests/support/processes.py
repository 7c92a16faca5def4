"""Processes in tests: free ports, `dfr serve` / `dfr demo` as real child processes, the process table.

Children are read from ``/proc`` (Linux), so a test can name every process a command started and check
that none outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.wait import until

__all__ = [
    "alive",
    "descendants",
    "dfr_demo",
    "dfr_serve",
    "free_tcp_port",
    "reap",
    "stop_process",
    "udp_sockets",
]

REPO = Path(__file__).resolve().parents[2]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    return out


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren, ...), as the kernel lists them now."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that may never come, in a container, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def udp_sockets(pid: int) -> int:
    """How many UDP sockets (IPv4 and IPv6) process `pid` holds open."""
    inodes: set[str] = set()
    for table in ("udp", "udp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as f:
            inodes |= {line.split()[9] for line in f.readlines()[1:] if len(line.split()) > 9}
    held = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    held += 1
    return held


def reap(pids: list[int]) -> None:
    """Kill what a failed test left behind, so that one failure does not leak into the next tests."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _appending(path: Path) -> Iterator[int]:
    """A descriptor for a child's output; closed here once the child holds its own copy."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        yield fd
    finally:
        os.close(fd)


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 30) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


async def _healthy(proc: asyncio.subprocess.Process, port: int, timeout: float = 60) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:

        async def up() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"process exited with {proc.returncode} before it served")
            with contextlib.suppress(httpx.HTTPError):
                return (await c.get("/api/v1/healthz")).status_code == 200
            return False

        await until(up, timeout, f"/api/v1/healthz on port {port}", every=0.1)


@contextlib.asynccontextmanager
async def dfr_serve(
    env: dict[str, str], port: int, *, stderr: Path | None = None, cwd: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`dfr serve` as its own process; yields once /healthz answers. Left running if the test kills it."""
    with _appending(stderr or Path(os.devnull)) as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dfr.cli",
            "serve",
            "--port",
            str(port),
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
    try:
        await _healthy(proc, port)
        yield proc
    finally:
        await stop_process(proc)


@contextlib.asynccontextmanager
async def dfr_demo(
    workdir: Path, args: list[str], env: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    """`dfr demo` as its own process in `workdir`; yields it and its ``demo-ready`` line."""
    with _appending(workdir / "demo.log") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dfr.cli",
            "demo",
            *args,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            cwd=workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(90):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError(f"dfr demo exited ({await proc.wait()}) before it was ready")
                with contextlib.suppress(ValueError):
                    ready = json.loads(line)
                    if isinstance(ready, dict) and ready.get("event") == "demo-ready":
                        break
        yield proc, ready
    finally:
        await stop_process(proc)

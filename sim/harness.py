"""Start and stop a simulator process from Python (tests, scenario runner, `dfr demo`).

The simulator runs as a separate OS process, exactly as `dfr sim` would, so that clients exercise
real UDP MAVLink. `SimProcess` waits for the simulator's ready line instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from dfr.children import die_with_parent
from sim.control import SimControl


def free_udp_base_port(count: int, start: int = 20000, end: int = 60000) -> int:
    """A base port with `count` consecutive UDP ports free on loopback (best effort, race-tolerant)."""
    import random

    rng = random.Random(os.getpid() ^ id(object()))
    for _ in range(200):
        base = rng.randrange(start, end - count)
        socks: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range found")


class SimProcess:
    """`async with SimProcess(drones=3, speed=10) as sim:` runs `python -m sim.runner` until exit."""

    def __init__(
        self,
        *,
        drones: int = 1,
        speed: float = 1.0,
        seed: int = 0,
        area: str | Path | None = None,
        home: tuple[float, float, float] = (32.6401, -117.0842, 150.0),
        base_port: int | None = None,
        params: dict[str, float] | None = None,
        wind: tuple[float, float] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.drones = drones
        self.base_port = base_port if base_port is not None else free_udp_base_port(drones)
        args = [
            "-m",
            "sim.runner",
            "--drones",
            str(drones),
            "--speed",
            str(speed),
            "--seed",
            str(seed),
            "--base-port",
            str(self.base_port),
        ]
        if area is not None:
            args += ["--area", str(area)]
        else:
            args += ["--home", ",".join(str(x) for x in home)]
        for name, value in (params or {}).items():
            args += ["--param", f"{name}={value}"]
        if wind is not None:
            args.append(f"--wind={wind[0]},{wind[1]}")  # one token: a negative value is not an option
        self.args = args
        self.startup_timeout = startup_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        self.control: SimControl | None = None
        self._stderr_task: asyncio.Task[bytes] | None = None

    @property
    def ports(self) -> list[int]:
        return [d["port"] for d in self.ready["drones"]]

    def connection_urls(self) -> list[str]:
        """MAVSDK connection URLs, one per vehicle (MAVSDK listens where PX4 SITL would send)."""
        return [f"udpin://127.0.0.1:{p}" for p in self.ports]

    async def __aenter__(self) -> SimProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(),  # no simulator outlives whoever started it, even on SIGKILL
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._stderr_task = asyncio.create_task(self.proc.stderr.read(), name="sim-stderr")
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), self.startup_timeout)
        except TimeoutError:
            await self.stop()
            raise RuntimeError("simulator did not report ready in time") from None
        if not line:
            err = await self._stderr_task
            raise RuntimeError(f"simulator exited: {err.decode(errors='replace')[-2000:]}")
        self.ready = json.loads(line)
        self.control = SimControl("127.0.0.1", self.ready["control_port"])
        return self

    async def stop(self) -> int | None:
        if self.control is not None:
            await self.control.close()
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        return self.proc.returncode

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        if self._stderr_task is not None:
            self._stderr_task.cancel()

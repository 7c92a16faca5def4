"""The PX4 SITL backend: real PX4 autopilots with their built-in SIH physics (no Gazebo).

Either the runner starts one ``px4`` process per scenario drone from a built PX4 tree (`PX4_SITL_BIN`,
i.e. ``build/px4_sitl_default/bin/px4``), or it attaches to instances someone started (``--attach``).

Started instances follow PX4's own multi-vehicle convention (``Tools/simulation/sitl_multiple_run.sh``):
instance *i* runs ``bin/px4 -i i -d <build>/etc`` in its own working directory (parameters and logs of
one instance must not clobber another's), is MAVLink system id *i + 1*, and sends its offboard link to
UDP ``14540 + i``, where the service's MAVSDK listens. The environment chooses the airframe and the
home: ``PX4_SIM_MODEL=sihsim_quadx`` (airframe 10040, SIH quadrotor X), ``PX4_HOME_LAT/LON/ALT`` from the
drone's dock, and ``PX4_SIM_SPEED_FACTOR`` the scenario's speed (SIH runs in lockstep, so a fast machine
keeps up; PX4's start script also scales its data-link timeout by it).

Attached instances must follow the same convention: the k-th URL given (1-based) is the scenario's k-th
drone, MAVLink system id k (``MAV_SYS_ID``), on consecutive ports, and run at the speed given to the run.

What PX4 cannot do here: fault injection through the simulator's control socket (the scenarios that need
it are skipped on this backend, and say so), and the true vehicle state (the samples come from the
controller's telemetry only). The scenario clock is the wall clock times the speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from dfr.children import die_with_parent
from dfr.sitl.backends import BackendUnsupported, WallClock
from dfr.sitl.scenario import Fault, Scenario

__all__ = ["PX4_BASE_PORT", "Px4Backend", "parse_attach"]

PX4_BASE_PORT = 14540
"""PX4 SITL instance i sends its offboard/API MAVLink link to this port + i (px4-rc.mavlink)."""
SIH_AIRFRAME = "10040"
SIH_MODEL = "sihsim_quadx"


def parse_attach(urls: list[str]) -> int:
    """The base port of `--attach udp://:14540,udp://:14541,...`: ports must be consecutive, as the
    service connects drone i (in the scenario's order) to base + i - 1."""
    ports = []
    for url in urls:
        m = re.fullmatch(r"(?:udp(?:in)?://)?(?:[\w.-]*:)?(\d{1,5})", url.strip())
        if m is None:
            raise ValueError(f"--attach {url!r}: expected udp://:PORT (e.g. udp://:14540)")
        ports.append(int(m.group(1)))
    if not ports:
        raise ValueError("--attach: no instance given")
    if ports != list(range(ports[0], ports[0] + len(ports))):
        raise ValueError(f"--attach ports must be consecutive, one per drone in order, got {ports}")
    return ports[0]


class Px4Backend:
    name = "px4"

    def __init__(
        self,
        scenario: Scenario,
        speed: float,
        workdir: Path,
        *,
        binary: str | None = None,
        attach: list[str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.speed = speed
        self.workdir = workdir
        self.binary = binary
        self.attach = attach
        self.base_port = parse_attach(attach) if attach else PX4_BASE_PORT
        if attach and len(attach) < len(scenario.drone_ids):
            flies = len(scenario.drone_ids)
            raise ValueError(f"scenario {scenario.name} flies {flies} drones, only {len(attach)} attached")
        if not attach and not binary:
            raise ValueError("the px4 backend needs PX4_SITL_BIN (the built bin/px4) or --attach")
        self.procs: list[asyncio.subprocess.Process] = []
        self._logs: list[IO[bytes]] = []
        self._clock = WallClock(speed)

    def command(self, instance: int) -> tuple[list[str], dict[str, str], Path]:
        """Arguments, environment and working directory of instance `instance` (0-based)."""
        assert self.binary is not None
        binary = Path(self.binary).resolve()
        drone = self.scenario.area.drone(self.scenario.drone_ids[instance])
        dock = self.scenario.area.dock(drone.dock)
        etc = binary.parent.parent / "etc"
        args = [str(binary), "-i", str(instance), "-d"]
        if etc.is_dir():
            args.append(str(etc))
        env = {
            **os.environ,
            "PX4_SIM_MODEL": SIH_MODEL,
            "PX4_SYS_AUTOSTART": SIH_AIRFRAME,
            "PX4_HOME_LAT": f"{dock.lat:.7f}",
            "PX4_HOME_LON": f"{dock.lon:.7f}",
            "PX4_HOME_ALT": f"{dock.alt_amsl_m:.1f}",
            "PX4_SIM_SPEED_FACTOR": f"{self.speed:g}",
        }
        return args, env, self.workdir / f"px4-instance-{instance}"

    async def __aenter__(self) -> Px4Backend:
        self._clock = WallClock(self.speed)
        if self.attach:
            return self
        try:
            for i in range(len(self.scenario.drone_ids)):
                args, env, cwd = self.command(i)
                cwd.mkdir(parents=True, exist_ok=True)
                log = await asyncio.to_thread(open, cwd / "px4.log", "wb")  # closed in stop()
                self._logs.append(log)
                proc = await asyncio.create_subprocess_exec(
                    *args,
                    cwd=cwd,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=die_with_parent(),  # no autopilot left flying if the runner is killed
                )
                self.procs.append(proc)
            await asyncio.sleep(0)  # let a binary that cannot start exit before the service waits on it
            for i, proc in enumerate(self.procs):
                if proc.returncode is not None:
                    raise RuntimeError(
                        f"px4 instance {i} exited at once ({proc.returncode}): {self.log_tail(i)}"
                    )
        except BaseException:
            await self.stop()
            raise
        self._clock = WallClock(self.speed)
        return self

    def log_tail(self, instance: int, chars: int = 1500) -> str:
        path = self.workdir / f"px4-instance-{instance}" / "px4.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")[-chars:]
        return "(no log)"

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)  # px4 shuts its modules down on SIGINT
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def sim_time(self) -> float:
        return self._clock.now()

    async def fault(self, sysid: int | None, fault: Fault) -> None:
        raise BackendUnsupported(
            f"the px4 backend cannot inject a {fault.type} fault (the builtin simulator's control socket "
            "does that); on PX4 use its failure injection (SYS_FAILURE_EN, the `failure` command)"
        )

    async def truth(self) -> list[dict[str, Any]] | None:
        return None

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

Faults on started instances: the service reaches instance *i* through a UDP relay (`dfr.sitl.relay`)
that listens on ``14540 + i`` in the service's place, so a link fault cuts and restores both directions
there; GPS loss is SIH's own GPS losing its fix (``SIM_GPS_USED`` below 4 satellites); a battery fault
sets the simulated battery (``SIM_BAT_MIN_PCT`` = the level, ``SIM_BAT_DRAIN`` 1 s, so it falls there at
once). Parameters are set through PX4's own shell client (``bin/px4-param --instance i``), not over
MAVLink, so the controller's link is untouched. What PX4 SIH (v1.16) cannot express is refused with the
reason: wind (SIH has no wind model) and a motor failure (failure injection only alters reported ESC
status, which SIH does not simulate). Attached instances take no faults (their links and shells are not
ours). The true vehicle state is not known (the samples come from the controller's telemetry only). The
scenario clock is the wall clock times the speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from dfr.children import die_with_parent
from dfr.sitl.backends import BackendUnsupported, WallClock
from dfr.sitl.relay import UdpRelay
from dfr.sitl.scenario import Fault, Scenario
from sim.harness import free_udp_base_port

__all__ = ["PX4_BASE_PORT", "Px4Backend", "parse_attach", "px4_cannot_run"]

PX4_BASE_PORT = 14540
"""PX4 SITL instance i sends its offboard/API MAVLink link to this port + i (px4-rc.mavlink)."""
SIH_AIRFRAME = "10040"
SIH_MODEL = "sihsim_quadx"
NO_WIND = "PX4 SIH (v1.16) has no wind model: a scenario with wind needs the builtin simulator"
NO_MOTOR_FAILURE = (
    "PX4 SIH (v1.16) cannot fail a motor: its failure injection only alters reported ESC status, "
    "which SIH does not simulate"
)
GPS_SATELLITES_OK = 10
"""SIM_GPS_USED when the GPS works (SIH's default); below 4 its simulated GPS reports no fix."""


def px4_cannot_run(scenario: Scenario, attached: bool) -> str | None:
    """Why PX4 SIH cannot play this scenario as written, or None."""
    spec = scenario.spec
    if spec.wind is not None and (spec.wind.north_m_s or spec.wind.east_m_s):
        # A wind over the policy's limit grounds every drone: then no vehicle flies in it, and PX4 can
        # play the scenario (the dispatcher reads the wind from the area file, not from the vehicle).
        if math.hypot(spec.wind.north_m_s, spec.wind.east_m_s) <= scenario.policy.max_wind_m_s:
            return NO_WIND
    for step in spec.timeline:
        fault = step.fault
        if fault is None:
            continue
        if attached:
            return (
                "faults need instances this run starts (PX4_SITL_BIN): attached links and shells are not ours"
            )
        if fault.type == "wind":
            return NO_WIND
        if fault.type == "motor_failure":
            return NO_MOTOR_FAILURE
    if any(d.battery_pct < 100.0 for d in spec.drones or []):
        return "a start with a partly charged battery needs the builtin simulator (PX4 SIH starts full)"
    return None


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
        self.relays: list[UdpRelay] = []
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
            # The service listens behind a relay (see the module's docstring), on free ports.
            self.base_port = free_udp_base_port(len(self.procs))
            for i in range(len(self.procs)):
                relay = UdpRelay(PX4_BASE_PORT + i, self.base_port + i)
                await relay.start()
                self.relays.append(relay)
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
        for relay in self.relays:
            relay.close()
        self.relays.clear()
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
        reason = px4_cannot_run(self.scenario, bool(self.attach))
        if reason is not None or sysid is None or not 1 <= sysid <= len(self.relays):
            raise BackendUnsupported(reason or f"no started px4 instance for drone {sysid}")
        instance = sysid - 1
        if fault.type == "link":
            self.relays[instance].up = bool(fault.up)
        elif fault.type == "gps":
            await self.set_param(instance, "SIM_GPS_USED", 0 if fault.lost else GPS_SATELLITES_OK)
        elif fault.type == "battery":
            assert fault.pct is not None
            await self.set_param(instance, "SIM_BAT_MIN_PCT", fault.pct)
            await self.set_param(instance, "SIM_BAT_DRAIN", 1)
        else:
            raise BackendUnsupported(NO_MOTOR_FAILURE if fault.type == "motor_failure" else NO_WIND)

    async def set_param(self, instance: int, name: str, value: float) -> None:
        """Set a parameter through PX4's shell client of that instance (not over the MAVLink link)."""
        assert self.binary is not None
        client = Path(os.path.abspath(self.binary)).parent / "px4-param"  # noqa: ASYNC240 (no I/O)
        proc = await asyncio.create_subprocess_exec(
            str(client),
            "--instance",
            str(instance),
            "set",
            name,
            f"{value:g}",
            cwd=self.workdir / f"px4-instance-{instance}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            text = out.decode(errors="replace")[-300:]
            raise BackendUnsupported(f"px4 instance {instance}: param set {name} failed: {text}")

    async def truth(self) -> list[dict[str, Any]] | None:
        return None

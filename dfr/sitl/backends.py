"""Where the vehicles come from: the built-in simulator process, or real PX4 SITL (see `dfr.sitl.px4`).

A backend starts (or attaches to) one vehicle per scenario drone, vehicle *i* sending MAVLink to
``base_port + i - 1`` as PX4 SITL does, so that the service's fleet connects to both the same way. It also
tells the scenario clock (simulated seconds) and, where it can, injects faults and reports the vehicles'
true state (the simulator's own position and height, independent of what the controller believes).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import yaml

from dfr.airframe import pin_airframes
from dfr.sitl.scenario import Fault, Scenario
from sim.harness import SimProcess

__all__ = ["Backend", "BackendUnsupported", "BuiltinBackend", "derive_area", "write_policy"]


class BackendUnsupported(RuntimeError):
    """The backend cannot do what the scenario asks (e.g. fault injection on real PX4)."""


class Backend(Protocol):
    name: str
    base_port: int
    speed: float

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def sim_time(self) -> float:
        """Simulated seconds since the vehicles started."""
        ...

    async def fault(self, sysid: int | None, fault: Fault) -> None:
        """Inject a fault; raises `BackendUnsupported` where the backend cannot."""
        ...

    async def truth(self) -> list[dict[str, Any]] | None:
        """Each vehicle's true state (sysid, lat, lon, height, armed, battery), or None where unknown."""
        ...


class BuiltinBackend:
    """The built-in PX4-compatible simulator (`sim.harness.SimProcess`) with the scenario's drones."""

    name = "builtin"

    def __init__(self, scenario: Scenario, area_path: Path, speed: float) -> None:
        spec = scenario.spec
        self.speed = speed
        self.scenario = scenario
        self.sim = SimProcess(
            area=area_path,
            drones=len(scenario.drone_ids),
            speed=speed,
            seed=spec.seed,
            params=dict(spec.sim_params),
        )  # the wind is in the derived area file, which the simulator reads as the service does
        self.base_port = self.sim.base_port

    async def __aenter__(self) -> BuiltinBackend:
        await self.sim.__aenter__()
        try:
            for sysid, setup in enumerate(self.scenario.spec.drones or [], start=1):
                if setup.battery_pct < 100.0:
                    await self._control().request(op="battery", drone=sysid, pct=setup.battery_pct)
        except BaseException:
            await self.sim.stop()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.sim.__aexit__(et, ev, tb)

    def _control(self) -> Any:
        if self.sim.control is None:
            raise RuntimeError("the simulator is not running")
        return self.sim.control

    async def sim_time(self) -> float:
        status = await self._control().status()
        return float(status["sim_time"])

    async def fault(self, sysid: int | None, fault: Fault) -> None:
        ctl = self._control()
        if fault.type == "link":
            await ctl.request(op="link", drone=sysid, up=fault.up)
        elif fault.type == "gps":
            await ctl.request(op="gps", drone=sysid, lost=fault.lost)
        elif fault.type == "battery":
            await ctl.request(op="battery", drone=sysid, pct=fault.pct)
        elif fault.type == "motor_failure":
            await ctl.request(op="motor_failure", drone=sysid)
        else:
            req: dict[str, Any] = {"op": "wind", "north": fault.north_m_s, "east": fault.east_m_s}
            if sysid is not None:
                req["drone"] = sysid
            await ctl.request(**req)

    async def truth(self) -> list[dict[str, Any]] | None:
        status = await self._control().status()
        return [
            {
                "sysid": d["sysid"],
                "lat": d["lat"],
                "lon": d["lon"],
                "alt": d["height"],
                "armed": d["armed"],
                "mode": d["mode"],
                "battery": d["battery_pct"],
            }
            for d in status["drones"]
        ]


class WallClock:
    """Simulated time for backends without a clock of their own: wall time since start times speed."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self.t0) * self.speed


def derive_area(scenario: Scenario, workdir: Path) -> Path:
    """An area file for this run: the scenario's drones only (in its order, with its parameters) and its
    wind, so that the simulator, the service and the dispatcher's wind check all see the same fleet.

    Written next to a copy of the area's GeoJSON, because an area may only refer to a file in its own
    directory.
    """
    src = scenario.area_path
    data: dict[str, Any] = yaml.safe_load(src.read_text(encoding="utf-8"))
    geojson = src.parent / str(data["geojson"])
    shutil.copyfile(geojson, workdir / geojson.name)
    data["geojson"] = geojson.name
    spec = scenario.spec
    if spec.drones is not None:
        by_id = {d["id"]: d for d in data.get("drones", [])}
        drones = []
        for setup in spec.drones:
            d = dict(by_id[setup.id])
            if setup.params:
                d["params"] = {**(d.get("params") or {}), **setup.params}
            drones.append(d)
        data["drones"] = drones
    pin_airframes(data.get("drones", []), src.parent)  # profiles are next to the original, not the copy
    if spec.wind is not None:
        data["wind"] = {"north_m_s": spec.wind.north_m_s, "east_m_s": spec.wind.east_m_s}
    out = workdir / f"{src.stem}.sitl.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


def write_policy(scenario: Scenario, workdir: Path) -> Path:
    """The scenario's policy (the file with its overrides applied) as a file the service loads."""
    out = workdir / f"{scenario.policy_path.stem}.yaml"
    out.write_text(yaml.safe_dump(scenario.policy.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return out

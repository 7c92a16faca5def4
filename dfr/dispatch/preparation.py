"""Drones prepared on their docks, so that a launch waits for nothing that could be done earlier.

Every parameter a launch depends on (speeds, the airframe profile's and the drone's own PX4 parameters,
the take-off altitude) is set and read back while the drone sits idle on its dock. PX4 acknowledges a
PARAM_SET before its modules apply it (a take-off straight after one used PX4's 2.5 m default on real
PX4 SITL), and each set-and-confirm costs round trips: both are off the launch path once prepared. A
drone whose parameters are not confirmed is not chosen; the reason shows with the drone.

At launch the flight procedure only sets what is still unconfirmed (normally nothing) and re-reads the
prepared values in parallel with the take-off, cheaply, in case another ground station changed them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from dfr.fleet.drone import CommandRefused
from dfr.fleet.fleet import Fleet

log = logging.getLogger(__name__)

PREPARATION_PART = "drone-preparation"
RECHECK_PERIOD_S = 5.0
"""Wall seconds between passes when nothing asks for one: a drone that reconnected (its confirmed values
cleared) or a parameter change is picked up within this time even without an event."""


def launch_params(
    response_speed_m_s: float, drone_params: dict[str, float], altitude_m: float
) -> dict[str, float]:
    """The PX4 parameters a sortie needs before arming, in one place for preparation and launch.

    The drone's own (airframe profile's) speed limits win over the defaults derived from its speed.
    """
    speed_defaults = {"MPC_XY_VEL_MAX": max(response_speed_m_s, 12.0), "MPC_XY_CRUISE": response_speed_m_s}
    return {**speed_defaults, **drone_params, "MIS_TAKEOFF_ALT": altitude_m}


class Preparation:
    """Keeps idle drones prepared: the supervised part ``drone-preparation``.

    Owns nothing but the last failure per drone; what is confirmed is the drone's own record
    (`Drone.confirmed`), which its link clears when it drops. `wanted(drone_id)` gives the parameters a
    drone should hold (None: not one of ours), `idle(drone_id)` whether it may be touched now (docked,
    disarmed, no sortie, no pilot). `on_ready(drone_id)` is called when a drone becomes ready.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        wanted: Callable[[str], dict[str, float] | None],
        idle: Callable[[str], bool],
        on_ready: Callable[[str], None],
        time_scale: float = 1.0,
    ) -> None:
        self.fleet = fleet
        self._wanted = wanted
        self._idle = idle
        self._on_ready = on_ready
        self.time_scale = time_scale
        self._failed: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._passed = asyncio.Condition()  # notified after every pass over the fleet

    def wake(self) -> None:
        """Ask for a pass now (a drone connected, landed or was freed)."""
        self._wake.set()

    def not_ready(self, drone_id: str) -> str | None:
        """Why a connected drone cannot launch without delay, or None when it is prepared."""
        drone = self.fleet.drones.get(drone_id)
        want = self._wanted(drone_id)
        if drone is None or want is None:
            return None  # not connected: selection says so itself
        if not drone.unconfirmed(want):
            return None
        failed = self._failed.get(drone_id)
        if failed is not None:
            return f"not prepared: {failed}"
        return "being prepared (launch parameters not yet confirmed by the autopilot)"

    async def wait_prepared(self, drone_id: str, timeout: float) -> None:
        """Until `drone_id` is prepared (or not idle); TimeoutError after `timeout` wall seconds."""
        async with asyncio.timeout(timeout), self._passed:
            while drone_id not in self.fleet.drones or (
                self._idle(drone_id) and self.not_ready(drone_id) is not None
            ):
                self.wake()
                await self._passed.wait()

    async def run(self) -> None:
        """Prepare every idle drone that needs it, then wait for a reason to look again."""
        while True:
            self._wake.clear()
            for drone_id in list(self.fleet.drones):
                await self._prepare(drone_id)
            async with self._passed:
                self._passed.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RECHECK_PERIOD_S)

    async def _prepare(self, drone_id: str) -> None:
        drone = self.fleet.drones.get(drone_id)
        want = self._wanted(drone_id)
        if drone is None or want is None or not drone.state.connected or not self._idle(drone_id):
            return
        missing = drone.unconfirmed(want)
        if not missing:
            return
        try:
            await drone.set_params(missing, time_scale=self.time_scale)
        except CommandRefused as e:
            if self._failed.get(drone_id) != str(e):
                log.warning("drone %s: not prepared: %s", drone_id, e)
            self._failed[drone_id] = str(e)
            return
        self._failed.pop(drone_id, None)
        log.info(
            "drone %s prepared on its dock: %s", drone_id, ", ".join(f"{k}={v:g}" for k, v in missing.items())
        )
        self._on_ready(drone_id)

"""What is done with a drone whose sortie ended without landing it: it is never left as it is.

A sortie can end early for many reasons (the autopilot refused a command, a wait timed out, the
database refused a write, a bug). Whatever the reason, the drone must end up safe:

- in the air and no pilot holds it: return to launch; if the autopilot refuses RTL, land where it is;
- in the air and a pilot holds it: the pilot keeps it (a human can always take over, and a pilot's
  drone is not taken back);
- armed on the ground: disarm (an armed drone on a dock is a hazard to whoever services it);
- on the ground and disarmed, or not connected: nothing can or need be done (the autopilot's own
  link-loss failsafe covers a drone that cannot be reached).

`make_safe` returns what was done, as a phrase for the mission record.
"""

from __future__ import annotations

import logging
from enum import Enum

from dfr.fleet.drone import Drone

log = logging.getLogger(__name__)


class SafeAction(Enum):
    """What `make_safe` did with the drone."""

    NONE = "nothing needed (on the ground, disarmed)"
    PILOT_KEEPS = "the pilot in control keeps the drone"
    RETURNED = "the drone was sent home (return to launch)"
    LANDED = "return to launch was refused; the drone was told to land where it is"
    DISARMED = "the drone was armed on the ground and was disarmed"
    UNREACHABLE = "the drone is not connected; its autopilot's link-loss failsafe applies"
    FAILED = "every command to make the drone safe was refused; its autopilot's failsafes apply"


async def make_safe(drone: Drone | None, *, pilot_holds: bool) -> tuple[SafeAction, str]:
    """Bring a drone whose sortie has ended to a safe state; returns the action and details."""
    if drone is None or not drone.state.connected:
        return SafeAction.UNREACHABLE, ""
    state = drone.state
    if state.in_air:
        if pilot_holds:
            return SafeAction.PILOT_KEEPS, ""
        try:
            await drone.return_to_launch()
            return SafeAction.RETURNED, ""
        except Exception as e:  # refused or no answer: land where it is instead
            log.warning("drone %s: return to launch refused (%s); landing", drone.id, e)
            rtl_error = str(e)
        try:
            await drone.land()
            return SafeAction.LANDED, rtl_error
        except Exception as e:
            log.error("drone %s: land refused too (%s); the autopilot's failsafes apply", drone.id, e)
            return SafeAction.FAILED, f"{rtl_error}; {e}"
    if state.armed:
        try:
            await drone.disarm()
            return SafeAction.DISARMED, ""
        except Exception as e:
            log.error("drone %s: disarm refused (%s)", drone.id, e)
            return SafeAction.FAILED, str(e)
    return SafeAction.NONE, ""

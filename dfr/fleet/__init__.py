"""The fleet: drones reached over MAVLink through one MAVSDK v4 instance."""

from dfr.fleet.drone import CommandRefused, Drone, DroneState
from dfr.fleet.fleet import Fleet, FleetError

__all__ = ["CommandRefused", "Drone", "DroneState", "Fleet", "FleetError"]

"""The parts of the simulated PX4 flight model; `sim.vehicle.Vehicle` is the navigator tying them together.

Each module holds one concern, so that it can be read and tested on its own: `plans` (what PX4 accepts in
a mission or fence upload), `states` (the navigator's enums), `motion` (trajectory, controllers and
airframe), `battery`, `fence`, `failsafe`, `mission` (plan, progress, waypoint geometry), `orbit` and
`profiles` (take-off and landing speed schedules). None of them does I/O or reads the clock.
"""

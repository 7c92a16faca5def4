"""Pure helpers of the simulated PX4 flight model (`sim.vehicle`): mission and geofence plans, geometry.

Kept apart from `sim.vehicle` so that validation rules (what PX4 accepts on upload) can be read and tested
on their own; nothing here holds vehicle state or does I/O.
"""

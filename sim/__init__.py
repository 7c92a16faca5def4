"""sim: a PX4-compatible MAVLink multicopter simulator for dfr tests and demos."""

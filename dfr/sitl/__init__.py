"""SITL scenarios for test engineers: `dfr sitl run` (see `dfr.sitl.scenario` for the file format,
`dfr.sitl.runner` for how a run goes, `dfr.sitl.expectations` for the checks, `dfr.sitl.report` for the
JSON + PNG reports, `dfr.sitl.px4` for the real PX4 SITL backend)."""

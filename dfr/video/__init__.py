"""Live video from the drones to the RTCC over WebRTC (WHEP), and evidence recording.

`sources` makes one video track per drone (the simulated camera, or a real camera by URL), `overlay`
burns telemetry and a machine-readable capture time into each frame, `hub` fans one source per drone
out to any number of WebRTC viewers (encoded once, `encoding`), `watch` follows each drone's mission
from the live bus, `recording` writes each mission's video to an evidence file whose SHA-256 goes into
the audit log, and `service` bundles them for `dfr serve`. The HTTP side is `dfr.api.video_routes`.
"""

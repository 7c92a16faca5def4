"""MAVLink front end of one simulated vehicle: what PX4's onboard MAVLink instance does on the wire.

One UDP socket per vehicle (PX4 SITL's convention: instance i sends to 127.0.0.1:14540+i), MAVLink 2
only, one message per datagram. It answers whoever talks to it, decodes commands and the mission,
fence and parameter protocols, calls the flight model (`sim.vehicle.Vehicle`) and streams the telemetry
a ground station needs at PX4's rates. The facts it follows are in the reference captures'
protocol.md (rates, HEARTBEAT/mode encoding, ACKs, handshakes).

Stream rates are PX4's per simulated second; faster than real time they speed up with the clock but
are capped at 50 Hz of wall time, so a ground station's load stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sim.mavlink_codec import decode_param_value, encode_param_value, mavlink
from sim.params import ParamError
from sim.types import STANDARD_MODE, MavResult, MissionItem, MissionType, Mode
from sim.vehicle import Vehicle

log = logging.getLogger(__name__)

M = mavlink
AUTOPILOT_CAPABILITIES = 0xE8FF  # as PX4 v1.16 reports it (protocol.md §1)
SENSORS_PRESENT = 0x0301402F
SENSORS_ENABLED = 0x0302402F
SENSORS_HEALTH = 0x1320FC3F
SENSOR_GPS = 0x20
SENSOR_BATTERY = 0x02000000
SENSOR_PREARM = 0x10000000
SENSOR_MOTORS = 0x8000
FORCE_MAGIC = 21196  # param2 of COMPONENT_ARM_DISARM that forces arm/disarm
INT32_MAX = 2**31 - 1

# Default stream rates in Hz (PX4's onboard link, protocol.md §1). ATTITUDE is capped at the tick rate.
DEFAULT_RATES: dict[int, float] = {
    M.MAVLINK_MSG_ID_HEARTBEAT: 1.0,
    M.MAVLINK_MSG_ID_SYS_STATUS: 5.0,
    M.MAVLINK_MSG_ID_SYSTEM_TIME: 1.0,
    M.MAVLINK_MSG_ID_GPS_RAW_INT: 8.0,
    M.MAVLINK_MSG_ID_ATTITUDE: 50.0,
    M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: 50.0,
    M.MAVLINK_MSG_ID_LOCAL_POSITION_NED: 30.0,
    M.MAVLINK_MSG_ID_VFR_HUD: 10.0,
    M.MAVLINK_MSG_ID_ALTITUDE: 10.0,
    M.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: 5.0,
    M.MAVLINK_MSG_ID_MISSION_CURRENT: 1.0,
    M.MAVLINK_MSG_ID_HOME_POSITION: 0.5,
    M.MAVLINK_MSG_ID_BATTERY_STATUS: 0.5,
    M.MAVLINK_MSG_ID_CURRENT_MODE: 0.5,
}

# Faster than real time, streams speed up with simulated time (as PX4's do under a speed factor) so that a
# mode or arming change shows within a simulated second, but no stream exceeds the 20 ms tick rate.
MAX_WALL_RATE_HZ = 50.0
MAX_ITEMS: dict[int, int] = {MissionType.MISSION: 2000, MissionType.FENCE: 64}
"""Most items an upload may have (PX4 answers a larger MISSION_COUNT with MAV_MISSION_NO_SPACE). The fence's
64 is PX4's DM_KEY_FENCE_POINTS_MAX (v1.16): every polygon vertex and every circle is one item."""
PARAMS_PER_TICK = 60  # PARAM_REQUEST_LIST answers stream at ~3000 values/s, faster than PX4's ~1000/s


@dataclass
class _Stream:
    rate_hz: float
    next_due: float = 0.0


@dataclass
class _Upload:
    """An inbound mission/fence transfer in progress (the vehicle requests items one by one)."""

    mission_type: int
    count: int
    peer: tuple[int, int]
    items: list[MissionItem] = field(default_factory=list)
    last_request: float = 0.0
    retries: int = 0


def _finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))


class VehicleLink(asyncio.DatagramProtocol):
    """The UDP MAVLink endpoint of one vehicle."""

    def __init__(self, vehicle: Vehicle, remote: tuple[str, int], speed: float = 1.0) -> None:
        self.vehicle = vehicle
        self.speed = speed  # stream rates are per simulated second, capped at MAX_WALL_RATE_HZ
        self.remote = remote  # where telemetry goes: PX4's default target until someone talks to us
        self.mav = M.MAVLink(None, srcSystem=vehicle.sysid, srcComponent=1)
        self.mav.robust_parsing = True
        self.parser = M.MAVLink(None, srcSystem=0, srcComponent=0)
        self.parser.robust_parsing = True
        self.transport: asyncio.DatagramTransport | None = None
        self.link_down = False
        self.streams = {mid: _Stream(rate) for mid, rate in DEFAULT_RATES.items()}
        self.uploads: dict[int, _Upload] = {}
        self.param_queue: list[int] = []
        self.statustext_id = 0
        self.held_texts: list[tuple[int, str]] = []
        self.rx_packets = 0
        self.rx_bad = 0
        self.tx_packets = 0
        self.on_message: Callable[[Any], None] | None = None  # test hook: sees every decoded message

    # ------------------------------------------------------------------ transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.link_down:
            return
        try:
            msgs = self.parser.parse_buffer(data) or []
        except Exception:  # garbage on the port must never stop the vehicle
            self.rx_bad += 1
            msgs = []
        finally:
            # One MAVLink message per datagram: a truncated frame must not swallow the next datagram.
            p = self.parser
            p.buf, p.buf_index, p.expected_length, p.have_prefix_error = (
                bytearray(),
                0,
                M.HEADER_LEN_V1 + 2,
                False,
            )
        for msg in msgs:
            if msg.get_type() == "BAD_DATA":
                self.rx_bad += 1
                continue
            self.rx_packets += 1
            self.remote = addr
            try:
                self.handle(msg)
            except Exception:
                log.exception("vehicle %d: error handling %s", self.vehicle.sysid, msg.get_type())

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable while nobody listens
        pass

    def send(self, msg: Any) -> None:
        if self.link_down or self.transport is None:
            return
        try:
            buf = msg.pack(self.mav)
            self.mav.seq = (self.mav.seq + 1) % 256
            self.transport.sendto(buf, self.remote)
            self.tx_packets += 1
        except OSError:
            pass

    # ------------------------------------------------------------------ periodic output
    def tick(self, now: float) -> None:
        """Called by the fleet loop after stepping physics: send due streams and queued items."""
        v = self.vehicle
        for text in v.pop_status_texts():
            self.statustext(int(text.severity), text.text)
        if not v.gcs_lost and self.held_texts:
            held, self.held_texts = self.held_texts, []
            for sev, txt in held:
                self.statustext(sev, txt)
        for seq in v.pop_mission_items_reached():
            self.send(M.MAVLink_mission_item_reached_message(seq))
        for note in v.params.notes:
            self.statustext(M.MAV_SEVERITY_CRITICAL, note + "\t")
        v.params.notes.clear()
        for mid, stream in self.streams.items():
            if stream.rate_hz <= 0 or now < stream.next_due:
                continue
            period = 1.0 / min(stream.rate_hz * self.speed, MAX_WALL_RATE_HZ)
            stream.next_due = max(stream.next_due + period, now) if stream.next_due else now + period
            self.send_message(mid)
        if self.param_queue:
            batch, self.param_queue = self.param_queue[:PARAMS_PER_TICK], self.param_queue[PARAMS_PER_TICK:]
            for idx in batch:
                self.send_param(v.params.by_index(idx).name)
        for upload in list(self.uploads.values()):
            if now - upload.last_request > 0.5:
                if upload.retries >= 5:
                    del self.uploads[upload.mission_type]
                    self.mission_ack(upload.peer, M.MAV_MISSION_OPERATION_CANCELLED, upload.mission_type)
                else:
                    upload.retries += 1
                    self.request_item(upload, now)

    def statustext(self, severity: int, text: str) -> None:
        """STATUSTEXT, split in 50-character chunks like PX4; held back while PX4 thinks the GCS is lost."""
        if self.vehicle.gcs_lost:
            self.held_texts.append((severity, text))
            return
        self.statustext_id = (self.statustext_id % 65535) + 1
        chunks = [text[i : i + 50] for i in range(0, len(text), 50)] or [""]
        for n, chunk in enumerate(chunks):
            self.send(
                M.MAVLink_statustext_message(
                    severity, chunk.encode(), self.statustext_id if len(chunks) > 1 else 0, n
                )
            )

    def send_message(self, mid: int) -> None:
        """Build and send one telemetry message from the vehicle's current state."""
        v = self.vehicle
        tb = v.boot_time_ms
        if mid == M.MAVLINK_MSG_ID_HEARTBEAT:
            base = M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | M.MAV_MODE_FLAG_STABILIZE_ENABLED
            if v.mode is not Mode.ORBIT:
                base |= M.MAV_MODE_FLAG_GUIDED_ENABLED | M.MAV_MODE_FLAG_AUTO_ENABLED
            if v.armed:
                base |= M.MAV_MODE_FLAG_SAFETY_ARMED
            if v.failsafe_active:
                status = M.MAV_STATE_CRITICAL
            else:
                status = M.MAV_STATE_ACTIVE if v.armed else M.MAV_STATE_STANDBY
            self.send(
                M.MAVLink_heartbeat_message(
                    M.MAV_TYPE_QUADROTOR, M.MAV_AUTOPILOT_PX4, base, v.mode.custom_mode, status, 3
                )
            )
        elif mid == M.MAVLINK_MSG_ID_SYS_STATUS:
            health = SENSORS_HEALTH
            if not v.global_position_ok:
                health &= ~SENSOR_GPS
            if v.failsafe_active:
                health &= ~SENSOR_PREARM
            if v.battery_pct <= v.params["BAT_LOW_THR"] * 100:
                health &= ~SENSOR_BATTERY
            if v.faults.motor_failed:
                health &= ~SENSOR_MOTORS
            self.send(
                M.MAVLink_sys_status_message(
                    SENSORS_PRESENT,
                    SENSORS_ENABLED,
                    health,
                    250,
                    int(v.battery_voltage_v * 1000),
                    -1,
                    int(v.battery_pct),
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                )
            )
        elif mid == M.MAVLINK_MSG_ID_SYSTEM_TIME:
            self.send(M.MAVLink_system_time_message(int(time.time() * 1e6), tb))
        elif mid == M.MAVLINK_MSG_ID_GPS_RAW_INT:
            ok = v.gps_fix_type >= 3
            self.send(
                M.MAVLink_gps_raw_int_message(
                    tb * 1000,
                    v.gps_fix_type,
                    int(v.lat * 1e7) if ok else 0,
                    int(v.lon * 1e7) if ok else 0,
                    int(v.alt_amsl * 1000) if ok else 0,
                    70 if ok else 65535,
                    100 if ok else 65535,
                    int(v.groundspeed * 100) if ok else 65535,
                    int(_course_deg(v) * 100) if ok else 65535,
                    v.satellites,
                )
            )
        elif mid == M.MAVLINK_MSG_ID_ATTITUDE:
            yaw = math.radians(v.heading_deg)
            if yaw > math.pi:
                yaw -= 2 * math.pi
            self.send(M.MAVLink_attitude_message(tb, v.roll, v.pitch, yaw, 0.0, 0.0, v.yawspeed))
        elif mid == M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT:
            if not v.global_position_ok:
                return  # PX4's estimator stops publishing a global position without GPS
            self.send(
                M.MAVLink_global_position_int_message(
                    tb,
                    round(v.lat * 1e7),
                    round(v.lon * 1e7),
                    round(v.alt_amsl * 1000),
                    round(v.rel_alt * 1000),
                    round(v.vn * 100),
                    round(v.ve * 100),
                    round(v.vd * 100),
                    round(v.heading_deg * 100) % 36000,
                )
            )
        elif mid == M.MAVLINK_MSG_ID_LOCAL_POSITION_NED:
            self.send(M.MAVLink_local_position_ned_message(tb, v.north, v.east, -v.height, v.vn, v.ve, v.vd))
        elif mid == M.MAVLINK_MSG_ID_VFR_HUD:
            self.send(
                M.MAVLink_vfr_hud_message(
                    v.airspeed,
                    v.groundspeed,
                    int(v.heading_deg) % 360,
                    int(v.throttle_pct),
                    v.alt_amsl,
                    v.climb_rate,
                )
            )
        elif mid == M.MAVLINK_MSG_ID_ALTITUDE:
            self.send(
                M.MAVLink_altitude_message(
                    tb * 1000, v.alt_amsl, v.alt_amsl, -v.height, v.rel_alt, float("nan"), v.height
                )
            )
        elif mid == M.MAVLINK_MSG_ID_EXTENDED_SYS_STATE:
            self.send(M.MAVLink_extended_sys_state_message(0, int(v.landed_state)))
        elif mid == M.MAVLINK_MSG_ID_MISSION_CURRENT:
            total = len(v.mission) if v.mission else 65535
            in_mission = v.mode is Mode.MISSION or (v.mode is Mode.TAKEOFF and not v.mission)
            self.send(
                M.MAVLink_mission_current_message(
                    v.mission_current if v.mission else 0, total, v.mission_state, 1 if in_mission else 2
                )
            )
        elif mid == M.MAVLINK_MSG_ID_HOME_POSITION:
            self.send(
                M.MAVLink_home_position_message(
                    round(v.home_lat * 1e7),
                    round(v.home_lon * 1e7),
                    round(v.home_alt_amsl * 1000),
                    0.0,
                    0.0,
                    0.0,
                    [1.0, 0.0, 0.0, 0.0],
                    0.0,
                    0.0,
                    0.0,
                    tb * 1000,
                )
            )
        elif mid == M.MAVLINK_MSG_ID_BATTERY_STATUS:
            cell = v.battery_voltage_v / 4.0
            cells = [int(cell * 1000)] * 4 + [65535] * 6
            self.send(
                M.MAVLink_battery_status_message(
                    0,
                    M.MAV_BATTERY_FUNCTION_ALL,
                    M.MAV_BATTERY_TYPE_LIPO,
                    32767,
                    cells,
                    int(v.battery_current_a * 100),
                    -1,
                    -1,
                    int(v.battery_pct),
                    0,
                    _charge_state(v),
                    [0, 0, 0, 0],
                    0,
                    0,
                )
            )
        elif mid == M.MAVLINK_MSG_ID_CURRENT_MODE:
            self.send(
                M.MAVLink_current_mode_message(
                    STANDARD_MODE.get(v.mode, 0), v.mode.custom_mode, v.intended_mode.custom_mode
                )
            )
        elif mid == M.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            self.send(
                M.MAVLink_autopilot_version_message(
                    AUTOPILOT_CAPABILITIES,
                    0x010F00FF,  # 1.15.0 official-release type byte; MAVSDK only displays it
                    0,
                    0,
                    1,
                    [0] * 8,
                    [0] * 8,
                    [0] * 8,
                    0,
                    0,
                    0x44465200 + v.sysid,  # unique per vehicle
                    [0] * 18,
                )
            )

    # ------------------------------------------------------------------ inbound
    def handle(self, msg: Any) -> None:
        if self.on_message is not None:
            self.on_message(msg)
        t = msg.get_type()
        v = self.vehicle
        target = getattr(msg, "target_system", None)
        if target not in (None, 0, v.sysid):
            return  # addressed to another vehicle on a shared link
        if t == "HEARTBEAT":
            if msg.type == M.MAV_TYPE_GCS or msg.autopilot == M.MAV_AUTOPILOT_INVALID:
                v.on_gcs_heartbeat()
        elif t == "COMMAND_LONG":
            self.handle_command(
                msg,
                msg.command,
                [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7],
                None,
            )
        elif t == "COMMAND_INT":
            self.handle_command(
                msg,
                msg.command,
                [msg.param1, msg.param2, msg.param3, msg.param4, float(msg.x), float(msg.y), msg.z],
                msg.frame,
            )
        elif t == "PARAM_REQUEST_LIST":
            self.param_queue = list(range(len(v.params)))
        elif t == "PARAM_REQUEST_READ":
            name = _param_name(msg.param_id)
            if msg.param_index >= 0 and msg.param_index < len(v.params):
                name = v.params.by_index(msg.param_index).name
            if name in v.params:
                self.send_param(name)
        elif t == "PARAM_SET":
            name = _param_name(msg.param_id)
            if name not in v.params:
                return  # PX4 ignores unknown names (the client times out)
            p = v.params.get(name)
            try:
                changed = v.params.set(name, decode_param_value(msg.param_value, p.ptype), now=v.t)
            except ParamError:
                self.send_param(name)  # echo the unchanged value: the client sees it was not taken
                return
            for c in changed:
                self.send_param(c.name)
        elif t in (
            "MISSION_COUNT",
            "MISSION_ITEM_INT",
            "MISSION_ITEM",
            "MISSION_REQUEST_LIST",
            "MISSION_REQUEST_INT",
            "MISSION_REQUEST",
            "MISSION_CLEAR_ALL",
            "MISSION_SET_CURRENT",
            "MISSION_ACK",
        ):
            self.handle_mission(t, msg)
        elif t == "PING" and msg.target_system == 0:
            self.send(
                M.MAVLink_ping_message(msg.time_usec, msg.seq, msg.get_srcSystem(), msg.get_srcComponent())
            )

    def send_param(self, name: str) -> None:
        v = self.vehicle
        p = v.params.get(name)
        self.send(
            M.MAVLink_param_value_message(
                name.encode(),
                encode_param_value(p.value, p.ptype),
                p.ptype,
                len(v.params),
                v.params.index_of(name),
            )
        )

    def ack(self, msg: Any, command: int, result: int) -> None:
        self.send(
            M.MAVLink_command_ack_message(command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent())
        )

    # ------------------------------------------------------------------ commands
    def handle_command(self, msg: Any, cmd: int, p: list[float], frame: int | None) -> None:
        """Dispatch COMMAND_LONG / COMMAND_INT. For COMMAND_INT p[4], p[5] are degE7 integers."""
        v = self.vehicle
        result: int = MavResult.UNSUPPORTED
        if cmd == M.MAV_CMD_COMPONENT_ARM_DISARM:
            force = int(p[1]) == FORCE_MAGIC if _finite(p[1]) else False
            if p[0] == 1:
                result = v.cmd_arm(force)
            elif p[0] == 0:
                result = v.cmd_disarm(force)
            else:
                result = MavResult.DENIED
        elif cmd == M.MAV_CMD_NAV_TAKEOFF:
            alt = p[6]
            result = v.cmd_takeoff(alt - v.home_alt_amsl if _finite(alt) else None)
        elif cmd == M.MAV_CMD_NAV_LAND:
            result = v.cmd_land()
        elif cmd == M.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            result = v.cmd_rtl()
        elif cmd == M.MAV_CMD_DO_SET_MODE:
            mode = Mode.from_main_sub(int(p[1]), int(p[2])) if _finite(p[1]) and _finite(p[2]) else None
            if mode is None or not (int(p[0]) & M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED):
                result = MavResult.DENIED
            else:
                result = v.cmd_set_mode(mode)
        elif cmd == M.MAV_CMD_DO_REPOSITION:
            lat, lon = _latlon(p, frame)
            if lat is None or lon is None:
                result = MavResult.DENIED
            else:
                alt_amsl = _alt_amsl(p[6], frame, v)
                speed = p[0] if _finite(p[0]) and p[0] > 0 else None
                yaw = p[3] if _finite(p[3]) else None  # PX4 holds the given heading; NaN: face the travel
                result = v.cmd_reposition(lat, lon, alt_amsl, speed, yaw)
        elif cmd == M.MAV_CMD_DO_ORBIT:
            lat, lon = _latlon(p, frame)
            radius = p[0]
            vel = p[1] if _finite(p[1]) else None
            yaw_b = int(p[2]) if _finite(p[2]) else 0
            if not _finite(radius) or radius == 0:
                result = MavResult.DENIED
            else:
                result = v.cmd_orbit(radius, vel, yaw_b, lat, lon)
        elif cmd == M.MAV_CMD_DO_CHANGE_SPEED:
            result = v.cmd_change_speed(p[1]) if _finite(p[1]) else MavResult.DENIED
        elif cmd == M.MAV_CMD_MISSION_START:
            result = v.cmd_mission_start()
        elif cmd == M.MAV_CMD_DO_PAUSE_CONTINUE:
            result = v.cmd_mission_pause() if p[0] == 0 else v.cmd_mission_start()
        elif cmd == M.MAV_CMD_DO_SET_MISSION_CURRENT:
            result = v.set_mission_current(int(p[0])) if _finite(p[0]) else MavResult.DENIED
        elif cmd == M.MAV_CMD_SET_MESSAGE_INTERVAL:
            result = self.set_interval(p[0], p[1])
        elif cmd == M.MAV_CMD_REQUEST_MESSAGE:
            self.ack(msg, cmd, self.request_message(p[0]))
            return
        elif cmd == M.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self.ack(msg, cmd, MavResult.ACCEPTED)
            self.send_message(M.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
            return
        self.ack(msg, cmd, int(result))

    def set_interval(self, msg_id: float, interval_us: float) -> int:
        if not (_finite(msg_id) and _finite(interval_us)):
            return MavResult.DENIED
        mid = int(msg_id)
        if mid not in DEFAULT_RATES:
            return MavResult.DENIED
        stream = self.streams.setdefault(mid, _Stream(0.0))
        if interval_us < 0:
            stream.rate_hz = 0.0
        elif interval_us == 0:
            stream.rate_hz = DEFAULT_RATES[mid]
        else:
            stream.rate_hz = min(1e6 / interval_us, 50.0)
        stream.next_due = 0.0
        return MavResult.ACCEPTED

    def request_message(self, msg_id: float) -> int:
        if not _finite(msg_id):
            return MavResult.DENIED
        mid = int(msg_id)
        if mid in DEFAULT_RATES or mid == M.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            self.send_message(mid)
            return MavResult.ACCEPTED
        return MavResult.DENIED

    # ------------------------------------------------------------------ mission / fence protocol
    def mission_ack(self, peer: tuple[int, int], result: int, mission_type: int) -> None:
        self.send(M.MAVLink_mission_ack_message(peer[0], peer[1], result, mission_type))

    def request_item(self, upload: _Upload, now: float) -> None:
        upload.last_request = now
        seq = len(upload.items)
        self.send(
            M.MAVLink_mission_request_int_message(upload.peer[0], upload.peer[1], seq, upload.mission_type)
        )

    def stored(self, mission_type: int) -> list[MissionItem] | None:
        if mission_type == MissionType.MISSION:
            return self.vehicle.mission
        if mission_type == MissionType.FENCE:
            return self.vehicle.fence
        if mission_type == MissionType.RALLY:
            return []
        return None

    def handle_mission(self, t: str, msg: Any) -> None:
        v = self.vehicle
        peer = (msg.get_srcSystem(), msg.get_srcComponent())
        mtype = int(getattr(msg, "mission_type", 0))
        now = time.monotonic()
        if self.stored(mtype) is None:
            self.mission_ack(peer, M.MAV_MISSION_UNSUPPORTED, mtype)
            return
        if t == "MISSION_COUNT":
            if msg.count == 0:
                self._apply(mtype, [], peer)
                return
            if mtype == MissionType.RALLY:
                self.mission_ack(peer, M.MAV_MISSION_UNSUPPORTED, mtype)
                return
            if msg.count > MAX_ITEMS.get(mtype, MAX_ITEMS[MissionType.MISSION]):
                self.mission_ack(peer, M.MAV_MISSION_NO_SPACE, mtype)
                return
            new_upload = _Upload(mtype, msg.count, peer)
            self.uploads[mtype] = new_upload
            self.request_item(new_upload, now)
        elif t in ("MISSION_ITEM_INT", "MISSION_ITEM"):
            up = self.uploads.get(mtype)
            if up is None:
                return
            if msg.seq != len(up.items):
                return  # a duplicate or out-of-order item: the current request is repeated on timeout
            if t == "MISSION_ITEM_INT":
                x, y = int(msg.x), int(msg.y)
            else:
                x, y = round(msg.x * 1e7), round(msg.y * 1e7)
            up.items.append(
                MissionItem(
                    msg.seq,
                    msg.frame,
                    msg.command,
                    msg.current,
                    msg.autocontinue,
                    msg.param1,
                    msg.param2,
                    msg.param3,
                    msg.param4,
                    x,
                    y,
                    msg.z,
                    mtype,
                )
            )
            up.retries = 0
            if len(up.items) == up.count:
                del self.uploads[mtype]
                self._apply(mtype, up.items, peer)
            else:
                self.request_item(up, now)
        elif t == "MISSION_REQUEST_LIST":
            items = self.stored(mtype) or []
            self.send(M.MAVLink_mission_count_message(peer[0], peer[1], len(items), mtype))
        elif t in ("MISSION_REQUEST_INT", "MISSION_REQUEST"):
            items = self.stored(mtype) or []
            if not 0 <= msg.seq < len(items):
                self.mission_ack(peer, M.MAV_MISSION_INVALID_SEQUENCE, mtype)
                return
            it = items[msg.seq]
            frame = it.frame
            if mtype == MissionType.FENCE and frame == M.MAV_FRAME_GLOBAL:
                frame = M.MAV_FRAME_GLOBAL_INT  # PX4 returns fence vertices as GLOBAL_INT (protocol.md §4)
            self.send(
                M.MAVLink_mission_item_int_message(
                    peer[0],
                    peer[1],
                    it.seq,
                    frame,
                    it.command,
                    it.current,
                    it.autocontinue,
                    it.param1,
                    it.param2,
                    it.param3,
                    it.param4,
                    it.x,
                    it.y,
                    it.z,
                    mtype,
                )
            )
        elif t == "MISSION_CLEAR_ALL":
            self._apply(mtype, [], peer)
        elif t == "MISSION_SET_CURRENT":
            v.set_mission_current(msg.seq)
            self.send_message(M.MAVLINK_MSG_ID_MISSION_CURRENT)

    def _apply(self, mtype: int, items: list[MissionItem], peer: tuple[int, int]) -> None:
        v = self.vehicle
        if mtype == MissionType.MISSION:
            if items:
                result = v.set_mission(items)
            else:
                v.clear_mission()
                result = M.MAV_MISSION_ACCEPTED
        elif mtype == MissionType.FENCE:
            if items:
                result = v.set_fence(items)
            else:
                v.clear_fence()
                result = M.MAV_MISSION_ACCEPTED
        else:
            result = M.MAV_MISSION_ACCEPTED
        self.mission_ack(peer, int(result), mtype)


def _param_name(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    return str(raw).rstrip("\x00")


def _latlon(p: list[float], frame: int | None) -> tuple[float | None, float | None]:
    """Target lat/lon from a command's x/y (degE7 in COMMAND_INT, degrees in COMMAND_LONG)."""
    x, y = p[4], p[5]
    if frame is not None:
        if x == INT32_MAX or y == INT32_MAX or (x == 0 and y == 0):
            return None, None
        lat, lon = x / 1e7, y / 1e7
    else:
        if not (_finite(x) and _finite(y)):
            return None, None
        lat, lon = x, y
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return lat, lon


def _alt_amsl(z: float, frame: int | None, v: Vehicle) -> float | None:
    if not _finite(z):
        return None
    if frame in (M.MAV_FRAME_GLOBAL_RELATIVE_ALT, M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT):
        return z + v.home_alt_amsl
    return z


def _course_deg(v: Vehicle) -> float:
    if v.groundspeed < 0.1:
        return v.heading_deg
    return math.degrees(math.atan2(v.ve, v.vn)) % 360


def _charge_state(v: Vehicle) -> int:
    pct = v.battery_pct / 100
    if pct <= v.params["BAT_EMERGEN_THR"]:
        return int(M.MAV_BATTERY_CHARGE_STATE_EMERGENCY)
    if pct <= v.params["BAT_CRIT_THR"]:
        return int(M.MAV_BATTERY_CHARGE_STATE_CRITICAL)
    if pct <= v.params["BAT_LOW_THR"]:
        return int(M.MAV_BATTERY_CHARGE_STATE_LOW)
    return int(M.MAV_BATTERY_CHARGE_STATE_OK)

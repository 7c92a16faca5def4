"""Flight model of one simulated PX4 multicopter (SIH quadrotor, PX4 v1.16 semantics).

The MAVLink front end (`sim.link`) calls the `cmd_*` methods when commands arrive and reads the public
state about 50 times per second; `sim.fleet` calls `step(0.02)` to advance simulated time. Nothing here
does I/O or reads the clock, so the same commands at the same simulated times always fly the same track.

How the model is built, and why (numbers are from the real PX4 SITL captures in shared/reference/px4-sitl,
see protocol.md there):

- Horizontal motion reproduces PX4's multicopter position control chain rather than a generic point mass,
  because the reference profiles are shaped by it: a jerk-limited trajectory (MPC_ACC_HOR, MPC_JERK_AUTO)
  that waits while the vehicle lags it ("time stretch"), the braking speed of PX4's
  computeMaxSpeedFromDistance, a position P loop (MPC_XY_P) and a PI velocity loop (MPC_XY_VEL_P_ACC)
  whose integrator slowly takes over the drag. That gives PX4's go-to signature: ~3.5 m/s after 2 s, a
  slow creep to the 5 m/s cruise, braking from ~10 m out and ~1 m overshoot.
- Drag is first order in airspeed (SIH models a first-order drag coefficient; a quadratic drag made the
  early go-to ~0.6 m/s faster than PX4), with k chosen so that the 45 degree tilt limit (MPC_TILTMAX_AIR)
  gives the 10.1 m/s top airspeed of the SIH quad: v_max_air = g * tan(tilt) / k. Wind adds to the ground
  velocity; the controller works on ground velocity, so a headwind costs ground speed at the tilt limit.
- Vertical motion uses the same trajectory idea with MPC_ACC_UP_MAX / MPC_ACC_DOWN_MAX, PX4's takeoff
  ramp (spool-up, MPC_TKO_RAMP_T to MPC_TKO_SPEED, faster above MPC_LAND_ALT1) and the landing speed
  schedule (MPC_Z_V_AUTO_DN above MPC_LAND_ALT1, MPC_LAND_SPEED below MPC_LAND_ALT2, MPC_LAND_CRWL in
  the last metre).
- Modes, landed states, failsafes and status texts follow what the captures show (including PX4's quirks:
  RTL lands without a LAND mode, a go-to runs inside AUTO.LOITER, a failsafe "Hold" does not interrupt a
  go-to already running in Hold, land detection takes seconds after touchdown).

Coordinates: `north`/`east`/`height` are metres from the current home (set at arming, like PX4); lat/lon
are derived from them with the flat-earth conversion in `sim.geo`.

`Vehicle` is the navigator and the facade the link layer and the tests use; its parts live in `sim.flight`:
`motion` (trajectory, position/velocity control, airframe: the hot loop), `battery` (drain, warning levels,
dock charging, which is not PX4's and off unless a `DockCharger` is given), `fence` (geofence geometry and
breaches), `failsafe` (data link monitor and PX4's reaction tables), `mission` (the plan, the progress
through it, waypoint geometry), `orbit`, `profiles` (take-off and landing speed schedules), `states` (the
navigator's enums) and `plans` (what a mission or fence upload may contain).
"""

from __future__ import annotations

import math
import random

from sim.flight.battery import DOCK_RADIUS_M, Battery, DockCharger
from sim.flight.failsafe import (
    BATTERY_TEXTS,
    Failsafes,
    Reaction,
    battery_reaction,
    fence_reaction,
    link_loss_reaction,
)
from sim.flight.fence import Geofence
from sim.flight.mission import (
    CMD_LAND,
    CMD_LOITER_TIME,
    CMD_LOITER_UNLIM,
    CMD_RTL,
    CMD_TAKEOFF,
    CMD_WAYPOINT,
    MissionRun,
)
from sim.flight.motion import Contact, Motion, max_speed_from_distance, wrap_pi
from sim.flight.orbit import ORBIT_DEFAULT_RADIUS_M, ORBIT_DEFAULT_SPEED, ORBIT_MAX_RADIUS_M, Orbit
from sim.flight.plans import MISSION_ACCEPTED, POSITION_COMMANDS
from sim.flight.profiles import TAKEOFF_DETECT_S, TAKEOFF_DONE_BELOW_M, TAKEOFF_SPOOL_S, VerticalProfiles
from sim.flight.states import (
    BatteryLevel,
    FailsafeAction,
    MissionPhase,
    MissionState,
    NavState,
    RtlPhase,
    YawMode,
)
from sim.geo import latlon_from_ne, ne_from_latlon
from sim.params import Params
from sim.types import Faults, LandedState, MavResult, MissionItem, Mode, Severity, StatusText

__all__ = ["DOCK_RADIUS_M", "DockCharger", "Vehicle"]

# --- timing observed in the captures ---------------------------------------------------------------------
LAND_DETECT_S = 7.0  # touchdown -> "Landing detected" (PX4 SIH: 5.5-7.7 s)
MOTOR_FAIL_DESCENT_SCALE = 1.6  # descent speed factor while landing with a failed motor
MAX_STEP_S = 0.025  # longer steps are split (explicit integration, tuned at 0.02 s)
PARAM_REFRESH_S = 0.2  # parameters are re-read at this period (PX4 modules also apply them asynchronously)

# The step loop's state comparisons use these module-level names (see `sim.flight.states` for why).
_IDLE, _TAKEOFF, _POS, _RTL, _LAND, _ORBIT, _MISSION, _FALL = (
    NavState.IDLE,
    NavState.TAKEOFF,
    NavState.POS,
    NavState.RTL,
    NavState.LAND,
    NavState.ORBIT,
    NavState.MISSION,
    NavState.FALL,
)
_RTL_CLIMB, _RTL_RETURN, _RTL_DESCEND, _RTL_WAIT = (
    RtlPhase.CLIMB,
    RtlPhase.RETURN,
    RtlPhase.DESCEND,
    RtlPhase.WAIT,
)
_MIS_HOLD, _MIS_LAND = MissionPhase.HOLD, MissionPhase.LAND
_YAW_KEEP = YawMode.KEEP

# Modes a user may select (the others need RC, offboard set-points or are not simulated).
USER_MODES = frozenset({Mode.LOITER, Mode.RTL, Mode.LAND, Mode.MISSION, Mode.TAKEOFF, Mode.ORBIT})


def _finite(x: float | None) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


class Vehicle:
    """One simulated PX4 quadrotor: state read by the link layer, commands, and `step(dt)`.

    It is PX4's navigator and commander (modes, take-off, hold and go-to, RTL, landing, mission sequencing,
    land detection, arming) over its parts: `motion`, `battery`, `geofence`, `failsafes`, `mission_run`.
    The state the link layer reads (position, speeds, battery, mission and fence plans) is exposed here as
    read-only properties, so callers need not know which part holds it.
    """

    def __init__(
        self,
        sysid: int,
        home_lat: float,
        home_lon: float,
        home_alt_amsl: float,
        params: Params,
        wind_ne: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
    ) -> None:
        self.sysid = sysid
        self.params = params
        self.seed = seed
        self._rng = random.Random(seed)  # reserved for noise; the model is currently noise-free
        self._t_us = 0  # simulated time kept in integer microseconds: no drift over long runs
        self.t = 0.0
        # home (the flat ground is at motion.ground_h relative to it)
        self.home_lat = home_lat
        self.home_lon = home_lon
        self.home_alt_amsl = home_alt_amsl
        self.motion = Motion(
            float(wind_ne[0]) if _finite(wind_ne[0]) else 0.0,
            float(wind_ne[1]) if _finite(wind_ne[1]) else 0.0,
        )
        self.battery = Battery()
        self.geofence = Geofence()
        self.failsafes = Failsafes()
        self.mission_run = MissionRun()
        self._orbit = Orbit()
        self._profiles = VerticalProfiles()
        # autopilot state
        self.armed = False
        self.mode = Mode.LOITER
        self.intended_mode = Mode.LOITER
        self.landed_state = LandedState.ON_GROUND
        self.failsafe_active = False
        self._nav = NavState.IDLE
        self._speed = 5.0  # go-to speed
        self._speed_override: float | None = None  # DO_CHANGE_SPEED for the current go-to / RTL
        self._idle_since = 0.0
        self._touch_t: float | None = None
        self._landed_t: float | None = None  # "Landing detected" time, for the auto-disarm
        self._land_scale = 1.0
        self._land_hctrl = True
        # takeoff
        self._tko_t0 = 0.0
        self._tko_h = 0.0
        self._tko_detected = False
        self._tko_for_mission = False
        # A DO_REPOSITION that came while a takeoff was still on the ground: (north, east, height, speed,
        # yaw), flown as soon as the vehicle is off the ground (PX4 accepts it then; probed on v1.16 SITL).
        self._after_tko: tuple[float, float, float, float | None, float | None] | None = None
        # RTL
        self._rtl_phase = RtlPhase.CLIMB
        self._rtl_alt = 0.0
        self._rtl_wait_until = 0.0
        # faults
        self.faults = Faults()
        self.gps_fix_type = 3
        self.satellites = 10
        self.global_position_ok = True
        self._texts: list[StatusText] = []
        self._next_param_t = 0.0
        self._load_params()

    # ------------------------------------------------------------------ state the link layer reads
    @property
    def boot_time_ms(self) -> int:
        return self._t_us // 1000

    @property
    def north(self) -> float:
        return self.motion.north

    @property
    def east(self) -> float:
        return self.motion.east

    @property
    def height(self) -> float:
        """Metres above home."""
        return self.motion.height

    @property
    def vn(self) -> float:
        return self.motion.vn

    @property
    def ve(self) -> float:
        return self.motion.ve

    @property
    def vd(self) -> float:
        return self.motion.vd

    @property
    def heading_deg(self) -> float:
        return self.motion.heading_deg

    @property
    def yawspeed(self) -> float:
        return self.motion.yawspeed

    @property
    def wind_n(self) -> float:
        return self.motion.wind_n

    @property
    def wind_e(self) -> float:
        return self.motion.wind_e

    @property
    def _ground_h(self) -> float:
        """The ground's height relative to home (tests check landings against it)."""
        return self.motion.ground_h

    @property
    def lat(self) -> float:
        return latlon_from_ne(self.home_lat, self.home_lon, self.motion.north, self.motion.east)[0]

    @property
    def lon(self) -> float:
        return latlon_from_ne(self.home_lat, self.home_lon, self.motion.north, self.motion.east)[1]

    @property
    def alt_amsl(self) -> float:
        return self.home_alt_amsl + self.motion.height

    @property
    def rel_alt(self) -> float:
        return self.motion.height

    @property
    def groundspeed(self) -> float:
        return math.hypot(self.motion.vn, self.motion.ve)

    @property
    def airspeed(self) -> float:
        m = self.motion
        return math.hypot(m.vn - m.wind_n, m.ve - m.wind_e)

    @property
    def climb_rate(self) -> float:
        return -self.motion.vd

    @property
    def roll(self) -> float:
        """Bank angle that produces the current horizontal acceleration (rad, right wing down positive)."""
        return self.motion.roll()

    @property
    def pitch(self) -> float:
        """Pitch angle that produces the current horizontal acceleration (rad, nose up positive)."""
        return self.motion.pitch()

    @property
    def throttle_pct(self) -> float:
        if not self.armed:
            return 0.0
        if self.motion.on_ground:
            return 10.0  # motors idling
        thr = self.motion.throttle(self._p_thr_hover)
        return max(0.0, min(100.0, thr * 100.0))

    @property
    def battery_pct(self) -> float:
        return self.battery.pct

    @property
    def battery_voltage_v(self) -> float:
        return self.battery.voltage_v

    @property
    def battery_current_a(self) -> float:
        return self.battery.current_a(self.armed)

    @property
    def charger(self) -> DockCharger | None:
        """The dock that recharges this vehicle (set by the fleet when the area gives the dock a model)."""
        return self.battery.charger

    @charger.setter
    def charger(self, charger: DockCharger | None) -> None:
        self.battery.charger = charger

    @property
    def gcs_lost(self) -> bool:
        return self.failsafes.gcs_lost

    @property
    def mission(self) -> list[MissionItem]:
        """The mission plan as uploaded."""
        return self.mission_run.items

    @property
    def mission_current(self) -> int:
        return self.mission_run.current

    @property
    def mission_state(self) -> MissionState:
        return self.mission_run.state

    @property
    def mission_id(self) -> int:
        return self.mission_run.id

    @property
    def fence(self) -> list[MissionItem]:
        """The geofence plan as uploaded."""
        return self.geofence.items

    @property
    def fence_id(self) -> int:
        return self.geofence.id

    # ------------------------------------------------------------------ parameters
    def _load_params(self) -> None:
        """Cache the parameters the hot loop reads (per-step dict lookups would cost more than physics)."""
        p = self.params
        self._p_cruise = max(0.5, p["MPC_XY_CRUISE"])
        self.motion.load(p)
        self._profiles.load(p)
        self._p_alt_rad = max(0.1, p["NAV_MC_ALT_RAD"])
        self._p_thr_hover = p["MPC_THR_HOVER"]
        self._p_disarm_land = p["COM_DISARM_LAND"]
        self._p_disarm_prflt = p["COM_DISARM_PRFLT"]
        self.failsafes.load(p)
        self.battery.load(p)
        self.geofence.load(p)
        self._next_param_t = self.t + PARAM_REFRESH_S

    # ------------------------------------------------------------------ outputs
    def _text(self, severity: Severity, text: str) -> None:
        """Queue a STATUSTEXT exactly as given (PX4's own texts mostly end in a tab, as captured)."""
        self._texts.append(StatusText(severity, text))

    def _info(self, text: str) -> None:
        """Queue an INFO STATUSTEXT with PX4's trailing tab."""
        self._texts.append(StatusText(Severity.INFO, text + "\t"))

    def pop_status_texts(self) -> list[StatusText]:
        out, self._texts = self._texts, []
        return out

    def pop_mission_items_reached(self) -> list[int]:
        return self.mission_run.pop_reached()

    # ------------------------------------------------------------------ stepping
    def step(self, dt: float) -> None:
        """Advance autopilot logic and physics by dt simulated seconds (longer steps are split: the explicit
        integration is tuned for the link layer's 0.02 s)."""
        if not dt > 0.0:
            return
        if dt > MAX_STEP_S:
            n = math.ceil(dt / MAX_STEP_S)
            for _ in range(n):
                self.step(dt / n)
            return
        self._t_us += round(dt * 1e6)
        self.t = self._t_us / 1e6
        if self.params.apply_due(self.t) or self.t >= self._next_param_t:
            self._load_params()
        self._supervise()
        self._guide()
        m = self.motion
        contact = m.step(dt, self._nav is _FALL, self.armed)
        if contact is not None:
            self._on_contact(contact)
        if self.armed:
            self.battery.drain(dt, m, m.on_ground and self._nav in (_IDLE, _FALL))
        elif self.battery.charger is not None:
            self.battery.charge(dt, self.on_dock())

    def _on_contact(self, contact: Contact) -> None:
        """Lift-off or touchdown: start or stop the land detector's clock."""
        if contact is Contact.LIFTOFF:
            self._touch_t = None
            return
        if self._nav is _FALL:  # crashed with motors off: nothing to detect
            self._touch_t = None
            self._set_idle()
            self.landed_state = LandedState.ON_GROUND
            return
        if self._touch_t is None:
            self._touch_t = self.t

    def on_dock(self) -> bool:
        """True if the vehicle stands on the ground within its charger's radius of its dock."""
        c = self.battery.charger
        m = self.motion
        if c is None or not m.on_ground:
            return False
        n, e = ne_from_latlon(self.home_lat, self.home_lon, c.lat, c.lon)
        return math.hypot(n - m.north, e - m.east) <= c.radius_m

    # ------------------------------------------------------------------ supervision (timers, failsafes)
    def _supervise(self) -> None:
        t = self.t
        fs = self.failsafes
        # data link loss (only once a GCS was ever heard); checked inline, this runs every step
        if fs.gcs_seen and not fs.gcs_lost and t - fs.last_gcs_hb > fs.dl_loss_s:
            fs.gcs_lost = True  # PX4 sends only an EVENT for this, no STATUSTEXT
            self._on_gcs_lost()
        if fs.pending is not None and t >= fs.pending_t:
            action, fs.pending = fs.pending, None
            self._failsafe_action(action)
        if not self.armed:
            return
        # battery thresholds
        b = self.battery
        if b.pct <= b.low or b.level:
            level = b.update_level()
            if level is not None:
                self._battery_warning(level)
        # land detection and auto-disarm
        if self._touch_t is not None and self.landed_state != LandedState.ON_GROUND:
            if t - self._touch_t >= LAND_DETECT_S:
                self._landing_detected()
        landed_t = self._landed_t
        if landed_t is not None and self._p_disarm_land >= 0 and t - landed_t >= self._p_disarm_land:
            self._disarm("Disarmed by landing")
            return
        if (
            self._nav is _IDLE
            and self._landed_t is None
            and self._p_disarm_prflt > 0
            and t - self._idle_since >= self._p_disarm_prflt
        ):
            self._disarm("Disarmed by auto preflight disarming")
            return
        m = self.motion
        if self.landed_state == LandedState.TAKEOFF and self._nav is not _TAKEOFF and not m.on_ground:
            self.landed_state = LandedState.IN_AIR  # the takeoff was taken over by another command
        if self.geofence.active and not m.on_ground and self.landed_state != LandedState.ON_GROUND:
            if self.geofence.breach_started(m.north, m.east, m.height):
                self._fence_breached()

    def _landing_detected(self) -> None:
        self.landed_state = LandedState.ON_GROUND
        self._info("Landing detected")
        self._landed_t = self.t
        self._touch_t = None
        if self._nav is NavState.MISSION:
            mr = self.mission_run
            if mr.current < len(mr.items):
                mr.reached.append(mr.items[mr.current].seq)
            self._mission_finished(landed=True)
        self._set_idle()

    def _set_idle(self) -> None:
        self._nav = NavState.IDLE
        self.motion.hctrl = False
        self.motion.direct = False
        self.motion.wd = -0.5 if self.motion.on_ground else 0.0
        self._idle_since = self.t

    # ------------------------------------------------------------------ guidance
    def _guide(self) -> None:
        """Turn the current navigation state into desired velocities for the controllers."""
        nav = self._nav
        m = self.motion
        m.settled = False
        if nav is _POS:
            m.line_to(self._speed, self.global_position_ok)
        elif nav is _MISSION:
            self._guide_mission()
        elif nav is _RTL:
            self._guide_rtl()
        elif nav is _LAND:
            self._guide_land()
        elif nav is _TAKEOFF:
            self._guide_takeoff()
        elif nav is _ORBIT:
            self._orbit.guide(m, self._speed_override or self._p_cruise, self.global_position_ok)
        elif nav is _IDLE:
            m.hctrl = False
            m.wd = -0.5 if m.on_ground else 0.0
        else:  # _FALL
            m.hctrl = False

    def _land_speed(self) -> float:
        m = self.motion
        return self._profiles.descent(m.height - m.ground_h, m.dn) * self._land_scale

    def _guide_land(self) -> None:
        m = self.motion
        if self._land_hctrl and self.global_position_ok:
            m.goto_point(self._p_cruise, 0.0, self.global_position_ok)
        else:
            m.hctrl = False
        m.wd = -self._land_speed()

    def _guide_takeoff(self) -> None:
        m = self.motion
        t = self.t - self._tko_t0
        if not self._tko_detected and t >= TAKEOFF_DETECT_S:
            self._tko_detected = True
            self.landed_state = LandedState.TAKEOFF
            self._info("Takeoff detected")
        if t < TAKEOFF_SPOOL_S:
            m.wd = 0.0
            m.hctrl = False
            return
        cap = self._profiles.climb_cap(m.height - m.ground_h, t, m.up)
        if self._after_tko is not None and m.height - m.ground_h >= TAKEOFF_DONE_BELOW_M:
            pending, self._after_tko = self._after_tko, None
            if not self._tko_detected:
                self._tko_detected = True
                self._info("Takeoff detected")
            self.landed_state = LandedState.IN_AIR
            self._reposition_to(*pending)
            return
        dh = self._tko_h - m.height
        w = max_speed_from_distance(dh, m.acc_up, m.b_up) if dh > 0.0 else 0.0
        m.wd = w if w < cap else cap
        m.goto_point(self._p_cruise, 0.0, self.global_position_ok)
        if dh <= TAKEOFF_DONE_BELOW_M:
            self._takeoff_complete()

    def _takeoff_complete(self) -> None:
        if not self._tko_detected:
            self._tko_detected = True
            self._info("Takeoff detected")
        self.landed_state = LandedState.IN_AIR
        if self._tko_for_mission:
            self._nav = NavState.MISSION
            mr = self.mission_run
            mr.phase = MissionPhase.FLY
            if mr.current < len(mr.items) and mr.items[mr.current].command == CMD_TAKEOFF:
                self._mission_item_done()
            else:
                self._mission_enter_item()
            return
        self._start_hold(self.motion.tn, self.motion.te, self._tko_h)
        self.mode = self.intended_mode = Mode.LOITER

    def _guide_rtl(self) -> None:
        m = self.motion
        phase = self._rtl_phase
        if phase is _RTL_CLIMB:
            m.goto_point(self._p_cruise, 0.0, self.global_position_ok)
            m.wd = m.climb_to(self._rtl_alt)
            if m.height >= self._rtl_alt - self._p_alt_rad:
                self._rtl_return()
        elif phase is _RTL_RETURN:
            speed = self._speed_override or self._p_cruise
            m.goto_point(speed, 0.0, self.global_position_ok)
            m.wd = m.climb_to(self._rtl_alt)
            if m.north * m.north + m.east * m.east <= m.acc_rad * m.acc_rad:
                delay = self.params["RTL_LAND_DELAY"]
                descend = self.params["RTL_DESCEND_ALT"]
                if delay == 0.0 or m.height <= descend + self._p_alt_rad:
                    self._rtl_start_land()
                else:
                    self._rtl_phase = _RTL_DESCEND
                    m.th = descend
                    m.yaw_mode = _YAW_KEEP
        elif phase is _RTL_DESCEND:
            m.goto_point(self._p_cruise, 0.0, self.global_position_ok)
            m.wd = m.climb_to(m.th)
            if abs(m.height - m.th) <= self._p_alt_rad:
                delay = self.params["RTL_LAND_DELAY"]
                self._rtl_phase = _RTL_WAIT
                self._rtl_wait_until = math.inf if delay < 0 else self.t + delay
        elif phase is _RTL_WAIT:
            m.goto_point(self._p_cruise, 0.0, self.global_position_ok)
            m.wd = m.climb_to(m.th)
            if self.t >= self._rtl_wait_until:
                self._rtl_start_land()
        else:
            self._guide_land()

    def _rtl_return(self) -> None:
        self._rtl_phase = RtlPhase.RETURN
        self.motion.braking = False
        self.motion.tn = self.motion.te = 0.0
        self.motion.yaw_mode = YawMode.TRAVEL

    def _rtl_start_land(self) -> None:
        self._rtl_phase = RtlPhase.LAND
        self.motion.tn = self.motion.te = 0.0
        self.motion.yaw_mode = YawMode.KEEP
        self._land_scale = 1.0
        self._land_hctrl = True
        self.landed_state = LandedState.LANDING
        self._info("RTL: land at destination")

    # ------------------------------------------------------------------ mission execution
    def _mission_item_target(self, it: MissionItem) -> tuple[float, float, float]:
        return self.mission_run.target(it, self.motion, self.home_lat, self.home_lon, self.home_alt_amsl)

    def _corner_speed(self) -> float:
        return self.mission_run.corner_speed(self.motion, self.home_lat, self.home_lon, self.home_alt_amsl)

    def _mission_enter_item(self) -> None:
        """Start flying mission item `mission_current` (applying DO items on the way)."""
        mr, m = self.mission_run, self.motion
        while mr.current_is_do():
            mr.apply_do(mr.items[mr.current], m.vel_max)
            mr.current += 1
        if mr.current >= len(mr.items):
            self._mission_finished(landed=False)
            return
        it = mr.items[mr.current]
        mr.phase = MissionPhase.FLY
        if it.command == CMD_RTL:
            mr.reached.append(it.seq)
            mr.state = MissionState.COMPLETE
            self._start_rtl(failsafe=False)
            self.mode = self.intended_mode = Mode.RTL
            return
        n, e, h = self._mission_item_target(it)
        if it.command == CMD_TAKEOFF:
            n, e = m.north, m.east
            h = max(h, m.height)
        m.tn, m.te, m.th = n, e, h
        mr.corner_v = self._corner_speed()
        m.yaw_mode = YawMode.TRAVEL
        if it.command == CMD_LAND and it.x == 0 and it.y == 0:  # land here: where the vehicle stops
            self._mission_start_land()
            m.brake()

    def _guide_mission(self) -> None:
        m, mr = self.motion, self.mission_run
        if mr.current >= len(mr.items):
            self._mission_finished(landed=False)
            return
        it = mr.items[mr.current]
        phase = mr.phase
        if phase is _MIS_LAND:
            self._guide_land()
            return
        if phase is _MIS_HOLD:
            m.goto_point(mr.speed, 0.0, self.global_position_ok)
            m.wd = m.climb_to(m.th)
            if self.t >= mr.hold_until:
                self._mission_item_done()
            return
        m.goto_point(mr.speed, mr.corner_v, self.global_position_ok)
        m.wd = m.climb_to(m.th)
        dn, de = m.tn - m.north, m.te - m.east
        rad = mr.acceptance(it, m.acc_rad)
        if dn * dn + de * de <= rad * rad and abs(m.th - m.height) <= max(self._p_alt_rad, 1.0):
            cmd = it.command
            if cmd == CMD_LAND:
                self._mission_start_land()
            elif cmd == CMD_LOITER_UNLIM:
                mr.phase = _MIS_HOLD
                mr.hold_until = math.inf
                m.yaw_mode = _YAW_KEEP
            elif cmd == CMD_LOITER_TIME or (cmd == CMD_WAYPOINT and _finite(it.param1) and it.param1 > 0):
                mr.phase = _MIS_HOLD
                mr.hold_until = self.t + float(it.param1)
                m.yaw_mode = _YAW_KEEP
            else:
                self._mission_item_done()

    def _mission_start_land(self) -> None:
        self.mission_run.phase = MissionPhase.LAND
        self._land_scale = 1.0
        self._land_hctrl = True
        self.motion.yaw_mode = YawMode.KEEP
        self.landed_state = LandedState.LANDING

    def _mission_item_done(self) -> None:
        """The current NAV item is reached: apply the DO items after it, report, go to the next one."""
        mr = self.mission_run
        last = mr.items[mr.current].seq
        mr.current += 1
        while mr.current_is_do():
            mr.apply_do(mr.items[mr.current], self.motion.vel_max)
            last = mr.items[mr.current].seq
            mr.current += 1
        mr.reached.append(last)
        if mr.current >= len(mr.items):
            mr.current = len(mr.items) - 1
            self._mission_finished(landed=False)
            return
        self._mission_enter_item()

    def _mission_finished(self, landed: bool) -> None:
        mr = self.mission_run
        mr.state = MissionState.COMPLETE
        mr.current = max(0, len(mr.items) - 1)
        if landed or self._nav is not NavState.MISSION:
            return
        self._info("Mission finished, loitering")
        self.mode = self.intended_mode = Mode.LOITER
        m = self.motion
        self._start_hold(m.tn, m.te, m.th)

    # ------------------------------------------------------------------ starting behaviours
    def _clear_behaviour(self) -> None:
        self.motion.direct = False
        self.motion.braking = False
        self.failsafes.pending = None
        self._land_scale = 1.0
        self._land_hctrl = True
        self._orbit.approach = False
        if self.mission_run.state == MissionState.ACTIVE and self._nav is NavState.MISSION:
            self.mission_run.state = MissionState.PAUSED
        if self.landed_state == LandedState.LANDING or (
            self.landed_state == LandedState.TAKEOFF and not self.motion.on_ground
        ):
            self.landed_state = LandedState.IN_AIR

    def _start_hold(self, n: float, e: float, h: float) -> None:
        m = self.motion
        m.braking = False
        self._nav = NavState.POS
        m.tn, m.te, m.th = n, e, h
        self._speed = self._p_cruise
        m.yaw_mode = YawMode.KEEP
        m.direct = False

    def _start_takeoff(self, height: float, for_mission: bool) -> None:
        self._nav = NavState.TAKEOFF
        self._tko_t0 = self.t
        self._tko_h = height
        self._tko_detected = False
        self._tko_for_mission = for_mission
        self._after_tko = None
        self.motion.tn, self.motion.te = self.motion.north, self.motion.east
        self.motion.yaw_mode = YawMode.KEEP
        self._landed_t = None
        self._touch_t = None

    def _start_rtl(self, failsafe: bool) -> None:
        self._clear_behaviour()
        if failsafe:
            self.failsafe_active = True
        self._nav = NavState.RTL
        self.mode = Mode.RTL
        dist = math.hypot(self.motion.north, self.motion.east)
        ret = self.params["RTL_RETURN_ALT"]
        descend = self.params["RTL_DESCEND_ALT"]
        cone = self.params["RTL_CONE_ANG"]
        if 0.0 < cone < 90.0:
            cone_alt = dist / math.tan(math.radians(cone))
            ret = min(ret, max(cone_alt, descend))
        self._rtl_alt = max(self.motion.height, ret)
        amsl = self._rtl_alt + self.home_alt_amsl
        self._info(f"RTL: start return at {amsl:.0f} m ({self._rtl_alt:.0f} m above destination)")
        self.motion.brake()
        self.motion.yaw_mode = YawMode.KEEP
        self._rtl_phase = RtlPhase.CLIMB
        if self.motion.height >= self._rtl_alt - self._p_alt_rad:
            self._rtl_return()

    def _start_land(self, scale: float = 1.0) -> None:
        self._clear_behaviour()
        self._nav = NavState.LAND
        self.mode = Mode.LAND
        self._land_scale = scale
        self._land_hctrl = self.global_position_ok
        self.motion.brake()
        self.motion.yaw_mode = YawMode.KEEP
        if self.landed_state != LandedState.ON_GROUND:
            self.landed_state = LandedState.LANDING

    # ------------------------------------------------------------------ failsafes
    def _failsafe_action(self, action: FailsafeAction) -> None:
        """Run a failsafe reaction now (RTL or LAND), keeping the user's intended mode."""
        if not self._in_flight():
            return
        self._text(Severity.CRITICAL, "Failsafe activated\t")
        if action is FailsafeAction.RTL and self.global_position_ok and not self.faults.motor_failed:
            self._start_rtl(failsafe=True)
        else:
            self._start_land()
        self.failsafe_active = True

    def _failsafe_hold_then(self, action: FailsafeAction) -> None:
        """PX4's delayed failsafe: Hold for COM_FAIL_ACT_T, then the action. A go-to already running in
        Hold is not interrupted (the captures show the vehicle keeps flying it until the RTL)."""
        if self.failsafes.hold_s <= 0.0:
            self._failsafe_action(action)
            return
        self._text(
            Severity.CRITICAL, f"Failsafe activated: entering Hold for {self.failsafes.hold_s:.0f} seconds\t"
        )
        if self._nav is not NavState.POS:
            self._clear_behaviour()
            self._start_hold(self.motion.north, self.motion.east, self.motion.height)
            self.motion.brake()
            self.mode = Mode.LOITER
        self.failsafe_active = True
        self.failsafes.pending = action
        self.failsafes.pending_t = self.t + self.failsafes.hold_s
        self.failsafes.from_link = False

    def _in_flight(self) -> bool:
        return self.armed and not (self.motion.on_ground and self.landed_state == LandedState.ON_GROUND)

    def _on_gcs_lost(self) -> None:
        """The data link is lost (NAV_DLL_ACT decides the reaction)."""
        if not self._in_flight() or self._nav in (NavState.IDLE, NavState.FALL):
            return
        reaction = link_loss_reaction(int(self.params["NAV_DLL_ACT"]), self.mode)
        if reaction is Reaction.HOLD:
            m = self.motion
            self._clear_behaviour()
            self._start_hold(m.north, m.east, m.height)
            m.brake()
            self.mode = Mode.LOITER
            self.failsafe_active = True
            self._text(Severity.CRITICAL, "Failsafe activated\t")
        elif reaction is not None:
            self._react(reaction)
            self.failsafes.from_link = True

    def _battery_warning(self, level: BatteryLevel) -> None:
        """The battery reached a new warning level: announce it, and in the air react (COM_LOW_BAT_ACT)."""
        act = int(self.params["COM_LOW_BAT_ACT"])
        in_air = self._in_flight() and self._nav not in (NavState.IDLE, NavState.FALL)
        for severity, text in BATTERY_TEXTS[level]:
            self._text(severity, text)
        if not in_air:
            return
        if level >= BatteryLevel.CRITICAL and act:
            self.failsafe_active = True
        reaction = battery_reaction(level, act, self.mode)
        if reaction is not None:
            self._react(reaction)

    def _fence_breached(self) -> None:
        """A geofence breach began and GF_ACTION is set: warn, and unless only warning, react."""
        self._text(Severity.CRITICAL, "Geofence: approaching or outside geofence")
        reaction = fence_reaction(self.geofence.action, self.global_position_ok)
        if reaction is None or self._nav in (NavState.IDLE, NavState.FALL):
            return
        self._text(Severity.CRITICAL, "Failsafe activated\t")
        if reaction is Reaction.HOLD:
            m = self.motion
            self._clear_behaviour()
            self._start_hold(m.north, m.east, m.height)
            self.mode = Mode.LOITER
        elif reaction is Reaction.RTL:
            self._start_rtl(failsafe=True)
        else:
            self._start_land()
        self.failsafe_active = True

    def _react(self, reaction: Reaction) -> None:
        """Carry out a delayed (Hold first) or immediate RTL / LAND failsafe reaction."""
        if reaction is Reaction.HOLD_THEN_RTL:
            self._failsafe_hold_then(FailsafeAction.RTL)
        elif reaction is Reaction.HOLD_THEN_LAND:
            self._failsafe_hold_then(FailsafeAction.LAND)
        elif reaction is Reaction.RTL:
            self.failsafes.pending = None
            self._failsafe_action(FailsafeAction.RTL)
        elif reaction is Reaction.LAND:
            self.failsafes.pending = None
            self._failsafe_action(FailsafeAction.LAND)

    # ------------------------------------------------------------------ commands
    def _user_mode(self, mode: Mode) -> None:
        """A mode the user chose: it becomes the intended mode and ends any failsafe state."""
        self.mode = self.intended_mode = mode
        self.failsafes.pending = None
        if not self.faults.motor_failed and self.global_position_ok:
            self.failsafe_active = False

    def _can_navigate(self) -> bool:
        return self.global_position_ok and not self.faults.motor_failed

    def cmd_arm(self, force: bool = False) -> MavResult:
        """COMPONENT_ARM_DISARM(1). Arming sets home to the current position, like PX4."""
        self._load_params()
        if self.armed:
            return MavResult.ACCEPTED
        if self.faults.motor_failed:
            return MavResult.TEMPORARILY_REJECTED
        if not force:
            if not self.global_position_ok:
                return MavResult.TEMPORARILY_REJECTED
            if self.battery.pct < self.battery.crit:
                return MavResult.TEMPORARILY_REJECTED
            m, fence = self.motion, self.geofence
            if fence.active and fence.action > 0 and fence.outside(m.north, m.east, m.height):
                return MavResult.DENIED
        self._rebase_home()
        self.armed = True
        self._idle_since = self.t
        self._landed_t = None
        self._touch_t = None
        self.geofence.breached = False
        self.battery.level = BatteryLevel.OK
        self.landed_state = LandedState.ON_GROUND
        self._info("Armed by external command")
        if self.mode == Mode.MISSION and self.mission_run.items:
            self._start_mission()
        else:
            self._nav = NavState.IDLE
        return MavResult.ACCEPTED

    def _rebase_home(self) -> None:
        """Move home to the current position and shift the local frame with it."""
        n, e = self.motion.north, self.motion.east
        if n or e:
            self.home_lat, self.home_lon = latlon_from_ne(self.home_lat, self.home_lon, n, e)
            self.motion.north = self.motion.east = 0.0
        self.home_alt_amsl += self.motion.height
        self.motion.ground_h -= self.motion.height
        self.motion.height = 0.0
        self.geofence.rehome(self.home_lat, self.home_lon)
        self.motion.reset_trajectory()

    def _disarm(self, reason: str) -> None:
        self.armed = False
        self._info(reason)
        self.mode = self.intended_mode = Mode.LOITER
        self.failsafe_active = False
        self.failsafes.pending = None
        self._landed_t = None
        self._touch_t = None
        if self.motion.on_ground:
            self.landed_state = LandedState.ON_GROUND
            self._set_idle()
        else:
            self._nav = NavState.FALL  # motors off in the air
            self.motion.hctrl = False
        if self.mission_run.state == MissionState.ACTIVE:
            self.mission_run.state = MissionState.PAUSED

    def cmd_disarm(self, force: bool = False) -> MavResult:
        """COMPONENT_ARM_DISARM(0): refused in the air unless forced (forced: the motors stop, it falls)."""
        if not self.armed:
            return MavResult.ACCEPTED
        if not self.motion.on_ground and not force:
            return MavResult.DENIED
        self._disarm("Disarmed by external command")
        return MavResult.ACCEPTED

    def cmd_takeoff(self, alt_rel: float | None = None) -> MavResult:
        """NAV_TAKEOFF to alt_rel metres above home (None: MIS_TAKEOFF_ALT). Needs armed, landed, GPS."""
        self._load_params()
        if alt_rel is not None and not (_finite(alt_rel) and 0.0 < alt_rel <= 10000.0):
            return MavResult.DENIED
        if not self.armed or not self._can_navigate():
            return MavResult.DENIED
        if not (self.motion.on_ground and self._nav is NavState.IDLE):
            return MavResult.DENIED
        if alt_rel is None:
            alt_rel = float(self.params["MIS_TAKEOFF_ALT"])
            self._info(f"Using default takeoff altitude: {alt_rel:.1f} m")
        self._user_mode(Mode.TAKEOFF)
        self._start_takeoff(self.motion.ground_h + alt_rel, for_mission=False)
        return MavResult.ACCEPTED

    def cmd_land(self) -> MavResult:
        """NAV_LAND / AUTO.LAND: descend where the vehicle stops."""
        if not self.armed:
            return MavResult.DENIED
        if self.faults.motor_failed and self.mode == Mode.LAND:
            return MavResult.ACCEPTED
        self._user_mode(Mode.LAND)
        if self.motion.on_ground and self._nav in (NavState.IDLE, NavState.TAKEOFF):
            self._set_idle()
            self._landed_t = self.t  # already down: auto-disarm as after a landing
            self.landed_state = LandedState.ON_GROUND
            return MavResult.ACCEPTED
        self._start_land(MOTOR_FAIL_DESCENT_SCALE if self.faults.motor_failed else 1.0)
        return MavResult.ACCEPTED

    def cmd_rtl(self) -> MavResult:
        """AUTO.RTL: climb to the return altitude if lower, fly home, land (all in RTL mode)."""
        self._load_params()
        if not self._in_flight() or not self._can_navigate() or self._nav in (NavState.IDLE, NavState.FALL):
            return MavResult.DENIED
        self._user_mode(Mode.RTL)
        self._start_rtl(failsafe=False)
        return MavResult.ACCEPTED

    def cmd_hold(self) -> MavResult:
        """AUTO.LOITER: brake and hold where the vehicle stops (on the ground: just the mode)."""
        self._load_params()
        if self.armed and not self._can_navigate():
            return MavResult.DENIED
        if not self._in_flight() or self._nav in (NavState.IDLE, NavState.FALL):
            if self._nav is NavState.FALL:
                return MavResult.DENIED
            self._user_mode(Mode.LOITER)
            if self._nav is not NavState.IDLE:
                self._set_idle()
            return MavResult.ACCEPTED
        self._user_mode(Mode.LOITER)
        self._clear_behaviour()
        self._start_hold(self.motion.north, self.motion.east, self.motion.height)
        self.motion.brake()
        return MavResult.ACCEPTED

    def cmd_set_mode(self, mode: Mode) -> MavResult:
        """DO_SET_MODE with a PX4 custom mode. Modes needing RC or offboard input are refused."""
        if mode not in USER_MODES:
            return MavResult.DENIED
        if mode == Mode.LOITER:
            return self.cmd_hold()
        if mode == Mode.RTL:
            return self.cmd_rtl()
        if mode == Mode.LAND:
            return self.cmd_land()
        if mode == Mode.TAKEOFF:
            return self.cmd_takeoff(None)
        if mode == Mode.MISSION:
            return self.cmd_mission_start()
        # ORBIT without parameters: circle around the current position at a default radius
        return self.cmd_orbit(ORBIT_DEFAULT_RADIUS_M, None, 0, None, None)

    def cmd_reposition(
        self,
        lat: float,
        lon: float,
        alt_amsl: float | None,
        speed: float | None,
        yaw_deg: float | None = None,
    ) -> MavResult:
        """DO_REPOSITION: go to a point and hold there, in AUTO.LOITER like PX4.

        speed None (or not positive) resets to MPC_XY_CRUISE; alt None keeps the current height;
        yaw_deg None faces the direction of travel (an extension: the link layer may pass param4).
        """
        self._load_params()
        if not (_finite(lat) and _finite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return MavResult.DENIED
        if alt_amsl is not None and not _finite(alt_amsl):
            alt_amsl = None
        lifting_off = self.armed and self._nav is NavState.TAKEOFF and self.motion.on_ground
        if (
            not (self._in_flight() or lifting_off)
            or not self._can_navigate()
            or self._nav in (NavState.IDLE, NavState.FALL)
        ):
            return MavResult.DENIED
        h = self.motion.height if alt_amsl is None else alt_amsl - self.home_alt_amsl
        if h < self.motion.ground_h:
            return MavResult.DENIED
        n, e = ne_from_latlon(self.home_lat, self.home_lon, lat, lon)
        self._user_mode(Mode.LOITER)
        if lifting_off:
            # PX4 takes a reposition sent between NAV_TAKEOFF and lift-off: the mode is HOLD at once, the
            # lift-off completes, and the vehicle then flies to the point (climbing on the way).
            self._after_tko = (n, e, max(h, self.motion.ground_h + TAKEOFF_DONE_BELOW_M), speed, yaw_deg)
            return MavResult.ACCEPTED
        self._clear_behaviour()
        self._reposition_to(n, e, h, speed, yaw_deg)
        return MavResult.ACCEPTED

    def _reposition_to(
        self, n: float, e: float, h: float, speed: float | None, yaw_deg: float | None
    ) -> None:
        self._start_hold(n, e, h)
        self._speed_override = None
        if speed is not None and _finite(speed) and speed > 0:
            self._speed_override = min(float(speed), self.motion.vel_max)
        self._speed = self._speed_override or self._p_cruise
        if yaw_deg is not None and _finite(yaw_deg):
            self.motion.yaw_mode = YawMode.FIXED
            self.motion.yaw_fixed = wrap_pi(math.radians(yaw_deg))
        else:
            self.motion.yaw_mode = YawMode.TRAVEL

    def cmd_orbit(
        self, radius: float, velocity: float | None, yaw_behavior: int, lat: float | None, lon: float | None
    ) -> MavResult:
        """DO_ORBIT at the current height (PX4 ignores the altitude MAVSDK sends). Positive radius or velocity
        is clockwise; a negative one reverses. Centre None: the current position."""
        self._load_params()
        if not _finite(radius) or not 1.0 <= abs(radius) <= ORBIT_MAX_RADIUS_M:
            return MavResult.DENIED
        if velocity is not None and not _finite(velocity):
            velocity = None
        if (lat is None) != (lon is None):
            return MavResult.DENIED
        if lat is not None and lon is not None:
            if not (_finite(lat) and _finite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                return MavResult.DENIED
        if not self._in_flight() or not self._can_navigate() or self._nav in (NavState.IDLE, NavState.FALL):
            return MavResult.DENIED
        if lat is not None and lon is not None:
            cn, ce = ne_from_latlon(self.home_lat, self.home_lon, lat, lon)
        else:
            cn, ce = self.motion.north, self.motion.east
        v = ORBIT_DEFAULT_SPEED if velocity is None or velocity == 0 else float(velocity)
        direction = (1.0 if radius > 0 else -1.0) * (1.0 if v > 0 else -1.0)
        r = abs(float(radius))
        v = min(abs(v), self.motion.vel_max, math.sqrt(self.motion.acc_hor * r))
        self._user_mode(Mode.ORBIT)
        self._clear_behaviour()
        self._nav = NavState.ORBIT
        self._orbit.start(cn, ce, r, v * direction, self.motion)
        self.motion.yaw_cn, self.motion.yaw_ce = cn, ce  # YawMode.CENTER faces it
        self._speed_override = None
        yb = int(yaw_behavior) if _finite(yaw_behavior) else 0
        if yb == 0:
            self.motion.yaw_mode = YawMode.CENTER
        elif yb == 1:
            self.motion.yaw_mode = YawMode.FIXED
            self.motion.yaw_fixed = self.motion.yaw
        elif yb == 3:
            self.motion.yaw_mode = YawMode.TANGENT
        else:
            self.motion.yaw_mode = YawMode.KEEP
        return MavResult.ACCEPTED

    def cmd_change_speed(self, speed: float) -> MavResult:
        """DO_CHANGE_SPEED: ground speed for the current go-to, RTL leg, orbit approach or mission."""
        self._load_params()
        if not (_finite(speed) and speed > 0):
            return MavResult.DENIED
        v = min(float(speed), self.motion.vel_max)
        self._speed_override = v
        if self._nav is NavState.POS:
            self._speed = v
        if self._nav is NavState.MISSION or self.mode == Mode.MISSION:
            self.mission_run.speed = v
            if self._nav is NavState.MISSION and self.mission_run.phase is MissionPhase.FLY:
                self.mission_run.corner_v = self._corner_speed()
        return MavResult.ACCEPTED

    def cmd_mission_start(self) -> MavResult:
        """AUTO.MISSION. Disarmed: only the mode (arming then starts it). On the ground armed: climb
        vertically to the first waypoint altitude first (no TAKEOFF mode), like PX4."""
        self._load_params()
        if not self.mission_run.items or not self.global_position_ok:
            return MavResult.DENIED
        if not self.armed:
            if self.faults.motor_failed:
                return MavResult.DENIED
            self._user_mode(Mode.MISSION)
            return MavResult.ACCEPTED
        if not self._can_navigate() or self._nav is NavState.FALL:
            return MavResult.DENIED
        self._user_mode(Mode.MISSION)
        self._start_mission()
        return MavResult.ACCEPTED

    def _start_mission(self) -> None:
        mr = self.mission_run
        self._clear_behaviour()
        if mr.state == MissionState.COMPLETE:
            mr.current = 0
        mr.speed = self._p_cruise
        mr.state = MissionState.ACTIVE
        self._info("Executing Mission")
        self._speed_override = None
        if self.motion.on_ground and self._nav in (NavState.IDLE, NavState.TAKEOFF):
            # climb first, to the first positional item's altitude but at least MIS_TAKEOFF_ALT
            climb = float(self.params["MIS_TAKEOFF_ALT"])
            for it in mr.items[mr.current :]:
                if it.command in POSITION_COMMANDS and it.command != CMD_LAND:
                    climb = max(climb, self._mission_item_target(it)[2])
                    break
            self._info(f"Climb to {climb:.1f} meters above home")
            self._start_takeoff(self.motion.ground_h + climb, for_mission=True)
            return
        self._nav = NavState.MISSION
        self._mission_enter_item()

    def cmd_mission_pause(self) -> MavResult:
        return self.cmd_hold()

    def set_mission(self, items: list[MissionItem]) -> int:
        """Store a mission upload (items kept as received); returns MAV_MISSION_RESULT."""
        if not items:
            self.clear_mission()
            return MISSION_ACCEPTED
        mr = self.mission_run
        result = mr.upload(items)
        if result != MISSION_ACCEPTED:
            return result
        if self._nav is NavState.MISSION:
            mr.state = MissionState.ACTIVE
            self._mission_enter_item()
        elif self._nav is NavState.TAKEOFF and self._tko_for_mission:
            mr.state = MissionState.ACTIVE
        else:
            mr.state = MissionState.NOT_STARTED
        return MISSION_ACCEPTED

    def clear_mission(self) -> None:
        self.mission_run.clear()
        if self._nav is NavState.MISSION:  # nothing left to fly: hold where the vehicle stops
            self._clear_behaviour()
            self._start_hold(self.motion.north, self.motion.east, self.motion.height)
            self.motion.brake()
            self.mode = self.intended_mode = Mode.LOITER
        elif self._nav is NavState.TAKEOFF and self._tko_for_mission:  # the climb becomes a plain takeoff
            self._tko_for_mission = False
            self.mode = self.intended_mode = Mode.TAKEOFF
        elif self.mode == Mode.MISSION:
            self.mode = self.intended_mode = Mode.LOITER

    def set_mission_current(self, seq: int) -> MavResult:
        """MISSION_SET_CURRENT / DO_SET_MISSION_CURRENT: continue from item seq."""
        mr = self.mission_run
        if not mr.items or not 0 <= seq < len(mr.items):
            return MavResult.DENIED
        mr.current = seq
        if mr.state == MissionState.COMPLETE:
            mr.state = MissionState.NOT_STARTED if self._nav is not NavState.MISSION else MissionState.ACTIVE
        if self._nav is NavState.MISSION:
            self._mission_enter_item()
        return MavResult.ACCEPTED

    def set_fence(self, items: list[MissionItem]) -> int:
        """Store a geofence upload (items kept as received); returns MAV_MISSION_RESULT."""
        if not items:
            self.clear_fence()
            return MISSION_ACCEPTED
        result = self.geofence.set(items, self.home_lat, self.home_lon)
        if result != MISSION_ACCEPTED:
            return result
        self._load_params()
        return MISSION_ACCEPTED

    def clear_fence(self) -> None:
        self.geofence.clear()
        self._load_params()

    def on_gcs_heartbeat(self) -> None:
        """A GCS HEARTBEAT arrived now."""
        fs = self.failsafes
        if fs.heartbeat(self.t):
            self._info("GCS connection regained")
            if fs.pending is not None and fs.from_link:
                # back within the Hold delay: the condition cleared, so the reaction is dropped (the
                # vehicle keeps holding); an action already taken (RTL/LAND) continues
                fs.pending = None
                self.failsafe_active = False

    # ------------------------------------------------------------------ fault injection
    def inject_gps_loss(self, lost: bool) -> None:
        """GPS lost: no fix, no global position; in the air PX4 lands (descends without position hold,
        drifting with the wind). Restored: fix again, the landing continues unless commanded otherwise."""
        self.faults.gps_lost = bool(lost)
        if lost:
            if not self.global_position_ok:
                return
            self.gps_fix_type = 0
            self.satellites = 0
            self.global_position_ok = False
            if self._in_flight() and self._nav not in (NavState.IDLE, NavState.FALL):
                self.failsafes.pending = None
                self._text(Severity.CRITICAL, "Failsafe activated\t")
                self._start_land()
                self._land_hctrl = False
                self.failsafe_active = True
        else:
            if self.global_position_ok:
                return
            self.gps_fix_type = 3
            self.satellites = 10
            self.global_position_ok = True
            if self._nav is NavState.LAND or (self._nav is NavState.RTL and self._rtl_phase is RtlPhase.LAND):
                self._land_hctrl = True
            self.motion.reset_trajectory()
            if self._nav is NavState.LAND or (self._nav is NavState.RTL and self._rtl_phase is RtlPhase.LAND):
                self.motion.brake()

    def inject_battery(self, pct: float) -> None:
        """Set the remaining charge now; thresholds act from the next step."""
        if _finite(pct):
            self.battery.pct = min(100.0, max(0.0, float(pct)))

    def inject_motor_failure(self) -> None:
        """A motor fails: land now (AUTO.LAND, failsafe), and the vehicle can never be armed again."""
        if self.faults.motor_failed:
            return
        self.faults.motor_failed = True
        if self._in_flight() and self._nav not in (NavState.IDLE, NavState.FALL):
            self.failsafes.pending = None
            self._text(Severity.CRITICAL, "Failsafe activated\t")
            self._start_land(scale=MOTOR_FAIL_DESCENT_SCALE)
            self.failsafe_active = True
            self.intended_mode = Mode.LAND
        elif self.armed:
            self._disarm("Disarmed by external command")

    def set_wind(self, north: float, east: float) -> None:
        if _finite(north) and _finite(east):
            self.motion.wind_n, self.motion.wind_e = float(north), float(east)

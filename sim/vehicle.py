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

Charging is not PX4's (SIH only drains): a vehicle given a `DockCharger` regains charge while it sits
disarmed on the ground within a few metres of that dock, by the dock's model in `dfr.charging`, so that a
simulated day does not ground a fleet whose real docks would have recharged it. Without one (the default,
and every PX4 comparison) the battery behaves exactly as before.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dfr.charging import Charging, charge_after
from sim.flight import plans
from sim.flight.plans import (
    MISSION_ACCEPTED,
    POSITION_COMMANDS,
    RELATIVE_FRAMES,
    Circle,
    FenceShape,
    Polygon,
    checksum,
    local_fence,
    parse_fence,
    validate_mission,
)
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

G = 9.80665

# mission item commands (MAV_CMD)
CMD_WAYPOINT = plans.NAV_WAYPOINT
CMD_LOITER_UNLIM = plans.NAV_LOITER_UNLIM
CMD_LOITER_TIME = plans.NAV_LOITER_TIME
CMD_RTL = plans.NAV_RETURN_TO_LAUNCH
CMD_LAND = plans.NAV_LAND
CMD_TAKEOFF = plans.NAV_TAKEOFF
CMD_CHANGE_SPEED = plans.DO_CHANGE_SPEED

# --- vehicle physics ---------------------------------------------------------------------------------
V_MAX_AIR_AT_45 = 10.1  # m/s, SIH quad top airspeed at MPC_TILTMAX_AIR = 45 deg (response-1km captures)
DRAG_PER_S = G * math.tan(math.radians(45.0)) / V_MAX_AIR_AT_45  # first-order drag at SIH_KDV 1, 1 kg; 1/s
TAU_ATTITUDE_S = 0.3  # tilt (thrust direction) response
TAU_CLIMB_S = 0.3  # vertical speed response

# --- PX4 controller structure (gains tuned on the reference profiles) ------------------------------------
XY_POS_P = 0.95  # MPC_XY_P
XY_VEL_P = 1.8  # MPC_XY_VEL_P_ACC
XY_VEL_I = 0.3  # below PX4's 0.4 on trajectories: reproduces the SIH quad's slow creep to cruise speed
XY_VEL_I_DIRECT = 0.4  # MPC_XY_VEL_I_ACC, with velocity set-points fed straight in (orbit)
# Part of the drag is fed forward so the integrator does not wind up as much as a pure PI loop would: with
# all of it in the integrator the vehicle overshot 8 m/s waypoints by 2.5 m (PX4: ~1 m) and crept back.
DRAG_FEED_FORWARD = 0.15
TRAJ_GAIN = 4.0  # 1/s, how hard the trajectory generator chases a new velocity target
# Holding a point, the integrator relaxes (time constant) to what the wind needs; a plain integrator
# unwinds the drag it held at cruise over ~15 s, a slow creep PX4 does not show after it stops.
HOLD_RELAX_S = 1.5
TIME_STRETCH = 0.5  # 1/m, PX4 slows its trajectory by 50 % per metre of lag (FlightTaskAuto)
Z_TRAJ_GAIN = 3.0
YAW_P = 2.0  # 1/s

# --- timing observed in the captures ---------------------------------------------------------------------
TAKEOFF_DETECT_S = 1.9  # "Takeoff detected" / landed_state TAKEOFF after the takeoff command
TAKEOFF_SPOOL_S = 3.2  # motors spin up before the climb ramp starts (leaves ground 4.6-5.3 s after arm)
TAKEOFF_DONE_BELOW_M = 1.0  # TAKEOFF -> LOITER when this far below the target height
LAND_DETECT_S = 7.0  # touchdown -> "Landing detected" (PX4 SIH: 5.5-7.7 s)
DL_STALE_S = 2.3  # PX4 declares the GCS lost COM_DL_LOSS_T + ~2.3 s after its last HEARTBEAT
MOTOR_FAIL_DESCENT_SCALE = 1.6  # descent speed factor while landing with a failed motor
MAX_STEP_S = 0.025  # longer steps are split (explicit integration, tuned at 0.02 s)
PARAM_REFRESH_S = 0.2  # parameters are re-read at this period (PX4 modules also apply them asynchronously)

# --- battery -------------------------------------------------------------------------------------------
CELLS = 4
CELL_V_FULL = 4.05
CELL_V_EMPTY = 3.5
IDLE_CURRENT_A = 0.4

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
_YAW_KEEP, _YAW_FIXED, _YAW_CENTER, _YAW_TANGENT = (
    YawMode.KEEP,
    YawMode.FIXED,
    YawMode.CENTER,
    YawMode.TANGENT,
)

# Modes a user may select (the others need RC, offboard set-points or are not simulated).
USER_MODES = frozenset({Mode.LOITER, Mode.RTL, Mode.LAND, Mode.MISSION, Mode.TAKEOFF, Mode.ORBIT})
ORBIT_DEFAULT_RADIUS_M = 10.0
ORBIT_DEFAULT_SPEED = 1.0  # PX4 FlightTaskOrbit's default when no velocity is given
ORBIT_MAX_RADIUS_M = 1000.0  # MC_ORBIT_RAD_MAX
ORBIT_CAPTURE_M = 2.0  # approach ends when this close to the circle


DOCK_RADIUS_M = 5.0
"""A landed drone this close to its dock counts as sitting on it (PX4 lands within a metre or two)."""


@dataclass(frozen=True)
class DockCharger:
    """The dock a vehicle belongs to and how it restores the battery (see `dfr.charging`)."""

    lat: float
    lon: float
    model: Charging
    radius_m: float = DOCK_RADIUS_M


def _finite(x: float | None) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _max_speed_from_distance(dist: float, accel: float, b: float, final_speed: float = 0.0) -> float:
    """PX4 math::trajectory::computeMaxSpeedFromDistance with b = 4 a^2 / j precomputed."""
    return 0.5 * (-b + math.sqrt(b * b + 8.0 * accel * dist + 4.0 * final_speed * final_speed))


def _wrap_pi(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class Vehicle:
    """One simulated PX4 quadrotor: state read by the link layer, commands, and `step(dt)`."""

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
        # home and the flat ground the vehicle stands on
        self.home_lat = home_lat
        self.home_lon = home_lon
        self.home_alt_amsl = home_alt_amsl
        self._ground_h = 0.0  # ground height relative to home (home is always set on the ground)
        # kinematic state
        self.north = 0.0
        self.east = 0.0
        self.height = 0.0
        self.vn = 0.0
        self.ve = 0.0
        self.vd = 0.0
        self._yaw = 0.0
        self.heading_deg = 0.0
        self.yawspeed = 0.0
        self._ax = 0.0  # horizontal thrust acceleration (tilt), north/east
        self._ay = 0.0
        self._az = 0.0  # vertical acceleration (for throttle)
        self._on_ground = True
        self.wind_n = float(wind_ne[0]) if _finite(wind_ne[0]) else 0.0
        self.wind_e = float(wind_ne[1]) if _finite(wind_ne[1]) else 0.0
        # trajectory generator (position, velocity, acceleration) and velocity-loop integrator
        self._ptn = self._pte = 0.0
        self._vtn = self._vte = 0.0
        self._atn = self._ate = 0.0
        self._in = self._ie = 0.0
        self._wt = 0.0  # vertical trajectory speed (up) and acceleration
        self._awt = 0.0
        # guidance outputs (desired velocity for the trajectory) and targets
        self._vdn = self._vde = 0.0
        self._wd = 0.0
        self._hctrl = False  # horizontal position control active
        self._direct = False  # velocity set-point straight to the controller (orbit), no trajectory
        self._ffn = self._ffe = 0.0  # feed-forward acceleration in direct mode
        self._tn = self._te = self._th = 0.0
        self._speed = 5.0
        self._vf = 0.0  # speed allowed at the target (mission corners)
        self._braking = False  # stopping first; the hold point is where the vehicle comes to rest
        self._settled = False  # holding a point: the velocity integrator relaxes to the wind's needs
        self._yaw_mode = YawMode.KEEP
        self._yaw_fixed = 0.0
        # autopilot state
        self.armed = False
        self.mode = Mode.LOITER
        self.intended_mode = Mode.LOITER
        self.landed_state = LandedState.ON_GROUND
        self.failsafe_active = False
        self._nav = NavState.IDLE
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
        # orbit
        self._orb_cn = self._orb_ce = self._orb_r = self._orb_v = self._orb_h = 0.0
        self._orb_approach = False
        # mission
        self.mission: list[MissionItem] = []
        self.mission_current = 0
        self.mission_state = MissionState.NO_MISSION
        self.mission_id = 0
        self._mis_phase = MissionPhase.FLY
        self._mis_hold_until = 0.0
        self._mis_speed = 5.0
        self._reached: list[int] = []
        # geofence
        self.fence: list[MissionItem] = []
        self.fence_id = 0
        self._fence_shapes: list[FenceShape] = []
        self._fence_inc: list[Polygon | Circle] = []
        self._fence_exc: list[Polygon | Circle] = []
        self._fence_breached = False
        # failsafes and faults
        self.faults = Faults()
        self.gcs_lost = False
        self._gcs_seen = False
        self._last_gcs_hb = 0.0
        self._fs_pending: FailsafeAction | None = None  # due after a Hold
        self._fs_pending_t = 0.0
        self._fs_from_link = False  # the pending action is the data-link-loss reaction
        self.gps_fix_type = 3
        self.satellites = 10
        self.global_position_ok = True
        # battery
        self.battery_pct = 100.0
        self._bat_level = BatteryLevel.OK  # the highest announced
        self._effort = 0.0
        self.charger: DockCharger | None = None  # set by the fleet when the area gives the dock a model
        self._dock_s = 0.0  # seconds sitting disarmed on the dock (a swap takes a fixed time from landing)
        self._texts: list[StatusText] = []
        self._next_param_t = 0.0
        self._load_params()

    # ------------------------------------------------------------------ derived state (link layer)
    @property
    def boot_time_ms(self) -> int:
        return self._t_us // 1000

    @property
    def lat(self) -> float:
        return latlon_from_ne(self.home_lat, self.home_lon, self.north, self.east)[0]

    @property
    def lon(self) -> float:
        return latlon_from_ne(self.home_lat, self.home_lon, self.north, self.east)[1]

    @property
    def alt_amsl(self) -> float:
        return self.home_alt_amsl + self.height

    @property
    def rel_alt(self) -> float:
        return self.height

    @property
    def groundspeed(self) -> float:
        return math.hypot(self.vn, self.ve)

    @property
    def airspeed(self) -> float:
        return math.hypot(self.vn - self.wind_n, self.ve - self.wind_e)

    @property
    def climb_rate(self) -> float:
        return -self.vd

    @property
    def roll(self) -> float:
        """Bank angle that produces the current horizontal acceleration (rad, right wing down positive)."""
        c, s = math.cos(self._yaw), math.sin(self._yaw)
        return math.atan2(-self._ax * s + self._ay * c, G)

    @property
    def pitch(self) -> float:
        """Pitch angle that produces the current horizontal acceleration (rad, nose up positive)."""
        c, s = math.cos(self._yaw), math.sin(self._yaw)
        return -math.atan2(self._ax * c + self._ay * s, G)

    @property
    def throttle_pct(self) -> float:
        if not self.armed:
            return 0.0
        if self._on_ground:
            return 10.0  # motors idling
        hover = self._p_thr_hover
        tilt = math.hypot(self._ax, self._ay) / G
        thr = hover * math.sqrt(1.0 + tilt * tilt) * (1.0 + self._az / G)
        return max(0.0, min(100.0, thr * 100.0))

    @property
    def battery_voltage_v(self) -> float:
        return CELLS * (CELL_V_EMPTY + (CELL_V_FULL - CELL_V_EMPTY) * self.battery_pct / 100.0)

    @property
    def battery_current_a(self) -> float:
        if not self.armed:
            return IDLE_CURRENT_A
        return self._p_bat_avg_current * self._effort

    # ------------------------------------------------------------------ parameters
    def _load_params(self) -> None:
        """Cache the parameters the hot loop reads (per-step dict lookups would cost more than physics)."""
        p = self.params
        self._p_cruise = max(0.5, p["MPC_XY_CRUISE"])
        self._p_vel_max = max(0.5, p["MPC_XY_VEL_MAX"])
        self._p_acc_hor = max(0.5, p["MPC_ACC_HOR"])
        self._p_jerk = max(0.5, p["MPC_JERK_AUTO"])
        self._p_b_hor = 4.0 * self._p_acc_hor**2 / self._p_jerk
        self._p_acc_up = max(0.5, p["MPC_ACC_UP_MAX"])
        self._p_acc_dn = max(0.5, p["MPC_ACC_DOWN_MAX"])
        self._p_b_up = 4.0 * self._p_acc_up**2 / self._p_jerk
        self._p_b_dn = 4.0 * self._p_acc_dn**2 / self._p_jerk
        tilt = min(max(p["MPC_TILTMAX_AIR"], 5.0), 89.0)
        # SIH's airframe: first-order drag SIH_KDV (N per m/s) on SIH_MASS, and at most 4 x SIH_T_MAX of
        # thrust, of which what lifts the weight is not left for accelerating sideways. At PX4's defaults
        # (1 kg, 1.0, 5 N, 45 deg) the tilt limit binds and the drag is the one tuned on the captures.
        mass = max(0.05, p["SIH_MASS"])
        self._p_drag = DRAG_PER_S * max(0.0, p["SIH_KDV"]) / mass
        thrust_acc = 4.0 * max(0.0, p["SIH_T_MAX"]) / mass
        spare = math.sqrt(thrust_acc * thrust_acc - G * G) if thrust_acc > G else 0.0
        self._p_amax = min(G * math.tan(math.radians(tilt)), spare)
        self._p_up = max(0.1, p["MPC_Z_V_AUTO_UP"])
        self._p_dn = max(0.1, p["MPC_Z_V_AUTO_DN"])
        self._p_tko_speed = max(0.1, p["MPC_TKO_SPEED"])
        self._p_tko_ramp = max(0.0, p["MPC_TKO_RAMP_T"])
        self._p_land_speed = max(0.1, p["MPC_LAND_SPEED"])
        self._p_land_alt1 = p["MPC_LAND_ALT1"]
        self._p_land_alt2 = min(p["MPC_LAND_ALT2"], self._p_land_alt1)
        self._p_land_alt3 = min(p["MPC_LAND_ALT3"], self._p_land_alt2)
        self._p_land_crawl = max(0.05, min(p["MPC_LAND_CRWL"], self._p_land_speed))
        self._p_yaw_rate = math.radians(max(1.0, p["MPC_YAWRAUTO_MAX"]))
        self._p_acc_rad = max(0.1, p["NAV_ACC_RAD"])
        self._p_alt_rad = max(0.1, p["NAV_MC_ALT_RAD"])
        self._p_thr_hover = p["MPC_THR_HOVER"]
        self._p_dl_loss = p["COM_DL_LOSS_T"] + DL_STALE_S
        self._p_fail_act_t = max(0.0, p["COM_FAIL_ACT_T"])
        self._p_disarm_land = p["COM_DISARM_LAND"]
        self._p_disarm_prflt = p["COM_DISARM_PRFLT"]
        self._p_bat_drain = max(1.0, p["SIM_BAT_DRAIN"])
        self._p_bat_min = min(max(p["SIM_BAT_MIN_PCT"], 0.0), 100.0)
        self._p_bat_low = p["BAT_LOW_THR"] * 100.0
        self._p_bat_crit = p["BAT_CRIT_THR"] * 100.0
        self._p_bat_emerg = p["BAT_EMERGEN_THR"] * 100.0
        self._p_bat_avg_current = p["BAT_AVRG_CURRENT"]
        self._p_gf_action = int(p["GF_ACTION"])
        self._p_gf_hor = p["GF_MAX_HOR_DIST"]
        self._p_gf_ver = p["GF_MAX_VER_DIST"]
        self._fence_active = bool(
            self._fence_inc or self._fence_exc or self._p_gf_hor > 0 or self._p_gf_ver > 0
        )
        self._next_param_t = self.t + PARAM_REFRESH_S

    # ------------------------------------------------------------------ outputs
    def _text(self, severity: Severity, text: str) -> None:
        self._texts.append(StatusText(severity, text))

    def _info(self, text: str) -> None:
        self._texts.append(StatusText(Severity.INFO, text + "\t"))

    def pop_status_texts(self) -> list[StatusText]:
        out, self._texts = self._texts, []
        return out

    def pop_mission_items_reached(self) -> list[int]:
        out, self._reached = self._reached, []
        return out

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
        self._physics(dt)
        if self.armed:
            self._drain_battery(dt)
        elif self.charger is not None:
            self._charge(dt)

    def _physics(self, dt: float) -> None:
        """Integrate the trajectory generator, PX4's position/velocity loops and the airframe."""
        vn, ve = self.vn, self.ve
        if self._hctrl:
            if self._direct:
                vcn, vce = self._vdn, self._vde
                afn, afe = self._ffn, self._ffe
                self._ptn, self._pte, self._vtn, self._vte = self.north, self.east, vn, ve
                self._atn, self._ate = afn, afe
            else:
                n, e = self.north, self.east
                ptn, pte, vtn, vte = self._ptn, self._pte, self._vtn, self._vte
                atn, ate = self._atn, self._ate
                epn, epe = ptn - n, pte - e
                dts = dt
                if epn * vtn + epe * vte > 0.0:  # vehicle behind the trajectory: let the trajectory wait
                    ep = math.sqrt(epn * epn + epe * epe)
                    dts = dt * (1.0 - ep * TIME_STRETCH) if ep < 1.0 / TIME_STRETCH else 0.0
                acc = self._p_acc_hor
                adn, ade = (self._vdn - vtn) * TRAJ_GAIN, (self._vde - vte) * TRAJ_GAIN
                m2 = adn * adn + ade * ade
                if m2 > acc * acc:
                    k = acc / math.sqrt(m2)
                    adn, ade = adn * k, ade * k
                djn, dje = adn - atn, ade - ate
                lim = self._p_jerk * dts
                m2 = djn * djn + dje * dje
                if m2 > lim * lim:
                    k = lim / math.sqrt(m2) if m2 > 0.0 else 0.0
                    djn, dje = djn * k, dje * k
                atn += djn
                ate += dje
                vtn += atn * dts
                vte += ate * dts
                ptn += vtn * dts
                pte += vte * dts
                self._ptn, self._pte, self._vtn, self._vte = ptn, pte, vtn, vte
                self._atn, self._ate = atn, ate
                vcn = vtn + XY_POS_P * (ptn - n)
                vce = vte + XY_POS_P * (pte - e)
                vmax = self._p_vel_max
                m2 = vcn * vcn + vce * vce
                if m2 > vmax * vmax:
                    k = vmax / math.sqrt(m2)
                    vcn, vce = vcn * k, vce * k
                afn, afe = atn, ate
            evn, eve = vcn - vn, vce - ve
            ki = XY_VEL_I_DIRECT if self._direct else XY_VEL_I
            kff = DRAG_FEED_FORWARD * self._p_drag
            acn = afn + XY_VEL_P * evn + self._in + kff * (vcn - self.wind_n)
            ace = afe + XY_VEL_P * eve + self._ie + kff * (vce - self.wind_e)
            amax = self._p_amax
            m2 = acn * acn + ace * ace
            if m2 > amax * amax:
                k = amax / math.sqrt(m2)
                acn, ace = acn * k, ace * k
                if evn * self._in + eve * self._ie < 0.0:  # anti-windup: only unwind while saturated
                    self._in += ki * evn * dt
                    self._ie += ki * eve * dt
            else:
                self._in += ki * evn * dt
                self._ie += ki * eve * dt
            if self._settled:
                need = -(1.0 - DRAG_FEED_FORWARD) * self._p_drag
                k = dt / HOLD_RELAX_S
                self._in += (need * self.wind_n - self._in) * k
                self._ie += (need * self.wind_e - self._ie) * k
        else:
            acn = ace = 0.0
        ax = self._ax + (acn - self._ax) * (dt / TAU_ATTITUDE_S)
        ay = self._ay + (ace - self._ay) * (dt / TAU_ATTITUDE_S)
        self._ax, self._ay = ax, ay

        # vertical: trajectory speed follows the desired climb rate, the airframe follows the trajectory
        if self._nav is _FALL:
            vu = -self.vd + (-G - DRAG_PER_S * -self.vd) * dt
            self._az = -G
        else:
            wt = self._wt
            awd = (self._wd - wt) * Z_TRAJ_GAIN
            if awd > self._p_acc_up:
                awd = self._p_acc_up
            elif awd < -self._p_acc_dn:
                awd = -self._p_acc_dn
            lim = self._p_jerk * dt
            awt = self._awt
            if awd - awt > lim:
                awt += lim
            elif awd - awt < -lim:
                awt -= lim
            else:
                awt = awd
            wt += awt * dt
            self._wt, self._awt = wt, awt
            vu0 = -self.vd
            vu = vu0 + (wt - vu0) * (dt / TAU_CLIMB_S)
            self._az = (vu - vu0) / dt if dt > 0 else 0.0

        if self._on_ground:
            if vu > 0.0 and self.armed and self._nav is not _FALL:
                self._on_ground = False  # lift-off
                self._touch_t = None
                self._reset_trajectory()
            else:
                self.vn = self.ve = self.vd = 0.0
                self._ax = self._ay = 0.0
                self._wt = self._awt = 0.0
                self._yaw_step(dt)
                return
        # airframe: thrust tilt minus first-order drag on the air-relative velocity
        drag = self._p_drag
        vn += (ax - drag * (vn - self.wind_n)) * dt
        ve += (ay - drag * (ve - self.wind_e)) * dt
        self.vn, self.ve = vn, ve
        self.north += vn * dt
        self.east += ve * dt
        h = self.height + vu * dt
        if h <= self._ground_h and vu <= 0.0:
            self._touchdown()
        else:
            self.height = h
            self.vd = -vu
        self._yaw_step(dt)

    def _yaw_step(self, dt: float) -> None:
        mode = self._yaw_mode
        if mode is _YAW_KEEP or self._on_ground:
            self.yawspeed = 0.0
            return
        if mode is _YAW_FIXED:
            target = self._yaw_fixed
        elif mode is _YAW_CENTER:
            target = math.atan2(self._orb_ce - self.east, self._orb_cn - self.north)
        elif mode is _YAW_TANGENT:
            if self.vn * self.vn + self.ve * self.ve < 0.25:
                self.yawspeed = 0.0
                return
            target = math.atan2(self.ve, self.vn)
        else:  # YawMode.TRAVEL: face the target while far from it (MPC_YAW_MODE 0)
            dn, de = self._tn - self.north, self._te - self.east
            if dn * dn + de * de < self._p_acc_rad * self._p_acc_rad:
                self.yawspeed = 0.0
                return
            target = math.atan2(de, dn)
        err = _wrap_pi(target - self._yaw)
        rate = err * YAW_P
        lim = self._p_yaw_rate
        rate = lim if rate > lim else (-lim if rate < -lim else rate)
        self.yawspeed = rate
        self._yaw = _wrap_pi(self._yaw + rate * dt)
        self.heading_deg = math.degrees(self._yaw) % 360.0

    def _touchdown(self) -> None:
        """The vehicle reached the ground while flying."""
        self.height = self._ground_h
        self.vn = self.ve = self.vd = 0.0
        self._ax = self._ay = 0.0
        self._wt = self._awt = 0.0
        self._in = self._ie = 0.0
        self._on_ground = True
        if self._nav is _FALL:  # crashed with motors off: nothing to detect
            self._touch_t = None
            self._set_idle()
            self.landed_state = LandedState.ON_GROUND
            return
        if self._touch_t is None:
            self._touch_t = self.t

    def _reset_trajectory(self) -> None:
        self._ptn, self._pte = self.north, self.east
        self._vtn, self._vte = self.vn, self.ve
        self._atn = self._ate = 0.0

    def _drain_battery(self, dt: float) -> None:
        """Drain over SIM_BAT_DRAIN seconds of hover, more when fast or climbing (effort > 1)."""
        if self._on_ground and self._nav in (_IDLE, _FALL):
            effort = 0.15  # armed, motors idling
        else:
            v_air = math.hypot(self.vn - self.wind_n, self.ve - self.wind_e)
            climb = -self.vd
            effort = 1.0 + 0.5 * (v_air * 0.1) ** 2 + (0.1 * climb if climb > 0.0 else 0.0)
        self._effort = effort
        pct = self.battery_pct - 100.0 * effort * dt / self._p_bat_drain
        floor = self._p_bat_min
        self.battery_pct = pct if pct > floor else min(floor, self.battery_pct)

    def on_dock(self) -> bool:
        """True if the vehicle stands on the ground within its charger's radius of its dock."""
        c = self.charger
        if c is None or not self._on_ground:
            return False
        n, e = ne_from_latlon(self.home_lat, self.home_lon, c.lat, c.lon)
        return math.hypot(n - self.north, e - self.east) <= c.radius_m

    def _charge(self, dt: float) -> None:
        """Disarmed: the dock restores the battery while the vehicle sits on it; elsewhere nothing changes."""
        c = self.charger
        assert c is not None
        if not self.on_dock():
            self._dock_s = 0.0
            return
        if self.battery_pct < 100.0:
            self.battery_pct = charge_after(self.battery_pct, c.model, self._dock_s, dt)
        self._dock_s += dt

    # ------------------------------------------------------------------ supervision (timers, failsafes)
    def _supervise(self) -> None:
        t = self.t
        # data link loss (only once a GCS was ever heard)
        if self._gcs_seen and not self.gcs_lost and t - self._last_gcs_hb > self._p_dl_loss:
            self._on_gcs_lost()
        if self._fs_pending is not None and t >= self._fs_pending_t:
            action, self._fs_pending = self._fs_pending, None
            self._failsafe_action(action)
        if not self.armed:
            return
        # battery thresholds
        pct = self.battery_pct
        if pct <= self._p_bat_low or self._bat_level:
            self._check_battery(pct)
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
        if self.landed_state == LandedState.TAKEOFF and self._nav is not _TAKEOFF and not self._on_ground:
            self.landed_state = LandedState.IN_AIR  # the takeoff was taken over by another command
        if self._fence_active and not self._on_ground and self.landed_state != LandedState.ON_GROUND:
            self._check_fence()

    def _landing_detected(self) -> None:
        self.landed_state = LandedState.ON_GROUND
        self._info("Landing detected")
        self._landed_t = self.t
        self._touch_t = None
        if self._nav is NavState.MISSION:
            if self.mission_current < len(self.mission):
                self._reached.append(self.mission[self.mission_current].seq)
            self._mission_finished(landed=True)
        self._set_idle()

    def _set_idle(self) -> None:
        self._nav = NavState.IDLE
        self._hctrl = False
        self._direct = False
        self._wd = -0.5 if self._on_ground else 0.0
        self._idle_since = self.t

    # ------------------------------------------------------------------ guidance
    def _guide(self) -> None:
        """Turn the current navigation state into desired velocities for the controllers."""
        nav = self._nav
        self._settled = False
        if nav is _POS:
            self._goto_point(self._speed, 0.0)
            self._wd = self._climb_to(self._th)
        elif nav is _MISSION:
            self._guide_mission()
        elif nav is _RTL:
            self._guide_rtl()
        elif nav is _LAND:
            self._guide_land()
        elif nav is _TAKEOFF:
            self._guide_takeoff()
        elif nav is _ORBIT:
            self._guide_orbit()
        elif nav is _IDLE:
            self._hctrl = False
            self._wd = -0.5 if self._on_ground else 0.0
        else:  # _FALL
            self._hctrl = False

    def _goto_point(self, speed: float, final_speed: float) -> None:
        """Desired velocity towards (_tn, _te) from the trajectory position, braking like PX4."""
        self._hctrl = self.global_position_ok and not self._on_ground
        self._direct = False
        if self._braking:
            # stop the trajectory (jerk-limited); hold wherever the vehicle itself comes to rest
            self._vdn = self._vde = 0.0
            vt2 = self._vtn * self._vtn + self._vte * self._vte
            if not self._hctrl or (vt2 < 0.01 and self.vn * self.vn + self.ve * self.ve < 0.04):
                self._braking = False
                self._tn, self._te = self.north, self.east
                self._reset_trajectory()
            return
        dn, de = self._tn - self._ptn, self._te - self._pte
        d = math.sqrt(dn * dn + de * de)
        if d < 1.0 and final_speed == 0.0:
            self._settled = True
        if d < 1e-3:
            self._vdn = self._vde = 0.0
            return
        v = _max_speed_from_distance(d, self._p_acc_hor, self._p_b_hor, final_speed)
        if v > speed:
            v = speed
        k = v / d
        self._vdn, self._vde = dn * k, de * k

    def _climb_to(self, target_h: float) -> float:
        """Desired vertical speed (up) to reach target_h, braking with PX4's vertical limits."""
        dh = target_h - self.height
        if dh > 0.0:
            v = _max_speed_from_distance(dh, self._p_acc_up, self._p_b_up)
            return v if v < self._p_up else self._p_up
        v = _max_speed_from_distance(-dh, self._p_acc_dn, self._p_b_dn)
        return -(v if v < self._p_dn else self._p_dn)

    def _land_speed(self) -> float:
        """PX4's landing speed schedule: MPC_Z_V_AUTO_DN above MPC_LAND_ALT1, MPC_LAND_SPEED below ALT2 and,
        since the SIH quad has a range finder, MPC_LAND_CRWL below MPC_LAND_ALT3."""
        h = self.height - self._ground_h
        a1, a2 = self._p_land_alt1, self._p_land_alt2
        if h >= a1:
            v = self._p_dn
        elif h <= self._p_land_alt3:
            v = self._p_land_crawl
        elif h <= a2 or a1 <= a2:
            v = self._p_land_speed
        else:
            v = self._p_land_speed + (self._p_dn - self._p_land_speed) * (h - a2) / (a1 - a2)
        return v * self._land_scale

    def _guide_land(self) -> None:
        if self._land_hctrl and self.global_position_ok:
            self._goto_point(self._p_cruise, 0.0)
        else:
            self._hctrl = False
        self._wd = -self._land_speed()

    def _guide_takeoff(self) -> None:
        t = self.t - self._tko_t0
        if not self._tko_detected and t >= TAKEOFF_DETECT_S:
            self._tko_detected = True
            self.landed_state = LandedState.TAKEOFF
            self._info("Takeoff detected")
        if t < TAKEOFF_SPOOL_S:
            self._wd = 0.0
            self._hctrl = False
            return
        # PX4 climbs at MPC_TKO_SPEED near the ground and speeds up to MPC_Z_V_AUTO_UP above
        # MPC_LAND_ALT1 (the captures show the climb rate rising gradually between ~10 and ~20 m)
        cap = self._p_tko_speed
        h = self.height - self._ground_h
        a1 = self._p_land_alt1
        if h > a1 > 0.0 and self._p_up > cap:
            cap += (self._p_up - cap) * min(1.0, (h - a1) / a1)
        if self._p_tko_ramp > 0.0:
            cap *= min(1.0, (t - TAKEOFF_SPOOL_S) / self._p_tko_ramp)
        if self._after_tko is not None and self.height - self._ground_h >= TAKEOFF_DONE_BELOW_M:
            pending, self._after_tko = self._after_tko, None
            if not self._tko_detected:
                self._tko_detected = True
                self._info("Takeoff detected")
            self.landed_state = LandedState.IN_AIR
            self._reposition_to(*pending)
            return
        dh = self._tko_h - self.height
        w = _max_speed_from_distance(dh, self._p_acc_up, self._p_b_up) if dh > 0.0 else 0.0
        self._wd = w if w < cap else cap
        self._goto_point(self._p_cruise, 0.0)
        if dh <= TAKEOFF_DONE_BELOW_M:
            self._takeoff_complete()

    def _takeoff_complete(self) -> None:
        if not self._tko_detected:
            self._tko_detected = True
            self._info("Takeoff detected")
        self.landed_state = LandedState.IN_AIR
        if self._tko_for_mission:
            self._nav = NavState.MISSION
            self._mis_phase = MissionPhase.FLY
            cur = self.mission_current
            if cur < len(self.mission) and self.mission[cur].command == CMD_TAKEOFF:
                self._mission_item_done()
            else:
                self._mission_enter_item()
            return
        self._start_hold(self._tn, self._te, self._tko_h)
        self.mode = self.intended_mode = Mode.LOITER

    def _guide_rtl(self) -> None:
        phase = self._rtl_phase
        if phase is _RTL_CLIMB:
            self._goto_point(self._p_cruise, 0.0)
            self._wd = self._climb_to(self._rtl_alt)
            if self.height >= self._rtl_alt - self._p_alt_rad:
                self._rtl_return()
        elif phase is _RTL_RETURN:
            speed = self._speed_override or self._p_cruise
            self._goto_point(speed, 0.0)
            self._wd = self._climb_to(self._rtl_alt)
            if self.north * self.north + self.east * self.east <= self._p_acc_rad * self._p_acc_rad:
                delay = self.params["RTL_LAND_DELAY"]
                descend = self.params["RTL_DESCEND_ALT"]
                if delay == 0.0 or self.height <= descend + self._p_alt_rad:
                    self._rtl_start_land()
                else:
                    self._rtl_phase = _RTL_DESCEND
                    self._th = descend
                    self._yaw_mode = _YAW_KEEP
        elif phase is _RTL_DESCEND:
            self._goto_point(self._p_cruise, 0.0)
            self._wd = self._climb_to(self._th)
            if abs(self.height - self._th) <= self._p_alt_rad:
                delay = self.params["RTL_LAND_DELAY"]
                self._rtl_phase = _RTL_WAIT
                self._rtl_wait_until = math.inf if delay < 0 else self.t + delay
        elif phase is _RTL_WAIT:
            self._goto_point(self._p_cruise, 0.0)
            self._wd = self._climb_to(self._th)
            if self.t >= self._rtl_wait_until:
                self._rtl_start_land()
        else:
            self._guide_land()

    def _rtl_return(self) -> None:
        self._rtl_phase = RtlPhase.RETURN
        self._braking = False
        self._tn = self._te = 0.0
        self._yaw_mode = YawMode.TRAVEL

    def _rtl_start_land(self) -> None:
        self._rtl_phase = RtlPhase.LAND
        self._tn = self._te = 0.0
        self._yaw_mode = YawMode.KEEP
        self._land_scale = 1.0
        self._land_hctrl = True
        self.landed_state = LandedState.LANDING
        self._info("RTL: land at destination")

    def _guide_orbit(self) -> None:
        dn, de = self.north - self._orb_cn, self.east - self._orb_ce
        d = math.sqrt(dn * dn + de * de)
        r = self._orb_r
        self._wd = self._climb_to(self._orb_h)
        if not self.global_position_ok:
            self._hctrl = False
            return
        if self._orb_approach:
            if d < 0.1:  # at the centre: leave along the current heading
                un, ue = math.cos(self._yaw), math.sin(self._yaw)
            else:
                un, ue = dn / d, de / d
            self._tn, self._te = self._orb_cn + un * r, self._orb_ce + ue * r
            self._goto_point(self._speed_override or self._p_cruise, 0.0)
            if abs(d - r) <= ORBIT_CAPTURE_M:
                self._orb_approach = False
            return
        if d < 0.1:
            self._orb_approach = True
            return
        un, ue = dn / d, de / d
        v = self._orb_v  # signed: positive is clockwise seen from above
        corr = r - d
        self._vdn = -ue * v + corr * un
        self._vde = un * v + corr * ue
        cent = v * v / r
        self._ffn, self._ffe = -un * cent, -ue * cent
        self._hctrl = True
        self._direct = True

    # ------------------------------------------------------------------ mission execution
    def _mission_item_target(self, it: MissionItem) -> tuple[float, float, float]:
        """Local (north, east, height) of a positional item; x = y = 0 means the current position."""
        if it.x == 0 and it.y == 0:
            n, e = self.north, self.east
        else:
            n, e = ne_from_latlon(self.home_lat, self.home_lon, it.x / 1e7, it.y / 1e7)
        if it.command == CMD_LAND or not _finite(it.z):
            h = self.height
        elif it.frame in RELATIVE_FRAMES:
            h = it.z
        else:
            h = it.z - self.home_alt_amsl
        return n, e, h

    def _mission_enter_item(self) -> None:
        """Start flying mission item `mission_current` (applying DO items on the way)."""
        while self._current_is_do():
            self._apply_do(self.mission[self.mission_current])
            self.mission_current += 1
        if self.mission_current >= len(self.mission):
            self._mission_finished(landed=False)
            return
        it = self.mission[self.mission_current]
        self._mis_phase = MissionPhase.FLY
        if it.command == CMD_RTL:
            self._reached.append(it.seq)
            self.mission_state = MissionState.COMPLETE
            self._start_rtl(failsafe=False)
            self.mode = self.intended_mode = Mode.RTL
            return
        n, e, h = self._mission_item_target(it)
        if it.command == CMD_TAKEOFF:
            n, e = self.north, self.east
            h = max(h, self.height)
        self._tn, self._te, self._th = n, e, h
        self._vf = self._corner_speed()
        self._yaw_mode = YawMode.TRAVEL
        if it.command == CMD_LAND and it.x == 0 and it.y == 0:  # land here: where the vehicle stops
            self._mission_start_land()
            self._brake()

    def _corner_speed(self) -> float:
        """Speed allowed at the current waypoint so the vehicle can turn onto the next leg (PX4:
        computeMaxSpeedInWaypoint, sqrt(a * r * tan(alpha / 2)) with alpha the angle between the legs)."""
        it = self.mission[self.mission_current]
        if it.command != CMD_WAYPOINT or (_finite(it.param1) and it.param1 > 0):
            return 0.0
        nxt = None
        for j in range(self.mission_current + 1, len(self.mission)):
            c = self.mission[j].command
            if c == CMD_CHANGE_SPEED:
                continue
            if c in (CMD_WAYPOINT, CMD_LOITER_TIME, CMD_LOITER_UNLIM) or (
                c == CMD_LAND and (self.mission[j].x or self.mission[j].y)
            ):
                nxt = self.mission[j]
            break
        if nxt is None:
            return 0.0
        nn, ne_, _ = self._mission_item_target(nxt)
        # legs: previous position (the vehicle) -> waypoint -> next
        an, ae = self.north - self._tn, self.east - self._te
        bn, be = nn - self._tn, ne_ - self._te
        la, lb = math.hypot(an, ae), math.hypot(bn, be)
        if la < 1e-3 or lb < 1e-3:
            return 0.0
        cos_alpha = max(-1.0, min(1.0, (an * bn + ae * be) / (la * lb)))
        alpha = math.acos(cos_alpha)
        if alpha >= math.pi - 1e-3:
            return self._mis_speed
        radius = self._acceptance(it)
        return min(self._mis_speed, math.sqrt(self._p_acc_hor * radius * math.tan(alpha / 2.0)))

    def _acceptance(self, it: MissionItem) -> float:
        if it.command == CMD_WAYPOINT and _finite(it.param2) and it.param2 > 0:
            return float(it.param2)
        return self._p_acc_rad

    def _current_is_do(self) -> bool:
        cur = self.mission_current
        return cur < len(self.mission) and self.mission[cur].command == CMD_CHANGE_SPEED

    def _apply_do(self, it: MissionItem) -> None:
        """DO_CHANGE_SPEED (air or ground speed type) sets the mission cruise speed from here on."""
        speed_type = int(it.param1) if _finite(it.param1) else -1
        if it.command == CMD_CHANGE_SPEED and speed_type in (0, 1) and _finite(it.param2) and it.param2 > 0:
            self._mis_speed = min(float(it.param2), self._p_vel_max)

    def _guide_mission(self) -> None:
        if self.mission_current >= len(self.mission):
            self._mission_finished(landed=False)
            return
        it = self.mission[self.mission_current]
        phase = self._mis_phase
        if phase is _MIS_LAND:
            self._guide_land()
            return
        if phase is _MIS_HOLD:
            self._goto_point(self._mis_speed, 0.0)
            self._wd = self._climb_to(self._th)
            if self.t >= self._mis_hold_until:
                self._mission_item_done()
            return
        self._goto_point(self._mis_speed, self._vf)
        self._wd = self._climb_to(self._th)
        dn, de = self._tn - self.north, self._te - self.east
        rad = self._acceptance(it)
        if dn * dn + de * de <= rad * rad and abs(self._th - self.height) <= max(self._p_alt_rad, 1.0):
            cmd = it.command
            if cmd == CMD_LAND:
                self._mission_start_land()
            elif cmd == CMD_LOITER_UNLIM:
                self._mis_phase = _MIS_HOLD
                self._mis_hold_until = math.inf
                self._yaw_mode = _YAW_KEEP
            elif cmd == CMD_LOITER_TIME or (cmd == CMD_WAYPOINT and _finite(it.param1) and it.param1 > 0):
                self._mis_phase = _MIS_HOLD
                self._mis_hold_until = self.t + float(it.param1)
                self._yaw_mode = _YAW_KEEP
            else:
                self._mission_item_done()

    def _mission_start_land(self) -> None:
        self._mis_phase = MissionPhase.LAND
        self._land_scale = 1.0
        self._land_hctrl = True
        self._yaw_mode = YawMode.KEEP
        self.landed_state = LandedState.LANDING

    def _mission_item_done(self) -> None:
        """The current NAV item is reached: apply the DO items after it, report, go to the next one."""
        last = self.mission[self.mission_current].seq
        self.mission_current += 1
        while self._current_is_do():
            self._apply_do(self.mission[self.mission_current])
            last = self.mission[self.mission_current].seq
            self.mission_current += 1
        self._reached.append(last)
        if self.mission_current >= len(self.mission):
            self.mission_current = len(self.mission) - 1
            self._mission_finished(landed=False)
            return
        self._mission_enter_item()

    def _mission_finished(self, landed: bool) -> None:
        self.mission_state = MissionState.COMPLETE
        self.mission_current = max(0, len(self.mission) - 1)
        if landed or self._nav is not NavState.MISSION:
            return
        self._info("Mission finished, loitering")
        self.mode = self.intended_mode = Mode.LOITER
        self._start_hold(self._tn, self._te, self._th)

    # ------------------------------------------------------------------ starting behaviours
    def _clear_behaviour(self) -> None:
        self._direct = False
        self._braking = False
        self._fs_pending = None
        self._land_scale = 1.0
        self._land_hctrl = True
        self._orb_approach = False
        if self.mission_state == MissionState.ACTIVE and self._nav is NavState.MISSION:
            self.mission_state = MissionState.PAUSED
        if self.landed_state == LandedState.LANDING or (
            self.landed_state == LandedState.TAKEOFF and not self._on_ground
        ):
            self.landed_state = LandedState.IN_AIR

    def _stop_point(self) -> tuple[float, float]:
        """Where the vehicle stops if it brakes now (PX4 computeBrakingDistanceFromVelocity)."""
        vn, ve = self.vn, self.ve
        v = math.hypot(vn, ve)
        if v < 0.1:
            return self.north, self.east
        a, j = self._p_acc_hor, self._p_jerk
        d = v * (v / (2.0 * a) + min(0.6 * j, a) / j)
        return self.north + vn / v * d, self.east + ve / v * d

    def _brake(self) -> None:
        """Stop before holding: PX4's Hold/Land/RTL hold where the vehicle comes to rest (the target below is
        only the predicted stop point, used until the trajectory has stopped)."""
        self._tn, self._te = self._stop_point()
        self._braking = True

    def _start_hold(self, n: float, e: float, h: float) -> None:
        self._braking = False
        self._nav = NavState.POS
        self._tn, self._te, self._th = n, e, h
        self._speed = self._p_cruise
        self._yaw_mode = YawMode.KEEP
        self._direct = False

    def _start_takeoff(self, height: float, for_mission: bool) -> None:
        self._nav = NavState.TAKEOFF
        self._tko_t0 = self.t
        self._tko_h = height
        self._tko_detected = False
        self._tko_for_mission = for_mission
        self._after_tko = None
        self._tn, self._te = self.north, self.east
        self._yaw_mode = YawMode.KEEP
        self._landed_t = None
        self._touch_t = None

    def _start_rtl(self, failsafe: bool) -> None:
        self._clear_behaviour()
        if failsafe:
            self.failsafe_active = True
        self._nav = NavState.RTL
        self.mode = Mode.RTL
        dist = math.hypot(self.north, self.east)
        ret = self.params["RTL_RETURN_ALT"]
        descend = self.params["RTL_DESCEND_ALT"]
        cone = self.params["RTL_CONE_ANG"]
        if 0.0 < cone < 90.0:
            cone_alt = dist / math.tan(math.radians(cone))
            ret = min(ret, max(cone_alt, descend))
        self._rtl_alt = max(self.height, ret)
        amsl = self._rtl_alt + self.home_alt_amsl
        self._info(f"RTL: start return at {amsl:.0f} m ({self._rtl_alt:.0f} m above destination)")
        self._brake()
        self._yaw_mode = YawMode.KEEP
        self._rtl_phase = RtlPhase.CLIMB
        if self.height >= self._rtl_alt - self._p_alt_rad:
            self._rtl_return()

    def _start_land(self, scale: float = 1.0) -> None:
        self._clear_behaviour()
        self._nav = NavState.LAND
        self.mode = Mode.LAND
        self._land_scale = scale
        self._land_hctrl = self.global_position_ok
        self._brake()
        self._yaw_mode = YawMode.KEEP
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
        if self._p_fail_act_t <= 0.0:
            self._failsafe_action(action)
            return
        self._text(
            Severity.CRITICAL, f"Failsafe activated: entering Hold for {self._p_fail_act_t:.0f} seconds\t"
        )
        if self._nav is not NavState.POS:
            self._clear_behaviour()
            self._start_hold(self.north, self.east, self.height)
            self._brake()
            self.mode = Mode.LOITER
        self.failsafe_active = True
        self._fs_pending = action
        self._fs_pending_t = self.t + self._p_fail_act_t
        self._fs_from_link = False

    def _in_flight(self) -> bool:
        return self.armed and not (self._on_ground and self.landed_state == LandedState.ON_GROUND)

    def _on_gcs_lost(self) -> None:
        self.gcs_lost = True  # PX4 sends only an EVENT for this, no STATUSTEXT
        if not self._in_flight() or self._nav in (NavState.IDLE, NavState.FALL):
            return
        act = int(self.params["NAV_DLL_ACT"])
        if act == 1:
            self._clear_behaviour()
            self._start_hold(self.north, self.east, self.height)
            self._brake()
            self.mode = Mode.LOITER
            self.failsafe_active = True
            self._text(Severity.CRITICAL, "Failsafe activated\t")
        elif act == 2:
            if self.mode != Mode.RTL and self.mode != Mode.LAND:
                self._failsafe_hold_then(FailsafeAction.RTL)
                self._fs_from_link = True
        elif act in (3, 5, 6) and self.mode != Mode.LAND:
            self._failsafe_hold_then(FailsafeAction.LAND)
            self._fs_from_link = True

    def _check_battery(self, pct: float) -> None:
        if pct <= self._p_bat_emerg:
            level = BatteryLevel.EMERGENCY
        elif pct <= self._p_bat_crit:
            level = BatteryLevel.CRITICAL
        else:
            level = BatteryLevel.LOW if pct <= self._p_bat_low else BatteryLevel.OK
        old = self._bat_level
        if level <= old:
            self._bat_level = level
            return
        self._bat_level = level
        act = int(self.params["COM_LOW_BAT_ACT"])
        in_air = self._in_flight() and self._nav not in (NavState.IDLE, NavState.FALL)
        if level == BatteryLevel.LOW:
            self._text(Severity.CRITICAL, "Low battery\t")
        if level >= BatteryLevel.CRITICAL and in_air and act:
            self.failsafe_active = True
        if level == BatteryLevel.CRITICAL:
            self._text(Severity.CRITICAL, "Critical battery\t")
            if in_air and act in (1, 3) and self.mode not in (Mode.RTL, Mode.LAND):
                self._failsafe_hold_then(FailsafeAction.RTL)
            elif in_air and act == 2 and self.mode != Mode.LAND:
                self._failsafe_hold_then(FailsafeAction.LAND)
        if level == BatteryLevel.EMERGENCY:
            self._text(Severity.EMERGENCY, "Emergency battery level\t")
            self._text(Severity.CRITICAL, "System does not support shutdown\t")
            if in_air and act in (2, 3) and self.mode != Mode.LAND:
                self._fs_pending = None
                self._failsafe_action(FailsafeAction.LAND)
            elif in_air and act == 1 and self.mode not in (Mode.RTL, Mode.LAND):
                self._fs_pending = None
                self._failsafe_action(FailsafeAction.RTL)

    def _breached(self, n: float, e: float) -> bool:
        for s in self._fence_exc:
            if s.contains(n, e):
                return True
        if self._fence_inc and not any(s.contains(n, e) for s in self._fence_inc):
            return True
        if self._p_gf_hor > 0 and n * n + e * e > self._p_gf_hor * self._p_gf_hor:
            return True
        return self._p_gf_ver > 0 and self.height > self._p_gf_ver

    def _check_fence(self) -> None:
        breached = self._breached(self.north, self.east)
        if breached == self._fence_breached:
            return
        self._fence_breached = breached
        if not breached or self._p_gf_action <= 0:
            return
        self._text(Severity.CRITICAL, "Geofence: approaching or outside geofence")
        act = self._p_gf_action
        if act == 1 or self._nav in (_IDLE, _FALL):
            return
        self._text(Severity.CRITICAL, "Failsafe activated\t")
        if act == 2:
            self._clear_behaviour()
            self._start_hold(self.north, self.east, self.height)
            self.mode = Mode.LOITER
        elif act == 3 and self.global_position_ok:
            self._start_rtl(failsafe=True)
        else:  # 5 Land; 4 (terminate) is treated as Land
            self._start_land()
        self.failsafe_active = True

    # ------------------------------------------------------------------ commands
    def _user_mode(self, mode: Mode) -> None:
        """A mode the user chose: it becomes the intended mode and ends any failsafe state."""
        self.mode = self.intended_mode = mode
        self._fs_pending = None
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
            if self.battery_pct < self._p_bat_crit:
                return MavResult.TEMPORARILY_REJECTED
            if self._fence_active and self._p_gf_action > 0 and self._breached(self.north, self.east):
                return MavResult.DENIED
        self._rebase_home()
        self.armed = True
        self._idle_since = self.t
        self._landed_t = None
        self._touch_t = None
        self._fence_breached = False
        self._bat_level = BatteryLevel.OK
        self.landed_state = LandedState.ON_GROUND
        self._info("Armed by external command")
        if self.mode == Mode.MISSION and self.mission:
            self._start_mission()
        else:
            self._nav = NavState.IDLE
        return MavResult.ACCEPTED

    def _rebase_home(self) -> None:
        """Move home to the current position and shift the local frame with it."""
        n, e = self.north, self.east
        if n or e:
            self.home_lat, self.home_lon = latlon_from_ne(self.home_lat, self.home_lon, n, e)
            self.north = self.east = 0.0
        self.home_alt_amsl += self.height
        self._ground_h -= self.height
        self.height = 0.0
        self._fence_inc, self._fence_exc = local_fence(self._fence_shapes, self.home_lat, self.home_lon)
        self._reset_trajectory()

    def _disarm(self, reason: str) -> None:
        self.armed = False
        self._info(reason)
        self.mode = self.intended_mode = Mode.LOITER
        self.failsafe_active = False
        self._fs_pending = None
        self._landed_t = None
        self._touch_t = None
        if self._on_ground:
            self.landed_state = LandedState.ON_GROUND
            self._set_idle()
        else:
            self._nav = NavState.FALL  # motors off in the air
            self._hctrl = False
        if self.mission_state == MissionState.ACTIVE:
            self.mission_state = MissionState.PAUSED

    def cmd_disarm(self, force: bool = False) -> MavResult:
        """COMPONENT_ARM_DISARM(0): refused in the air unless forced (forced: the motors stop, it falls)."""
        if not self.armed:
            return MavResult.ACCEPTED
        if not self._on_ground and not force:
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
        if not (self._on_ground and self._nav is NavState.IDLE):
            return MavResult.DENIED
        if alt_rel is None:
            alt_rel = float(self.params["MIS_TAKEOFF_ALT"])
            self._info(f"Using default takeoff altitude: {alt_rel:.1f} m")
        self._user_mode(Mode.TAKEOFF)
        self._start_takeoff(self._ground_h + alt_rel, for_mission=False)
        return MavResult.ACCEPTED

    def cmd_land(self) -> MavResult:
        """NAV_LAND / AUTO.LAND: descend where the vehicle stops."""
        if not self.armed:
            return MavResult.DENIED
        if self.faults.motor_failed and self.mode == Mode.LAND:
            return MavResult.ACCEPTED
        self._user_mode(Mode.LAND)
        if self._on_ground and self._nav in (NavState.IDLE, NavState.TAKEOFF):
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
        self._start_hold(self.north, self.east, self.height)
        self._brake()
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
        lifting_off = self.armed and self._nav is NavState.TAKEOFF and self._on_ground
        if (
            not (self._in_flight() or lifting_off)
            or not self._can_navigate()
            or self._nav in (NavState.IDLE, NavState.FALL)
        ):
            return MavResult.DENIED
        h = self.height if alt_amsl is None else alt_amsl - self.home_alt_amsl
        if h < self._ground_h:
            return MavResult.DENIED
        n, e = ne_from_latlon(self.home_lat, self.home_lon, lat, lon)
        self._user_mode(Mode.LOITER)
        if lifting_off:
            # PX4 takes a reposition sent between NAV_TAKEOFF and lift-off: the mode is HOLD at once, the
            # lift-off completes, and the vehicle then flies to the point (climbing on the way).
            self._after_tko = (n, e, max(h, self._ground_h + TAKEOFF_DONE_BELOW_M), speed, yaw_deg)
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
            self._speed_override = min(float(speed), self._p_vel_max)
        self._speed = self._speed_override or self._p_cruise
        if yaw_deg is not None and _finite(yaw_deg):
            self._yaw_mode = YawMode.FIXED
            self._yaw_fixed = _wrap_pi(math.radians(yaw_deg))
        else:
            self._yaw_mode = YawMode.TRAVEL

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
            cn, ce = self.north, self.east
        v = ORBIT_DEFAULT_SPEED if velocity is None or velocity == 0 else float(velocity)
        direction = (1.0 if radius > 0 else -1.0) * (1.0 if v > 0 else -1.0)
        r = abs(float(radius))
        v = min(abs(v), self._p_vel_max, math.sqrt(self._p_acc_hor * r))
        self._user_mode(Mode.ORBIT)
        self._clear_behaviour()
        self._nav = NavState.ORBIT
        self._orb_cn, self._orb_ce, self._orb_r = cn, ce, r
        self._orb_v = v * direction
        self._orb_h = self.height
        self._orb_approach = abs(math.hypot(self.north - cn, self.east - ce) - r) > ORBIT_CAPTURE_M
        self._speed_override = None
        yb = int(yaw_behavior) if _finite(yaw_behavior) else 0
        if yb == 0:
            self._yaw_mode = YawMode.CENTER
        elif yb == 1:
            self._yaw_mode = YawMode.FIXED
            self._yaw_fixed = self._yaw
        elif yb == 3:
            self._yaw_mode = YawMode.TANGENT
        else:
            self._yaw_mode = YawMode.KEEP
        return MavResult.ACCEPTED

    def cmd_change_speed(self, speed: float) -> MavResult:
        """DO_CHANGE_SPEED: ground speed for the current go-to, RTL leg, orbit approach or mission."""
        self._load_params()
        if not (_finite(speed) and speed > 0):
            return MavResult.DENIED
        v = min(float(speed), self._p_vel_max)
        self._speed_override = v
        if self._nav is NavState.POS:
            self._speed = v
        if self._nav is NavState.MISSION or self.mode == Mode.MISSION:
            self._mis_speed = v
            if self._nav is NavState.MISSION and self._mis_phase is MissionPhase.FLY:
                self._vf = self._corner_speed()
        return MavResult.ACCEPTED

    def cmd_mission_start(self) -> MavResult:
        """AUTO.MISSION. Disarmed: only the mode (arming then starts it). On the ground armed: climb
        vertically to the first waypoint altitude first (no TAKEOFF mode), like PX4."""
        self._load_params()
        if not self.mission or not self.global_position_ok:
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
        self._clear_behaviour()
        if self.mission_state == MissionState.COMPLETE:
            self.mission_current = 0
        self._mis_speed = self._p_cruise
        self.mission_state = MissionState.ACTIVE
        self._info("Executing Mission")
        self._speed_override = None
        if self._on_ground and self._nav in (NavState.IDLE, NavState.TAKEOFF):
            # climb first, to the first positional item's altitude but at least MIS_TAKEOFF_ALT
            climb = float(self.params["MIS_TAKEOFF_ALT"])
            for it in self.mission[self.mission_current :]:
                if it.command in POSITION_COMMANDS and it.command != CMD_LAND:
                    climb = max(climb, self._mission_item_target(it)[2])
                    break
            self._info(f"Climb to {climb:.1f} meters above home")
            self._start_takeoff(self._ground_h + climb, for_mission=True)
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
        result = validate_mission(items)
        if result != MISSION_ACCEPTED:
            return result
        self.mission = list(items)
        self.mission_id = checksum(self.mission)
        start = next((i for i, it in enumerate(items) if it.current), 0)
        self.mission_current = start
        if self._nav is NavState.MISSION:
            self.mission_state = MissionState.ACTIVE
            self._mission_enter_item()
        elif self._nav is NavState.TAKEOFF and self._tko_for_mission:
            self.mission_state = MissionState.ACTIVE
        else:
            self.mission_state = MissionState.NOT_STARTED
        return MISSION_ACCEPTED

    def clear_mission(self) -> None:
        self.mission = []
        self.mission_id = 0
        self.mission_current = 0
        self.mission_state = MissionState.NO_MISSION
        if self._nav is NavState.MISSION:  # nothing left to fly: hold where the vehicle stops
            self._clear_behaviour()
            self._start_hold(self.north, self.east, self.height)
            self._brake()
            self.mode = self.intended_mode = Mode.LOITER
        elif self._nav is NavState.TAKEOFF and self._tko_for_mission:  # the climb becomes a plain takeoff
            self._tko_for_mission = False
            self.mode = self.intended_mode = Mode.TAKEOFF
        elif self.mode == Mode.MISSION:
            self.mode = self.intended_mode = Mode.LOITER

    def set_mission_current(self, seq: int) -> MavResult:
        """MISSION_SET_CURRENT / DO_SET_MISSION_CURRENT: continue from item seq."""
        if not self.mission or not 0 <= seq < len(self.mission):
            return MavResult.DENIED
        self.mission_current = seq
        if self.mission_state == MissionState.COMPLETE:
            self.mission_state = (
                MissionState.NOT_STARTED if self._nav is not NavState.MISSION else MissionState.ACTIVE
            )
        if self._nav is NavState.MISSION:
            self._mission_enter_item()
        return MavResult.ACCEPTED

    def set_fence(self, items: list[MissionItem]) -> int:
        """Store a geofence upload (items kept as received); returns MAV_MISSION_RESULT."""
        if not items:
            self.clear_fence()
            return MISSION_ACCEPTED
        result, shapes = parse_fence(items)
        if result != MISSION_ACCEPTED:
            return result
        self.fence = list(items)
        self.fence_id = checksum(self.fence)
        self._fence_shapes = shapes
        self._fence_inc, self._fence_exc = local_fence(shapes, self.home_lat, self.home_lon)
        self._fence_breached = False
        self._load_params()
        return MISSION_ACCEPTED

    def clear_fence(self) -> None:
        self.fence = []
        self.fence_id = 0
        self._fence_shapes = []
        self._fence_inc, self._fence_exc = [], []
        self._fence_breached = False
        self._load_params()

    def on_gcs_heartbeat(self) -> None:
        """A GCS HEARTBEAT arrived now."""
        self._gcs_seen = True
        self._last_gcs_hb = self.t
        if self.gcs_lost:
            self.gcs_lost = False
            self._info("GCS connection regained")
            if self._fs_pending is not None and self._fs_from_link:
                # back within the Hold delay: the condition cleared, so the reaction is dropped (the
                # vehicle keeps holding); an action already taken (RTL/LAND) continues
                self._fs_pending = None
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
                self._fs_pending = None
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
            self._reset_trajectory()
            if self._nav is NavState.LAND or (self._nav is NavState.RTL and self._rtl_phase is RtlPhase.LAND):
                self._brake()

    def inject_battery(self, pct: float) -> None:
        """Set the remaining charge now; thresholds act from the next step."""
        if _finite(pct):
            self.battery_pct = min(100.0, max(0.0, float(pct)))

    def inject_motor_failure(self) -> None:
        """A motor fails: land now (AUTO.LAND, failsafe), and the vehicle can never be armed again."""
        if self.faults.motor_failed:
            return
        self.faults.motor_failed = True
        if self._in_flight() and self._nav not in (NavState.IDLE, NavState.FALL):
            self._fs_pending = None
            self._text(Severity.CRITICAL, "Failsafe activated\t")
            self._start_land(scale=MOTOR_FAIL_DESCENT_SCALE)
            self.failsafe_active = True
            self.intended_mode = Mode.LAND
        elif self.armed:
            self._disarm("Disarmed by external command")

    def set_wind(self, north: float, east: float) -> None:
        if _finite(north) and _finite(east):
            self.wind_n, self.wind_e = float(north), float(east)

"""Motion of the simulated quadrotor: PX4's trajectory generator, position and velocity loops, and airframe.

The navigator (`sim.vehicle`) decides where to go and says so through the set-points here (`goto_point`,
`climb_to`, `wd`, or a velocity straight to the controller for orbits); `Motion.step` then integrates the
chain PX4 runs between a set-point and the motors. It is the simulator's hot loop (50 steps per simulated
second per drone), so it works on plain attributes and locals, and the parameters it reads are cached by
`load` rather than looked up each step.

Why the chain is built like this (numbers from the PX4 SITL captures, see the `sim.vehicle` docstring):
a jerk-limited trajectory (MPC_ACC_HOR, MPC_JERK_AUTO) that waits while the vehicle lags it ("time
stretch"), PX4's computeMaxSpeedFromDistance for braking, a position P loop (MPC_XY_P), a PI velocity loop
(MPC_XY_VEL_P_ACC) whose integrator slowly takes over the drag, and an airframe with first-order drag in
airspeed whose tilt limit gives the SIH quad's top airspeed.
"""

from __future__ import annotations

import enum
import math

from sim.flight.states import YawMode
from sim.params import Params

G = 9.80665

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

# Yaw modes compared in the step loop, bound once (see `sim.flight.states`).
_YAW_KEEP, _YAW_FIXED = YawMode.KEEP, YawMode.FIXED
_YAW_CENTER, _YAW_TANGENT = YawMode.CENTER, YawMode.TANGENT


class Contact(enum.Enum):
    """A change of ground contact in a step, which the navigator's land detector reacts to."""

    LIFTOFF = enum.auto()
    TOUCHDOWN = enum.auto()


def max_speed_from_distance(dist: float, accel: float, b: float, final_speed: float = 0.0) -> float:
    """PX4 math::trajectory::computeMaxSpeedFromDistance with b = 4 a^2 / j precomputed."""
    return 0.5 * (-b + math.sqrt(b * b + 8.0 * accel * dist + 4.0 * final_speed * final_speed))


def wrap_pi(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class Motion:
    """Kinematic state, trajectory and controller state, and the set-points the navigator feeds them.

    Positions are metres from home (north, east, height up); `ground_h` is the flat ground's height.
    """

    # Slots: the step loop reads these well over a hundred times a step, and slot access is the fastest.
    __slots__ = (
        "acc_dn",
        "acc_hor",
        "acc_rad",
        "acc_up",
        "amax",
        "ate",
        "atn",
        "awt",
        "ax",
        "ay",
        "az",
        "b_dn",
        "b_hor",
        "b_up",
        "braking",
        "direct",
        "dn",
        "drag",
        "east",
        "ffe",
        "ffn",
        "ground_h",
        "hctrl",
        "heading_deg",
        "height",
        "i_e",
        "i_n",
        "jerk",
        "north",
        "on_ground",
        "pte",
        "ptn",
        "settled",
        "te",
        "th",
        "tn",
        "up",
        "vd",
        "vde",
        "vdn",
        "ve",
        "vel_max",
        "vn",
        "vte",
        "vtn",
        "wd",
        "wind_e",
        "wind_n",
        "wt",
        "yaw",
        "yaw_ce",
        "yaw_cn",
        "yaw_fixed",
        "yaw_mode",
        "yaw_rate",
        "yawspeed",
    )

    def __init__(self, wind_n: float, wind_e: float) -> None:
        # kinematic state
        self.north = 0.0
        self.east = 0.0
        self.height = 0.0
        self.vn = 0.0
        self.ve = 0.0
        self.vd = 0.0
        self.yaw = 0.0
        self.heading_deg = 0.0
        self.yawspeed = 0.0
        self.ax = 0.0  # horizontal thrust acceleration (tilt), north/east
        self.ay = 0.0
        self.az = 0.0  # vertical acceleration (for throttle)
        self.on_ground = True
        self.ground_h = 0.0  # ground height relative to home (home is always set on the ground)
        self.wind_n = wind_n
        self.wind_e = wind_e
        # trajectory generator (position, velocity, acceleration) and velocity-loop integrator
        self.ptn = self.pte = 0.0
        self.vtn = self.vte = 0.0
        self.atn = self.ate = 0.0
        self.i_n = self.i_e = 0.0
        self.wt = 0.0  # vertical trajectory speed (up) and acceleration
        self.awt = 0.0
        # set-points: desired velocity for the trajectory, or straight to the controller (`direct`)
        self.vdn = self.vde = 0.0
        self.wd = 0.0  # desired vertical speed (up)
        self.hctrl = False  # horizontal position control active
        self.direct = False  # velocity set-point straight to the controller (orbit), no trajectory
        self.ffn = self.ffe = 0.0  # feed-forward acceleration in direct mode
        self.tn = self.te = self.th = 0.0  # target point (north, east, height)
        self.braking = False  # stopping first; the hold point is where the vehicle comes to rest
        self.settled = False  # holding a point: the velocity integrator relaxes to the wind's needs
        self.yaw_mode = YawMode.KEEP
        self.yaw_fixed = 0.0
        self.yaw_cn = self.yaw_ce = 0.0  # the point YawMode.CENTER faces (the orbit centre)

    def load(self, p: Params) -> None:
        """Cache the parameters the step loop reads (per-step dict lookups would cost more than physics)."""
        self.vel_max = max(0.5, p["MPC_XY_VEL_MAX"])
        self.acc_hor = max(0.5, p["MPC_ACC_HOR"])
        self.jerk = max(0.5, p["MPC_JERK_AUTO"])
        self.b_hor = 4.0 * self.acc_hor**2 / self.jerk
        self.acc_up = max(0.5, p["MPC_ACC_UP_MAX"])
        self.acc_dn = max(0.5, p["MPC_ACC_DOWN_MAX"])
        self.b_up = 4.0 * self.acc_up**2 / self.jerk
        self.b_dn = 4.0 * self.acc_dn**2 / self.jerk
        tilt = min(max(p["MPC_TILTMAX_AIR"], 5.0), 89.0)
        # SIH's airframe: first-order drag SIH_KDV (N per m/s) on SIH_MASS, and at most 4 x SIH_T_MAX of
        # thrust, of which what lifts the weight is not left for accelerating sideways. At PX4's defaults
        # (1 kg, 1.0, 5 N, 45 deg) the tilt limit binds and the drag is the one tuned on the captures.
        mass = max(0.05, p["SIH_MASS"])
        self.drag = DRAG_PER_S * max(0.0, p["SIH_KDV"]) / mass
        thrust_acc = 4.0 * max(0.0, p["SIH_T_MAX"]) / mass
        spare = math.sqrt(thrust_acc * thrust_acc - G * G) if thrust_acc > G else 0.0
        self.amax = min(G * math.tan(math.radians(tilt)), spare)
        self.up = max(0.1, p["MPC_Z_V_AUTO_UP"])
        self.dn = max(0.1, p["MPC_Z_V_AUTO_DN"])
        self.yaw_rate = math.radians(max(1.0, p["MPC_YAWRAUTO_MAX"]))
        self.acc_rad = max(0.1, p["NAV_ACC_RAD"])

    # ------------------------------------------------------------------ set-points (called by the navigator)
    def goto_point(self, speed: float, final_speed: float, position_ok: bool) -> None:
        """Desired velocity towards (tn, te) from the trajectory position, braking like PX4."""
        self.hctrl = position_ok and not self.on_ground
        self.direct = False
        if self.braking:
            # stop the trajectory (jerk-limited); hold wherever the vehicle itself comes to rest
            self.vdn = self.vde = 0.0
            vt2 = self.vtn * self.vtn + self.vte * self.vte
            if not self.hctrl or (vt2 < 0.01 and self.vn * self.vn + self.ve * self.ve < 0.04):
                self.braking = False
                self.tn, self.te = self.north, self.east
                self.reset_trajectory()
            return
        dn, de = self.tn - self.ptn, self.te - self.pte
        d = math.sqrt(dn * dn + de * de)
        if d < 1.0 and final_speed == 0.0:
            self.settled = True
        if d < 1e-3:
            self.vdn = self.vde = 0.0
            return
        v = max_speed_from_distance(d, self.acc_hor, self.b_hor, final_speed)
        if v > speed:
            v = speed
        k = v / d
        self.vdn, self.vde = dn * k, de * k

    def line_to(self, speed: float, position_ok: bool) -> None:
        """Desired velocities along the straight 3-D line to (tn, te, th), as PX4's auto trajectory flies a
        go-to: the height changes in proportion to the ground covered (seen on PX4 SITL v1.16: a go-to
        60 m up, 650 m away, sent at 32 m, climbed at ~0.7 m/s while flying at 17 m/s), and whichever axis
        is at its limit slows the other."""
        self.goto_point(speed, 0.0, position_ok)
        w = self.climb_to(self.th)
        dn, de = self.tn - self.ptn, self.te - self.pte
        d = math.sqrt(dn * dn + de * de)
        dh = self.th - self.height
        if self.hctrl and d > 1.0 and abs(dh) > 0.5:
            vh = math.sqrt(self.vdn * self.vdn + self.vde * self.vde)
            w_line = vh * dh / d
            if abs(w_line) <= abs(w):
                w = w_line
            else:
                k = abs(w) / abs(w_line)
                self.vdn *= k
                self.vde *= k
        self.wd = w

    def climb_to(self, target_h: float) -> float:
        """Desired vertical speed (up) to reach target_h, braking with PX4's vertical limits."""
        dh = target_h - self.height
        if dh > 0.0:
            v = max_speed_from_distance(dh, self.acc_up, self.b_up)
            return v if v < self.up else self.up
        v = max_speed_from_distance(-dh, self.acc_dn, self.b_dn)
        return -(v if v < self.dn else self.dn)

    def stop_point(self) -> tuple[float, float]:
        """Where the vehicle stops if it brakes now (PX4 computeBrakingDistanceFromVelocity)."""
        vn, ve = self.vn, self.ve
        v = math.hypot(vn, ve)
        if v < 0.1:
            return self.north, self.east
        a, j = self.acc_hor, self.jerk
        d = v * (v / (2.0 * a) + min(0.6 * j, a) / j)
        return self.north + vn / v * d, self.east + ve / v * d

    def brake(self) -> None:
        """Stop before holding: PX4's Hold/Land/RTL hold where the vehicle comes to rest (the target below is
        only the predicted stop point, used until the trajectory has stopped)."""
        self.tn, self.te = self.stop_point()
        self.braking = True

    def reset_trajectory(self) -> None:
        """Restart the trajectory from where the vehicle is and how it moves (no jump in the set-points)."""
        self.ptn, self.pte = self.north, self.east
        self.vtn, self.vte = self.vn, self.ve
        self.atn = self.ate = 0.0

    # ------------------------------------------------------------------ stepping
    def step(self, dt: float, falling: bool, armed: bool) -> Contact | None:
        """Integrate the trajectory generator, PX4's position/velocity loops and the airframe.

        `falling`: the motors are off in the air (forced disarm). Returns the ground contact that changed.
        """
        vn, ve = self.vn, self.ve
        if self.hctrl:
            if self.direct:
                vcn, vce = self.vdn, self.vde
                afn, afe = self.ffn, self.ffe
                self.ptn, self.pte, self.vtn, self.vte = self.north, self.east, vn, ve
                self.atn, self.ate = afn, afe
            else:
                n, e = self.north, self.east
                ptn, pte, vtn, vte = self.ptn, self.pte, self.vtn, self.vte
                atn, ate = self.atn, self.ate
                epn, epe = ptn - n, pte - e
                dts = dt
                if epn * vtn + epe * vte > 0.0:  # vehicle behind the trajectory: let the trajectory wait
                    ep = math.sqrt(epn * epn + epe * epe)
                    dts = dt * (1.0 - ep * TIME_STRETCH) if ep < 1.0 / TIME_STRETCH else 0.0
                acc = self.acc_hor
                adn, ade = (self.vdn - vtn) * TRAJ_GAIN, (self.vde - vte) * TRAJ_GAIN
                m2 = adn * adn + ade * ade
                if m2 > acc * acc:
                    k = acc / math.sqrt(m2)
                    adn, ade = adn * k, ade * k
                djn, dje = adn - atn, ade - ate
                lim = self.jerk * dts
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
                self.ptn, self.pte, self.vtn, self.vte = ptn, pte, vtn, vte
                self.atn, self.ate = atn, ate
                vcn = vtn + XY_POS_P * (ptn - n)
                vce = vte + XY_POS_P * (pte - e)
                vmax = self.vel_max
                m2 = vcn * vcn + vce * vce
                if m2 > vmax * vmax:
                    k = vmax / math.sqrt(m2)
                    vcn, vce = vcn * k, vce * k
                afn, afe = atn, ate
            evn, eve = vcn - vn, vce - ve
            ki = XY_VEL_I_DIRECT if self.direct else XY_VEL_I
            kff = DRAG_FEED_FORWARD * self.drag
            acn = afn + XY_VEL_P * evn + self.i_n + kff * (vcn - self.wind_n)
            ace = afe + XY_VEL_P * eve + self.i_e + kff * (vce - self.wind_e)
            amax = self.amax
            m2 = acn * acn + ace * ace
            if m2 > amax * amax:
                k = amax / math.sqrt(m2)
                acn, ace = acn * k, ace * k
                if evn * self.i_n + eve * self.i_e < 0.0:  # anti-windup: only unwind while saturated
                    self.i_n += ki * evn * dt
                    self.i_e += ki * eve * dt
            else:
                self.i_n += ki * evn * dt
                self.i_e += ki * eve * dt
            if self.settled:
                need = -(1.0 - DRAG_FEED_FORWARD) * self.drag
                k = dt / HOLD_RELAX_S
                self.i_n += (need * self.wind_n - self.i_n) * k
                self.i_e += (need * self.wind_e - self.i_e) * k
        else:
            acn = ace = 0.0
        ax = self.ax + (acn - self.ax) * (dt / TAU_ATTITUDE_S)
        ay = self.ay + (ace - self.ay) * (dt / TAU_ATTITUDE_S)
        self.ax, self.ay = ax, ay

        # vertical: trajectory speed follows the desired climb rate, the airframe follows the trajectory
        if falling:
            vu = -self.vd + (-G - DRAG_PER_S * -self.vd) * dt
            self.az = -G
        else:
            wt = self.wt
            awd = (self.wd - wt) * Z_TRAJ_GAIN
            if awd > self.acc_up:
                awd = self.acc_up
            elif awd < -self.acc_dn:
                awd = -self.acc_dn
            lim = self.jerk * dt
            awt = self.awt
            if awd - awt > lim:
                awt += lim
            elif awd - awt < -lim:
                awt -= lim
            else:
                awt = awd
            wt += awt * dt
            self.wt, self.awt = wt, awt
            vu0 = -self.vd
            vu = vu0 + (wt - vu0) * (dt / TAU_CLIMB_S)
            self.az = (vu - vu0) / dt if dt > 0 else 0.0

        contact = None
        if self.on_ground:
            if vu > 0.0 and armed and not falling:
                self.on_ground = False  # lift-off
                contact = Contact.LIFTOFF
                self.reset_trajectory()
            else:
                self.vn = self.ve = self.vd = 0.0
                self.ax = self.ay = 0.0
                self.wt = self.awt = 0.0
                self._yaw_step(dt)
                return None
        # airframe: thrust tilt minus first-order drag on the air-relative velocity
        drag = self.drag
        vn += (ax - drag * (vn - self.wind_n)) * dt
        ve += (ay - drag * (ve - self.wind_e)) * dt
        self.vn, self.ve = vn, ve
        self.north += vn * dt
        self.east += ve * dt
        h = self.height + vu * dt
        if h <= self.ground_h and vu <= 0.0:
            self._touchdown()
            contact = Contact.TOUCHDOWN
        else:
            self.height = h
            self.vd = -vu
        self._yaw_step(dt)
        return contact

    def _yaw_step(self, dt: float) -> None:
        mode = self.yaw_mode
        if mode is _YAW_KEEP or self.on_ground:
            self.yawspeed = 0.0
            return
        if mode is _YAW_FIXED:
            target = self.yaw_fixed
        elif mode is _YAW_CENTER:
            target = math.atan2(self.yaw_ce - self.east, self.yaw_cn - self.north)
        elif mode is _YAW_TANGENT:
            if self.vn * self.vn + self.ve * self.ve < 0.25:
                self.yawspeed = 0.0
                return
            target = math.atan2(self.ve, self.vn)
        else:  # YawMode.TRAVEL: face the target while far from it (MPC_YAW_MODE 0)
            dn, de = self.tn - self.north, self.te - self.east
            if dn * dn + de * de < self.acc_rad * self.acc_rad:
                self.yawspeed = 0.0
                return
            target = math.atan2(de, dn)
        err = wrap_pi(target - self.yaw)
        rate = err * YAW_P
        lim = self.yaw_rate
        rate = lim if rate > lim else (-lim if rate < -lim else rate)
        self.yawspeed = rate
        self.yaw = wrap_pi(self.yaw + rate * dt)
        self.heading_deg = math.degrees(self.yaw) % 360.0

    def _touchdown(self) -> None:
        """The vehicle reached the ground while flying: it stops dead and its controllers reset."""
        self.height = self.ground_h
        self.vn = self.ve = self.vd = 0.0
        self.ax = self.ay = 0.0
        self.wt = self.awt = 0.0
        self.i_n = self.i_e = 0.0
        self.on_ground = True

    # ------------------------------------------------------------------ derived state
    def roll(self) -> float:
        """Bank angle that produces the current horizontal acceleration (rad, right wing down positive)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return math.atan2(-self.ax * s + self.ay * c, G)

    def pitch(self) -> float:
        """Pitch angle that produces the current horizontal acceleration (rad, nose up positive)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return -math.atan2(self.ax * c + self.ay * s, G)

    def throttle(self, hover: float) -> float:
        """Collective thrust as a fraction, from the hover throttle and the current accelerations."""
        tilt = math.hypot(self.ax, self.ay) / G
        return hover * math.sqrt(1.0 + tilt * tilt) * (1.0 + self.az / G)

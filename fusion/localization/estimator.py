"""Causal ego poses from IMU, wheel speed and GNSS: the error-state EKF driven message by message.

- IMU samples propagate the filter; after each one the ego pose is emitted (the IMU rate).
- Speed (forward, ego frame) is fused with the non-holonomic constraint (no lateral and no
  vertical velocity of the ego origin) as one 3-D measurement.
- GNSS fixes are converted to ENU in the frame of the first fix (calibration.geodesy), the
  antenna lever arm is applied, the fix time is shifted by the configured GNSS-IMU offset, and
  each fix passes a chi-square (Mahalanobis) gate before it is fused.
- Before the filter starts, the heading is found by fitting the dead-reckoned path (gyro and
  speed) to the first fixes (a 2-D rotation and translation); no pose is emitted before that.

Every input that is not finite, goes back in time, has no fix, a covariance that is not
positive definite, or lies far away is rejected and counted in `counts`, never fused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from calibration import Transform, matrix_to_quaternion, quaternion_multiply
from calibration.geodesy import GeodeticOrigin, enu_rotation, enu_to_enu, geodetic_to_enu
from fusion.localization.eskf import (
    BA,
    BG,
    N_ERR,
    TD,
    TH,
    ErrorStateKalmanFilter,
    NominalState,
    ProcessNoise,
    chi2_quantile,
    skew,
)
from fusion.localization.eskf import P as P_
from fusion.localization.eskf import V as V_
from fusion.localization.measurements import (
    COVARIANCE_UNKNOWN,
    STATUS_NO_FIX,
    GnssFixes,
    ImuSamples,
    SpeedSamples,
)
from fusion.motion.poses import PoseStream

POSE_SOURCE = "gnss-imu"
REJECTIONS = (
    "imu_nonfinite",
    "imu_time_backwards",
    "speed_nonfinite",
    "speed_time_backwards",
    "gnss_no_fix",
    "gnss_nonfinite",
    "gnss_bad_covariance",
    "gnss_time_backwards",
    "gnss_far",
    "gnss_gated",
)


@dataclass(frozen=True)
class LocalizationConfig:
    """Noise, gates and calibration of the pose estimator. Units: m, s, rad."""

    accel_noise: float = 0.01  # m/s^2/sqrt(Hz)
    gyro_noise: float = 5e-4  # rad/s/sqrt(Hz)
    accel_bias_walk: float = 2e-4  # m/s^3/sqrt(Hz)
    gyro_bias_walk: float = 2e-5  # rad/s^2/sqrt(Hz)
    gravity: float = 9.81  # m/s^2
    accel_bias_sigma: float = 0.05  # m/s^2, turn-on bias (1 sigma) when the filter starts
    gyro_bias_sigma: float = 0.001  # rad/s, likewise (an automotive MEMS gyro)
    speed_sigma: float = 0.05  # m/s, forward speed
    nhc_sigma: float = 0.05  # m/s, lateral and vertical velocity of the ego origin
    gnss_sigma: float = 1.5  # m horizontal, used when a fix states no covariance
    gnss_sigma_up: float = 3.0  # m vertical, likewise
    gate_probability: float = 0.999  # chi-square gate of each fix (3 dof); 1.0: no gate
    max_gated_in_a_row: int = 20  # then the filter is re-anchored on the fix (it was lost)
    far_fix_m: float = 1000.0  # a fix this far from the prediction is bad input, not an outlier
    gnss_time_offset_s: float = 0.0  # fix stamp minus the time the position was measured
    # estimate that offset online (a 16th error state, starting from `gnss_time_offset_s` with
    # this sigma, s); 0: the configured offset is held fixed
    time_offset_sigma: float = 0.0
    time_offset_walk: float = 1e-4  # s/sqrt(s), its random walk while estimated
    # dead-reckoned travel over the first fixes before starting: 20 fix sigmas, within these
    init_distance_m: float = 30.0
    init_distance_min_m: float = 5.0
    init_min_fixes: int = 5
    output_smoothing_s: float = 5.0  # s, time constant of the output position; 0: the filter's
    # calibration: IMU -> ego (from the rig or /tf_static) and the antenna in the ego frame
    imu_to_ego: Transform = field(default_factory=lambda: _identity("imu", "ego"))
    antenna_in_ego: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def process_noise(self) -> ProcessNoise:
        return ProcessNoise(
            self.accel_noise,
            self.gyro_noise,
            self.accel_bias_walk,
            self.gyro_bias_walk,
            self.time_offset_walk if self.time_offset_sigma > 0 else 0.0,
        )


def _identity(src: str, dst: str) -> Transform:
    return Transform(np.eye(4), src=src, dst=dst)


@dataclass(frozen=True, eq=False)
class EstimatedPoses:
    """Ego poses (ego -> ENU of the first fix) at the IMU rate with their covariance (T, 6, 6):
    [position (m), attitude (rad, small rotation in the ENU frame)]; what was rejected; the
    ENU origin."""

    timestamps_us: NDArray[np.int64]
    translations: NDArray[np.float64]
    rotations: NDArray[np.float64]
    covariances: NDArray[np.float64]
    counts: dict[str, int]
    origin: GeodeticOrigin | None
    start_us: int | None  # the time the filter started (None: it never did)
    # the GNSS time offset at the end (s) and its sigma (0 when held at the configured value)
    time_offset_s: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.timestamps_us)

    def in_frame(self, origin: GeodeticOrigin) -> EstimatedPoses:
        """The same poses in the ENU frame of `origin` (e.g. a map's), through WGS84: positions
        by `enu_to_enu`, attitudes and covariances turned by the angle between the frames."""
        if self.origin is None or len(self) == 0:
            return replace(self, origin=origin)
        rot = enu_rotation(self.origin, origin)
        q = matrix_to_quaternion(rot)
        j = np.zeros((6, 6))
        j[:3, :3] = j[3:, 3:] = rot
        return replace(
            self,
            translations=enu_to_enu(self.translations, self.origin, origin),
            rotations=np.array([quaternion_multiply(q, r) for r in self.rotations]),
            covariances=j @ self.covariances @ j.T,
            origin=origin,
        )

    def pose_stream(self, max_extrapolation_us: int = 0) -> PoseStream:
        """The poses as the one pose stream of a run (source `gnss-imu`)."""
        return PoseStream(
            self.timestamps_us,
            self.translations,
            self.rotations,
            source=POSE_SOURCE,
            max_extrapolation_us=max_extrapolation_us,
        )


@dataclass
class _Startup:
    """What is gathered before the filter starts: dead reckoning in a frame of unknown heading
    and the fixes, each with the dead-reckoned antenna position at its time."""

    yaw: float = 0.0
    xy: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    fixes: list[NDArray[np.float64]] = field(default_factory=list)  # ENU (3,)
    variances: list[float] = field(default_factory=list)  # horizontal m^2
    dr: list[NDArray[np.float64]] = field(default_factory=list)  # (2,)
    accel_sum: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    accel_n: int = 0
    speed0: float | None = None
    t0_us: int | None = None


class PoseEstimator:
    """Feed messages in receive order (`add_imu`, `add_speed`, `add_fix`); `poses()` returns
    every pose emitted so far. Each pose is final when emitted (causal)."""

    def __init__(self, config: LocalizationConfig | None = None) -> None:
        self.cfg = config or LocalizationConfig()
        cfg = self.cfg
        imu_to_ego = cfg.imu_to_ego
        ego_to_imu = imu_to_ego.inverse()
        self._c = imu_to_ego.rotation  # IMU vectors -> ego vectors
        self._r_ego = ego_to_imu.translation  # ego origin in the IMU frame
        self._imu_in_ego = imu_to_ego.translation
        self._lever = ego_to_imu.apply(np.asarray(cfg.antenna_in_ego, np.float64)[None])[0]
        self._gate = (
            math.inf if cfg.gate_probability >= 1.0 else chi2_quantile(cfg.gate_probability, 3)
        )
        self.counts: dict[str, int] = dict.fromkeys(REJECTIONS, 0)
        self.counts.update(imu_used=0, speed_fused=0, gnss_fused=0, gnss_gate_resets=0)
        self.kf: ErrorStateKalmanFilter | None = None
        self.origin: GeodeticOrigin | None = None
        self.start_us: int | None = None
        self._startup = _Startup()
        self._t_imu: int | None = None
        self._t_kf = 0  # the time the filter state is at
        self._t_speed: int | None = None
        self._t_fix: int | None = None
        self._gyro = np.zeros(3)
        self._accel = np.zeros(3)
        self._speed = 0.0
        self._last_fix_enu: NDArray[np.float64] | None = None
        self._gated_in_a_row = 0
        self._out_t: list[int] = []
        self._out_p: list[NDArray[np.float64]] = []
        self._out_q: list[NDArray[np.float64]] = []
        self._out_c: list[NDArray[np.float64]] = []

    # ---- inputs -------------------------------------------------------------------------

    def add_imu(self, t_us: int, gyro: NDArray[np.float64], accel: NDArray[np.float64]) -> None:
        gyro = np.asarray(gyro, np.float64)
        accel = np.asarray(accel, np.float64)
        if not (np.isfinite(gyro).all() and np.isfinite(accel).all()):
            self.counts["imu_nonfinite"] += 1
            return
        if self._t_imu is not None and t_us <= self._t_imu:
            self.counts["imu_time_backwards"] += 1
            return
        dt = 0.0 if self._t_imu is None else (t_us - self._t_imu) * 1e-6
        self.counts["imu_used"] += 1
        if self.kf is None:
            self._dead_reckon(dt, accel)
        else:
            self._advance(t_us)
        self._t_imu = t_us
        self._gyro, self._accel = gyro, accel
        if self.kf is not None:
            self._emit(t_us)

    def add_speed(self, t_us: int, speed: float) -> None:
        if not math.isfinite(speed):
            self.counts["speed_nonfinite"] += 1
            return
        if self._t_speed is not None and t_us < self._t_speed:
            self.counts["speed_time_backwards"] += 1
            return
        self._t_speed = t_us
        self._speed = float(speed)
        if self.kf is None:
            return
        self._advance(t_us)
        x = self.kf.x
        rot = x.rotation
        w = self._gyro - x.bg
        vb = rot.T @ x.v
        pred = self._c @ (vb + skew(w) @ self._r_ego)
        h = np.zeros((3, N_ERR))
        h[:, V_] = self._c @ rot.T
        h[:, TH] = self._c @ skew(vb)
        h[:, BG] = self._c @ skew(self._r_ego)
        r = np.diag([self.cfg.speed_sigma**2, self.cfg.nhc_sigma**2, self.cfg.nhc_sigma**2])
        self.kf.update(np.array([speed, 0.0, 0.0]) - pred, h, r)
        self.counts["speed_fused"] += 1

    def add_fix(
        self,
        t_us: int,
        lat_deg: float,
        lon_deg: float,
        alt_m: float,
        covariance: NDArray[np.float64] | None = None,
        covariance_type: int = COVARIANCE_UNKNOWN,
        status: int = 0,
    ) -> None:
        """One NavSatFix: `covariance` (3, 3) m^2 in ENU; `covariance_type` 0 (unknown) means
        the configured sigmas are used."""
        if status <= STATUS_NO_FIX:
            self.counts["gnss_no_fix"] += 1
            return
        if not all(math.isfinite(v) for v in (lat_deg, lon_deg, alt_m)) or not (
            -90 <= lat_deg <= 90 and -180 <= lon_deg <= 360
        ):
            self.counts["gnss_nonfinite"] += 1
            return
        cov = self._fix_covariance(covariance, covariance_type)
        if cov is None:
            self.counts["gnss_bad_covariance"] += 1
            return
        if self._t_fix is not None and t_us <= self._t_fix:
            self.counts["gnss_time_backwards"] += 1
            return
        if self.origin is None:
            self.origin = GeodeticOrigin(float(lat_deg), float(lon_deg), float(alt_m))
        enu = geodetic_to_enu(lat_deg, lon_deg, alt_m, self.origin)
        if self.kf is None:
            if (
                self._last_fix_enu is not None
                and np.linalg.norm(enu - self._last_fix_enu)
                > self.cfg.far_fix_m + 50.0 * (t_us - self._t_fix) * 1e-6
            ):
                self.counts["gnss_far"] += 1
                return
            self._t_fix = t_us
            self._last_fix_enu = enu
            self._startup_fix(t_us, enu, cov)
            return
        self._fuse_fix(t_us, enu, cov)

    def _advance(self, t_us: int) -> None:
        """Propagate the filter to `t_us` with the last IMU sample held (never a later one)."""
        if t_us > self._t_kf:
            self.kf.propagate(self._gyro, self._accel, (t_us - self._t_kf) * 1e-6)
            self._t_kf = t_us

    # ---- output -------------------------------------------------------------------------

    @property
    def emitted(self) -> int:
        """Poses emitted so far."""
        return len(self._out_t)

    def last_pose(self) -> tuple[int, Transform] | None:
        """The newest pose emitted (time us, ENU <- ego), or None before the start."""
        if not self._out_t:
            return None
        pose = Transform.from_translation_quaternion(
            self._out_p[-1], self._out_q[-1], src="ego", dst="global"
        )
        return self._out_t[-1], pose

    def poses(self) -> EstimatedPoses:
        n = len(self._out_t)
        return EstimatedPoses(
            np.asarray(self._out_t, np.int64),
            np.asarray(self._out_p, np.float64).reshape(n, 3),
            np.asarray(self._out_q, np.float64).reshape(n, 4),
            np.asarray(self._out_c, np.float64).reshape(n, 6, 6),
            dict(self.counts),
            self.origin,
            self.start_us,
            None if self.kf is None else (self.kf.x.td, math.sqrt(max(self.kf.P[TD, TD], 0.0))),
        )

    def _emit(self, t_us: int) -> None:
        """Append the ego pose at `t_us`. The position is the filter's, carried by its velocity
        and pulled towards the filter's estimate with the time constant `output_smoothing_s`:
        each GNSS correction is spread over time instead of showing as a step (what motion
        compensation over a sweep needs); the offset still pending is added to the covariance.
        """
        x = self.kf.x
        rot = x.rotation
        r_we = rot @ self._c.T
        p_ego = x.p + rot @ self._r_ego
        j = np.zeros((6, N_ERR))
        j[0:3, P_] = np.eye(3)
        j[0:3, TH] = -rot @ skew(self._r_ego)
        j[3:6, TH] = rot  # an IMU-frame small rotation seen in the ENU frame
        cov = j @ self.kf.P @ j.T
        tau = self.cfg.output_smoothing_s
        if tau > 0 and self._out_t:
            dt = (t_us - self._out_t[-1]) * 1e-6
            v_ego = x.v + rot @ (skew(self._gyro - x.bg) @ self._r_ego)
            p_out = self._out_p[-1] + v_ego * dt
            p_out = p_out + min(1.0, dt / tau) * (p_ego - p_out)
            # never further from the filter than twice its horizontal sigma: a precise filter
            # (RTK) is followed closely, a large correction is not smoothed away
            bound = 2.0 * math.sqrt(cov[0, 0] + cov[1, 1])
            off = np.linalg.norm(p_out - p_ego)
            if off > bound:
                p_out = p_ego + (p_out - p_ego) * (bound / off)
            cov[0:3, 0:3] += np.diag((p_out - p_ego) ** 2)
        else:
            p_out = p_ego
        self._out_t.append(t_us)
        self._out_p.append(p_out)
        self._out_q.append(matrix_to_quaternion(r_we))
        self._out_c.append(cov)

    # ---- GNSS ---------------------------------------------------------------------------

    def _fix_covariance(
        self, covariance: NDArray[np.float64] | None, covariance_type: int
    ) -> NDArray[np.float64] | None:
        if covariance is None or covariance_type == COVARIANCE_UNKNOWN:
            s, su = self.cfg.gnss_sigma, self.cfg.gnss_sigma_up
            return np.diag([s * s, s * s, su * su])
        c = np.asarray(covariance, np.float64).reshape(3, 3)
        if not np.isfinite(c).all() or not np.allclose(c, c.T, atol=1e-9 * (1 + np.abs(c).max())):
            return None
        # positive definite: every leading principal minor positive (Sylvester), no LAPACK call
        if c[0, 0] <= 0 or c[0, 0] * c[1, 1] - c[0, 1] * c[1, 0] <= 0 or np.linalg.det(c) <= 0:
            return None
        return c

    def _fuse_fix(self, t_us: int, enu: NDArray[np.float64], cov: NDArray[np.float64]) -> None:
        kf = self.kf
        if np.linalg.norm(enu - kf.x.p) > self.cfg.far_fix_m:  # bad input: nothing is touched
            self.counts["gnss_far"] += 1
            return
        self._advance(t_us)
        x = kf.x
        rot = x.rotation
        lag = (self._t_kf - t_us) * 1e-6 + x.td
        pred = x.p + rot @ self._lever - x.v * lag
        residual = enu - pred
        h = np.zeros((3, N_ERR))
        h[:, P_] = np.eye(3)
        h[:, V_] = -lag * np.eye(3)
        h[:, TH] = -rot @ skew(self._lever)
        h[:, TD] = -x.v
        self._t_fix = t_us
        if kf.mahalanobis2(residual, h, cov) > self._gate:
            self._gated_in_a_row += 1
            if self._gated_in_a_row < self.cfg.max_gated_in_a_row:
                self.counts["gnss_gated"] += 1
                return
            # every fix for a while disagrees: the filter is lost, not the fixes
            kf.P[P_, P_] += cov
            kf.P[V_, V_] += np.eye(3)
            self.counts["gnss_gate_resets"] += 1
        self._gated_in_a_row = 0
        kf.update(residual, h, cov)
        self.counts["gnss_fused"] += 1

    # ---- start-up -----------------------------------------------------------------------

    def _dead_reckon(self, dt: float, accel: NDArray[np.float64]) -> None:
        su = self._startup
        yaw_rate = float((self._c @ self._gyro)[2])
        mid = su.yaw + 0.5 * yaw_rate * dt
        su.xy = su.xy + self._speed * dt * np.array([math.cos(mid), math.sin(mid)])
        su.yaw += yaw_rate * dt
        if su.t0_us is not None:
            if su.accel_n == 0:
                su.speed0 = self._speed  # the speed when gravity starts to be averaged
            su.accel_sum += accel
            su.accel_n += 1

    def _startup_fix(self, t_us: int, enu: NDArray[np.float64], cov: NDArray[np.float64]) -> None:
        su = self._startup
        if su.t0_us is None:
            su.t0_us = t_us
        ant = self._c @ self._lever + self._imu_in_ego  # the antenna in the ego frame
        c, s = math.cos(su.yaw), math.sin(su.yaw)
        su.fixes.append(enu)
        su.variances.append(0.5 * (cov[0, 0] + cov[1, 1]))
        # where the antenna was when the fix was measured: the configured latency back
        back = self._speed * self.cfg.gnss_time_offset_s
        su.dr.append(
            su.xy + np.array([c * (ant[0] - back) - s * ant[1], s * (ant[0] - back) + c * ant[1]])
        )
        travel = np.linalg.norm(np.asarray(su.dr) - su.dr[0], axis=1).max()
        need = min(
            self.cfg.init_distance_m,
            max(self.cfg.init_distance_min_m, 20 * math.sqrt(su.variances[0])),
        )
        if len(su.fixes) >= self.cfg.init_min_fixes and travel >= need:
            self._start(t_us)

    def _start(self, t_us: int) -> None:
        """Fit dead reckoning to the fixes (2-D Procrustes), then start the filter."""
        su = self._startup
        cfg = self.cfg
        g = np.asarray(su.fixes)
        d = np.asarray(su.dr)
        sigma = math.sqrt(float(np.mean(su.variances)))
        psi0, r0, shift = _fit_2d(d, g[:, :2])
        # the start-up fixes pass no gate: drop the ones the fit does not explain (multipath),
        # then fit again on the rest
        resid = np.linalg.norm(g[:, :2] - (d @ r0.T + shift), axis=1)
        keep = resid <= 3.0 * float(np.median(resid)) + 3.0 * sigma
        if 3 <= keep.sum() < len(keep):
            self.counts["gnss_gated"] += int((~keep).sum())
            g, d = g[keep], d[keep]
            psi0, r0, shift = _fit_2d(d, g[:, :2])
        dc = d - d.mean(0)
        yaw = psi0 + su.yaw
        xy = r0 @ su.xy + shift
        ant = self._c @ self._lever + self._imu_in_ego
        z = float(g[:, 2].mean()) - ant[2]

        # roll and pitch from gravity: the mean specific force less the ego's own acceleration
        span = max((t_us - su.t0_us) * 1e-6, 1e-3)
        f = self._c @ (su.accel_sum / max(su.accel_n, 1))
        f = f - np.array([(self._speed - (su.speed0 or 0.0)) / span, 0.0, 0.0])
        roll = math.atan2(f[1], f[2]) if su.accel_n else 0.0
        pitch = math.atan2(-f[0], math.hypot(f[1], f[2])) if su.accel_n else 0.0
        r_we = _rotation_zyx(yaw, pitch, roll)
        rot = r_we @ self._c  # IMU -> world
        p_imu = np.array([xy[0], xy[1], z]) + r_we @ self._imu_in_ego
        v = r_we @ np.array([self._speed, 0.0, 0.0])

        var_h = float(np.mean(su.variances))
        spread = float((dc**2).sum())
        sigma_yaw = 3.0 * math.sqrt(var_h / max(spread, 1e-6)) + math.radians(0.5)
        p0 = np.zeros((N_ERR, N_ERR))
        # the fit also carries the dead reckoning's own error: a floor of 10 cm
        var_p = var_h + 0.1**2
        p0[P_, P_] = np.diag([var_p, var_p, 4 * var_p])
        p0[V_, V_] = np.eye(3) * 0.5**2
        p0[TH, TH] = np.diag([math.radians(2) ** 2, math.radians(2) ** 2, sigma_yaw**2])
        p0[BA, BA] = np.eye(3) * cfg.accel_bias_sigma**2
        p0[BG, BG] = np.eye(3) * cfg.gyro_bias_sigma**2
        p0[TD, TD] = cfg.time_offset_sigma**2  # 0: the configured offset, held
        state = NominalState(
            p=p_imu,
            v=v,
            q=matrix_to_quaternion(rot),
            ba=np.zeros(3),
            bg=np.zeros(3),
            td=cfg.gnss_time_offset_s,
        )
        self.kf = ErrorStateKalmanFilter(state, p0, cfg.process_noise, cfg.gravity)
        self.start_us = self._t_imu if self._t_imu is not None else t_us
        self._t_kf = self.start_us
        self._startup = _Startup()


def _fit_2d(
    d: NDArray[np.float64], g: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """The rotation angle, matrix and translation that best map points `d` (N, 2) onto `g`
    (least squares, 2-D Procrustes without scale)."""
    gc, dc = g - g.mean(0), d - d.mean(0)
    psi = math.atan2(
        float((dc[:, 0] * gc[:, 1] - dc[:, 1] * gc[:, 0]).sum()), float((dc * gc).sum())
    )
    c, s = math.cos(psi), math.sin(psi)
    r = np.array([[c, -s], [s, c]])
    return psi, r, g.mean(0) - r @ d.mean(0)


def _rotation_zyx(yaw: float, pitch: float, roll: float) -> NDArray[np.float64]:
    cy, sy, cp, sp, cr, sr = (
        math.cos(yaw),
        math.sin(yaw),
        math.cos(pitch),
        math.sin(pitch),
        math.cos(roll),
        math.sin(roll),
    )
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


def estimate_poses(
    imu: ImuSamples,
    gnss: GnssFixes,
    speed: SpeedSamples,
    config: LocalizationConfig | None = None,
) -> EstimatedPoses:
    """Run the estimator over whole streams in receive order. At equal stamps the fix and the
    speed come before the IMU sample, so the pose at t uses every message stamped <= t."""
    est = PoseEstimator(config)
    # stable merge by (time, kind): the input order within each stream is kept, so a stamp
    # that goes backwards reaches the estimator as it was logged (and is rejected there)
    keys = [(int(t), 0, i) for i, t in enumerate(gnss.timestamps_us)] + [
        (int(t), 1, i) for i, t in enumerate(speed.timestamps_us)
    ]
    keys += [(int(t), 2, i) for i, t in enumerate(imu.timestamps_us)]
    for _, kind, i in _stream_order(keys):
        if kind == 0:
            est.add_fix(
                int(gnss.timestamps_us[i]),
                float(gnss.lat_deg[i]),
                float(gnss.lon_deg[i]),
                float(gnss.alt_m[i]),
                gnss.covariance[i],
                int(gnss.covariance_type[i]),
                int(gnss.status[i]),
            )
        elif kind == 1:
            est.add_speed(int(speed.timestamps_us[i]), float(speed.speed[i]))
        else:
            est.add_imu(int(imu.timestamps_us[i]), imu.gyro[i], imu.accel[i])
    return est.poses()


def _stream_order(keys: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Merge the streams by time, each stream kept in its own order: a message whose stamp went
    backwards stays where it was received, after its predecessor."""
    by_kind: dict[int, list[tuple[int, int, int]]] = {0: [], 1: [], 2: []}
    for k in keys:
        by_kind[k[1]].append(k)
    for kind, lst in by_kind.items():
        # the receive time of each message: the running max of the stamps before it
        run = -(2**63)
        fixed = []
        for t, kd, i in lst:
            run = max(run, t)
            fixed.append((run, kd, i))
        by_kind[kind] = fixed
    merged = by_kind[0] + by_kind[1] + by_kind[2]
    merged.sort(key=lambda k: (k[0], k[1], k[2]))
    return merged

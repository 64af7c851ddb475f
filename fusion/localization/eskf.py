"""The error-state Kalman filter core: nominal state, IMU propagation, one gated update.

Nominal state: position p and velocity v of the IMU in the world (ENU) frame (m, m/s), the
attitude q (w, x, y, z) of IMU -> world, accelerometer bias (m/s^2) and gyro bias (rad/s) in
the IMU frame, and the GNSS time offset td (s: fix stamp minus the time the antenna was
there). The error state (16) is [dp, dv, dtheta, dba, dbg, dtd]; dtheta is a small rotation
in the IMU frame (R_true = R exp([dtheta]x)), as in Sola, "Quaternion kinematics for the
error-state Kalman filter" (2017), sections 5 and 7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration import quaternion_from_rotvec, quaternion_multiply, quaternion_to_matrix

N_ERR = 16
P, V, TH, BA, BG = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12), slice(12, 15)
TD = 15  # the GNSS time offset: constant, or a slow random walk when it is estimated


def skew(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """[v]x: skew(v) @ w == cross(v, w)."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def inverse3(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of a 3x3 matrix by its adjugate: for the many tiny solves of the filter, where
    LAPACK's call overhead (and its threads on a busy machine) cost more than the arithmetic."""
    a, b, c = m[0]
    d, e, f = m[1]
    g, h, i = m[2]
    co = np.array(
        [
            [e * i - f * h, c * h - b * i, b * f - c * e],
            [f * g - d * i, a * i - c * g, c * d - a * f],
            [d * h - e * g, b * g - a * h, a * e - b * d],
        ]
    )
    det = a * co[0, 0] + b * co[1, 0] + c * co[2, 0]
    return co / det


def chi2_quantile(probability: float, dof: int) -> float:
    """The chi-square quantile for 1 to 3 degrees of freedom, by bisection on the closed-form
    CDF (1: erf(sqrt(x/2)); 2: 1 - exp(-x/2); 3: erf(sqrt(x/2)) - sqrt(2x/pi) exp(-x/2))."""
    if not 0.0 < probability < 1.0 or dof not in (1, 2, 3):
        raise ValueError(f"chi-square quantile: need 0 < p < 1, dof 1..3; got {probability}, {dof}")

    def cdf(x: float) -> float:
        if dof == 1:
            return math.erf(math.sqrt(x / 2))
        if dof == 2:
            return 1.0 - math.exp(-x / 2)
        return math.erf(math.sqrt(x / 2)) - math.sqrt(2 * x / math.pi) * math.exp(-x / 2)

    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < probability else (lo, mid)
    return 0.5 * (lo + hi)


@dataclass
class NominalState:
    p: NDArray[np.float64]
    v: NDArray[np.float64]
    q: NDArray[np.float64]
    ba: NDArray[np.float64]
    bg: NDArray[np.float64]
    td: float = 0.0

    @property
    def rotation(self) -> NDArray[np.float64]:
        return quaternion_to_matrix(self.q)


@dataclass(frozen=True)
class ProcessNoise:
    """Continuous-time densities: accel (m/s^2/sqrt(Hz)), gyro (rad/s/sqrt(Hz)), bias random
    walks (m/s^3/sqrt(Hz), rad/s^2/sqrt(Hz))."""

    accel: float
    gyro: float
    accel_bias_walk: float
    gyro_bias_walk: float
    time_offset_walk: float = 0.0  # s/sqrt(s), of the GNSS time offset (0: constant)


class ErrorStateKalmanFilter:
    """Propagates with IMU samples and corrects with any linearized measurement. Mutable:
    the estimator owns one and copies out the poses it emits."""

    def __init__(
        self,
        state: NominalState,
        covariance: NDArray[np.float64],
        noise: ProcessNoise,
        gravity: float,
    ) -> None:
        if covariance.shape != (N_ERR, N_ERR):
            raise ValueError(f"covariance must be {N_ERR}x{N_ERR}, got {covariance.shape}")
        self.x = state
        self.P = covariance.copy()
        self.noise = noise
        self.g = np.array([0.0, 0.0, -gravity])

    def propagate(self, gyro: NDArray[np.float64], accel: NDArray[np.float64], dt: float) -> None:
        """One IMU step of `dt` s with angular rate (rad/s) and specific force (m/s^2), IMU
        frame, held constant over the step."""
        if dt <= 0.0:
            return
        x = self.x
        rot = x.rotation
        a = accel - x.ba
        w = gyro - x.bg
        acc_w = rot @ a + self.g
        x.p = x.p + x.v * dt + 0.5 * acc_w * dt * dt
        x.v = x.v + acc_w * dt
        dq = quaternion_from_rotvec(w * dt)
        q = quaternion_multiply(x.q, dq)
        x.q = q / np.linalg.norm(q)

        f = np.eye(N_ERR)
        f[P, V] = np.eye(3) * dt
        f[V, TH] = -rot @ skew(a) * dt
        f[V, BA] = -rot * dt
        f[TH, TH] = quaternion_to_matrix(dq).T
        f[TH, BG] = -np.eye(3) * dt
        n = self.noise
        qd = np.zeros(N_ERR)
        qd[V] = n.accel**2 * dt
        qd[TH] = n.gyro**2 * dt
        qd[BA] = n.accel_bias_walk**2 * dt
        qd[BG] = n.gyro_bias_walk**2 * dt
        qd[TD] = n.time_offset_walk**2 * dt
        self.P = f @ self.P @ f.T + np.diag(qd)

    def mahalanobis2(
        self, residual: NDArray[np.float64], h: NDArray[np.float64], r: NDArray[np.float64]
    ) -> float:
        """Squared Mahalanobis distance of `residual` (3,) under the innovation covariance."""
        s = h @ self.P @ h.T + r
        return float(residual @ inverse3(s) @ residual)

    def update(
        self, residual: NDArray[np.float64], h: NDArray[np.float64], r: NDArray[np.float64]
    ) -> None:
        """Correct with `residual` = z - h(x) (3,), Jacobian `h` (3, 15), noise `r` (3, 3);
        Joseph form, then inject the error into the nominal state."""
        p = self.P
        s = h @ p @ h.T + r
        k = p @ h.T @ inverse3(s)
        dx = k @ residual
        ikh = np.eye(N_ERR) - k @ h
        self.P = ikh @ p @ ikh.T + k @ r @ k.T
        self.P = 0.5 * (self.P + self.P.T)
        x = self.x
        x.p = x.p + dx[P]
        x.v = x.v + dx[V]
        q = quaternion_multiply(x.q, quaternion_from_rotvec(dx[TH]))
        x.q = q / np.linalg.norm(q)
        x.ba = x.ba + dx[BA]
        x.bg = x.bg + dx[BG]
        x.td = x.td + float(dx[TD])

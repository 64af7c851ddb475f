"""Paths, speed profiles and the ego's bicycle-model drive.

Times are seconds from the scene's start (float64); positions m in the global frame; headings
rad ccw from global +x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration import Transform, quaternion_from_yaw

SIM_DT = 0.01  # s, integration step of every motion
WHEELBASE = 2.588  # m, a Renault Zoe as on the nuScenes cars


@dataclass(frozen=True, eq=False)
class Path:
    """A polyline parameterized by arc length: points (P, 2), headings (P,) unwrapped, s (P,)."""

    xy: NDArray[np.float64]
    heading: NDArray[np.float64]
    s: NDArray[np.float64]

    @staticmethod
    def from_points(xy: NDArray[np.float64]) -> Path:
        d = np.diff(xy, axis=0)
        seg = np.hypot(d[:, 0], d[:, 1])
        s = np.concatenate([[0.0], np.cumsum(seg)])
        h = np.arctan2(d[:, 1], d[:, 0])
        h = np.unwrap(np.concatenate([h, h[-1:]]))
        return Path(np.asarray(xy, np.float64), h, s)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def at(self, s: NDArray[np.float64] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Points (..., 2) and headings (...) at arc lengths `s` (clamped to the ends, then
        extrapolated straight so actors can leave the map)."""
        s = np.asarray(s, np.float64)
        sc = np.clip(s, self.s[0], self.s[-1])
        x = np.interp(sc, self.s, self.xy[:, 0])
        y = np.interp(sc, self.s, self.xy[:, 1])
        h = np.interp(sc, self.s, self.heading)
        extra = s - sc
        return np.stack([x + extra * np.cos(h), y + extra * np.sin(h)], axis=-1), h

    def offset(self, lateral: float) -> Path:
        """The parallel path `lateral` m to the left (negative: right)."""
        n = np.column_stack([-np.sin(self.heading), np.cos(self.heading)])
        return Path.from_points(self.xy + lateral * n)

    def reversed(self) -> Path:
        return Path.from_points(self.xy[::-1].copy())

    def nearest(self, xy: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """For (N, 2) points: arc length of the nearest path vertex and signed lateral offset
        (left positive), in m."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        d2 = ((xy[:, None, :] - self.xy[None, :, :]) ** 2).sum(-1)
        i = np.argmin(d2, axis=1)
        rel = xy - self.xy[i]
        h = self.heading[i]
        lat = -np.sin(h) * rel[:, 0] + np.cos(h) * rel[:, 1]
        lon = np.cos(h) * rel[:, 0] + np.sin(h) * rel[:, 1]
        return self.s[i] + lon, lat


def random_centerline(
    rng: np.random.Generator,
    length: float,
    start: NDArray[np.float64],
    heading: float,
    straight_zones: list[tuple[float, float]],
) -> Path:
    """A road centerline of `length` m: straights and circular curves (radius 60..200 m), kept
    straight inside `straight_zones` (s ranges, for intersections). 1 m spacing."""
    n = int(length) + 1
    curvature = np.zeros(n)
    s = 0.0
    while s < length:
        seg = rng.uniform(40, 110)
        if rng.random() < 0.55:
            radius = rng.uniform(60, 200) * rng.choice([-1, 1])
            i0, i1 = int(s), min(n, int(s + seg))
            curvature[i0:i1] = 1.0 / radius
        s += seg
    for a, b in straight_zones:
        curvature[max(0, int(a)) : min(n, int(b) + 1)] = 0.0
    # smooth curvature so the heading (and the ego's steering) changes continuously
    k = np.convolve(curvature, np.ones(15) / 15, mode="same")
    h = heading + np.concatenate([[0.0], np.cumsum(k[:-1])])
    xy = np.asarray(start, np.float64) + np.concatenate(
        [[[0.0, 0.0]], np.cumsum(np.column_stack([np.cos(h[:-1]), np.sin(h[:-1])]), axis=0)]
    )
    return Path.from_points(xy)


def speed_profile(
    rng: np.random.Generator,
    t: NDArray[np.float64],
    cruise: float,
    stop_prob: float,
    start_stopped: bool = False,
) -> NDArray[np.float64]:
    """Speed (m/s) on the time grid `t`: cruise with one speed change and maybe a stop, with
    bounded acceleration (1.5 m/s^2 up, 2.5 m/s^2 down)."""
    target = np.full(len(t), cruise)
    span = t[-1] - t[0]
    t_change = t[0] + rng.uniform(0.2, 0.8) * span
    target[t >= t_change] = cruise * rng.uniform(0.6, 1.3)
    if rng.random() < stop_prob:
        t_stop = t[0] + rng.uniform(0.15, 0.6) * span
        dur = rng.uniform(2.0, 5.0)
        target[(t >= t_stop) & (t < t_stop + dur)] = 0.0
    v = np.empty(len(t))
    v[0] = 0.0 if start_stopped else target[0]
    dt = np.diff(t, prepend=t[0])
    for i in range(1, len(t)):
        dv = np.clip(target[i] - v[i - 1], -2.5 * dt[i], 1.5 * dt[i])
        v[i] = v[i - 1] + dv
    return v


def integrate(t: NDArray[np.float64], v: NDArray[np.float64], s0: float) -> NDArray[np.float64]:
    """Arc length s(t) from speed v(t) (trapezoid rule), starting at s0."""
    ds = 0.5 * (v[1:] + v[:-1]) * np.diff(t)
    return s0 + np.concatenate([[0.0], np.cumsum(ds)])


@dataclass(frozen=True, eq=False)
class EgoTrack:
    """The ego's rear-axle state on the time grid `t` (s): position (T, 2), yaw (T,), speed (T,),
    steering angle (T,) rad, yaw rate (T,) rad/s, longitudinal and lateral accel (T,) m/s^2."""

    t: NDArray[np.float64]
    xy: NDArray[np.float64]
    yaw: NDArray[np.float64]
    speed: NDArray[np.float64]
    steering: NDArray[np.float64]
    yaw_rate: NDArray[np.float64]
    accel_long: NDArray[np.float64]
    accel_lat: NDArray[np.float64]

    def state(self, time: NDArray[np.float64] | float) -> tuple[NDArray, NDArray]:
        """Position (..., 2) and yaw (...) at `time` s, linearly interpolated."""
        time = np.asarray(time, np.float64)
        x = np.interp(time, self.t, self.xy[:, 0])
        y = np.interp(time, self.t, self.xy[:, 1])
        return np.stack([x, y], axis=-1), np.interp(time, self.t, self.yaw)

    def velocity(self, time: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Global velocity (..., 2) m/s at `time`."""
        time = np.asarray(time, np.float64)
        v = np.interp(time, self.t, self.speed)
        h = np.interp(time, self.t, self.yaw)
        return np.stack([v * np.cos(h), v * np.sin(h)], axis=-1)

    def sample(self, time: NDArray[np.float64] | float, values: NDArray[np.float64]) -> NDArray:
        return np.interp(np.asarray(time, np.float64), self.t, values)


def drive_bicycle(
    lane: Path, s0: float, t: NDArray[np.float64], speed: NDArray[np.float64]
) -> EgoTrack:
    """Drive the kinematic bicycle model along `lane` with pure-pursuit steering, following the
    speed profile `speed` (m/s) on the grid `t` (s, step SIM_DT)."""
    n = len(t)
    xy = np.zeros((n, 2))
    yaw = np.zeros(n)
    steer = np.zeros(n)
    p, h = lane.at(s0)
    x, y, th = float(p[0]), float(p[1]), float(h)
    s_hint = s0
    for i in range(n):
        xy[i] = (x, y)
        yaw[i] = th
        v = speed[i]
        look = max(4.0, 0.8 * v + 3.0)
        # nearest lane point near the last one (cheap local search)
        window = (lane.s > s_hint - 5) & (lane.s < s_hint + 10)
        idx = np.flatnonzero(window)
        d2 = (lane.xy[idx, 0] - x) ** 2 + (lane.xy[idx, 1] - y) ** 2
        s_hint = float(lane.s[idx[np.argmin(d2)]]) if len(idx) else s_hint
        target, _ = lane.at(s_hint + look)
        alpha = math.atan2(target[1] - y, target[0] - x) - th
        delta = math.atan2(2 * WHEELBASE * math.sin(alpha), look)
        delta = max(-0.5, min(0.5, delta))
        steer[i] = delta
        if i + 1 < n:
            dt = t[i + 1] - t[i]
            x += v * math.cos(th) * dt
            y += v * math.sin(th) * dt
            th += v / WHEELBASE * math.tan(delta) * dt
    yaw_rate = np.gradient(yaw, t)
    accel_long = np.gradient(speed, t)
    accel_lat = speed * yaw_rate
    return EgoTrack(t, xy, yaw, speed, steer, yaw_rate, accel_long, accel_lat)


def ego_transform(track: EgoTrack, time_s: float) -> Transform:
    """global <- ego at `time_s` (flat ground: yaw only, z = 0)."""
    xy, yaw = track.state(time_s)
    return Transform.from_translation_quaternion(
        [xy[0], xy[1], 0.0], quaternion_from_yaw(float(yaw)), src="ego", dst="global"
    )

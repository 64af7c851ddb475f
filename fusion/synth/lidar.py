"""LIDAR_TOP: a spinning multi-beam LIDAR ray cast into the moving world.

Each column of beams fires at its own time in the spin while the ego moves; every point is
then stored in the sensor frame at the sweep's end (its timestamp), as nuScenes does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fusion.data.rig_file import LidarSpec
from fusion.synth.conditions import Conditions
from fusion.synth.mesh import REFLECTIVITY, RETRO
from fusion.synth.raycast import Raycaster
from fusion.synth.trajectory import ego_transform
from fusion.synth.world import World

TIME_SLICES = 10  # actors are posed once per slice of the spin (5 ms at 20 Hz)
# Return intensity (0..255) = 255 * GAIN * (reflectivity * condition scale) ** GAMMA * a
# log-normal speckle of SPREAD: fitted to the real HDL-32E (nuScenes scene-0916, returns off
# the car, benchmarks/sim2real.md): the real intensities spread wide (median 16, p90 53), a plain
# reflectivity model piles the road into one narrow peak (median 12, p90 90); TV distance of
# the histograms 0.45 before, 0.11 after on the data it was fitted on.
INTENSITY_GAIN = 0.21
INTENSITY_GAMMA = 0.4
INTENSITY_SPREAD = 0.9


# The ego vehicle's body, LIDAR_TOP frame (x right, y forward, z up; m): (x0, y0, z0, x1, y1, z1)
# of the cabin and of the lower body with the bonnet. Fitted to the azimuths at which the real
# HDL-32E's twelve lowest rings return from its own car (scene-0916, 41 scans): without a
# body, the generator's low beams reached the ground all around the car (1,200 returns a scan
# within 3 m outside the ego box against 30 on real data).
EGO_BODY_BOXES = (
    (-0.6, -1.2, -1.84, 0.6, 0.8, -0.45),
    (-0.87, -1.6, -1.84, 0.87, 2.5, -1.0),
)
EGO_BODY_REFLECTIVITY = 0.05  # real returns from the car: intensity median 14
EGO_BODY = -2  # `Sweep.actor` of a return from the ego vehicle's body


def ego_body_range(directions: NDArray[np.float64]) -> NDArray[np.float64]:
    """(...,) distance (m) from the sensor along unit `directions` (..., 3), LIDAR_TOP frame,
    to the first of `EGO_BODY_BOXES` the ray enters; inf where it enters none."""
    best = np.full(directions.shape[:-1], np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for box in EGO_BODY_BOXES:
            t1 = np.asarray(box[:3]) / directions
            t2 = np.asarray(box[3:]) / directions
            enter = np.nanmax(np.minimum(t1, t2), axis=-1)
            leave = np.nanmin(np.maximum(t1, t2), axis=-1)
            hit = (leave >= enter) & (enter >= 0)
            best = np.where(hit, np.minimum(best, enter), best)
    return best


def return_intensity(
    reflectivity: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Intensity 1..255 of returns of `reflectivity` (0..1, condition scale applied): at least 1,
    since 0 marks a firing without a return."""
    speckle = rng.lognormal(0.0, INTENSITY_SPREAD, len(reflectivity))
    base = 255.0 * INTENSITY_GAIN * np.clip(reflectivity, 0.0, None) ** INTENSITY_GAMMA
    return np.clip(base * speckle, 1.0, 255.0)


@dataclass(frozen=True, eq=False)
class Sweep:
    """`points` (N, 5) float32: x, y, z (m, sensor frame at `end_s`), intensity 0..255, ring
    0..31 (0 = lowest beam). `actor` (N,) int32: the actor hit (-1: world, rain, fog or no
    return; `EGO_BODY`: the ego vehicle's own body). With `no_return = "origin"` rays without
    a return are points at the sensor origin of their firing time with intensity 0."""

    end_s: float
    points: NDArray[np.float32]
    actor: NDArray[np.int32]


def ray_directions(
    spec: LidarSpec,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Unit directions (C, B, 3) in the sensor frame, the fraction of the spin (C,) at which each
    column fires (0 = sweep start), and the ring (B,) of each beam."""
    el = np.radians(np.asarray(spec.elevations_deg))
    order = np.argsort(el, kind="stable")
    ring = np.empty(len(el), np.int64)
    ring[order] = np.arange(len(el))
    frac = (np.arange(spec.azimuth_steps) + 0.5) / spec.azimuth_steps
    lidar_yaw = math.atan2(spec.to_ego.rotation[1, 0], spec.to_ego.rotation[0, 0])
    az_ego = np.radians(spec.spin_start_deg) - 2 * math.pi * frac  # clockwise seen from above
    phi = az_ego - lidar_yaw
    d = np.stack(
        [
            np.cos(el)[None, :] * np.cos(phi)[:, None],
            np.cos(el)[None, :] * np.sin(phi)[:, None],
            np.broadcast_to(np.sin(el)[None, :], (len(phi), len(el))),
        ],
        axis=-1,
    )
    return d, frac, ring


def _columns_near_actors(
    world: World,
    time_s: float,
    origin: NDArray[np.float64],
    col_dirs: NDArray[np.float64],
    max_range: float,
) -> NDArray[np.bool_]:
    """(C,) columns whose azimuth passes within the bounding circle of some actor in range."""
    centres, _, _ = world.states(time_s)
    radius = np.array([0.5 * math.hypot(a.size_wlh[0], a.size_wlh[1]) + 0.3 for a in world.actors])
    rel = centres[:, :2] - origin[:2]
    dist = np.hypot(rel[:, 0], rel[:, 1])
    near = dist < max_range + radius
    if not near.any():
        return np.zeros(len(col_dirs), bool)
    az_actor = np.arctan2(rel[near, 1], rel[near, 0])
    half = np.arcsin(np.clip(radius[near] / np.maximum(dist[near], 1e-3), 0, 1))
    half[dist[near] <= radius[near]] = np.pi  # the sensor is inside the circle
    az_col = np.arctan2(col_dirs[:, 1], col_dirs[:, 0])
    diff = np.abs(np.angle(np.exp(1j * (az_col[:, None] - az_actor[None, :]))))
    return np.any(diff <= half[None, :] + 0.01, axis=1)


def simulate_sweep(
    caster: Raycaster, spec: LidarSpec, cond: Conditions, end_s: float, rng: np.random.Generator
) -> Sweep:
    """One sweep ending at `end_s` (s on the world's clock)."""
    world = caster.world
    period = 1.0 / spec.rate_hz
    dirs, frac, ring = ray_directions(spec)
    c, b = dirs.shape[:2]
    col_time = end_s - period + frac * period
    sensor_to_ego = spec.to_ego
    # sensor pose per column (the ego moves during the spin)
    origins = np.zeros((c, 3))
    rot = np.zeros((c, 3, 3))
    xy, yaw = world.ego.state(col_time)
    cy, sy = np.cos(yaw), np.sin(yaw)
    ego_rot = np.zeros((c, 3, 3))
    ego_rot[:, 0, 0], ego_rot[:, 0, 1], ego_rot[:, 1, 0], ego_rot[:, 1, 1] = cy, -sy, sy, cy
    ego_rot[:, 2, 2] = 1.0
    origins = np.einsum("cij,j->ci", ego_rot, sensor_to_ego.translation) + np.column_stack(
        [xy, np.zeros(c)]
    )
    rot = ego_rot @ sensor_to_ego.rotation
    gdirs = np.einsum("cij,cbj->cbi", rot, dirs)
    bounds = np.linspace(0, c, TIME_SLICES + 1).astype(int)
    groups = []
    for k in range(TIME_SLICES):
        a0, a1 = bounds[k], bounds[k + 1]
        t_mid = float(col_time[(a0 + a1 - 1) // 2])
        cols = _columns_near_actors(world, t_mid, origins[a0], gdirs[a0:a1, 0, :2], spec.max_range)
        rays = (np.flatnonzero(cols)[:, None] + a0) * b + np.arange(b)[None, :]
        groups.append((rays.ravel(), t_mid, origins[a0]))
    hits = caster.cast(
        np.repeat(origins, b, axis=0),
        gdirs.reshape(-1, 3),
        float(col_time[c // 2]),
        radius=spec.max_range + 15.0,
        groups=groups,
    )
    t_hit = hits.t.reshape(c, b)
    normal = hits.normal.reshape(c, b, 3)
    material = hits.material.reshape(c, b)
    actor = hits.actor.reshape(c, b)
    r = t_hit.reshape(-1).astype(np.float64)
    n = normal.reshape(-1, 3)
    mat = material.reshape(-1)
    act = actor.reshape(-1)
    d = gdirs.reshape(-1, 3)
    cos_inc = np.clip(-np.einsum("ij,ij->i", n, d), 0.0, 1.0)
    refl = REFLECTIVITY[mat] * np.where(RETRO[mat], 1.0, 0.25 + 0.75 * cos_inc)
    with np.errstate(invalid="ignore", over="ignore"):
        # received power: reflectivity over range squared, attenuated both ways by fog/rain
        power = refl * np.exp(-2 * cond.lidar_beta * r) / np.maximum(r / 40.0, 0.25) ** 2
    keep = np.isfinite(r) & (r >= spec.min_range) & (r <= spec.max_range) & (power > 0.004)
    keep &= rng.random(len(r)) >= (spec.dropout + cond.lidar_dropout)
    r = r + rng.normal(0.0, spec.range_noise, len(r))
    intensity = return_intensity(refl * cond.lidar_intensity, rng)
    # spurious returns from rain drops / fog close to the sensor
    spurious = rng.random(len(r)) < cond.lidar_spurious
    r = np.where(spurious, rng.uniform(1.2, 8.0, len(r)), r)
    intensity = np.where(spurious, rng.uniform(1, 6, len(r)), intensity)
    act = np.where(spurious, -1, act)
    keep = (keep | spurious) & (r >= spec.min_range)
    # the car's own body hides the world from the low beams and returns them itself
    t_body = ego_body_range(dirs).reshape(-1)
    body = t_body < np.where(keep, r, np.inf)
    r = np.where(body, t_body, r)
    speckle = rng.lognormal(0.0, INTENSITY_SPREAD, int(body.sum()))
    intensity[body] = np.clip(
        255.0 * INTENSITY_GAIN * EGO_BODY_REFLECTIVITY**INTENSITY_GAMMA * speckle, 1.0, 255.0
    )
    act = np.where(body, EGO_BODY, act)
    keep = keep | body
    o = np.repeat(origins, b, axis=0)
    p_global = o + d * r[:, None]
    rings = np.tile(ring, c)
    match spec.no_return:
        case "origin":
            # the real HDL-32E logs every firing: a ray without a return is stored at the sensor
            # origin of its firing time (so it lands a little off the origin after ego-motion
            # compensation), giving a fixed 32 x 1084 points a sweep as in nuScenes
            p_global = np.where(keep[:, None], p_global, o)
            intensity = np.where(keep, intensity, 0.0)
            act = np.where(keep, act, -1)
        case "drop":
            p_global, intensity = p_global[keep], intensity[keep]
            rings, act = rings[keep], act[keep]
    end_pose = ego_transform(world.ego, end_s) @ sensor_to_ego  # global <- sensor at the end
    p_sensor = end_pose.inverse().apply(p_global)
    points = np.column_stack([p_sensor, np.round(intensity), rings]).astype(np.float32)
    return Sweep(end_s, points, act.astype(np.int32))

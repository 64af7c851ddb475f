"""Radars: returns from actors by class-typical radar cross-section, clutter from the static
world, radial velocities, written as the nuScenes binary PCD (18 fields, 43 bytes a point)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fusion.data.rig_file import RadarSpec
from fusion.data.sensor_io import encode_radar_pcd
from fusion.frame import RADAR_PCD_DTYPE
from fusion.synth.raycast import Raycaster
from fusion.synth.trajectory import ego_transform

PCD_DTYPE = RADAR_PCD_DTYPE  # the nuScenes radar record (fusion.data.sensor_io)
assert PCD_DTYPE.itemsize == 43


@dataclass(frozen=True, eq=False)
class RadarSweep:
    """`points`: structured (N,) array of PCD_DTYPE in the radar frame at `time_s`; `actor`
    (N,) int32 the actor each return came from (-1: clutter)."""

    time_s: float
    points: NDArray
    actor: NDArray[np.int32]

    @property
    def valid(self) -> NDArray[np.bool_]:
        """Returns the devkit's default filters keep."""
        p = self.points
        return (
            (p["invalid_state"] == 0)
            & (p["dyn_prop"] >= 0)
            & (p["dyn_prop"] <= 6)
            & (p["ambig_state"] == 3)
        )


def _in_fov(az: NDArray, rng_m: NDArray, spec: RadarSpec) -> NDArray[np.bool_]:
    near = (np.abs(az) <= math.radians(spec.near_fov_deg / 2)) & (rng_m <= spec.near_range)
    far = (np.abs(az) <= math.radians(spec.far_fov_deg / 2)) & (rng_m <= spec.far_range)
    return (near | far) & (rng_m > 0.5)


def simulate_radar(
    caster: Raycaster, spec: RadarSpec, time_s: float, rng: np.random.Generator
) -> RadarSweep:
    """One radar message at `time_s` (s on the world's clock)."""
    world = caster.world
    ego = ego_transform(world.ego, time_s)
    to_global = ego @ spec.to_ego
    to_radar = to_global.inverse()
    origin = to_global.translation
    ego_vel = np.append(world.ego.velocity(time_s), 0.0)
    yaw_rate = float(world.ego.sample(time_s, world.ego.yaw_rate))
    # velocity of the radar itself (ego velocity plus rotation about the rear axle), global
    lever = ego.rotation @ spec.to_ego.translation
    sensor_vel = ego_vel + np.cross([0.0, 0.0, yaw_rate], lever)
    centres, yaws, vels = world.states(time_s)
    rows, owners = [], []

    # actors: a few returns each, aimed at points of the actor's box, kept where the actor is
    # the first thing hit (line of sight); one cast for all of them
    rel = to_radar.apply(centres)
    az = np.arctan2(rel[:, 1], rel[:, 0])
    dist = np.hypot(rel[:, 0], rel[:, 1])
    aims, aim_owner = [], []
    for a_i in np.flatnonzero(_in_fov(az, dist, spec)):
        actor = world.actors[a_i]
        w, l, h = actor.size_wlh
        # expected returns grow with RCS and fall with range
        lam = max(0.0, 0.6 + 0.12 * actor.rcs) * (1.0 if dist[a_i] < 40 else 40.0 / dist[a_i])
        n = int(rng.poisson(lam))
        if n == 0:
            continue
        c, s = math.cos(yaws[a_i]), math.sin(yaws[a_i])
        local = rng.uniform(-0.45, 0.45, (n, 3)) * np.array([l, w, 0.0])
        targets = centres[a_i] + np.column_stack(
            [c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], np.zeros(n)]
        )
        targets[:, 2] = min(h * 0.5, origin[2])
        aims.append(targets)
        aim_owner.append(np.full(n, a_i, np.int32))
    if aims:
        targets = np.concatenate(aims)
        owner_all = np.concatenate(aim_owner)
        dirs = targets - origin
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        hits = caster.cast(
            np.broadcast_to(origin, dirs.shape), dirs, time_s, near=origin, radius=260.0
        )
        ok = hits.actor == owner_all
        p = origin + dirs[ok] * hits.t[ok, None].astype(np.float64)
        own = owner_all[ok]
        v_actor = np.column_stack([vels[own], np.zeros(len(own))])
        rcs = np.array([world.actors[i].rcs for i in own]) + rng.normal(0, 3.0, len(own))
        rows.append((p, v_actor, rcs))
        owners.append(own)

    # clutter: rays into the static world near the radar's horizontal plane
    k = spec.clutter_rays
    if k:
        az_c = rng.uniform(
            -math.radians(spec.near_fov_deg / 2), math.radians(spec.near_fov_deg / 2), k
        )
        el_c = rng.uniform(-0.03, 0.05, k)
        d_local = np.column_stack(
            [np.cos(el_c) * np.cos(az_c), np.cos(el_c) * np.sin(az_c), np.sin(el_c)]
        )
        dirs = d_local @ to_global.rotation.T
        hits = caster.cast(np.broadcast_to(origin, dirs.shape), dirs, time_s, with_actors=False)
        ok = hits.hit & (hits.t < spec.near_range) & (rng.random(k) < 0.5)
        p = origin + dirs[ok] * hits.t[ok, None].astype(np.float64)
        rows.append((p, np.zeros((len(p), 3)), rng.uniform(-5.0, 12.0, len(p))))
        owners.append(np.full(len(p), -1, np.int32))

    if rows:
        pos = np.concatenate([r[0] for r in rows])
        vel = np.concatenate([r[1] for r in rows])
        rcs = np.concatenate([r[2] for r in rows])
        owner = np.concatenate(owners)
    else:
        pos, vel, rcs, owner = (
            np.zeros((0, 3)),
            np.zeros((0, 3)),
            np.zeros(0),
            np.zeros(0, np.int32),
        )
    n = len(pos)
    pos = pos + rng.normal(0, 0.1, (n, 3)) * np.array([1.0, 1.0, 0.0])
    p_radar = to_radar.apply(pos)
    p_radar[:, 2] = 0.0  # a 2D radar: returns lie in its plane
    pos_global = to_global.apply(p_radar)
    radial = pos_global - origin
    radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-6)
    # measured Doppler: target velocity relative to the moving sensor, along the line of sight
    v_rel = ((vel - sensor_vel) * radial).sum(1, keepdims=True) * radial + rng.normal(
        0, 0.1, (n, 1)
    ) * radial
    v_comp = (vel * radial).sum(1, keepdims=True) * radial + rng.normal(0, 0.1, (n, 1)) * radial
    v_rel_r = v_rel @ to_global.rotation  # global -> radar frame (rotation only)
    v_comp_r = v_comp @ to_global.rotation
    pts = np.zeros(n, PCD_DTYPE)
    pts["x"], pts["y"], pts["z"] = p_radar[:, 0], p_radar[:, 1], p_radar[:, 2]
    moving = np.linalg.norm(vel[:, :2], axis=1) > 0.5
    oncoming = (v_comp_r[:, 0] * p_radar[:, 0] + v_comp_r[:, 1] * p_radar[:, 1]) < 0
    pts["dyn_prop"] = np.where(moving, np.where(oncoming, 2, 0), 1)
    pts["id"] = np.arange(n)
    pts["rcs"] = rcs
    pts["vx"], pts["vy"] = v_rel_r[:, 0], v_rel_r[:, 1]
    pts["vx_comp"], pts["vy_comp"] = v_comp_r[:, 0], v_comp_r[:, 1]
    pts["is_quality_valid"] = 1
    pts["ambig_state"] = 3
    pts["x_rms"] = pts["y_rms"] = pts["vx_rms"] = pts["vy_rms"] = 3
    pts["pdh0"] = 1
    invalid = rng.random(n) < spec.invalid_fraction
    pts["invalid_state"] = np.where(invalid, rng.choice([1, 2, 6], n), 0)
    return RadarSweep(time_s, pts, owner)


def pcd_bytes(points: NDArray) -> bytes:
    """The nuScenes binary radar PCD. An empty message holds one NaN point (the devkit's
    convention for 'no returns'); one trailing byte keeps the devkit's strict length check."""
    if len(points) == 0:
        points = np.zeros(1, PCD_DTYPE)
        for f in ("x", "y", "z", "rcs", "vx", "vy", "vx_comp", "vy_comp"):
            points[f] = np.nan
    return encode_radar_pcd(points)

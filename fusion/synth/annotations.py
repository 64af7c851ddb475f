"""Per-keyframe ground truth: attributes, visibility from the unoccluded fraction of each
actor's projected surface, and LIDAR / radar point counts in each box."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera, Transform
from fusion.synth.actors import Actor
from fusion.synth.raycast import Raycaster

VEHICLES = ("car", "truck", "bus", "trailer", "construction_vehicle")
VISIBILITY_BINS = (0.4, 0.6, 0.8)  # tokens "1".."4": v0-40, v40-60, v60-80, v80-100
SAMPLES_PER_ACTOR = 48


def attribute(actor: Actor, speed: float) -> str:
    """The nuScenes attribute name of an actor moving at `speed` m/s, or ""."""
    if actor.cls in VEHICLES:
        if actor.parked:
            return "vehicle.parked"
        return "vehicle.moving" if speed > 0.3 else "vehicle.stopped"
    if actor.cls == "pedestrian":
        return "pedestrian.moving" if speed > 0.2 else "pedestrian.standing"
    if actor.cls in ("bicycle", "motorcycle"):
        return "cycle.with_rider" if actor.rider else "cycle.without_rider"
    return ""


def visibility_token(fraction: float) -> str:
    return str(1 + int(np.searchsorted(VISIBILITY_BINS, fraction, side="right")))


def visible_fraction(
    caster: Raycaster,
    actor_ids: NDArray[np.int64],
    time_s: float,
    cameras: list[tuple[PinholeCamera, Transform]],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """For each actor: the fraction of surface samples facing some camera that no other object
    hides (0 if no camera sees any). `cameras`: (model, camera -> global) at `time_s`."""
    world = caster.world
    centres, yaws, _ = world.states(time_s)
    out = np.zeros(len(actor_ids))
    if not len(actor_ids):
        return out
    targets, owner = [], []
    for k, a_i in enumerate(actor_ids):
        mesh = world.actors[a_i].mesh
        tri = rng.integers(0, mesh.n_triangles, SAMPLES_PER_ACTOR)
        bary = rng.dirichlet(np.ones(3), SAMPLES_PER_ACTOR)
        local = np.einsum("nk,nkj->nj", bary, mesh.vertices[mesh.triangles[tri]])
        c, s = math.cos(yaws[a_i]), math.sin(yaws[a_i])
        base = centres[a_i] - np.array([0.0, 0.0, world.actors[a_i].size_wlh[2] / 2])
        targets.append(
            np.column_stack(
                [c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]]
            )
            + base
        )
        owner.append(np.full(SAMPLES_PER_ACTOR, k))
    pts = np.concatenate(targets)
    own = np.concatenate(owner)
    visible = np.zeros(len(pts), bool)
    facing = np.zeros(len(pts), bool)
    for cam, to_global in cameras:
        _, _, inside = cam.project(to_global.inverse().apply(pts))
        idx = np.flatnonzero(inside)
        if not len(idx):
            continue
        origin = to_global.translation
        d = pts[idx] - origin
        dist = np.linalg.norm(d, axis=1)
        d /= dist[:, None]
        hits = caster.cast(np.broadcast_to(origin, d.shape), d, time_s, near=origin, radius=120.0)
        mine = hits.actor == actor_ids[own[idx]]
        at_target = np.abs(hits.t - dist) < 0.05
        vis = mine & at_target
        # samples on the far side of the actor itself are not part of its projected area
        self_hidden = mine & ~at_target
        visible[idx[vis]] = True
        facing[idx[vis | ~self_hidden]] = True
    for k in range(len(actor_ids)):
        sel = own == k
        n_face = facing[sel].sum()
        out[k] = visible[sel].sum() / n_face if n_face else 0.0
    return out


def boxes_in_ego(
    centres: NDArray[np.float64],
    yaws: NDArray[np.float64],
    sizes_wlh: NDArray[np.float64],
    ego_to_global: Transform,
) -> NDArray[np.float64]:
    """(M, 7) boxes x, y, z, l, w, h, yaw in the ego frame (the ego frame is level, so boxes stay
    upright there), the layout of `kernels.count_points_in_boxes`."""
    to_ego = ego_to_global.inverse()
    c = to_ego.apply(centres)
    ego_yaw = math.atan2(ego_to_global.rotation[1, 0], ego_to_global.rotation[0, 0])
    w, l, h = sizes_wlh.T
    return np.column_stack([c, l, w, h, yaws - ego_yaw])

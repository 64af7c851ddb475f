"""Actors: the ten nuScenes detection classes, their sizes, meshes and motion.

An actor's mesh lives in its box frame (x along the length, y left, z up, origin at the
bottom centre) and stays strictly inside its box (`MARGIN`), so LIDAR hits on it are
unambiguously inside the annotation. Motion: a path and an arc length per time step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from fusion.synth.mesh import Material as M
from fusion.synth.mesh import Mesh, box, concat, cylinder, sphere
from fusion.synth.trajectory import Path

ClassName = Literal[
    "car",
    "truck",
    "bus",
    "trailer",
    "construction_vehicle",
    "pedestrian",
    "motorcycle",
    "bicycle",
    "traffic_cone",
    "barrier",
]
MARGIN = 0.03  # m between a mesh and its box on every side

# class -> (nuScenes category, mean (w, l, h) m, relative spread of w, l, h, radar cross-section
# dBsm). The means are nuScenes' own over both cities (the usual per-class anchors). The spreads
# of car, pedestrian and motorcycle are the real per-instance ones of scene-0916 (57 cars, 23
# pedestrians, 8 motorcycles; benchmarks/sim2real.md): a walking person's box length varies by
# 28 %, not 7 %; the other classes have too few real instances there to measure and keep 6-12 %.
CLASS_INFO: dict[str, tuple[str, tuple[float, float, float], tuple[float, float, float], float]] = {
    "car": ("vehicle.car", (1.95, 4.6, 1.72), (0.075, 0.075, 0.085), 10.0),
    "truck": ("vehicle.truck", (2.5, 7.0, 2.9), (0.12, 0.12, 0.12), 20.0),
    "bus": ("vehicle.bus.rigid", (2.95, 11.0, 3.5), (0.06, 0.06, 0.06), 22.0),
    "trailer": ("vehicle.trailer", (2.9, 11.5, 3.7), (0.10, 0.10, 0.10), 20.0),
    "construction_vehicle": ("vehicle.construction", (2.8, 6.4, 3.2), (0.12, 0.12, 0.12), 18.0),
    "pedestrian": ("human.pedestrian.adult", (0.67, 0.73, 1.76), (0.14, 0.28, 0.10), -3.0),
    "motorcycle": ("vehicle.motorcycle", (0.77, 2.1, 1.47), (0.11, 0.14, 0.08), 4.0),
    "bicycle": ("vehicle.bicycle", (0.6, 1.7, 1.3), (0.06, 0.06, 0.06), 0.0),
    "traffic_cone": ("movable_object.trafficcone", (0.41, 0.41, 1.0), (0.1, 0.1, 0.1), -8.0),
    "barrier": ("movable_object.barrier", (2.5, 0.5, 0.98), (0.08, 0.08, 0.08), 3.0),
}
CAR_COLORS = [
    (0.75, 0.1, 0.1),
    (0.1, 0.2, 0.6),
    (0.85, 0.85, 0.85),
    (0.12, 0.12, 0.12),
    (0.5, 0.5, 0.55),
    (0.1, 0.45, 0.2),
    (0.9, 0.7, 0.1),
    (0.35, 0.2, 0.1),
]
CLOTH_COLORS = [
    (0.2, 0.25, 0.5),
    (0.6, 0.1, 0.1),
    (0.15, 0.15, 0.15),
    (0.8, 0.8, 0.75),
    (0.2, 0.45, 0.3),
    (0.9, 0.5, 0.1),
]


def _wheels(l: float, w: float, r: float, axles: list[float]) -> list[Mesh]:
    out = []
    for x in axles:
        for side in (-1, 1):
            out.append(
                cylinder(
                    (x, side * (w / 2 - 0.14), r),
                    r,
                    0.26,
                    M.TIRE,
                    (0.05, 0.05, 0.05),
                    axis="y",
                    segments=10,
                )
            )
    return out


def _car(l: float, w: float, h: float, color: tuple) -> Mesh:
    r = min(0.34, h * 0.2)
    body_h = h * 0.5
    parts = [
        box((0, 0, r * 0.6 + body_h / 2), (l, w, body_h), M.BODY, color),
        box(
            (-0.08 * l, 0, r * 0.6 + body_h + (h - r * 0.6 - body_h) / 2),
            (0.55 * l, w * 0.9, h - r * 0.6 - body_h),
            M.GLASS,
            (0.1, 0.12, 0.15),
            top_scale=0.85,
        ),
        box(
            (l / 2 - 0.01, w * 0.32, r * 0.6 + body_h * 0.7),
            (0.02, 0.25, 0.12),
            M.HEADLIGHT,
            (1, 1, 0.9),
        ),
        box(
            (l / 2 - 0.01, -w * 0.32, r * 0.6 + body_h * 0.7),
            (0.02, 0.25, 0.12),
            M.HEADLIGHT,
            (1, 1, 0.9),
        ),
        box(
            (-l / 2 + 0.01, w * 0.35, r * 0.6 + body_h * 0.75),
            (0.02, 0.22, 0.1),
            M.TAILLIGHT,
            (0.9, 0.05, 0.05),
        ),
        box(
            (-l / 2 + 0.01, -w * 0.35, r * 0.6 + body_h * 0.75),
            (0.02, 0.22, 0.1),
            M.TAILLIGHT,
            (0.9, 0.05, 0.05),
        ),
    ]
    return concat(parts + _wheels(l, w, r, [0.32 * l, -0.32 * l]))


def _truck(l: float, w: float, h: float, color: tuple) -> Mesh:
    r = 0.45
    cab = 0.25 * l
    parts = [
        box((l / 2 - cab / 2, 0, r + (h * 0.8 - r) / 2), (cab, w, h * 0.8 - r), M.BODY, color),
        box(
            (l / 2 - cab * 0.3, 0, h * 0.8 - 0.35),
            (cab * 0.3, w * 0.95, 0.5),
            M.GLASS,
            (0.1, 0.12, 0.15),
        ),
        box((-cab / 2, 0, r + (h - r) / 2), (l - cab - 0.2, w, h - r), M.BODY, (0.85, 0.85, 0.8)),
        box((l / 2 - 0.01, w * 0.35, r + 0.3), (0.02, 0.25, 0.15), M.HEADLIGHT, (1, 1, 0.9)),
        box((l / 2 - 0.01, -w * 0.35, r + 0.3), (0.02, 0.25, 0.15), M.HEADLIGHT, (1, 1, 0.9)),
        box((-l / 2 + 0.11, w * 0.4, r + 0.2), (0.02, 0.2, 0.12), M.TAILLIGHT, (0.9, 0.05, 0.05)),
        box((-l / 2 + 0.11, -w * 0.4, r + 0.2), (0.02, 0.2, 0.12), M.TAILLIGHT, (0.9, 0.05, 0.05)),
    ]
    return concat(parts + _wheels(l, w, r, [0.36 * l, -0.2 * l, -0.36 * l]))


def _bus(l: float, w: float, h: float, color: tuple) -> Mesh:
    r = 0.48
    parts = [
        box((0, 0, r * 0.5 + (h * 0.55) / 2), (l, w, h * 0.55), M.BODY, color),
        box(
            (0, 0, r * 0.5 + h * 0.55 + 0.3 * h * 0.5), (l, w, 0.3 * h), M.GLASS, (0.1, 0.12, 0.15)
        ),
        box(
            (0, 0, h - 0.5 * (h - r * 0.5 - 0.85 * h)),
            (l, w, h - r * 0.5 - 0.85 * h),
            M.BODY,
            color,
        ),
        box((l / 2 - 0.01, w * 0.38, r + 0.3), (0.02, 0.25, 0.15), M.HEADLIGHT, (1, 1, 0.9)),
        box((l / 2 - 0.01, -w * 0.38, r + 0.3), (0.02, 0.25, 0.15), M.HEADLIGHT, (1, 1, 0.9)),
        box((-l / 2 + 0.01, w * 0.4, r + 0.3), (0.02, 0.2, 0.2), M.TAILLIGHT, (0.9, 0.05, 0.05)),
        box((-l / 2 + 0.01, -w * 0.4, r + 0.3), (0.02, 0.2, 0.2), M.TAILLIGHT, (0.9, 0.05, 0.05)),
    ]
    return concat(parts + _wheels(l, w, r, [0.3 * l, -0.3 * l]))


def _trailer(l: float, w: float, h: float, color: tuple) -> Mesh:
    r = 0.45
    parts = [
        box((-0.05 * l, 0, 1.1 + (h - 1.1) / 2), (0.9 * l, w, h - 1.1), M.BODY, color),
        box((0.45 * l - 0.3, 0, 1.0), (0.6, 0.15, 0.15), M.POLE, (0.2, 0.2, 0.2)),
        box((0.35 * l, 0, 0.55), (0.15, 0.15, 1.0), M.POLE, (0.2, 0.2, 0.2)),
        box((-0.05 * l, 0, 0.95), (0.9 * l, w * 0.9, 0.3), M.POLE, (0.2, 0.2, 0.2)),
    ]
    return concat(parts + _wheels(l, w, r, [-0.3 * l, -0.4 * l]))


def _construction(l: float, w: float, h: float, color: tuple) -> Mesh:
    parts = [
        box((-0.05 * l, 0, 0.45), (0.8 * l, w, 0.8), M.TIRE, (0.1, 0.1, 0.1)),  # tracks
        box((-0.1 * l, 0, 0.85 + 0.5), (0.55 * l, w * 0.9, 1.0), M.BODY, color),
        box(
            (-0.22 * l, w * 0.2, 1.85 + (h - 1.9) / 2),
            (0.22 * l, w * 0.4, h - 1.9),
            M.GLASS,
            (0.1, 0.12, 0.15),
        ),
        box((0.25 * l, 0, 1.6), (0.45 * l, 0.35, 0.35), M.BODY, color),  # boom
        box((0.46 * l, 0, 0.9), (0.12 * l, w * 0.8, 0.9), M.BODY, (0.3, 0.3, 0.3)),  # bucket
    ]
    return concat(parts)


def _person(
    l: float, w: float, h: float, cloth: tuple, skin: tuple = (0.85, 0.65, 0.5)
) -> list[Mesh]:
    leg = 0.47 * h
    return [
        box((0, w * 0.15, leg / 2), (min(l, 0.2), w * 0.22, leg), M.CLOTH, (0.15, 0.15, 0.2)),
        box((0, -w * 0.15, leg / 2), (min(l, 0.2), w * 0.22, leg), M.CLOTH, (0.15, 0.15, 0.2)),
        box(
            (0, 0, leg + 0.19 * h),
            (min(l, 0.28), w * 0.85, 0.38 * h),
            M.CLOTH,
            cloth,
            top_scale=0.9,
        ),
        sphere((0, 0, h - 0.075 * h), (0.09 * h * 0.6, 0.1 * h * 0.6, 0.075 * h), M.SKIN, skin),
    ]


def _pedestrian(l: float, w: float, h: float, color: tuple) -> Mesh:
    return concat(_person(l, w, h, color))


def _two_wheeler(l: float, w: float, h: float, color: tuple, motor: bool, rider: bool) -> Mesh:
    r = 0.32 if motor else 0.34
    tw = 0.12 if motor else 0.05
    parts = [
        cylinder((l / 2 - r, 0, r), r, tw, M.TIRE, (0.05, 0.05, 0.05), axis="y", segments=12),
        cylinder((-l / 2 + r, 0, r), r, tw, M.TIRE, (0.05, 0.05, 0.05), axis="y", segments=12),
        box(
            (0, 0, r + 0.1 + (0.25 if motor else 0.05)),
            (l - 2 * r, 0.3 if motor else 0.06, 0.4 if motor else 0.08),
            M.BODY,
            color,
        ),
        box(
            (l / 2 - r - 0.05, 0, (h * 0.6 if rider else h - 0.1) - 0.1),
            (0.06, 0.55 if motor else 0.5, 0.06),
            M.POLE,
            (0.2, 0.2, 0.2),
        ),
    ]
    if rider:
        rh = h - r - 0.05
        body = _person(0.35, min(0.5, w * 0.9), rh * 1.05, CLOTH_COLORS[1])
        # seated rider: drop the legs, lift torso and head
        for p in body[2:]:
            parts.append(
                Mesh(
                    p.vertices + np.array([-0.1, 0, h - rh * 1.05 - 0.03]),
                    p.triangles,
                    p.material,
                    p.color,
                )
            )
    return concat(parts)


def _cone(l: float, w: float, h: float, color: tuple) -> Mesh:
    return concat(
        [
            box((0, 0, 0.02), (l, w, 0.04), M.REFLECTIVE, (0.95, 0.4, 0.05)),
            cylinder(
                (0, 0, 0.04 + (h - 0.04) / 2),
                min(l, w) * 0.4,
                h - 0.04,
                M.REFLECTIVE,
                (0.95, 0.4, 0.05),
                segments=10,
                top_radius=0.02,
            ),
            cylinder(
                (0, 0, h * 0.6),
                min(l, w) * 0.22,
                0.1,
                M.REFLECTIVE,
                (0.95, 0.95, 0.95),
                segments=10,
                top_radius=min(l, w) * 0.19,
            ),
        ]
    )


def _barrier(l: float, w: float, h: float, color: tuple) -> Mesh:
    parts = [box((0, 0, h * 0.15), (l * 0.9, w, h * 0.3), M.BODY, (0.7, 0.7, 0.7))]
    stripes = 6
    for i in range(stripes):
        c = (0.9, 0.1, 0.1) if i % 2 == 0 else (0.95, 0.95, 0.95)
        y = -w / 2 + (i + 0.5) * w / stripes
        parts.append(
            box((0, y, h * 0.3 + h * 0.35), (l * 0.6, w / stripes, h * 0.7), M.REFLECTIVE, c)
        )
    return concat(parts)


def build_mesh(
    cls: str, size_wlh: tuple[float, float, float], color: tuple[float, float, float], rider: bool
) -> Mesh:
    """The class's mesh in its box frame, shrunk to stay `MARGIN` inside the box."""
    w, l, h = size_wlh
    match cls:
        case "car":
            mesh = _car(l, w, h, color)
        case "truck":
            mesh = _truck(l, w, h, color)
        case "bus":
            mesh = _bus(l, w, h, color)
        case "trailer":
            mesh = _trailer(l, w, h, color)
        case "construction_vehicle":
            mesh = _construction(l, w, h, color)
        case "pedestrian":
            mesh = _pedestrian(l, w, h, color)
        case "motorcycle":
            mesh = _two_wheeler(l, w, h, color, motor=True, rider=rider)
        case "bicycle":
            mesh = _two_wheeler(l, w, h, color, motor=False, rider=rider)
        case "traffic_cone":
            mesh = _cone(l, w, h, color)
        case "barrier":
            mesh = _barrier(l, w, h, color)
        case _:
            raise ValueError(f"unknown class {cls!r}")
    # squeeze into the box minus the margin (meshes are built roughly to size)
    v = mesh.vertices
    lo = np.array([-l / 2 + MARGIN, -w / 2 + MARGIN, MARGIN])
    hi = np.array([l / 2 - MARGIN, w / 2 - MARGIN, h - MARGIN])
    vmin, vmax = v.min(0), v.max(0)
    scale = np.minimum(1.0, (hi - lo) / np.maximum(vmax - vmin, 1e-6))
    centre_box = (lo + hi) / 2
    centre_mesh = (vmin + vmax) / 2
    centre_mesh[2] = vmin[2]
    centre_box[2] = lo[2]
    v = (v - centre_mesh) * scale + centre_box
    return Mesh(v, mesh.triangles, mesh.material, mesh.color)


@dataclass(frozen=True, eq=False)
class Actor:
    """One object of the world. Its box centre at time index i is `path.at(s[i])` at height
    h/2; yaw is the path heading (+ `yaw_offset`)."""

    name: str  # stable within a scene, used for tokens
    cls: str
    size_wlh: tuple[float, float, float]
    mesh: Mesh
    path: Path
    s: NDArray[np.float64]  # (T,) arc length on the scene's time grid
    yaw_offset: float
    rider: bool  # cycles: with a rider; others: False
    parked: bool  # vehicles never moving during the scene
    color: tuple[float, float, float]

    @property
    def category(self) -> str:
        return CLASS_INFO[self.cls][0]

    @property
    def rcs(self) -> float:
        return CLASS_INFO[self.cls][3]


def sample_size(rng: np.random.Generator, cls: str) -> tuple[float, float, float]:
    """Class-typical (w, l, h) in m with a per-class spread of each (within 2.5 sigma)."""
    _, mean, spread, _ = CLASS_INFO[cls]
    sigma = np.asarray(spread)
    f = np.clip(rng.normal(1.0, sigma), 1 - 2.5 * sigma, 1 + 2.5 * sigma)
    return tuple(float(round(m * x, 3)) for m, x in zip(mean, f, strict=True))  # type: ignore[return-value]


def actor_color(rng: np.random.Generator, cls: str) -> tuple[float, float, float]:
    match cls:
        case "car":
            c = CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]
        case "truck" | "trailer":
            c = CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]
        case "bus":
            c = [(0.85, 0.2, 0.1), (0.1, 0.35, 0.7), (0.9, 0.9, 0.9)][int(rng.integers(3))]
        case "construction_vehicle":
            c = (0.95, 0.7, 0.05)
        case "pedestrian":
            c = CLOTH_COLORS[int(rng.integers(len(CLOTH_COLORS)))]
        case "motorcycle" | "bicycle":
            c = CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]
        case _:
            c = (0.95, 0.4, 0.05)
    jitter = rng.uniform(-0.05, 0.05, 3)
    return tuple(float(x) for x in np.clip(np.asarray(c) + jitter, 0, 1))  # type: ignore[return-value]


def actor_poses(
    actor: Actor, index: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Box centres (N, 3) and yaws (N,) at fractional time indices `index`."""
    s = np.interp(index, np.arange(len(actor.s)), actor.s)
    xy, h = actor.path.at(s)
    z = np.full(len(np.atleast_1d(s)), actor.size_wlh[2] / 2)
    return np.column_stack([np.atleast_2d(xy), z]), np.atleast_1d(h) + actor.yaw_offset


def actor_speed(actor: Actor, index: NDArray[np.float64], dt: float) -> NDArray[np.float64]:
    """Signed speed along the path (m/s) at fractional time indices."""
    v = np.gradient(actor.s, dt)
    return np.interp(index, np.arange(len(actor.s)), v)


def yaw_rotation(yaw: float) -> NDArray[np.float64]:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

"""Triangle meshes with a material and a colour per triangle, and the primitives we build from.

Vertices (V, 3) float64 in m; triangles (T, 3) int64; `material` (T,) uint8 (a `Material`);
`color` (T, 3) float32 albedo in 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray


class Material(IntEnum):
    """Surface kinds: camera shading, textures and LIDAR reflectivity depend on them."""

    ROAD = 0
    MARKING = 1
    SIDEWALK = 2
    GROUND = 3
    BUILDING = 4
    WALL = 5
    POLE = 6
    TRUNK = 7
    FOLIAGE = 8
    BODY = 9
    GLASS = 10
    TIRE = 11
    HEADLIGHT = 12
    TAILLIGHT = 13
    SKIN = 14
    CLOTH = 15
    REFLECTIVE = 16  # cones and barriers: retro-reflective paint
    LAMP = 17


# LIDAR reflectivity (0..1) per material; retro-reflectors return strongly at any angle.
REFLECTIVITY = np.array(
    [
        0.08,
        0.55,
        0.22,
        0.15,
        0.30,
        0.30,
        0.40,
        0.20,
        0.18,
        0.45,
        0.10,
        0.05,
        0.90,
        0.90,
        0.25,
        0.20,
        0.95,
        0.60,
    ],
    dtype=np.float32,
)
RETRO = np.zeros(len(Material), dtype=bool)
RETRO[[Material.MARKING, Material.HEADLIGHT, Material.TAILLIGHT, Material.REFLECTIVE]] = True
# Camera specular strength per material (wet road and glass shine).
SPECULAR = np.array(
    [
        0.05,
        0.05,
        0.02,
        0.0,
        0.1,
        0.02,
        0.2,
        0.0,
        0.0,
        0.5,
        0.8,
        0.05,
        0.3,
        0.3,
        0.05,
        0.0,
        0.2,
        0.2,
    ],
    dtype=np.float32,
)


@dataclass(frozen=True, eq=False)
class Mesh:
    vertices: NDArray[np.float64]
    triangles: NDArray[np.int64]
    material: NDArray[np.uint8]
    color: NDArray[np.float32]

    @staticmethod
    def empty() -> Mesh:
        return Mesh(
            np.zeros((0, 3)),
            np.zeros((0, 3), np.int64),
            np.zeros(0, np.uint8),
            np.zeros((0, 3), np.float32),
        )

    def transformed(self, rotation: NDArray[np.float64], translation: NDArray[np.float64]) -> Mesh:
        """The mesh with vertices mapped by `R @ v + t`."""
        return Mesh(
            self.vertices @ np.asarray(rotation).T + translation,
            self.triangles,
            self.material,
            self.color,
        )

    @property
    def n_triangles(self) -> int:
        return len(self.triangles)


def concat(meshes: list[Mesh]) -> Mesh:
    """One mesh holding all triangles of `meshes`, in order."""
    meshes = [m for m in meshes if m.n_triangles]
    if not meshes:
        return Mesh.empty()
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.triangles + o for m, o in zip(meshes, offsets, strict=True)]),
        np.concatenate([m.material for m in meshes]),
        np.concatenate([m.color for m in meshes]),
    )


def _paint(
    vertices: NDArray, triangles: NDArray, material: Material, color: tuple[float, ...]
) -> Mesh:
    t = len(triangles)
    return Mesh(
        np.asarray(vertices, np.float64),
        np.asarray(triangles, np.int64),
        np.full(t, int(material), np.uint8),
        np.tile(np.asarray(color, np.float32), (t, 1)),
    )


_BOX_TRIS = np.array(
    [
        [0, 2, 1],
        [0, 3, 2],
        [4, 5, 6],
        [4, 6, 7],
        [0, 1, 5],
        [0, 5, 4],
        [1, 2, 6],
        [1, 6, 5],
        [2, 3, 7],
        [2, 7, 6],
        [3, 0, 4],
        [3, 4, 7],
    ],
)


def box(
    center: tuple[float, float, float],
    size: tuple[float, float, float],
    material: Material,
    color: tuple[float, float, float],
    yaw: float = 0.0,
    top_scale: float = 1.0,
) -> Mesh:
    """A box of size (l along x, w along y, h along z) about `center`, turned by `yaw` about z.
    `top_scale` < 1 shrinks the top face (a cabin, a roof)."""
    l, w, h = size
    lo = np.array([[-l / 2, -w / 2], [l / 2, -w / 2], [l / 2, w / 2], [-l / 2, w / 2]])
    v = np.concatenate(
        [
            np.column_stack([lo, np.full(4, -h / 2)]),
            np.column_stack([lo * top_scale, np.full(4, h / 2)]),
        ]
    )
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return _paint(v @ rot.T + np.asarray(center), _BOX_TRIS, material, color)


def oriented_box(
    center: NDArray,
    axes: NDArray,
    size: tuple[float, float, float],
    material: Material,
    color: tuple[float, float, float],
) -> Mesh:
    """A box with columns of `axes` (3, 3) as its x, y, z directions."""
    b = box((0, 0, 0), size, material, color)
    return b.transformed(np.asarray(axes), np.asarray(center))


def cylinder(
    center: tuple[float, float, float],
    radius: float,
    height: float,
    material: Material,
    color: tuple[float, float, float],
    axis: str = "z",
    segments: int = 10,
    top_radius: float | None = None,
) -> Mesh:
    """A closed cylinder (or a cone with `top_radius` 0) about `center` along axis x, y or z."""
    top_radius = radius if top_radius is None else top_radius
    a = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    ring = np.column_stack([np.cos(a), np.sin(a)])
    bottom = np.column_stack([ring * radius, np.full(segments, -height / 2)])
    top = np.column_stack([ring * max(top_radius, 1e-3), np.full(segments, height / 2)])
    v = np.concatenate([bottom, top, [[0, 0, -height / 2], [0, 0, height / 2]]])
    i = np.arange(segments)
    j = (i + 1) % segments
    tris = np.concatenate(
        [
            np.column_stack([i, j, j + segments]),
            np.column_stack([i, j + segments, i + segments]),
            np.column_stack([np.full(segments, 2 * segments), j, i]),
            np.column_stack([np.full(segments, 2 * segments + 1), i + segments, j + segments]),
        ]
    )
    perm = {"z": [0, 1, 2], "x": [2, 0, 1], "y": [0, 2, 1]}[axis]
    return _paint(v[:, perm] + np.asarray(center), tris, material, color)


@lru_cache(maxsize=4)
def _unit_sphere(subdivisions: int) -> tuple[NDArray, NDArray]:
    t = (1 + 5**0.5) / 2
    v = [
        [-1, t, 0],
        [1, t, 0],
        [-1, -t, 0],
        [1, -t, 0],
        [0, -1, t],
        [0, 1, t],
        [0, -1, -t],
        [0, 1, -t],
        [t, 0, -1],
        [t, 0, 1],
        [-t, 0, -1],
        [-t, 0, 1],
    ]
    f = [
        [0, 11, 5],
        [0, 5, 1],
        [0, 1, 7],
        [0, 7, 10],
        [0, 10, 11],
        [1, 5, 9],
        [5, 11, 4],
        [11, 10, 2],
        [10, 7, 6],
        [7, 1, 8],
        [3, 9, 4],
        [3, 4, 2],
        [3, 2, 6],
        [3, 6, 8],
        [3, 8, 9],
        [4, 9, 5],
        [2, 4, 11],
        [6, 2, 10],
        [8, 6, 7],
        [9, 8, 1],
    ]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    faces = f

    def mid(a: int, b: int, cache: dict[tuple[int, int], int]) -> int:
        key = (min(a, b), max(a, b))
        if key not in cache:
            m = verts[a] + verts[b]
            verts.append(m / np.linalg.norm(m))
            cache[key] = len(verts) - 1
        return cache[key]

    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}
        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b, cache), mid(b, c, cache), mid(c, a, cache)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
    return np.array(verts), np.array(faces)


def sphere(
    center: tuple[float, float, float],
    radii: tuple[float, float, float],
    material: Material,
    color: tuple[float, float, float],
    subdivisions: int = 1,
) -> Mesh:
    """An ellipsoid with semi-axes `radii` (an icosphere, 80 triangles at subdivision 1)."""
    v, f = _unit_sphere(subdivisions)
    return _paint(v * np.asarray(radii) + np.asarray(center), f, material, color)


def strip(
    left: NDArray, right: NDArray, z: float, material: Material, color: tuple[float, float, float]
) -> Mesh:
    """A flat ribbon between two (P, 2) polylines at height z (a road, a marking)."""
    p = len(left)
    if p < 2:
        return Mesh.empty()
    v = np.concatenate(
        [np.column_stack([left, np.full(p, z)]), np.column_stack([right, np.full(p, z)])]
    )
    i = np.arange(p - 1)
    tris = np.concatenate(
        [np.column_stack([i, i + p, i + 1]), np.column_stack([i + 1, i + p, i + p + 1])]
    )
    return _paint(v, tris, material, color)


def wall_strip(
    line: NDArray, z0: float, z1: float, material: Material, color: tuple[float, float, float]
) -> Mesh:
    """A vertical ribbon along a (P, 2) polyline from z0 to z1 (a curb face)."""
    p = len(line)
    if p < 2:
        return Mesh.empty()
    v = np.concatenate(
        [np.column_stack([line, np.full(p, z0)]), np.column_stack([line, np.full(p, z1)])]
    )
    i = np.arange(p - 1)
    tris = np.concatenate(
        [np.column_stack([i, i + 1, i + p]), np.column_stack([i + 1, i + p + 1, i + p])]
    )
    return _paint(v, tris, material, color)

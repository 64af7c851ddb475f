"""Ray casting into a scene's world with open3d's `RaycastingScene`: the static world is built
once; actors are posed at the query time and cast in a second, small scene."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
from numpy.typing import NDArray

from fusion.synth.world import World


@dataclass(frozen=True, eq=False)
class Hits:
    """Per ray: distance `t` (m, inf on a miss), unit normal (N, 3) facing the ray, material
    (N,) uint8, albedo (N, 3) float32, actor index (N,) int32 (-1: static world or miss)."""

    t: NDArray[np.float32]
    normal: NDArray[np.float32]
    material: NDArray[np.uint8]
    color: NDArray[np.float32]
    actor: NDArray[np.int32]

    @property
    def hit(self) -> NDArray[np.bool_]:
        return np.isfinite(self.t)


def _scene(vertices: NDArray, triangles: NDArray) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(triangles, np.uint32)),
    )
    return scene


class Raycaster:
    """Casts rays (origins and unit directions in the global frame) into `world` at a time."""

    def __init__(self, world: World) -> None:
        self.world = world
        # static geometry relative to a local origin keeps float32 precise to ~0.1 mm
        self.origin = np.round(world.road.xy.mean(0), 0)
        self._offset = np.array([self.origin[0], self.origin[1], 0.0])
        st = world.static
        self._static = _scene(st.vertices - self._offset, st.triangles)

    def cast(
        self,
        origins: NDArray[np.float64],
        directions: NDArray[np.float64],
        time_s: float,
        near: NDArray[np.float64] | None = None,
        radius: float = np.inf,
        with_actors: bool = True,
        actor_rays: NDArray[np.bool_] | None = None,
        groups: list[tuple[NDArray[np.int64], float, NDArray[np.float64]]] | None = None,
    ) -> Hits:
        """Cast rays; actors are posed at `time_s` (only those within `radius` m of `near`).
        `actor_rays` (N,) limits the actor cast to the rays that may hit one (a speed-up).
        `groups`: instead, (ray indices, time s, near point) sets cast against actors posed at
        their own times (a LIDAR spin); the static world is cast once for all rays."""
        d = np.asarray(directions, np.float32)
        rays = np.empty((len(d), 6), np.float32)
        rays[:, :3] = np.asarray(origins, np.float64) - self._offset
        rays[:, 3:] = d
        r_static = self._static.cast_rays(o3d.core.Tensor(rays))
        t = r_static["t_hit"].numpy()
        prim = r_static["primitive_ids"].numpy().astype(np.int64)
        normal = r_static["primitive_normals"].numpy()
        st = self.world.static
        hit = np.isfinite(t)
        prim = np.where(hit, prim, 0)
        material = np.where(hit, st.material[prim], 0).astype(np.uint8)
        color = st.color[prim]
        actor = np.full(len(t), -1, np.int32)
        if with_actors:
            if groups is None:
                sel = np.flatnonzero(actor_rays) if actor_rays is not None else np.arange(len(rays))
                groups = [(sel, time_s, near)]
            for sel, g_time, g_near in groups:
                if not len(sel):
                    continue
                dyn, owner = self.world.dynamic_mesh(g_time, g_near, radius)
                if not dyn.n_triangles:
                    continue
                scene = _scene(dyn.vertices - self._offset, dyn.triangles)
                r_dyn = scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays[sel])))
                td = r_dyn["t_hit"].numpy()
                closer_sel = td < t[sel]
                if closer_sel.any():
                    idx = sel[closer_sel]
                    pd = r_dyn["primitive_ids"].numpy().astype(np.int64)[closer_sel]
                    t[idx] = td[closer_sel]
                    normal[idx] = r_dyn["primitive_normals"].numpy()[closer_sel]
                    material[idx] = dyn.material[pd]
                    color[idx] = dyn.color[pd]
                    actor[idx] = owner[pd]
        # normals facing the ray (both triangle windings occur)
        flip = np.einsum("ij,ij->i", normal, d) > 0
        normal[flip] *= -1.0
        return Hits(
            t.astype(np.float32, copy=False),
            normal.astype(np.float32, copy=False),
            material,
            color,
            actor,
        )

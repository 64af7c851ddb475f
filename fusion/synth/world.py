"""One scene's world: roads with lanes and intersections, sidewalks, buildings, walls, poles,
trees, the ten classes of actors, and the ego's drive.

Global frame: x, y in m on flat ground (z = 0 is the road surface), z up. Time: seconds from
the scene's start on the grid `t` (step SIM_DT).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from fusion.config import Condition
from fusion.synth.actors import (
    Actor,
    ClassName,
    actor_color,
    actor_poses,
    build_mesh,
    sample_size,
)
from fusion.synth.mesh import Material as M
from fusion.synth.mesh import Mesh, box, concat, cylinder, sphere, strip, wall_strip
from fusion.synth.trajectory import (
    SIM_DT,
    EgoTrack,
    Path,
    drive_bicycle,
    integrate,
    random_centerline,
    speed_profile,
)

# lateral layout of the main road (m from its centerline; left of the ego's direction positive)
LANE_W = 3.5
BIKE_IN, BIKE_OUT = 7.0, 8.5
CURB = 11.0
SIDEWALK_OUT = 15.0
CROSS_HALF = 7.5  # crossing roads: two lanes a direction, no parking
CROSS_LEN = 70.0
SIDEWALK_Z = 0.15
EGO_LANE = -LANE_W / 2
# car parks behind the sidewalk (`build_world`'s `car_parks`: the chance, per side of the road,
# of one beside the ego's drive): two rows of cars parked across the road's axis. Curbside
# parking lines every other synthetic car up with the ego; half of the real scene-0916's cars
# stand across it (`benchmarks/accuracy/headings.py`, `benchmarks/sim2real.py`)
CAR_PARKS = 0.35
LOT_IN = SIDEWALK_OUT + 1.0  # a car park's near edge (m from the road's centre line)
LOT_BAY = 2.7  # bay width along the road
LOT_ROWS = (LOT_IN + 2.5, LOT_IN + 2.5 + 5.0 + 6.5)  # bay centres across: a 6.5 m aisle between
LOT_OCCUPANCY = 0.7
DETECTION_ORDER: tuple[str, ...] = typing.get_args(ClassName)


@dataclass(frozen=True, eq=False)
class World:
    """Everything static and dynamic of one scene."""

    static: Mesh
    actors: tuple[Actor, ...]
    ego: EgoTrack
    t: NDArray[np.float64]  # (T,) s, the time grid actors and the ego are tabulated on
    road: Path  # main road centerline
    crossings: tuple[tuple[NDArray[np.float64], float], ...]  # (centre xy, heading) of side roads
    condition: Condition
    lights: NDArray[np.float64]  # (L, 3) street lamp positions (night lighting)

    def index(self, time_s: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Fractional index into `t` of times in s."""
        return (np.asarray(time_s, np.float64) - self.t[0]) / SIM_DT

    @cached_property
    def _tables(self) -> tuple[NDArray, NDArray, NDArray]:
        """Per actor and time step: box centre xy (A, T, 2), yaw (A, T), velocity (A, T, 2)."""
        xy = np.zeros((len(self.actors), len(self.t), 2))
        yaw = np.zeros((len(self.actors), len(self.t)))
        vel = np.zeros((len(self.actors), len(self.t), 2))
        for i, a in enumerate(self.actors):
            p, h = a.path.at(a.s)
            xy[i], yaw[i] = p, h + a.yaw_offset
            v = np.gradient(a.s, SIM_DT)
            vel[i] = np.column_stack([v * np.cos(h), v * np.sin(h)])
        return xy, yaw, vel

    @cached_property
    def _templates(self) -> tuple[Mesh, NDArray[np.int32], NDArray[np.int32]]:
        """All actor meshes in their box frames, the actor of each vertex and each triangle."""
        mesh = concat([a.mesh for a in self.actors])
        v_owner = np.concatenate(
            [np.full(len(a.mesh.vertices), i, np.int32) for i, a in enumerate(self.actors)]
        )
        t_owner = np.concatenate(
            [np.full(a.mesh.n_triangles, i, np.int32) for i, a in enumerate(self.actors)]
        )
        return mesh, v_owner, t_owner

    def states(
        self, time_s: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Box centres (A, 3), yaws (A,) and global velocities (A, 2) of all actors at `time_s`."""
        xy, yaw, vel = self._tables
        f = float(np.clip(self.index(time_s), 0, len(self.t) - 1))
        i0 = min(int(f), len(self.t) - 2)
        w = f - i0
        c = xy[:, i0] * (1 - w) + xy[:, i0 + 1] * w
        z = np.array([a.size_wlh[2] / 2 for a in self.actors])
        # unwrap-safe yaw blend
        dy = np.angle(np.exp(1j * (yaw[:, i0 + 1] - yaw[:, i0])))
        return (
            np.column_stack([c, z]).reshape(-1, 3),
            yaw[:, i0] + w * dy,
            vel[:, i0] * (1 - w) + vel[:, i0 + 1] * w,
        )

    def dynamic_mesh(
        self, time_s: float, near: NDArray[np.float64] | None = None, radius: float = np.inf
    ) -> tuple[Mesh, NDArray[np.int32]]:
        """Actor meshes posed at `time_s` (only actors within `radius` m of `near` (2,)), and
        the actor index (T,) of each triangle."""
        mesh, v_owner, t_owner = self._templates
        centres, yaws, _ = self.states(time_s)
        keep = np.ones(len(self.actors), bool)
        if near is not None:
            keep = np.hypot(*(centres[:, :2] - np.asarray(near)[:2]).T) < radius
        if not keep.any():
            return Mesh.empty(), np.zeros(0, np.int32)
        c, s = np.cos(yaws)[v_owner], np.sin(yaws)[v_owner]
        v = mesh.vertices
        base = centres[v_owner] - np.column_stack([np.zeros((len(v), 2)), centres[v_owner, 2]])
        world = (
            np.column_stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]]) + base
        )
        tmask = keep[t_owner]
        tris = mesh.triangles[tmask]
        return Mesh(world, tris, mesh.material[tmask], mesh.color[tmask]), t_owner[tmask]


def _side_polyline(road: Path, lateral: float, s0: float, s1: float) -> NDArray[np.float64]:
    s = np.arange(max(0.0, s0), min(road.length, s1), 1.0)
    if len(s) < 2:
        return np.zeros((0, 2))
    xy, h = road.at(s)
    n = np.column_stack([-np.sin(h), np.cos(h)])
    return xy + lateral * n


def _free_ranges(length: float, holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """[0, length] minus the `holes`, as sorted ranges."""
    out, cur = [], 0.0
    for a, b in sorted(holes):
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < length:
        out.append((cur, length))
    return out


def _build_roads(road: Path, crossings: list[tuple[float, NDArray, float]]) -> list[Mesh]:
    asphalt = (0.22, 0.22, 0.24)
    white, yellow = (0.92, 0.92, 0.9), (0.9, 0.72, 0.15)
    meshes: list[Mesh] = []
    full = (0.0, road.length)
    meshes.append(
        strip(
            _side_polyline(road, CURB, *full),
            _side_polyline(road, -CURB, *full),
            0.0,
            M.ROAD,
            asphalt,
        )
    )
    holes = [(s - CROSS_HALF - 1.0, s + CROSS_HALF + 1.0) for s, _, _ in crossings]
    free = _free_ranges(road.length, holes)
    for a, b in free:
        for off in (0.12, -0.12):  # double yellow centre line
            meshes.append(
                strip(
                    _side_polyline(road, off + 0.06, a, b),
                    _side_polyline(road, off - 0.06, a, b),
                    0.01,
                    M.MARKING,
                    yellow,
                )
            )
        for side in (-1, 1):
            for off in (BIKE_IN, BIKE_OUT):
                o = side * off
                meshes.append(
                    strip(
                        _side_polyline(road, o + 0.07, a, b),
                        _side_polyline(road, o - 0.07, a, b),
                        0.01,
                        M.MARKING,
                        white,
                    )
                )
            # dashed lane divider: 3 m dash, 6 m gap
            for d0 in np.arange(a, b - 3, 9.0):
                o = side * LANE_W
                meshes.append(
                    strip(
                        _side_polyline(road, o + 0.07, d0, d0 + 3.5),
                        _side_polyline(road, o - 0.07, d0, d0 + 3.5),
                        0.01,
                        M.MARKING,
                        white,
                    )
                )
    for a, b in free:  # sidewalks with curbs
        for side in (-1, 1):
            inner = _side_polyline(road, side * CURB, a, b)
            outer = _side_polyline(road, side * SIDEWALK_OUT, a, b)
            if len(inner) < 2:
                continue
            l_, r_ = (outer, inner) if side > 0 else (inner, outer)
            meshes.append(strip(l_, r_, SIDEWALK_Z, M.SIDEWALK, (0.62, 0.6, 0.57)))
            meshes.append(wall_strip(inner, 0.0, SIDEWALK_Z, M.SIDEWALK, (0.7, 0.7, 0.68)))
    for s_c, centre, heading in crossings:
        d = np.array([math.cos(heading), math.sin(heading)])
        n = np.array([-d[1], d[0]])
        line = centre + np.outer(np.linspace(-CROSS_LEN, CROSS_LEN, 141), d)
        meshes.append(strip(line + CROSS_HALF * n, line - CROSS_HALF * n, -0.003, M.ROAD, asphalt))
        for seg in (np.linspace(CURB + 3, CROSS_LEN, 40), np.linspace(-CROSS_LEN, -CURB - 3, 40)):
            ln = centre + np.outer(seg, d)
            meshes.append(strip(ln + 0.1 * n, ln - 0.1 * n, 0.007, M.MARKING, yellow))
            for side in (-1, 1):
                inner = ln + side * CROSS_HALF * n
                outer = ln + side * (CROSS_HALF + 4.0) * n
                l_, r_ = (outer, inner) if side > 0 else (inner, outer)
                meshes.append(strip(l_, r_, SIDEWALK_Z, M.SIDEWALK, (0.62, 0.6, 0.57)))
                meshes.append(wall_strip(inner, 0.0, SIDEWALK_Z, M.SIDEWALK, (0.7, 0.7, 0.68)))
        # zebra crossings over the main road on both sides of the side road
        for side in (-1, 1):
            s_z = s_c + side * (CROSS_HALF + 2.0)
            p, h = road.at(s_z)
            t_ = np.array([math.cos(float(h)), math.sin(float(h))])
            nn = np.array([-t_[1], t_[0]])
            for k in np.arange(-CURB + 0.6, CURB, 1.2):
                c = p + k * nn
                meshes.append(
                    box((c[0], c[1], 0.008), (3.0, 0.6, 0.012), M.MARKING, white, yaw=float(h))
                )
    return meshes


def _near_roads(
    xy: NDArray, road: Path, crossings: list[tuple[float, NDArray, float]], margin: float
) -> bool:
    """Whether any of the (N, 2) points is within the road corridors plus `margin`."""
    d = np.min(
        np.hypot(xy[:, None, 0] - road.xy[None, ::2, 0], xy[:, None, 1] - road.xy[None, ::2, 1]),
        axis=1,
    )
    if np.any(d < SIDEWALK_OUT + margin):
        return True
    for _, centre, heading in crossings:
        dvec = np.array([math.cos(heading), math.sin(heading)])
        rel = xy - centre
        along = rel @ dvec
        across = np.abs(rel @ np.array([-dvec[1], dvec[0]]))
        if np.any((np.abs(along) < CROSS_LEN + 5) & (across < CROSS_HALF + 4.0 + margin)):
            return True
    return False


def _build_roadside(
    rng: np.random.Generator,
    road: Path,
    crossings: list[tuple[float, NDArray, float]],
    lamps: list[NDArray],
    lots: Sequence[tuple[float, float, float]] = (),
) -> list[Mesh]:
    """Buildings and walls behind the sidewalks (none where a car park of `lots` is), street
    lamps and trees along them."""
    meshes: list[Mesh] = []
    holes = [(s - CROSS_HALF - 5.0, s + CROSS_HALF + 5.0) for s, _, _ in crossings]
    for side in (-1, 1):
        s = rng.uniform(0, 10)
        while s < road.length:
            length = rng.uniform(10, 28)
            depth = rng.uniform(8, 18)
            mid = s + length / 2
            in_lot = any(ls == side and s < b and s + length > a for ls, a, b in lots)
            if not in_lot and not any(a < mid < b or a < s < b or a < s + length < b
                                      for a, b in holes):  # fmt: skip
                p, h = road.at(mid)
                h = float(h)
                n = np.array([-math.sin(h), math.cos(h)])
                centre = p + side * (SIDEWALK_OUT + 1.0 + depth / 2 + rng.uniform(0, 2)) * n
                t_ = np.array([math.cos(h), math.sin(h)])
                corners = np.array(
                    [
                        centre + a * length / 2 * t_ + b * depth / 2 * n
                        for a in (-1, 1)
                        for b in (-1, 1)
                    ]
                )
                if not _near_roads(corners, road, crossings, 0.8):
                    if rng.random() < 0.2:  # a wall instead of a building
                        wp = p + side * (SIDEWALK_OUT + 0.8) * n
                        meshes.append(
                            box(
                                (wp[0], wp[1], 1.0),
                                (length, 0.3, 2.0),
                                M.WALL,
                                (0.55, 0.5, 0.45),
                                yaw=h,
                            )
                        )
                    else:
                        height = float(rng.choice([rng.uniform(5, 12), rng.uniform(12, 35)]))
                        grey = rng.uniform(0.35, 0.8)
                        tint = np.clip(grey + rng.uniform(-0.1, 0.1, 3), 0, 1)
                        meshes.append(
                            box(
                                (centre[0], centre[1], height / 2),
                                (length, depth, height),
                                M.BUILDING,
                                tuple(tint),
                                yaw=h,
                            )
                        )
            s += length + rng.uniform(2, 9)
        # street lamps and trees along the sidewalk
        for s_l in np.arange(rng.uniform(0, 15), road.length, 30.0):
            if any(a < s_l < b for a, b in holes):
                continue
            p, h = road.at(s_l)
            n = np.array([-math.sin(float(h)), math.cos(float(h))])
            q = p + side * (CURB + 0.4) * n
            meshes.append(
                cylinder((q[0], q[1], 3.6), 0.09, 7.2, M.POLE, (0.4, 0.4, 0.42), segments=8)
            )
            arm = q - side * 1.0 * n
            meshes.append(
                box(
                    ((q[0] + arm[0]) / 2, (q[1] + arm[1]) / 2, 7.1),
                    (0.1, 2.0, 0.1),
                    M.POLE,
                    (0.4, 0.4, 0.42),
                    yaw=float(h),
                )
            )
            meshes.append(
                box(
                    (arm[0], arm[1], 6.98), (0.6, 0.3, 0.12), M.LAMP, (1.0, 0.95, 0.8), yaw=float(h)
                )
            )
            lamps.append(np.array([arm[0], arm[1], 6.9]))
        for s_t in np.arange(rng.uniform(5, 15), road.length, 15.0):
            if any(a < s_t < b for a, b in holes) or rng.random() < 0.35:
                continue
            p, h = road.at(s_t)
            n = np.array([-math.sin(float(h)), math.cos(float(h))])
            q = p + side * (CURB + 2.4) * n
            th = rng.uniform(2.2, 3.2)
            meshes.append(
                cylinder((q[0], q[1], th / 2), 0.15, th, M.TRUNK, (0.35, 0.25, 0.15), segments=8)
            )
            r = rng.uniform(1.4, 2.3)
            green = (0.15 + rng.uniform(0, 0.1), 0.35 + rng.uniform(0, 0.15), 0.12)
            meshes.append(sphere((q[0], q[1], th + r * 0.8), (r, r, r * 0.9), M.FOLIAGE, green))
    return meshes


@dataclass(frozen=True)
class _Slot:
    """A place an actor is put: a path, a start arc length, a yaw offset."""

    path: Path
    s0: float
    yaw_offset: float = 0.0


def build_world(
    rng: np.random.Generator,
    duration: float,
    condition: Condition,
    key_times: NDArray[np.float64] | None = None,
    car_parks: float = 0.0,
    lot_rng: np.random.Generator | None = None,
) -> World:
    """Generate a scene lasting `duration` s (ego time grid from 0), deterministic for `rng`.
    `key_times` (s): the keyframes at which every class must be within 50 m of the ego.
    `car_parks`: the chance, per side of the road, of a car park beside the ego's drive, drawn
    (with its cars) from `lot_rng`; with 0 the scene is the one `rng` gave before car parks."""
    t = np.arange(0.0, duration + 1e-9, SIM_DT)
    ego_speed = speed_profile(rng, t, cruise=rng.uniform(6.0, 10.0), stop_prob=0.3)
    ego_dist = float(integrate(t, ego_speed, 0.0)[-1])
    behind, ahead = 90.0, 130.0
    length = behind + ego_dist + ahead
    n_cross = 1 + int(ego_dist > 80) + int(ego_dist > 200)
    cross_s = sorted(behind + rng.uniform(0.1, 0.95, n_cross) * (ego_dist + 40))
    cross_s = [s for i, s in enumerate(cross_s) if i == 0 or s - cross_s[i - 1] > 45]
    zones = [(s - 30, s + 30) for s in cross_s]
    start = np.array([300.0, 300.0]) + rng.uniform(-200, 200, 2)
    road = random_centerline(rng, length, start, rng.uniform(-math.pi, math.pi), zones)
    crossings = []
    for s in cross_s:
        p, h = road.at(s)
        crossings.append((s, p, float(h) + math.pi / 2))

    lane = road.offset(EGO_LANE)
    ego = drive_bicycle(lane, behind, t, ego_speed)
    lamps: list[NDArray] = []
    lot_rng = np.random.default_rng(0) if lot_rng is None else lot_rng
    lots = _car_parks(lot_rng, road, crossings, behind, ego_dist, car_parks)
    static_parts = _build_roads(road, crossings) + _build_roadside(
        rng, road, crossings, lamps, lots
    )
    lo = road.xy.min(0) - 150
    hi = road.xy.max(0) + 150
    ground = strip(
        np.array([[lo[0], hi[1]], [hi[0], hi[1]]]),
        np.array([[lo[0], lo[1]], [hi[0], lo[1]]]),
        -0.02,
        M.GROUND,
        (0.32, 0.42, 0.22),
    )
    static_parts.append(ground)

    actors = _place_actors(rng, t, road, crossings, ego, behind, ego_dist)
    actors += _park_cars(lot_rng, t, road, crossings, lots)
    actors = _ensure_classes(rng, t, road, ego, actors, key_times)
    return World(
        static=concat(static_parts),
        actors=tuple(actors),
        ego=ego,
        t=t,
        road=road,
        crossings=tuple((p, h) for _, p, h in crossings),
        condition=condition,
        lights=np.array(lamps).reshape(-1, 3),
    )


def _make(
    rng: np.random.Generator,
    name: str,
    cls: str,
    path: Path,
    s: NDArray,
    yaw_offset: float = 0.0,
    rider: bool = False,
    parked: bool = False,
) -> Actor:
    size = sample_size(rng, cls)
    color = actor_color(rng, cls)
    mesh = build_mesh(cls, size, color, rider)
    return Actor(name, cls, size, mesh, path, s, yaw_offset, rider, parked, color)


def _place_actors(
    rng: np.random.Generator,
    t: NDArray,
    road: Path,
    crossings: list,
    ego: EgoTrack,
    behind: float,
    ego_dist: float,
) -> list[Actor]:
    actors: list[Actor] = []
    count = [0]

    def name(cls: str) -> str:
        count[0] += 1
        return f"{cls}-{count[0]:03d}"

    ego_lo, ego_hi = behind - 40, behind + ego_dist + 60
    holes = [(s - CROSS_HALF - 4.0, s + CROSS_HALF + 4.0) for s, _, _ in crossings]

    def free(s: float) -> bool:
        return not any(a < s < b for a, b in holes)

    # work zone on the oncoming side: cones, barriers, a construction vehicle, a worker
    wz = float(rng.uniform(behind + 0.2 * ego_dist, behind + 0.8 * ego_dist + 20))
    while not (free(wz) and free(wz + 24)):
        wz += 9.0
    edge = road.offset(BIKE_IN + 0.3)
    for k in range(9):
        actors.append(
            _make(rng, name("traffic_cone"), "traffic_cone", edge, np.full(len(t), wz + k * 3.0))
        )
    for s_b in (wz - 1.5, wz + 25.5):
        across = road.offset(BIKE_IN + 2.0)
        actors.append(_make(rng, name("barrier"), "barrier", across, np.full(len(t), s_b)))
    inner = road.offset(CURB - 1.8)
    actors.append(
        _make(
            rng,
            name("construction_vehicle"),
            "construction_vehicle",
            inner,
            np.full(len(t), wz + 12.0),
            parked=True,
        )
    )
    actors.append(
        _make(
            rng,
            name("barrier"),
            "barrier",
            road.offset(CURB - 0.4),
            np.full(len(t), wz + 5.0),
            yaw_offset=math.pi / 2,
        )
    )

    # lane platoons: one speed profile a lane so vehicles keep their gaps and never collide
    lanes = [
        (road.offset(-LANE_W * 1.5), ["car", "truck", "car", "bus", "car", "motorcycle"], 0.35),
        (road.offset(LANE_W / 2).reversed(), ["car", "car", "bus", "car", "truck", "car"], 0.25),
        (road.offset(LANE_W * 1.5).reversed(), ["car", "motorcycle", "car", "truck", "car"], 0.25),
    ]
    for li, (path, classes, stop_prob) in enumerate(lanes):
        v = speed_profile(rng, t, cruise=rng.uniform(5.0, 11.0), stop_prob=stop_prob)
        travel = integrate(t, v, 0.0)
        # place the platoon so it meets the ego mid-scene
        if li == 0:
            s_start = float(rng.uniform(ego_lo - 10, ego_lo + 40))
        else:
            ego_mid = path.length - (behind + 0.5 * ego_dist)
            s_start = ego_mid - travel[len(t) // 2] - rng.uniform(0, 30)
        s_cur = s_start
        for cls in classes:
            a = _make(rng, name(cls), cls, path, travel + s_cur, rider=cls == "motorcycle")
            actors.append(a)
            s_cur -= a.size_wlh[1] + rng.uniform(6.0, 18.0)

    # cyclists on the ego side's bike lane
    bike_lane = road.offset(-(BIKE_IN + BIKE_OUT) / 2)
    vb = speed_profile(rng, t, cruise=rng.uniform(3.5, 5.5), stop_prob=0.2)
    travel_b = integrate(t, vb, 0.0)
    s_b = float(rng.uniform(ego_lo + 20, ego_lo + 70))
    for _ in range(2):
        a = _make(rng, name("bicycle"), "bicycle", bike_lane, travel_b + s_b, rider=True)
        actors.append(a)
        s_b -= 8.0 + rng.uniform(0, 6)

    # parked vehicles along both curbs (not in the work zone or intersections)
    for side in (-1, 1):
        park = road.offset(side * (BIKE_OUT + 1.25))
        s_p = ego_lo + rng.uniform(0, 15)
        while s_p < ego_hi:
            s_path = s_p if side < 0 else s_p
            if (
                free(s_p)
                and free(s_p + 6)
                and not (side > 0 and wz - 8 < s_p < wz + 32)
                and rng.random() < 0.6
            ):
                cls = str(
                    rng.choice(["car", "car", "car", "trailer", "truck", "motorcycle", "bicycle"])
                )
                a = _make(
                    rng,
                    name(cls),
                    cls,
                    park,
                    np.full(len(t), s_path),
                    parked=True,
                    yaw_offset=float(rng.normal(0, 0.03)),
                )
                actors.append(a)
                s_p += a.size_wlh[1] + rng.uniform(1.5, 4.0)
            else:
                s_p += rng.uniform(5.0, 12.0)

    # pedestrians: walkers on both sidewalks, standing people, and crossers of the side roads
    for side in (-1, 1):
        for k in range(4):
            off = side * (12.3 if k % 2 == 0 else 14.5)
            path = road.offset(off)
            if rng.random() < 0.5:
                path = path.reversed()
            vp = speed_profile(rng, t, cruise=rng.uniform(0.9, 1.6), stop_prob=0.5)
            if rng.random() < 0.2:
                vp = np.zeros(len(t))  # standing
            s0 = float(rng.uniform(0, 1)) * (ego_hi - ego_lo) + ego_lo
            if path.xy[0, 0] != road.offset(off).xy[0, 0]:
                s0 = path.length - s0
            actors.append(_make(rng, name("pedestrian"), "pedestrian", path, integrate(t, vp, s0)))
    for _, centre, heading in crossings:
        d = np.array([math.cos(heading), math.sin(heading)])
        n = np.array([-d[1], d[0]])
        for k in range(2):
            # walk across the side road along a zebra, starting on one sidewalk
            across = float(rng.choice([-1.0, 1.0])) * (CURB + 1.5 + k * 1.5)
            a_pt = centre + across * d - (CROSS_HALF + 3.0) * n
            b_pt = centre + across * d + (CROSS_HALF + 3.0) * n
            pts = np.linspace(a_pt, b_pt, 30) if rng.random() < 0.5 else np.linspace(b_pt, a_pt, 30)
            path = Path.from_points(pts)
            vp = np.zeros(len(t))
            t_go = rng.uniform(0.0, max(0.1, t[-1] - 8.0))
            vp[t >= t_go] = rng.uniform(1.0, 1.5)
            actors.append(_make(rng, name("pedestrian"), "pedestrian", path, integrate(t, vp, 0.0)))
    # parked cycles on the sidewalk, without riders
    for cls in ("bicycle", "motorcycle"):
        s_c = float(rng.uniform(ego_lo + 30, ego_hi - 30))
        while not free(s_c):
            s_c += 7.0
        side = float(rng.choice([-1.0, 1.0]))
        path = road.offset(side * (SIDEWALK_OUT - 0.7))
        actors.append(
            _make(
                rng, name(cls), cls, path, np.full(len(t), s_c), yaw_offset=math.pi / 2, parked=True
            )
        )
    return actors


def _car_parks(
    rng: np.random.Generator,
    road: Path,
    crossings: list,
    behind: float,
    ego_dist: float,
    chance: float,
) -> list[tuple[float, float, float]]:
    """(side, s0, s1): the stretches of road beside the ego's drive given to a car park, clear of
    the side roads."""
    if chance <= 0.0:
        return []
    holes = [(s - CROSS_HALF - 5.0, s + CROSS_HALF + 5.0) for s, _, _ in crossings]
    lots = []
    for side in (-1.0, 1.0):
        if rng.random() >= chance:
            continue
        length = float(rng.uniform(30.0, 70.0))
        s0 = behind + float(rng.uniform(-20.0, max(-19.0, ego_dist - 10.0)))
        for a, b in sorted(holes):  # move it past a side road it would meet
            if s0 < b and s0 + length > a:
                s0 = b
        if s0 + length < road.length:
            lots.append((side, s0, s0 + length))
    return lots


def _park_cars(
    rng: np.random.Generator,
    t: NDArray,
    road: Path,
    crossings: list,
    lots: list[tuple[float, float, float]],
) -> list[Actor]:
    """The cars of the car parks: two rows of bays across the road's axis, nose in or out; a
    car whose footprint would come near a road (a car park on the inside of a bend) is left
    out."""
    actors: list[Actor] = []
    for side, s0, s1 in lots:
        for row in LOT_ROWS:
            s = s0 + float(rng.uniform(0.0, 1.0))
            while s < s1:
                if rng.random() < LOT_OCCUPANCY:
                    p, h = road.at(s)
                    h = float(h)
                    along = np.array([math.cos(h), math.sin(h)])
                    xy = p + side * row * np.array([-along[1], along[0]])
                    path = Path.from_points(np.array([xy, xy + along]))
                    nose = math.pi / 2 if rng.random() < 0.5 else -math.pi / 2
                    name = f"car-lot-{len(actors) + 1:03d}"
                    yaw = nose + float(rng.normal(0.0, 0.05))
                    car = _make(rng, name, "car", path, np.zeros(len(t)), yaw, parked=True)
                    w, l = car.size_wlh[0], car.size_wlh[1]
                    heading = np.array([math.cos(h + yaw), math.sin(h + yaw)])
                    normal = np.array([-heading[1], heading[0]])
                    corners = np.array([xy + a * l / 2 * heading + b * w / 2 * normal
                                        for a in (-1, 1) for b in (-1, 1)])  # fmt: skip
                    if not _near_roads(corners, road, crossings, 0.3):
                        actors.append(car)
                s += LOT_BAY + float(rng.uniform(0.0, 0.3))
    return actors


def _ensure_classes(
    rng: np.random.Generator,
    t: NDArray,
    road: Path,
    ego: EgoTrack,
    actors: list[Actor],
    key_times: NDArray[np.float64] | None,
) -> list[Actor]:
    """Every detection class at least once within 50 m of the ego at a keyframe time: where one
    is missing, add a parked or standing one beside the ego's path at the middle keyframe
    (removing parked vehicles it would overlap)."""
    times = t[:: int(0.5 / SIM_DT)] if key_times is None else np.asarray(key_times, np.float64)
    idx = (times - t[0]) / SIM_DT
    ego_xy, _ = ego.state(times)
    seen: set[str] = set()
    for a in actors:
        c, _ = actor_poses(a, idx)
        if np.min(np.hypot(*(c[:, :2] - ego_xy).T)) < 45.0:
            seen.add(a.cls)
    out = list(actors)
    mid = ego_xy[len(ego_xy) // 2]
    s_mid = float(road.nearest(mid[None])[0][0])
    s_next = s_mid + rng.uniform(-5, 5)
    for cls in DETECTION_ORDER:
        if cls in seen:
            continue
        small = cls in ("pedestrian", "traffic_cone", "barrier", "bicycle")
        path = road.offset(-(12.8 if small else BIKE_OUT + 1.25))
        extra = _make(
            rng, f"{cls}-extra", cls, path, np.full(len(t), s_next), parked=cls != "pedestrian"
        )
        s_next += extra.size_wlh[1] + 2.0
        centre, _ = actor_poses(extra, idx[:1])
        keep = []
        for a in out:
            c, _ = actor_poses(a, idx[:1])
            gap = np.hypot(*(c[0, :2] - centre[0, :2]))
            if a.parked and gap < 0.5 * (a.size_wlh[1] + extra.size_wlh[1]) + 1.0:
                continue  # make room
            keep.append(a)
        out = keep + [extra]
    return out

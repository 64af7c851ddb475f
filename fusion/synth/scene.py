"""Generate one scene: simulate every sensor message, write its files, return its table records.

Clock: the world runs in seconds from the scene's start; timestamps are integer microseconds
`t0_us + round(1e6 * s)`. LIDAR sweeps end every 1 / rate s; keyframes are every tenth sweep
(2 Hz at 20 Hz), with nine sweeps before the first one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import quaternion_from_yaw
from fusion.config import Condition
from fusion.data.rig_file import RigSpec
from fusion.data.sensor_io import encode_jpeg
from fusion.synth.annotations import attribute, boxes_in_ego, visibility_token, visible_fraction
from fusion.synth.cameras import NUSCENES_JPEG_QUALITY, render
from fusion.synth.canbus import can_bus_messages
from fusion.synth.conditions import conditions
from fusion.synth.gnss import GnssMode, gnss_messages
from fusion.synth.lidar import simulate_sweep
from fusion.synth.radar import pcd_bytes, simulate_radar
from fusion.synth.raycast import Raycaster
from fusion.synth.trajectory import ego_transform
from fusion.synth.world import CAR_PARKS, EGO_LANE, World, build_world

# The tables a scene writes on its own (the rest are shared by the whole dataroot).
SCENE_TABLES = (
    "log",
    "map",
    "scene",
    "sample",
    "sample_data",
    "ego_pose",
    "calibrated_sensor",
    "instance",
    "sample_annotation",
)

SWEEPS_PER_KEYFRAME = 10
LEAD_SWEEPS = 9  # LIDAR sweeps before the first keyframe
MARGIN_S = 1.0  # world time before the first sweep starts (history for motion)
ANNOTATION_RANGE = 60.0  # m from the ego


def token(*parts: object) -> str:
    """A deterministic 32-hex token from names (nuScenes tokens are 32 hex digits)."""
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


@dataclass(frozen=True)
class SceneJob:
    """Everything one worker needs to generate scene `index` (picklable)."""

    out: str
    version: str
    seed: int
    index: int
    name: str
    samples: int
    condition: Condition
    image_hw: tuple[int, int]  # (height, width) px
    render_scale: float
    camera_sweeps: bool
    rig: RigSpec
    gnss: GnssMode = "std"
    jpeg_quality: int = NUSCENES_JPEG_QUALITY
    car_parks: float = CAR_PARKS  # the chance of a car park per side of the road (world.py)

    @property
    def namespace(self) -> str:
        return f"{self.version}/{self.seed}"

    @property
    def t0_us(self) -> int:
        return 1_700_000_000_000_000 + self.index * 100_000_000

    @property
    def logfile(self) -> str:
        return f"synth-s{self.seed}-{self.name}"


@dataclass(frozen=True, eq=False)
class SceneRecords:
    """Table records of one scene (lists of JSON-able dicts), keyed by table name."""

    tables: dict[str, list[dict]]


def _us(job: SceneJob, s: float) -> int:
    return job.t0_us + int(round(s * 1e6))


def _rng(job: SceneJob, stream: str) -> np.random.Generator:
    """An independent generator per scene and stream, fixed by (seed, scene index, stream)."""
    key = int(hashlib.md5(stream.encode()).hexdigest()[:8], 16)
    return np.random.default_rng([job.seed, job.index, key])


def _record_pose(
    tables: dict[str, list[dict]], job: SceneJob, world: World, channel: str, ts: int
) -> str:
    pose = ego_transform(world.ego, (ts - job.t0_us) / 1e6)
    tok = token(job.namespace, job.name, "ego_pose", channel, ts)
    tables["ego_pose"].append(
        {
            "token": tok,
            "timestamp": ts,
            "rotation": [float(v) for v in pose.quaternion],
            "translation": [float(v) for v in pose.translation],
        }
    )
    return tok


def camera_fire_fraction(spec_azimuth_deg: float, spin_start_deg: float) -> float:
    """Fraction of the LIDAR spin (0..1) at which it crosses a camera's optical axis."""
    return ((spin_start_deg - spec_azimuth_deg) % 360.0) / 360.0


def generate_scene(job: SceneJob) -> SceneRecords:
    """Simulate and write scene `job.index`; return its records."""
    rig = job.rig
    out = Path(job.out)
    cond = conditions(job.condition)
    lidar = rig.lidar
    period = 1.0 / lidar.rate_hz
    n_sweeps = LEAD_SWEEPS + SWEEPS_PER_KEYFRAME * (job.samples - 1) + 1
    sweep_end = [MARGIN_S + period * (j + 1) for j in range(n_sweeps)]
    key_sweeps = [LEAD_SWEEPS + SWEEPS_PER_KEYFRAME * k for k in range(job.samples)]
    duration = sweep_end[-1] + MARGIN_S
    key_times = np.array([sweep_end[j] for j in key_sweeps])
    world = build_world(
        _rng(job, "world"),
        duration,
        job.condition,
        key_times,
        car_parks=job.car_parks,
        lot_rng=_rng(job, "car_parks"),
    )
    caster = Raycaster(world)
    tables: dict[str, list[dict]] = {k: [] for k in SCENE_TABLES}

    log_tok = token(job.namespace, job.name, "log")
    tables["log"].append(
        {
            "token": log_tok,
            "logfile": job.logfile,
            "vehicle": "synth",
            "date_captured": "2026-01-01",
            "location": "synth-city",
        }
    )
    map_name = f"maps/{token(job.namespace, job.name, 'map')}.png"
    _write_map(out / map_name, world)
    tables["map"].append(
        {
            "token": token(job.namespace, job.name, "map"),
            "log_tokens": [log_tok],
            "category": "semantic_prior",
            "filename": map_name,
        }
    )

    # calibrated sensors (camera intrinsics scaled to the output image size)
    height, width = job.image_hw
    calib: dict[str, str] = {}
    cams = {}
    for spec in (lidar, *rig.cameras, *rig.radars):
        tok = token(job.namespace, job.name, "calibrated_sensor", spec.channel)
        calib[spec.channel] = tok
        intr: list = []
        if spec in rig.cameras:
            cam = spec.camera(width, height)  # type: ignore[union-attr]
            cams[spec.channel] = cam
            intr = [[float(v) for v in row] for row in cam.intrinsics]
        tables["calibrated_sensor"].append(
            {
                "token": tok,
                "sensor_token": token("sensor", spec.channel),
                "translation": [float(v) for v in spec.translation],
                "rotation": [float(v) for v in spec.rotation],
                "camera_intrinsic": intr,
            }
        )

    samples = [
        {
            "token": token(job.namespace, job.name, "sample", k),
            "timestamp": _us(job, sweep_end[j]),
            "scene_token": token(job.namespace, job.name, "scene"),
        }
        for k, j in enumerate(key_sweeps)
    ]
    for k, s in enumerate(samples):
        s["prev"] = samples[k - 1]["token"] if k > 0 else ""
        s["next"] = samples[k + 1]["token"] if k + 1 < len(samples) else ""
    tables["sample"] = samples
    sample_times = np.array([s["timestamp"] for s in samples])

    def owning_sample(ts: int) -> str:
        """Sweeps belong to the next keyframe (the last keyframe for none after)."""
        k = int(np.searchsorted(sample_times, ts, side="left"))
        return samples[min(k, len(samples) - 1)]["token"]

    streams: dict[str, list[dict]] = {}

    def add_data(
        channel: str,
        ts: int,
        key: bool,
        ext: str,
        fileformat: str,
        payload: bytes,
        w: int = 0,
        h: int = 0,
        sample_tok: str | None = None,
    ) -> dict:
        folder = "samples" if key else "sweeps"
        filename = f"{folder}/{channel}/{job.logfile}__{channel}__{ts}.{ext}"
        path = out / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        rec = {
            "token": token(job.namespace, job.name, "sample_data", channel, ts),
            "sample_token": sample_tok or owning_sample(ts),
            "ego_pose_token": _record_pose(tables, job, world, channel, ts),
            "calibrated_sensor_token": calib[channel],
            "timestamp": ts,
            "fileformat": fileformat,
            "is_key_frame": key,
            "height": h,
            "width": w,
            "filename": filename,
        }
        streams.setdefault(channel, []).append(rec)
        return rec

    # LIDAR
    rng_l = _rng(job, "lidar")
    key_points: dict[int, NDArray[np.float32]] = {}
    for j, end in enumerate(sweep_end):
        sweep = simulate_sweep(caster, lidar, cond, end, rng_l)
        key = j in key_sweeps
        if key:
            key_points[j] = sweep.points
        ts = _us(job, end)
        add_data(
            lidar.channel,
            ts,
            key,
            "pcd.bin",
            "pcd",
            sweep.points.astype("<f4").tobytes(),
            sample_tok=samples[key_sweeps.index(j)]["token"] if key else None,
        )

    # cameras: fired when the spin crosses each camera's axis; 12 Hz locked to the LIDAR
    rng_c = _rng(job, "camera")
    key_cam_poses: dict[int, list] = {j: [] for j in key_sweeps}
    for spec in rig.cameras:
        frac = camera_fire_fraction(spec.azimuth_deg, lidar.spin_start_deg)
        ratio = spec.rate_hz / lidar.rate_hz
        for j, end in enumerate(sweep_end):
            m = j - LEAD_SWEEPS + 10_000
            fires = math.floor(m * ratio) != math.floor((m - 1) * ratio)
            key = j in key_sweeps
            if not key and not (job.camera_sweeps and fires):
                continue
            t_fire = end - period + frac * period
            ts = _us(job, t_fire)
            ego = ego_transform(world.ego, t_fire)
            pose = ego @ spec.to_ego
            headlight = (ego.apply(np.array([[3.6, 0.0, 0.7]]))[0], ego.rotation[:, 0])
            img = render(
                caster, cams[spec.channel], pose, t_fire, cond, rng_c, job.render_scale, headlight
            )
            add_data(
                spec.channel,
                ts,
                key,
                "jpg",
                "jpg",
                encode_jpeg(img.image, job.jpeg_quality),
                width,
                height,
                sample_tok=samples[key_sweeps.index(j)]["token"] if key else None,
            )
            if key:
                key_cam_poses[j].append((cams[spec.channel], pose))

    # radars: free-running at their own rate; the message nearest each keyframe is the keyframe
    rng_r = _rng(job, "radar")
    key_radar: dict[int, list] = {j: [] for j in key_sweeps}
    first_s, last_s = sweep_end[0] - period, sweep_end[-1]
    for spec in rig.radars:
        step = 1.0 / spec.rate_hz
        # one message past the last keyframe, so its nearest radar is within half a period (as
        # on the car), not up to a whole period before it (beyond the sync tolerance)
        times = np.arange(first_s + spec.phase_ms / 1000.0, last_s + step + 1e-9, step)
        nearest = {int(np.argmin(np.abs(times - sweep_end[j]))): j for j in key_sweeps}
        for i, t in enumerate(times):
            radar = simulate_radar(caster, spec, float(t), rng_r)
            key = i in nearest
            ts = _us(job, float(t))
            add_data(
                spec.channel,
                ts,
                key,
                "pcd",
                "pcd",
                pcd_bytes(radar.points),
                sample_tok=samples[key_sweeps.index(nearest[i])]["token"] if key else None,
            )
            if key:
                key_radar[nearest[i]].append((spec, float(t), radar))

    for recs in streams.values():  # prev / next within each sensor's stream
        recs.sort(key=lambda r: r["timestamp"])
        for i, r in enumerate(recs):
            r["prev"] = recs[i - 1]["token"] if i > 0 else ""
            r["next"] = recs[i + 1]["token"] if i + 1 < len(recs) else ""
        tables["sample_data"].extend(recs)

    _annotate(
        job,
        world,
        caster,
        tables,
        samples,
        key_sweeps,
        sweep_end,
        key_points,
        key_cam_poses,
        key_radar,
    )

    first_key = samples[0]["timestamp"]
    tables["scene"].append(
        {
            "token": token(job.namespace, job.name, "scene"),
            "log_token": log_tok,
            "nbr_samples": len(samples),
            "first_sample_token": samples[0]["token"],
            "last_sample_token": samples[-1]["token"],
            "name": job.name,
            "description": f"synthetic, {job.condition}, seed {job.seed}, "
            f"{len(world.actors)} actors",
            # not in the nuScenes schema (the devkit ignores extra fields): eval reads it
            "condition": job.condition,
        }
    )

    can = can_bus_messages(
        world.ego,
        world.road.offset(EGO_LANE),
        job.t0_us,
        first_s - 0.5,
        last_s + 0.5,
        rig.imu,
        _rng(job, "imu"),
    )
    can_dir = out / "can_bus"
    can_dir.mkdir(parents=True, exist_ok=True)
    files = can.files()
    if job.gnss != "none":
        files["gnss"] = gnss_messages(
            world.ego, job.t0_us, first_s - 0.5, last_s + 0.5, rig.gnss, job.gnss, _rng(job, "gnss")
        )
    for msg, content in files.items():
        (can_dir / f"{job.name}_{msg}.json").write_text(json.dumps(content))
    assert first_key == _us(job, sweep_end[LEAD_SWEEPS])
    return SceneRecords(tables)


def _annotate(
    job: SceneJob,
    world: World,
    caster: Raycaster,
    tables: dict[str, list[dict]],
    samples: list[dict],
    key_sweeps: list[int],
    sweep_end: list[float],
    key_points: dict,
    key_cam_poses: dict,
    key_radar: dict,
) -> None:
    # the numpy reference: exact and free of a JIT compile in every worker process
    from kernels import count_points_in_boxes

    rig = job.rig
    rng = _rng(job, "visibility")
    per_instance: dict[int, list[dict]] = {}
    sizes = np.array([a.size_wlh for a in world.actors])
    for k, j in enumerate(key_sweeps):
        t = sweep_end[j]
        ego = ego_transform(world.ego, t)
        centres, yaws, vels = world.states(t)
        dist = np.hypot(*(centres[:, :2] - ego.translation[:2]).T)
        ids = np.flatnonzero(dist <= ANNOTATION_RANGE)
        if not len(ids):
            continue
        boxes = boxes_in_ego(centres[ids], yaws[ids], sizes[ids], ego)
        pts_ego = rig.lidar.to_ego.apply(key_points[j][:, :3].astype(np.float64))
        n_lidar = np.asarray(count_points_in_boxes(pts_ego, boxes, backend="numpy"))
        radar_pts = []
        for spec, t_r, radar in key_radar[j]:
            p = radar.points[radar.valid]
            xyz = np.column_stack([p["x"], p["y"], p["z"]]).astype(np.float64)
            to_key_ego = ego.inverse() @ ego_transform(world.ego, t_r) @ spec.to_ego
            radar_pts.append(to_key_ego.apply(xyz))
        all_radar = np.concatenate(radar_pts) if radar_pts else np.zeros((0, 3))
        n_radar = (
            np.asarray(count_points_in_boxes(all_radar, boxes, backend="numpy"))
            if len(all_radar)
            else np.zeros(len(ids), np.int64)
        )
        vis = visible_fraction(caster, ids, t, key_cam_poses[j], rng)
        for m, a_i in enumerate(ids):
            actor = world.actors[a_i]
            speed = float(np.hypot(*vels[a_i]))
            attr = attribute(actor, speed)
            rec = {
                "token": token(job.namespace, job.name, "sample_annotation", actor.name, k),
                "sample_token": samples[k]["token"],
                "instance_token": token(job.namespace, job.name, "instance", actor.name),
                "visibility_token": visibility_token(float(vis[m])),
                "attribute_tokens": [token("attribute", attr)] if attr else [],
                "translation": [float(v) for v in centres[a_i]],
                "size": [float(v) for v in actor.size_wlh],
                "rotation": [float(v) for v in quaternion_from_yaw(float(yaws[a_i]))],
                "num_lidar_pts": int(n_lidar[m]),
                "num_radar_pts": int(n_radar[m]),
            }
            per_instance.setdefault(int(a_i), []).append(rec)
    for a_i in sorted(per_instance):
        recs = per_instance[a_i]
        for i, r in enumerate(recs):
            r["prev"] = recs[i - 1]["token"] if i > 0 else ""
            r["next"] = recs[i + 1]["token"] if i + 1 < len(recs) else ""
        actor = world.actors[a_i]
        tables["instance"].append(
            {
                "token": recs[0]["instance_token"],
                "category_token": token("category", actor.category),
                "nbr_annotations": len(recs),
                "first_annotation_token": recs[0]["token"],
                "last_annotation_token": recs[-1]["token"],
            }
        )
        tables["sample_annotation"].extend(recs)


def _write_map(path: Path, world: World) -> None:
    """A small semantic prior: drivable area of the scene's roads, 1 px = 1 m."""
    lo = world.road.xy.min(0) - 100
    hi = world.road.xy.max(0) + 100
    size = np.ceil(hi - lo).astype(int) + 1
    img = np.zeros((size[1], size[0]), np.uint8)
    pts = np.round(world.road.xy - lo).astype(np.int32)
    cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, 255, thickness=22)
    for centre, heading in world.crossings:
        d = np.array([math.cos(heading), math.sin(heading)]) * 70
        a = np.round(centre - d - lo).astype(int)
        b = np.round(centre + d - lo).astype(int)
        cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 255, thickness=15)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img[::-1])

"""Multi-sweep point clouds: earlier LIDAR and radar scans brought into the LIDAR_TOP frame at
the reference time, each point carrying its time lag. One definition, used by the offline
reader (`fusion.data.reader`) and the online synchronizer (`fusion.sync.online`).

A scan measured by sensor S at time t maps to LIDAR_TOP at t_ref through
`LIDAR(t_ref) <- ego(t_ref) <- global <- ego(t) <- S` (`fusion.frame.transform_between`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from fusion.frame import RADAR_FIELDS, Frame, LidarData, RadarData, SensorPose, transform_between
from kernels import merge_sweeps

# Earlier sweeps drop the ego vehicle's own returns (|x|, |y| < 1 m in the sensor frame), as the
# devkit's and mmdet3d's multi-sweep loaders do.
SWEEP_CLOSE_M = 1.0

# Rows of the nuScenes radar fields (the devkit's RadarPointCloud.points order) we keep.
RADAR_X, RADAR_RCS = RADAR_FIELDS.index("x"), RADAR_FIELDS.index("rcs")
RADAR_VX_COMP, RADAR_VY_COMP = RADAR_FIELDS.index("vx_comp"), RADAR_FIELDS.index("vy_comp")


def lidar_sweeps(
    scans: Sequence[tuple[SensorPose, NDArray[np.float32]]],
    reference: SensorPose,
    filename: str = "",
    absent_dt: Sequence[float] = (),
) -> LidarData:
    """`scans` (pose, (N, 5) x y z intensity ring in the sensor frame), the keyframe first, then
    older sweeps -> one (sum N, 5) cloud x y z (LIDAR_TOP at t_ref) intensity dt (s).
    The older sweeps drop the ego vehicle's own returns (`SWEEP_CLOSE_M`).
    `absent_dt`: dt (s) of the chain's sweeps whose files do not exist (not in `scans`).
    One pass per scan into one output array (`kernels.merge_sweeps`)."""
    clouds, matrices, dts = [], [], []
    for k, (pose, pts) in enumerate(scans):
        clouds.append(pts)
        if k == 0 and pose.timestamp_us == reference.timestamp_us:
            matrices.append(None)  # the keyframe scan is already in the reference frame
            dts.append(0.0)
        else:
            matrices.append(transform_between(pose, reference).matrix)
            dts.append((reference.timestamp_us - pose.timestamp_us) * 1e-6)
    points, kept = merge_sweeps(clouds, matrices, dts, SWEEP_CLOSE_M)
    return LidarData(
        pose=reference,
        points=points,
        num_sweeps=len(scans),
        filename=filename,
        keyframe_points=kept[0] if kept else 0,
        absent_dt=tuple(absent_dt),
    )


def radar_sweeps(
    scans: Sequence[tuple[SensorPose, NDArray[np.floating]]],
    reference: SensorPose,
    filename: str = "",
    absent_dt: Sequence[float] = (),
) -> RadarData:
    """`scans` (pose, (18, N) filtered radar fields), the current scan first -> (sum N, 7)
    x y z (LIDAR_TOP at t_ref) rcs vx vy (ego-motion compensated, LIDAR_TOP) dt (s).
    `absent_dt`: dt (s) of the chain's sweeps whose files do not exist (not in `scans`)."""
    points = np.empty((sum(raw.shape[1] for _, raw in scans), 7), np.float32)
    row = 0
    for pose, raw in scans:
        n = raw.shape[1]
        to_ref = transform_between(pose, reference).matrix
        rot_t = to_ref[:3, :3].T
        out = points[row : row + n]
        out[:, :3] = raw[RADAR_X : RADAR_X + 3].T.astype(np.float64) @ rot_t + to_ref[:3, 3]
        out[:, 3] = raw[RADAR_RCS]
        vel = np.zeros((n, 3))
        vel[:, 0], vel[:, 1] = raw[RADAR_VX_COMP], raw[RADAR_VY_COMP]
        out[:, 4:6] = (vel @ rot_t)[:, :2]
        out[:, 6] = (reference.timestamp_us - pose.timestamp_us) * 1e-6
        row += n
    return RadarData(
        pose=scans[0][0],
        points=points,
        num_sweeps=len(scans),
        filename=filename,
        absent_dt=tuple(absent_dt),
    )


def keyframe_only(frame: Frame) -> Frame:
    """`frame` with the LIDAR keyframe scan alone and each radar's current scan alone: what a
    keyframes-only dataroot (sweep files absent) gives for the same sample, points for points.
    Training's sweep dropout (`train.sweep_dropout`) uses it, so a model trained on multi-sweep
    data has seen the inputs of keyframes-only data."""
    lidar = frame.lidar
    if lidar is not None and lidar.num_sweeps > 1:
        lidar = dataclasses.replace(
            lidar, points=lidar.points[: lidar.keyframe_points], num_sweeps=1
        )
    radars = {}
    for ch, r in frame.radars.items():
        if r.num_sweeps > 1:
            # the current scan's rows: its dt, computed as `radar_sweeps` computes it
            dt = np.float32((frame.reference.timestamp_us - r.pose.timestamp_us) * 1e-6)
            r = dataclasses.replace(r, points=r.points[r.points[:, 6] == dt], num_sweeps=1)
        radars[ch] = r
    return dataclasses.replace(frame, lidar=lidar, radars=radars)


def _newest_sweeps(
    points: NDArray[np.float32],
    dt_column: int,
    num_sweeps: int,
    absent_dt: tuple[float, ...],
    n: int,
) -> tuple[NDArray[np.float32], int, tuple[float, ...]] | None:
    """The `n` newest sweeps of a chain of `num_sweeps` fused sweeps and the absent ones at
    `absent_dt` (smallest dt first): (rows of the fused ones among them in their order, how
    many those are, the absent ones' dt). None when a sweep has no points (its dt is then
    unknown, so the cut cannot be placed)."""
    lags = np.unique(points[:, dt_column])
    if len(lags) != num_sweeps:
        return None
    # fused and absent sweeps are >= 50 ms apart: float32 against float64 cannot reorder them
    chain = np.sort(np.concatenate([lags.astype(np.float64), np.asarray(absent_dt, np.float64)]))
    cut = chain[n - 1]
    absent = tuple(d for d in absent_dt if d <= cut)
    return points[points[:, dt_column] <= cut], n - len(absent), absent


def keep_sweeps(frame: Frame, lidar_sweeps: int, radar_sweeps: int) -> Frame | None:
    """`frame` with only its newest `lidar_sweeps` LIDAR sweeps and `radar_sweeps` sweeps of
    each radar: what a reader set to those counts returns (same points, same order, the same
    absent sweeps of a keyframes-only dataroot), so models trained with different sweep counts
    are scored on one read of the data. None when that cannot be told from the points (a
    sweep without points): read the frame again then."""
    lidar = frame.lidar
    if lidar is not None and lidar.num_sweeps + lidar.absent_sweeps > lidar_sweeps:
        cut = _newest_sweeps(lidar.points, 4, lidar.num_sweeps, lidar.absent_dt, lidar_sweeps)
        if cut is None:
            return None
        pts, n, absent = cut
        lidar = replace(lidar, points=pts, num_sweeps=n, absent_dt=absent)
    radars = {}
    for ch, r in frame.radars.items():
        if r.num_sweeps + r.absent_sweeps > radar_sweeps:
            cut = _newest_sweeps(r.points, 6, r.num_sweeps, r.absent_dt, radar_sweeps)
            if cut is None:
                return None
            pts, n, absent = cut
            r = replace(r, points=pts, num_sweeps=n, absent_dt=absent)
        radars[ch] = r
    return replace(frame, lidar=lidar, radars=radars)


def absent_sweeps_read(frame: Frame, modalities: Sequence[str]) -> dict[str, int]:
    """Channel -> absent sweep files among those a model with `modalities` reads in `frame`
    (a camera-only model reads no LIDAR or radar sweep)."""
    return {
        ch: n
        for ch, n in frame.absent_sweeps.items()
        if ("lidar" if ch == frame.reference.channel else "radar") in modalities
    }

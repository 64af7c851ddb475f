"""Small typed containers the stages exchange: one synchronized `Frame` and its parts.

Frames: LIDAR points, radar points and GT boxes are in the LIDAR_TOP frame at the reference
(LIDAR_TOP keyframe) time; `*_global` fields are in the nuScenes global frame. Units: m, m/s,
rad, microseconds (us).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from calibration import PinholeCamera, Transform

# The nuScenes radar PCD record (the devkit's row order) with each field's type: what every
# nuScenes radar file's header says, 43 packed bytes a point. One definition for the reader, the
# log decoders and writers, and the synthetic generator.
RADAR_PCD_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("dyn_prop", "i1"),
        ("id", "<i2"),
        ("rcs", "<f4"),
        ("vx", "<f4"),
        ("vy", "<f4"),
        ("vx_comp", "<f4"),
        ("vy_comp", "<f4"),
        ("is_quality_valid", "i1"),
        ("ambig_state", "i1"),
        ("x_rms", "i1"),
        ("y_rms", "i1"),
        ("invalid_state", "i1"),
        ("pdh0", "i1"),
        ("vx_rms", "i1"),
        ("vy_rms", "i1"),
    ]
)
RADAR_FIELDS: list[str] = list(RADAR_PCD_DTYPE.names or ())


@dataclass(frozen=True, eq=False)
class SensorPose:
    """Where a sensor was when it measured: calibration and ego pose at its own timestamp."""

    channel: str
    timestamp_us: int
    sensor_to_ego: Transform  # ego <- sensor (calibrated_sensor)
    ego_to_global: Transform  # global <- ego at timestamp_us (ego_pose)

    @property
    def sensor_to_global(self) -> Transform:
        return self.ego_to_global @ self.sensor_to_ego


def transform_between(src: SensorPose, dst: SensorPose) -> Transform:
    """dst sensor (at dst time) <- src sensor (at src time), through the global frame:
    `B <- ego(tB) <- global <- ego(tA) <- A`. The global hop is never skipped, because the ego
    moves between tA and tB (at 10 m/s, 1 m per 100 ms).

    The product `B<-ego(tB) @ ego(tB)<-global @ global<-ego(tA) @ ego(tA)<-A` is formed on the
    matrices in that order, with `Transform.inverse`'s rigid inverse (the same floats as
    composing the `Transform`s; the frame names of each hop meet by construction): the
    synchronizer calls it for every radar scan and LIDAR sweep of a frame."""
    m = _rigid_inverse(dst.sensor_to_ego.matrix) @ _rigid_inverse(dst.ego_to_global.matrix)
    m = m @ src.ego_to_global.matrix @ src.sensor_to_ego.matrix
    return Transform(m, src=src.channel, dst=dst.channel)


def _rigid_inverse(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """`Transform.inverse` on a matrix: (R^T, -R^T t)."""
    out = np.eye(4)
    rot = m[:3, :3]
    out[:3, :3] = rot.T
    out[:3, 3] = -rot.T @ m[:3, 3]
    return out


@dataclass(frozen=True, eq=False)
class LidarData:
    """`points` (N, 5) float32: x y z (m, LIDAR_TOP frame at the keyframe time), intensity
    (0..255), dt (s, keyframe time minus the sweep's time, >= 0)."""

    pose: SensorPose
    points: NDArray[np.float32]
    num_sweeps: int  # scans fused (the keyframe and the sweeps whose files exist)
    filename: str
    keyframe_points: int  # points of the keyframe scan alone (the first rows of `points`)
    # dt (s) of each sweep of the chain whose file is not on disk (a keyframes-only
    # download): not fused; kept so a cut to fewer sweeps knows where they were
    absent_dt: tuple[float, ...] = ()

    @property
    def absent_sweeps(self) -> int:
        return len(self.absent_dt)


@dataclass(frozen=True, eq=False)
class CameraData:
    """`image` (H, W, 3) uint8 RGB; `camera` the pinhole model of that image."""

    pose: SensorPose
    image: NDArray[np.uint8]
    camera: PinholeCamera
    filename: str


@dataclass(frozen=True, eq=False)
class RadarData:
    """`points` (N, 7) float32: x y z (m, LIDAR_TOP frame at the keyframe time), rcs (dBsm),
    vx vy (m/s, ego-motion compensated, in the LIDAR_TOP frame), dt (s)."""

    pose: SensorPose
    points: NDArray[np.float32]
    num_sweeps: int  # scans fused (the current one and the sweeps whose files exist)
    filename: str
    # dt (s) of each sweep of the chain whose file is not on disk: not fused (see LidarData)
    absent_dt: tuple[float, ...] = ()

    @property
    def absent_sweeps(self) -> int:
        return len(self.absent_dt)


@dataclass(frozen=True, eq=False)
class Boxes:
    """GT boxes of one sample. M boxes; nuScenes size order (w, l, h) in m."""

    tokens: tuple[str, ...]
    categories: tuple[str, ...]  # full nuScenes category, e.g. vehicle.car
    detection_names: tuple[str | None, ...]  # one of DETECTION_CLASSES, or None (not evaluated)
    attributes: tuple[str, ...]  # attribute name or ""
    center_lidar: NDArray[np.float64]  # (M, 3)
    yaw_lidar: NDArray[np.float64]  # (M,) rad, heading of the box's length axis about +z
    size_wlh: NDArray[np.float64]  # (M, 3)
    velocity_lidar: NDArray[np.float64]  # (M, 2) vx vy, NaN where unknown
    center_global: NDArray[np.float64]  # (M, 3)
    rotation_global: NDArray[np.float64]  # (M, 4) w x y z
    velocity_global: NDArray[np.float64]  # (M, 2)
    num_lidar_pts: NDArray[np.int64]
    num_radar_pts: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.tokens)

    def as_array(self) -> NDArray[np.float64]:
        """(M, 7) x y z l w h yaw in the LIDAR_TOP frame, the layout `kernels` takes."""
        w, l, h = self.size_wlh.T
        return np.column_stack([self.center_lidar, l, w, h, self.yaw_lidar])


@dataclass(frozen=True, eq=False)
class EgoMotion:
    """Ego state at the reference time from GPS/IMU (CAN bus) or differenced ego poses."""

    velocity: NDArray[np.float64]  # (3,) m/s in the ego frame
    yaw_rate: float  # rad/s
    source: str  # "can_bus", "ego_pose" or "gnss-imu" (the estimated poses)


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything the stack knows of one sample, synchronized to the LIDAR_TOP keyframe."""

    sample_token: str
    scene_name: str
    timestamp_us: int  # reference time: the LIDAR_TOP keyframe
    reference: SensorPose  # LIDAR_TOP at the reference time
    lidar: LidarData | None
    cameras: dict[str, CameraData]
    radars: dict[str, RadarData]
    boxes: Boxes | None
    ego_motion: EgoMotion | None = None
    missing: dict[str, str] = field(default_factory=dict)  # channel -> reason (tolerant mode)
    # channels whose message is a neighbouring trigger's, reused (its own time and ego pose;
    # `fusion.sync.online`, between="reuse")
    reused: tuple[str, ...] = ()

    @property
    def offsets_us(self) -> dict[str, int]:
        """Each present sensor's timestamp minus the reference time."""
        out = {}
        if self.lidar is not None:
            out[self.lidar.pose.channel] = self.lidar.pose.timestamp_us - self.timestamp_us
        for ch, c in self.cameras.items():
            out[ch] = c.pose.timestamp_us - self.timestamp_us
        for ch, r in self.radars.items():
            out[ch] = r.pose.timestamp_us - self.timestamp_us
        return out

    @property
    def absent_sweeps(self) -> dict[str, int]:
        """Channel -> sweeps whose files are absent (keyframes-only layout), where any are."""
        counts = {ch: r.absent_sweeps for ch, r in self.radars.items()}
        if self.lidar is not None:
            counts[self.lidar.pose.channel] = self.lidar.absent_sweeps
        return {ch: n for ch, n in sorted(counts.items()) if n}

    def sensor_to_lidar(self, channel: str) -> Transform:
        """LIDAR_TOP(t_ref) <- channel(t_channel), through the global frame."""
        src = self.cameras.get(channel) or self.radars.get(channel)
        if src is None:
            raise KeyError(f"sensor {channel} is not in frame {self.sample_token}")
        return transform_between(src.pose, self.reference)


@dataclass(frozen=True, eq=False)
class Detections:
    """Detector output for one sample in the LIDAR_TOP frame at the reference time."""

    center: NDArray[np.float32]  # (K, 3)
    size_wlh: NDArray[np.float32]  # (K, 3)
    yaw: NDArray[np.float32]  # (K,)
    velocity: NDArray[np.float32]  # (K, 2)
    scores: NDArray[np.float32]  # (K,)
    labels: NDArray[np.int64]  # (K,) index into DETECTION_CLASSES
    attributes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.scores)

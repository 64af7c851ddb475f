"""GPS/IMU: ego poses at any timestamp, interpolated from a time-stamped pose stream.

Sources: the `ego_pose` table, or the CAN bus `pose` (50 Hz) and `ms_imu` (100 Hz) messages
of `<dataroot>/can_bus/`. Translation is interpolated linearly, rotation by SLERP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from calibration import Transform, quaternion_slerp, yaw_from_quaternion
from fusion.errors import DataError


@dataclass(frozen=True, eq=False)
class PoseStream:
    """Time-sorted ego poses: `ego -> global`. Times in us, translations in m, quaternions wxyz."""

    timestamps_us: NDArray[np.int64]
    translations: NDArray[np.float64]  # (T, 3)
    rotations: NDArray[np.float64]  # (T, 4)
    source: str = "ego_pose"
    max_extrapolation_us: int = field(default=0)

    def __post_init__(self) -> None:
        t = np.asarray(self.timestamps_us, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        object.__setattr__(self, "timestamps_us", t[order])
        object.__setattr__(self, "translations", np.asarray(self.translations, np.float64)[order])
        object.__setattr__(self, "rotations", np.asarray(self.rotations, np.float64)[order])
        if len(t) == 0:
            raise ValueError(f"pose stream {self.source!r} is empty")

    def __len__(self) -> int:
        return len(self.timestamps_us)

    def at(self, timestamp_us: int) -> Transform:
        """Ego pose (global <- ego) at `timestamp_us`: exact on a sample, interpolated between.
        Outside the stream, the end pose within `max_extrapolation_us`, else DataError."""
        t = self.timestamps_us
        ts = int(timestamp_us)
        i = int(np.searchsorted(t, ts))
        if i < len(t) and t[i] == ts:
            return self._pose(i)
        if i == 0 or i == len(t):
            end = 0 if i == 0 else len(t) - 1
            if abs(int(t[end]) - ts) <= self.max_extrapolation_us:
                return self._pose(end)
            raise DataError(
                f"timestamp {ts} us is outside the {self.source} stream "
                f"[{int(t[0])}, {int(t[-1])}] us"
            )
        a = (ts - int(t[i - 1])) / (int(t[i]) - int(t[i - 1]))
        trans = (1 - a) * self.translations[i - 1] + a * self.translations[i]
        rot = quaternion_slerp(self.rotations[i - 1], self.rotations[i], a)
        return Transform.from_translation_quaternion(trans, rot, src="ego", dst="global")

    def _pose(self, i: int) -> Transform:
        return Transform.from_translation_quaternion(
            self.translations[i], self.rotations[i], src="ego", dst="global"
        )

    def velocity(self, timestamp_us: int, window_us: int = 100_000) -> NDArray[np.float64]:
        """Velocity (3,) in m/s in the ego frame by central difference over `window_us`."""
        t0, t1 = self._window(timestamp_us, window_us)
        p0, p1 = self.at(t0), self.at(t1)
        v_global = (p1.translation - p0.translation) / ((t1 - t0) * 1e-6)
        return self.at(timestamp_us).inverse().apply_vectors(v_global[None])[0]

    def yaw_rate(self, timestamp_us: int, window_us: int = 100_000) -> float:
        """Yaw rate in rad/s by central difference over `window_us`."""
        t0, t1 = self._window(timestamp_us, window_us)
        y0 = yaw_from_quaternion(self.at(t0).quaternion)
        y1 = yaw_from_quaternion(self.at(t1).quaternion)
        dyaw = (y1 - y0 + np.pi) % (2 * np.pi) - np.pi
        return float(dyaw / ((t1 - t0) * 1e-6))

    def _window(self, ts: int, window_us: int) -> tuple[int, int]:
        lo, hi = int(self.timestamps_us[0]), int(self.timestamps_us[-1])
        t0, t1 = max(lo, ts - window_us // 2), min(hi, ts + window_us // 2)
        if t1 <= t0:
            raise DataError(f"pose stream {self.source!r} has a single pose: no velocity")
        return t0, t1


def pose_stream_from_records(records: list[dict], source: str = "ego_pose") -> PoseStream:
    """From `ego_pose` table records (timestamp, translation, rotation)."""
    return PoseStream(
        np.array([r["timestamp"] for r in records], dtype=np.int64),
        np.array([r["translation"] for r in records], dtype=np.float64).reshape(-1, 3),
        np.array([r["rotation"] for r in records], dtype=np.float64).reshape(-1, 4),
        source=source,
    )


@dataclass(frozen=True, eq=False)
class CanBus:
    """One scene's CAN bus: the `pose` stream (50 Hz) and the `ms_imu` messages (100 Hz)."""

    pose: PoseStream
    imu_timestamps_us: NDArray[np.int64]
    imu_rotation_rate: NDArray[np.float64]  # (T, 3) rad/s, ego frame
    imu_linear_accel: NDArray[np.float64]  # (T, 3) m/s^2, ego frame
    pose_velocity: NDArray[np.float64]  # (T, 3) m/s in the ego frame, as logged

    def yaw_rate(self, timestamp_us: int) -> float:
        """IMU yaw rate (rad/s) at `timestamp_us`, linearly interpolated."""
        if len(self.imu_timestamps_us) == 0:
            return self.pose.yaw_rate(timestamp_us)
        return float(np.interp(timestamp_us, self.imu_timestamps_us, self.imu_rotation_rate[:, 2]))

    def velocity(self, timestamp_us: int) -> NDArray[np.float64]:
        """Logged ego velocity (3,) m/s at `timestamp_us`, linearly interpolated."""
        t = self.pose.timestamps_us
        return np.array([np.interp(timestamp_us, t, self.pose_velocity[:, k]) for k in range(3)])


def _load_messages(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read CAN bus messages: {exc}", path) from exc
    if not isinstance(data, list):
        raise DataError("CAN bus message file must hold a JSON list", path)
    return data


def load_can_bus(dataroot: str | Path, scene_name: str) -> CanBus | None:
    """`<dataroot>/can_bus/<scene>_pose.json` (+ `_ms_imu.json`) or None when absent."""
    root = Path(dataroot) / "can_bus"
    pose_path = root / f"{scene_name}_pose.json"
    if not pose_path.is_file():
        return None
    msgs = _load_messages(pose_path)
    if not msgs:
        raise DataError("CAN bus pose file has no messages", pose_path)
    try:
        pose = PoseStream(
            np.array([m["utime"] for m in msgs], dtype=np.int64),
            np.array([m["pos"] for m in msgs], dtype=np.float64),
            np.array([m["orientation"] for m in msgs], dtype=np.float64),
            source="can_bus pose",
        )
        vel = np.array([m["vel"] for m in msgs], dtype=np.float64)
    except (KeyError, ValueError) as exc:
        raise DataError(f"CAN bus pose message lacks or mangles {exc}", pose_path) from exc
    order = np.argsort([m["utime"] for m in msgs], kind="stable")
    imu_path = root / f"{scene_name}_ms_imu.json"
    imu = _load_messages(imu_path) if imu_path.is_file() else []
    imu = sorted(imu, key=lambda m: m["utime"])
    return CanBus(
        pose=pose,
        imu_timestamps_us=np.array([m["utime"] for m in imu], dtype=np.int64),
        imu_rotation_rate=np.array([m["rotation_rate"] for m in imu], dtype=np.float64).reshape(
            -1, 3
        ),
        imu_linear_accel=np.array([m["linear_accel"] for m in imu], dtype=np.float64).reshape(
            -1, 3
        ),
        pose_velocity=vel[order],
    )

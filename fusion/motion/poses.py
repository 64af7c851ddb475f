"""Ego poses at any timestamp, from a time-stamped pose stream.

Sources: the `ego_pose` table, or the CAN bus `pose` (50 Hz) and `ms_imu` (100 Hz) messages
of `<dataroot>/can_bus/`, or poses estimated from GNSS and IMU (`fusion.localization`).

One rule, offline (`PoseStream`, the reader) and online (`fusion.sync.online.PoseBuffer`, replay),
in `pose_at`: exact on a pose; between two poses, translation linear and rotation by SLERP;
past either end by at most `max_extrapolation_us`, constant velocity and angular rate from the
two end poses (one pose alone is held); farther, unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from calibration import Transform, quaternion_slerp, yaw_from_quaternion
from fusion.errors import DataError
from fusion.frame import SensorPose, transform_between


class NoEgoPose(DataError):
    """No ego pose at a time the pose source cannot serve: before the pose estimator's start, or
    a scene it has no input for. The sensor (or the keyframe's whole frame) is left out and
    counted, never given a made-up pose."""


def pose_at(
    timestamps_us: NDArray[np.int64],
    translations: NDArray[np.float64],
    rotations: NDArray[np.float64],
    timestamp_us: int,
    max_extrapolation_us: int,
) -> Transform | None:
    """Ego pose (global <- ego) at `timestamp_us` from sorted poses, by the module's one rule;
    None when the time is beyond either end by more than `max_extrapolation_us`."""
    t = timestamps_us
    ts = int(timestamp_us)
    if len(t) == 0:
        return None
    i = int(np.searchsorted(t, ts))
    if i < len(t) and t[i] == ts:
        return _transform(translations[i], rotations[i])
    if 0 < i < len(t):
        a = (ts - int(t[i - 1])) / (int(t[i]) - int(t[i - 1]))
        trans = (1 - a) * translations[i - 1] + a * translations[i]
        return _transform(trans, quaternion_slerp(rotations[i - 1], rotations[i], a))
    end, inner = (0, 1) if i == 0 else (len(t) - 1, len(t) - 2)
    if abs(ts - int(t[end])) > max_extrapolation_us:
        return None
    if len(t) == 1:
        return _transform(translations[0], rotations[0])
    # constant velocity and angular rate from the two end poses: the interpolation between
    # them continued past the end (SLERP's great circle continues past 0 and 1)
    a = (ts - int(t[inner])) / (int(t[end]) - int(t[inner]))
    trans = translations[inner] + a * (translations[end] - translations[inner])
    return _transform(trans, quaternion_slerp(rotations[inner], rotations[end], a))


def _transform(translation: NDArray[np.float64], quaternion: NDArray[np.float64]) -> Transform:
    return Transform.from_translation_quaternion(translation, quaternion, src="ego", dst="global")


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
        """Ego pose (global <- ego) at `timestamp_us` by the module's rule (`pose_at`);
        beyond the stream's ends by more than `max_extrapolation_us`, DataError."""
        t = self.timestamps_us
        pose = pose_at(
            t, self.translations, self.rotations, timestamp_us, self.max_extrapolation_us
        )
        if pose is None:
            raise DataError(
                f"timestamp {int(timestamp_us)} us is outside the {self.source} stream "
                f"[{int(t[0])}, {int(t[-1])}] us"
            )
        return pose

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


def record_column(
    records: list, key: str, width: int | None, origin: str | Path | None, what: str
) -> NDArray[np.float64]:
    """`[r[key] for r in records]` as finite float64 (T,) or (T, width), else a DataError naming
    the file: a missing key, a string, a nested list or a NaN never reaches the arithmetic."""
    shape = (len(records),) if width is None else (len(records), width)
    if not records:
        return np.zeros(shape)
    try:
        arr = np.array([r[key] for r in records], dtype=np.float64)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(
            f"{what} messages: {key!r} missing or not numbers ({exc!r})", origin
        ) from None
    if arr.shape != shape:
        raise DataError(f"{what} messages: {key!r} must hold {width or 1} number(s) each", origin)
    if not np.isfinite(arr).all():
        raise DataError(f"{what} messages: {key!r} has NaN or Inf", origin)
    return arr


def record_times(
    records: list, key: str, origin: str | Path | None, what: str
) -> NDArray[np.int64]:
    t = record_column(records, key, None, origin, what)
    if (t != np.round(t)).any() or (np.abs(t) > 2**62).any():
        raise DataError(f"{what} messages: {key!r} must be integer microseconds", origin)
    return t.astype(np.int64)


def record_quaternions(
    records: list, key: str, origin: str | Path | None, what: str
) -> NDArray[np.float64]:
    q = record_column(records, key, 4, origin, what)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    if (norm < 1e-6).any():
        raise DataError(f"{what} messages: {key!r} holds a zero quaternion", origin)
    return q / norm  # a non-unit quaternion is normalized (harmless)


def pose_stream_from_records(
    records: list[dict], source: str = "ego_pose", origin: str | Path | None = None
) -> PoseStream:
    """From `ego_pose` table records (timestamp, translation, rotation); a malformed record is a
    DataError naming `origin` (the table file)."""
    if not records:
        raise DataError(f"{source} has no records", origin)
    return PoseStream(
        record_times(records, "timestamp", origin, source),
        record_column(records, "translation", 3, origin, source),
        record_quaternions(records, "rotation", origin, source),
        source=source,
    )


def transform_at(
    poses: PoseStream,
    src_to_ego: Transform,
    src_time_us: int,
    dst_to_ego: Transform,
    dst_time_us: int,
) -> Transform:
    """Sensor A at its time to sensor B at its time, with ego poses from a pose stream: the
    rule of `fusion.frame.transform_between` (through the global frame, never skipped)."""
    return transform_between(
        SensorPose(src_to_ego.src, src_time_us, src_to_ego, poses.at(src_time_us)),
        SensorPose(dst_to_ego.src, dst_time_us, dst_to_ego, poses.at(dst_time_us)),
    )

"""Time sync: transforms between sensors at different times, and a message synchronizer.

A point seen by sensor A at time tA maps to sensor B at time tB through
`B <- ego(tB) <- global <- ego(tA) <- A`; the global hop is never skipped, because the ego
moves between tA and tB (at 10 m/s, 1 m per 100 ms).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from calibration import Transform
from fusion.frame import SensorPose
from fusion.poses import PoseStream


def transform_between(src: SensorPose, dst: SensorPose) -> Transform:
    """dst sensor (at dst time) <- src sensor (at src time), through the global frame."""
    a = src.sensor_to_ego.matrix
    src_sensor = Transform(a, src=src.channel, dst=f"ego@{src.timestamp_us}")
    src_ego = Transform(src.ego_to_global.matrix, src=f"ego@{src.timestamp_us}", dst="global")
    dst_ego = Transform(dst.ego_to_global.matrix, src=f"ego@{dst.timestamp_us}", dst="global")
    dst_sensor = Transform(dst.sensor_to_ego.matrix, src=dst.channel, dst=f"ego@{dst.timestamp_us}")
    return dst_sensor.inverse() @ dst_ego.inverse() @ src_ego @ src_sensor


def transform_at(
    poses: PoseStream,
    src_to_ego: Transform,
    src_time_us: int,
    dst_to_ego: Transform,
    dst_time_us: int,
) -> Transform:
    """Like `transform_between`, with ego poses interpolated from a GPS/IMU pose stream."""
    return transform_between(
        SensorPose(src_to_ego.src, src_time_us, src_to_ego, poses.at(src_time_us)),
        SensorPose(dst_to_ego.src, dst_time_us, dst_to_ego, poses.at(dst_time_us)),
    )


T = TypeVar("T")


@dataclass(frozen=True)
class Message(Generic[T]):
    channel: str
    timestamp_us: int
    payload: T


@dataclass(frozen=True)
class SyncedFrame(Generic[T]):
    """One reference message and, per other sensor, the message nearest in time."""

    timestamp_us: int
    messages: dict[str, Message[T]]
    missing: tuple[str, ...] = ()

    @property
    def offsets_us(self) -> dict[str, int]:
        return {ch: m.timestamp_us - self.timestamp_us for ch, m in self.messages.items()}


@dataclass
class SyncReport:
    """Per sensor: how many frames it was found / missing in, and its offsets (us)."""

    frames: int = 0
    found: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    offsets_us: dict[str, list[int]] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float]]:
        """channel -> {found, missing, mean_offset_us, max_abs_offset_us}."""
        out = {}
        for ch in sorted(set(self.found) | set(self.missing)):
            offs = np.array(self.offsets_us.get(ch, []), dtype=np.float64)
            out[ch] = {
                "found": self.found.get(ch, 0),
                "missing": self.missing.get(ch, 0),
                "mean_offset_us": float(offs.mean()) if len(offs) else float("nan"),
                "max_abs_offset_us": float(np.abs(offs).max()) if len(offs) else float("nan"),
            }
        return out


class Synchronizer(Generic[T]):
    """Builds frames from per-sensor message streams around each reference message.

    For every message of `reference`, each other channel contributes its message nearest in
    time if within that channel's tolerance (us), else it is listed as missing. A message is
    used at most once per channel (a stale message is never repeated into the next frame).
    """

    def __init__(self, reference: str, tolerances_us: Mapping[str, int]) -> None:
        if any(t < 0 for t in tolerances_us.values()):
            raise ValueError("tolerances must be >= 0 us")
        self.reference = reference
        self.tolerances_us = dict(tolerances_us)
        self.report = SyncReport()

    def synchronize(
        self, streams: Mapping[str, Sequence[Message[T]]] | Iterable[Message[T]]
    ) -> list[SyncedFrame[T]]:
        if not isinstance(streams, Mapping):
            grouped: dict[str, list[Message[T]]] = {}
            for m in streams:
                grouped.setdefault(m.channel, []).append(m)
            streams = grouped
        if self.reference not in streams:
            raise ValueError(f"no messages from the reference sensor {self.reference}")
        sorted_streams = {
            ch: sorted(msgs, key=lambda m: m.timestamp_us) for ch, msgs in streams.items()
        }
        times = {
            ch: np.array([m.timestamp_us for m in msgs], dtype=np.int64)
            for ch, msgs in sorted_streams.items()
        }
        used: dict[str, set[int]] = {ch: set() for ch in sorted_streams}
        frames = []
        for ref in sorted_streams[self.reference]:
            got: dict[str, Message[T]] = {self.reference: ref}
            missing = []
            for ch in self.tolerances_us:
                if ch == self.reference:
                    continue
                idx = self._nearest(
                    times.get(ch), ref.timestamp_us, self.tolerances_us[ch], used.get(ch, set())
                )
                if idx is None:
                    missing.append(ch)
                    self.report.missing[ch] = self.report.missing.get(ch, 0) + 1
                    continue
                used[ch].add(idx)
                msg = sorted_streams[ch][idx]
                got[ch] = msg
                self.report.found[ch] = self.report.found.get(ch, 0) + 1
                self.report.offsets_us.setdefault(ch, []).append(
                    msg.timestamp_us - ref.timestamp_us
                )
            self.report.frames += 1
            frames.append(SyncedFrame(ref.timestamp_us, got, tuple(missing)))
        return frames

    @staticmethod
    def _nearest(t: np.ndarray | None, ts: int, tol: int, used: set[int]) -> int | None:
        if t is None or len(t) == 0:
            return None
        i = int(np.searchsorted(t, ts))
        candidates = [j for j in (i - 1, i) if 0 <= j < len(t) and j not in used]
        if not candidates:
            return None
        j = min(candidates, key=lambda k: abs(int(t[k]) - ts))
        return j if abs(int(t[j]) - ts) <= tol else None

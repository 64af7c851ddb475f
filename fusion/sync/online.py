"""The online, causal synchronizer: log messages in arrival order -> `Frame`s at each trigger.

Fed one decoded message at a time (`push`), it keeps bounded per-channel buffers and a bounded
pose buffer, and turns each trigger (a LIDAR keyframe, or every LIDAR sweep) into a `Frame`
built only from what had arrived:
- each camera and radar message belongs to the trigger nearest to it in time among the triggers
  received (a message of a keyframe, marked with its sample token where the log marks keyframes,
  to that keyframe: a keyframe always gets the images that fired for it, though nuScenes cameras
  fire up to 44 ms before the scan, nearer the previous sweep); a trigger takes, per sensor, its
  own message nearest to t within the sensor's tolerance (config `[sync]`); each own message
  goes into one frame;
- the early decision (`_choose`): a trigger's match for a sensor is final as soon as no later
  message of that sensor can be nearer or its own: its keyframe message is in; or, with its
  nearest own candidate at distance d, a message stamped at or after t + d has arrived, or the
  sensor's period P, estimated online (`PeriodEstimate`: the shortest recent interval less
  `period_margin`), gives t - d + P >= t + d; with no candidate, nothing more can come within the
  window (or the next trigger is received and nearer). It rests on each sensor's messages
  arriving in timestamp order and the period's jitter staying within the margin (property-tested
  in tests/fusion/replay/test_sync_early.py: it never takes a farther message than waiting, and
  is never later). With `early_decision=False` a sensor is decided once heard past t + its
  tolerance. Either way a trigger never waits past t + `wait_us`, and no message stamped after
  t + `wait_us` is used; the wait of each trigger (release on the stream's clock minus t) is
  counted in `counters.sync_wait_us`;
- `radar_match="causal"` and `camera_match="causal"` (options; `nearest` is the default): a
  radar's own scan (a camera's own image) is the newest stamped at or before the trigger (an
  image: up to `camera_causal_slack_us`, 3 ms, after it, as nuScenes stamps some), final
  once the sensor's period shows no later one can be, or, where the source states how late it
  logs a message (`log_delay_us`: 0 for a dataroot, logged at sensor time), once the log is heard
  past the trigger plus that delay; so a trigger does not wait for a message stamped after it.
  On nuScenes the cameras fire before the LIDAR scan they belong to, so the causal camera match
  is the image that fired for the scan (`benchmarks/sync_wait.md` has the wait and the detection
  cost of each);
- a trigger with no own message for a sensor (a 12 Hz camera against 20 Hz LIDAR triggers)
  reuses the newest one received within tolerance, with its own timestamp and ego pose, marked
  in `Frame.reused` (`between="reuse"`, the default: the detector keeps every camera), or goes
  without (`between="none"`); a sensor with none is missing in the frame and counted. A causal
  match reuses the newest message stamped at or before the trigger up to the sensor's longest
  recent interval old when that is longer than the tolerance (at most twice it): nuScenes
  cameras fire at 50 and 100 ms intervals, so the newest image is up to 100 ms behind a LIDAR
  scan the camera skipped;
- LIDAR sweeps are the trigger scan and the previous scans, strictly older; radar sweeps the
  matched scan and that radar's previous ones; both motion-compensated into LIDAR_TOP at t
  (`fusion.motion.sweeps`) through ego poses interpolated from the pose messages received so far, or
  extrapolated at constant velocity over at most `max_extrapolation_us`, never from the future.
  A scan older than the span of `lidar_sweeps` (`radar_sweeps`) scans at the nuScenes rig's
  rate is not fused (`max_sweep_age_us`): in a keyframes-only log (sweep files absent) the
  previous scans are the previous keyframes, 0.5 s apart, which the offline reader does not
  fuse and the models never saw in training.

Decoding (`decode`): with `camera_decode="reduced"` (inference's fast path; the default `full`
keeps every pixel) each camera message is decoded at the JPEG DCT reduction its network input
allows (`fusion.data.sensor_io.decoded_camera`), and the frame carries the matching scaled camera
model; an image that came full (PNG, raw pixels) keeps the calibrated one. Camera and radar
messages can be taken undecoded (`push_undecoded`, as `fusion.sync.ingest.IngestPump` does) and are
then decoded once, when a frame takes them; a keyframe's images (marked with its sample token:
that keyframe always takes them) start decoding on the pool as they arrive
(`early_image_decode`), the others on the pool when their frame is built.

Times in us (sensor time, the messages' own `timestamp_us`).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from calibration import Transform
from calibration.geodesy import GeodeticOrigin, enu_rotation, enu_to_enu
from fusion.config import LIDAR_CHANNEL, PipelineConfig
from fusion.data.sensor_io import RadarFilter, decoded_camera, radar_keep
from fusion.errors import DataError
from fusion.frame import CameraData, Frame, RadarData, SensorPose
from fusion.localization import POSE_SOURCE, LocalizationConfig, PoseEstimator
from fusion.localization.pose_source import PoseChoice, choose_pose_source
from fusion.motion.poses import pose_at
from fusion.motion.sweeps import lidar_sweeps, radar_sweeps
from fusion.sources.base import (
    CameraImage,
    EgoPose,
    GnssFix,
    ImuSample,
    LidarScan,
    LogMessage,
    Payload,
    RadarScan,
    Rig,
    VehicleSpeed,
)

if TYPE_CHECKING:
    from calibration import PinholeCamera
    from fusion.data.sensor_io import ImageDecode

Trigger = Literal["keyframes", "lidar"]
Between = Literal["reuse", "none"]
# a trigger's own message of a sensor: the one nearest to it, or the newest at or before it
Match = Literal["nearest", "causal"]

# Nominal scan periods of the nuScenes rig (LIDAR 20 Hz, radar 13 Hz): n sweeps span
# (n - 1) periods; half a period more is the jitter allowed.
LIDAR_PERIOD_US = 50_000
RADAR_PERIOD_US = 1_000_000 // 13


def max_sweep_age_us(sweeps: int, period_us: int) -> int:
    """The oldest scan (us before the newest) `sweeps` scans at `period_us` reach, plus half a
    period: what the offline reader's chain of `sweeps` sample_data spans."""
    return int((sweeps - 0.5) * period_us)


@dataclass(frozen=True)
class StreamOptions:
    """How frames are assembled online. Tolerances and sweeps default from the config."""

    camera_channels: tuple[str, ...]
    radar_channels: tuple[str, ...]
    camera_tolerance_us: int
    radar_tolerance_us: int
    lidar_sweeps: int
    radar_sweeps: int
    radar_filter: RadarFilter = RadarFilter()
    wait_us: int = 50_000  # longest a trigger waits for the other sensors
    trigger: Trigger = "keyframes"
    max_extrapolation_us: int = 100_000
    pose_buffer: int = 2048  # poses kept (about 10 s of ego_pose records, 40 s of CAN at 50 Hz)
    max_pending: int = 8  # triggers waiting for their sensors; the oldest beyond is dropped
    # the one pose stream used (`pose`: ego_pose / tf map->base_link; `odom`: CAN bus); two
    # independently sampled estimates must not be interleaved. None: every pose message.
    # `gnss-imu`: poses estimated here from the IMU, GNSS and speed messages (no log pose used)
    pose_channel: str | None = "pose"
    localization: LocalizationConfig | None = None  # the estimator's config (gnss-imu)
    # gnss-imu: the geodetic origin of the log's map frame; the estimated poses are taken into
    # it (through WGS84), so that boxes in `global` meet map-frame annotations. None: they stay
    # in the ENU frame of the first GNSS fix
    map_origin: GeodeticOrigin | None = None
    # camera messages decoded in full, or at the JPEG reduction the network input `image_hw`
    # (H, W) allows (see the module docstring)
    camera_decode: ImageDecode = "full"
    image_hw: tuple[int, int] | None = None
    # a trigger's sensor is decided as soon as no later message can be closer (see the module
    # docstring); False: only once the sensor was heard past the trigger's window, or at the cap
    early_decision: bool = True
    # the online period estimate is the shortest recent interval x (1 - period_margin): the
    # timing jitter it allows
    period_margin: float = 0.1
    # a trigger with no message of its own for a sensor (a 12 Hz camera against 20 Hz LIDAR
    # triggers): reuse the newest one within tolerance (marked in `Frame.reused`), or none
    between: Between = "reuse"
    # a radar's own scan for a trigger: the one nearest to it (the default: a keyframe's scan as
    # the dataset pairs it, which comes up to 37 ms after the LIDAR scan, so the trigger waits
    # for it), or `causal`: the newest stamped at or before the trigger, final as soon as the
    # radar's period shows that no later one can be (free-running 13 Hz radars: at once, mostly)
    radar_match: Match = "nearest"
    # a camera's own image for a trigger: the one nearest to it (the default), or `causal`: the
    # newest stamped at or before the trigger, the LIDAR scan it fired for on a rig whose cameras
    # the LIDAR triggers (nuScenes: 0 to 44 ms before the scan), final as `_choose_causal`
    # says; a keyframe still takes the images marked for it. With 20 Hz LIDAR triggers, nearest
    # waits about one LIDAR period, causal its slack at most (`benchmarks/sync_wait.md`)
    camera_match: Match = "nearest"
    # with `camera_match="causal"`: how long after the trigger an image may be stamped and still
    # be the one that fired for it (nuScenes stamps some images just after their scan:
    # CAM_BACK_LEFT -1.8 to +1.2 ms around the keyframe scans of scene-0916; without the slack a
    # log that marks no keyframe lost that image in 20 of 41 keyframes, `benchmarks/sync_wait.md`)
    camera_causal_slack_us: int = 3_000
    # the most any message is logged after its stamp (log time - sensor time), where the source
    # states one (`Source.info()["log_delay_us"]`: a dataroot, logged at sensor time, states 0;
    # for a log the user states it, `fusion replay --log-delay-ms`); None: unknown. With it, a
    # causal match is also final once the log is heard past t + it
    log_delay_us: int | None = None
    # a camera message marked as a keyframe's (its sample token) is that keyframe's own image
    # and always taken by it: taken undecoded (`push_undecoded`), it starts decoding on the pool
    # as it arrives, while the keyframe's LIDAR scan and radar scans are still to come, instead
    # of when the frame is built. The frames are the same; False decodes it at the build
    early_image_decode: bool = True

    @classmethod
    def from_config(cls, cfg: PipelineConfig, **overrides: object) -> StreamOptions:
        base = cls(
            camera_channels=cfg.camera.channels,
            radar_channels=cfg.radar.channels,
            camera_tolerance_us=cfg.sync.camera_tolerance_us,
            radar_tolerance_us=cfg.sync.radar_tolerance_us,
            lidar_sweeps=max(1, cfg.point_cloud.sweeps),
            radar_sweeps=max(1, cfg.radar.sweeps),
            radar_filter=RadarFilter.preset(cfg.radar.filter),
            image_hw=tuple(cfg.camera.image_hw),  # type: ignore[arg-type]
        )
        return cls(**{**base.__dict__, **overrides})

    @classmethod
    def for_log(
        cls,
        cfg: PipelineConfig,
        info: Mapping[str, Any],
        budget_ms: float = 50.0,
        trigger: Trigger = "keyframes",
        modalities: Iterable[str] = ("camera", "lidar", "radar"),
        poses: PoseChoice = "auto",
        **overrides: object,
    ) -> StreamOptions:
        """`from_config` with the choices `fusion replay` makes for a log of `Source.info()`:
        the wait is the larger tolerance, capped at the budget; `keyframes` falls back to
        `lidar` when the log marks no keyframes (e.g. an original nuscenes2mcap file); one pose
        stream, the denser of `pose` (ego_pose / tf map->base_link) and `odom` (CAN bus). Only
        the sensors of `modalities` are waited for and assembled (a LIDAR-only model waits for
        no camera). `poses`: `log` takes that pose stream, `gnss-imu` estimates poses from the
        log's IMU, GNSS and speed, `auto` the first when the log has localization, else the
        second; a choice the log cannot serve is a DataError."""
        wait_us = int(
            min(budget_ms * 1000, max(cfg.sync.camera_tolerance_us, cfg.sync.radar_tolerance_us))
        )
        if trigger == "keyframes" and not info.get("keyframes"):
            trigger = "lidar"
        channels = info.get("channels", {})
        pose_channel = max(
            (c for c in ("pose", "odom") if channels.get(c)),
            key=lambda c: channels[c],
            default=None,
        )
        can_estimate = bool(channels.get("imu")) and bool(channels.get("gnss"))
        if choose_pose_source(poses, pose_channel is not None, can_estimate) == POSE_SOURCE:
            pose_channel = POSE_SOURCE
        mods = set(modalities)
        chosen: dict[str, object] = {
            "wait_us": wait_us,
            "trigger": trigger,
            "pose_channel": pose_channel,
            "camera_channels": cfg.camera.channels if "camera" in mods else (),
            "radar_channels": cfg.radar.channels if "radar" in mods else (),
            "lidar_sweeps": max(1, cfg.point_cloud.sweeps) if "lidar" in mods else 1,
            "log_delay_us": info.get("log_delay_us"),
        }
        return cls.from_config(cfg, **(chosen | overrides))

    def __post_init__(self) -> None:
        for name in (
            "camera_tolerance_us",
            "radar_tolerance_us",
            "wait_us",
            "max_extrapolation_us",
            "camera_causal_slack_us",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.lidar_sweeps < 1 or self.radar_sweeps < 1:
            raise ValueError("sweeps must be >= 1")
        if not 0.0 <= self.period_margin < 1.0:
            raise ValueError("period_margin must be in [0, 1)")
        if self.between not in ("reuse", "none"):
            raise ValueError("between must be 'reuse' or 'none'")
        if self.log_delay_us is not None and self.log_delay_us < 0:
            raise ValueError("log_delay_us must be >= 0 or None")
        for name in ("radar_match", "camera_match"):
            if getattr(self, name) not in ("nearest", "causal"):
                raise ValueError(f"{name} must be 'nearest' or 'causal'")
        if self.camera_decode == "reduced" and self.image_hw is None:
            raise ValueError("camera_decode='reduced' needs the network input image_hw")


class PoseBuffer:
    """Ego poses received so far (global <- ego), at most `size`, for causal lookup.

    Kept in arrays of twice `size` rows, appended in place, the newest `size` moved down when full,
    so a lookup reads views of them: no array is rebuilt per pose (each sensor message of a
    frame looks one up, between poses that keep arriving)."""

    def __init__(self, size: int, max_extrapolation_us: int) -> None:
        self.size = max(1, int(size))
        self.max_extrapolation_us = max_extrapolation_us
        self._t = np.zeros(2 * self.size, np.int64)
        self._trans = np.zeros((2 * self.size, 3))
        self._quat = np.zeros((2 * self.size, 4))
        self._end = 0  # rows [_end - len, _end) hold the poses, oldest first

    def __len__(self) -> int:
        return min(self._end, self.size)

    @property
    def latest_us(self) -> int | None:
        return int(self._t[self._end - 1]) if self._end else None

    def add(self, timestamp_us: int, pose: Transform | EgoPose) -> None:
        """Keep `pose` (global <- ego) at `timestamp_us`: an `EgoPose` as its translation and
        quaternion (no matrix built)."""
        ts = int(timestamp_us)
        last = self.latest_us
        if last is not None and ts <= last:
            lo = max(0, self._end - self.size)
            if ts == last or bool((self._t[lo : self._end] == ts).any()):
                return  # the same pose twice (e.g. ego_pose and tf of one sample)
        if self._end == len(self._t):  # full: the newest size rows move down, then append
            lo = self._end - self.size
            for a in (self._t, self._trans, self._quat):
                a[: self.size] = a[lo : self._end]
            self._end = self.size
        i = self._end
        self._t[i], self._trans[i], self._quat[i] = ts, pose.translation, pose.quaternion
        self._end += 1
        if last is not None and ts < last:
            # an out-of-order pose: sorted in with the row that just left the window, so the
            # window keeps the newest `size` by time (rare; logs are nearly ordered)
            lo = max(0, self._end - self.size - 1)
            order = np.argsort(self._t[lo : self._end], kind="stable")
            for a in (self._t, self._trans, self._quat):
                a[lo : self._end] = a[lo : self._end][order]

    def clear(self) -> None:
        self._end = 0

    def at(self, timestamp_us: int) -> Transform | None:
        """Pose at `timestamp_us` from the poses received so far, by the one rule of
        `fusion.motion.poses.pose_at` (interpolated between them, extrapolated at constant velocity
        within the horizon); None when it cannot be known from what was received."""
        if not self._end:
            return None
        lo = max(0, self._end - self.size)
        rows = slice(lo, self._end)
        t, trans, quat = self._t[rows], self._trans[rows], self._quat[rows]
        return pose_at(t, trans, quat, timestamp_us, self.max_extrapolation_us)


class PeriodEstimate:
    """A lower bound of a sensor's period, online: the shortest of its last `size - 1` intervals
    x (1 - `margin`); None until two intervals are known. A dropped message only lengthens an
    interval, so drops do not lower the bound; timing jitter beyond the margin can (see
    `OnlineSynchronizer`). The premise: of two consecutive intervals, one holds no drop. A
    sensor that loses every other message shows only doubled intervals, and the bound is then
    twice its period until an interval without a drop comes (the next such one corrects it);
    meanwhile the early decision can release a trigger before a nearer message of that sensor
    arrives."""

    def __init__(self, margin: float, size: int = 9) -> None:
        self._t: deque[int] = deque(maxlen=size)
        self.margin = margin
        self.lower_bound_us: int | None = None
        # the longest recent interval x (1 + margin): the most the newest message is behind a
        # time when none was lost (nuScenes cameras alternate 50 and 100 ms intervals; a drop
        # lengthens it: `OnlineSynchronizer._causal_age` bounds its use)
        self.longest_us: int | None = None

    def add(self, timestamp_us: int) -> None:
        if self._t and timestamp_us <= self._t[-1]:
            return  # a duplicate or out-of-order stamp is no interval
        self._t.append(timestamp_us)
        if len(self._t) >= 3:
            ts = list(self._t)
            shortest = min(b - a for a, b in zip(ts, ts[1:], strict=False))
            self.lower_bound_us = int(shortest * (1.0 - self.margin))
            longest = max(b - a for a, b in zip(ts, ts[1:], strict=False))
            self.longest_us = round(longest * (1.0 + self.margin))

    def clear(self) -> None:
        self._t.clear()
        self.lower_bound_us = self.longest_us = None


@dataclass(eq=False)
class _Held:
    """A sensor message in a buffer, decoded or not yet."""

    msg: LogMessage
    payload: Payload | None  # None: a camera or radar message taken undecoded (`push_undecoded`)
    serial: int  # arrival number, unique: identifies the message for "used at most once"
    undecodable: bool = False  # tried once and failed: never decoded again
    decoding: Future[Payload] | None = None  # its decode, started on the pool at arrival


@dataclass(frozen=True, eq=False)
class PendingTrigger:
    timestamp_us: int
    held: _Held


@dataclass
class StreamCounters:
    """What the synchronizer saw: triggers, and per channel the frames it was missing in."""

    triggers: int = 0
    overflow: int = 0  # triggers dropped because too many were waiting
    no_pose: int = 0  # triggers without an ego pose at their time (dropped)
    missing: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    undecodable: dict[str, int] = field(default_factory=dict)  # chosen, then failed to decode
    build_decode_ms: float = 0.0  # decoding undecoded camera messages while building frames
    decoded_at_build: int = 0  # messages taken undecoded, decoded as a frame took them
    # keyframe images whose decode started on the pool as they arrived (`early_image_decode`),
    # and that decode's CPU time (the pool threads' own), which no stage's wall time shows
    decoded_early: int = 0
    early_decode_cpu_ms: float = 0.0
    reused: dict[str, int] = field(default_factory=dict)  # frames given a neighbour's message
    # per released trigger: its release time on the stream's clock minus its timestamp (us)
    sync_wait_us: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))
    # per trigger: its first release, whole or started without its radars (`startable`), on
    # the stream's clock minus its timestamp (us): the wait before its frame's work can begin
    start_wait_us: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))

    def sync_wait_ms(self) -> dict[str, float]:
        """The wait per trigger, {p50, p99, max} ms (NaN without triggers)."""
        return _wait_stats(self.sync_wait_us)

    def start_wait_ms(self) -> dict[str, float]:
        """The wait per trigger before its frame could be started, {p50, p99, max} ms."""
        return _wait_stats(self.start_wait_us)


def _wait_stats(waits_us: deque[int]) -> dict[str, float]:
    if not waits_us:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    w = np.asarray(waits_us, np.float64) / 1e3
    p50, p99 = np.percentile(w, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(w.max())}


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The threads that decode a frame's images together, one per usable core, made once."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max(1, len(os.sched_getaffinity(0))), "frame-decode")
    return _POOL


class OnlineSynchronizer:
    """See the module docstring. Not thread-safe: one thread pushes and builds."""

    def __init__(self, options: StreamOptions, rig: Rig, scene_name: str = "") -> None:
        if LIDAR_CHANNEL not in rig:
            raise DataError(f"the rig has no calibration for {LIDAR_CHANNEL}")
        self.options = options
        self.rig = rig
        self.scene_name = scene_name
        self.poses = PoseBuffer(options.pose_buffer, options.max_extrapolation_us)
        self.estimator = (
            PoseEstimator(options.localization) if options.pose_channel == POSE_SOURCE else None
        )
        self._to_map: Transform | None = None  # estimator ENU -> map ENU, at the first pose
        self._lidar: deque[_Held] = deque(maxlen=options.lidar_sweeps + 2)
        self._cameras = {ch: deque(maxlen=6) for ch in options.camera_channels}
        self._radars = {ch: deque(maxlen=options.radar_sweeps + 6) for ch in options.radar_channels}
        self._latest: dict[str, int] = {}  # newest timestamp seen per channel
        self._periods: dict[str, PeriodEstimate] = {}  # per channel, online
        self._triggers: deque[int] = deque(maxlen=64)  # recent trigger times, sorted
        self._trigger_period = PeriodEstimate(options.period_margin)
        self._keyframe_tokens = False  # the log marks keyframe messages with sample tokens
        self._keyframe_at: dict[str, int] = {}  # recent keyframe scans: sample token -> time
        self._clock_us: int | None = None  # the newest log time pushed (the clock of a flush)
        self._heard_us: int | None = None  # the newest clock of `ready`: all logged before it in
        self._version = 0  # bumped by every message taken: a waiting trigger's state changed
        self._incomplete: tuple[int, int] | None = None  # (trigger, version) found not final
        self._unstartable: tuple[int, int] | None = None  # (trigger, version) found not startable
        self._started: set[int] = set()  # serials of pending triggers started without radars
        self._abandoned: list[int] = []  # started triggers dropped before release (overflow)
        self._used: set[int] = set()  # serials of camera / radar messages already in a frame
        self._used_order: deque[int] = deque()
        self._pending: deque[PendingTrigger] = deque()
        self._serial = 0
        self.counters = StreamCounters()
        self._cpu_lock = threading.Lock()  # the pool threads add to counters.early_decode_cpu_ms
        # per camera: (JPEG reduction k, camera model of the image decoded at 1/k)
        self._decoded: dict[str, tuple[int, PinholeCamera]] = {}
        if options.camera_decode == "reduced":
            for ch in options.camera_channels:
                cam = rig[ch].camera if ch in rig else None
                if cam is not None:
                    self._decoded[ch] = decoded_camera(cam, options.image_hw, "reduced")  # type: ignore[arg-type]

    # -- decoding ------------------------------------------------------------------------------
    def decode(self, msg: LogMessage) -> Payload:
        """`msg.decode()`, a camera message at the reduction of `camera_decode` (the source's
        camera decoders take `reduction=k`; see `fusion.sources.decoders`). DataError on bad
        bytes, as `msg.decode()`."""
        k = self._decoded.get(msg.channel, (1, None))[0] if msg.kind == "camera" else 1
        if k == 1:
            return msg.decode()
        return msg.decoder(msg.raw, msg.origin, reduction=k)  # type: ignore[call-arg]

    def wants(self, msg: LogMessage) -> bool:
        """Whether `push` would keep `msg` for a frame: a caller may leave the other messages
        undecoded (sensors the model does not read; LIDAR sweeps between keyframes when only
        the trigger scan is used). `push` stays safe on any message."""
        ch = msg.channel
        match msg.kind:
            case "pose":
                return self.options.pose_channel in (None, ch)
            case "lidar":
                return ch == LIDAR_CHANNEL and (
                    self.options.lidar_sweeps > 1 or self._is_trigger(msg)
                )
            case "camera":
                return ch in self._cameras
            case "radar":
                return ch in self._radars
            case "imu" | "gnss" | "speed":
                return self.estimator is not None
            case _:
                return False

    # -- input ---------------------------------------------------------------------------------
    def _hold(self, msg: LogMessage, payload: Payload | None) -> _Held:
        self._serial += 1
        self._version += 1
        ch = msg.channel
        self._latest[ch] = max(self._latest.get(ch, msg.timestamp_us), msg.timestamp_us)
        if ch not in self._periods:
            self._periods[ch] = PeriodEstimate(self.options.period_margin)
        self._periods[ch].add(msg.timestamp_us)
        self._clock_us = max(self._clock_us or msg.log_time_us, msg.log_time_us)
        if msg.sample_token is not None:  # the log marks keyframes (on every sensor's message)
            self._keyframe_tokens = True
        return _Held(msg, payload, self._serial)

    def push_undecoded(self, msg: LogMessage) -> None:
        """Take a camera or radar message without decoding it: it is decoded (`decode`) only when
        a frame uses it (an image, a radar scan or one of its sweeps), as that frame is built, and
        once, so messages no frame takes (12 Hz cameras against 2 Hz keyframe triggers, radar
        scans beyond the sweeps) cost nothing; a corrupt one makes its sensor missing in that
        frame (counted in `counters.undecodable`), or is left out as a radar sweep. Other kinds:
        `push(msg, decode(msg))`."""
        if msg.kind not in ("camera", "radar"):
            self.push(msg, self.decode(msg))
            return
        held = self._hold(msg, None)
        buf = (self._cameras if msg.kind == "camera" else self._radars).get(msg.channel)
        if buf is not None:
            self._insert(buf, held)
            if (
                msg.kind == "camera"
                and msg.is_keyframe
                and msg.sample_token is not None
                and self.options.early_image_decode
            ):
                self._start_decode(held, early=True)
                self.counters.decoded_early += 1

    def _start_decode(self, held: _Held, early: bool) -> None:
        """Decode `held` on the pool (`held.decoding`; `_payload` takes the result, or the
        DataError, once); an early decode's CPU time is counted."""
        held.decoding = _pool().submit(self._decode_on_pool, held.msg, early)

    def _decode_on_pool(self, msg: LogMessage, early: bool) -> Payload:
        t0 = time.thread_time()
        try:
            return self.decode(msg)
        finally:
            if early:
                with self._cpu_lock:
                    self.counters.early_decode_cpu_ms += (time.thread_time() - t0) * 1e3

    def _payload(self, held: _Held) -> Payload:
        """The payload of a held message, decoded now (once) if it came undecoded; DataError
        (the message then marked: never decoded again, never taken)."""
        if held.payload is not None:
            return held.payload
        if held.undecodable:
            raise DataError("undecodable (tried before)", held.msg.origin)
        t0 = time.perf_counter()
        try:
            if held.decoding is not None:  # started on the pool: its result (or its error)
                future, held.decoding = held.decoding, None
                held.payload = future.result()
            else:
                held.payload = self.decode(held.msg)
        except DataError:
            held.undecodable = True
            self._mark_used(held)
            ch = held.msg.channel
            self.counters.undecodable[ch] = self.counters.undecodable.get(ch, 0) + 1
            raise
        finally:
            self.counters.build_decode_ms += (time.perf_counter() - t0) * 1e3
        self.counters.decoded_at_build += 1
        return held.payload

    def push(self, msg: LogMessage, payload: Payload) -> None:
        """Take one decoded message (in arrival order)."""
        held = self._hold(msg, payload)
        ch = msg.channel
        match payload:
            case EgoPose():
                if self.options.pose_channel in (None, ch):
                    self.poses.add(msg.timestamp_us, payload)
            case LidarScan() if ch == LIDAR_CHANNEL:
                if msg.sample_token is not None:
                    self._keyframe_at[msg.sample_token] = msg.timestamp_us
                    while len(self._keyframe_at) > 64:  # bounded: the oldest first
                        del self._keyframe_at[next(iter(self._keyframe_at))]
                if self._is_trigger(msg):
                    self.counters.triggers += 1
                    self._add_trigger(msg.timestamp_us)
                    self._pending.append(PendingTrigger(msg.timestamp_us, held))
                    while len(self._pending) > self.options.max_pending:
                        dropped = self._pending.popleft()
                        self.counters.overflow += 1
                        if dropped.held.serial in self._started:
                            self._started.discard(dropped.held.serial)
                            self._abandoned.append(dropped.held.serial)
                self._insert(self._lidar, held)
            case CameraImage() if ch in self._cameras:
                self._insert(self._cameras[ch], held)
            case RadarScan() if ch in self._radars:
                self._insert(self._radars[ch], held)
            case ImuSample() | GnssFix() | VehicleSpeed() if self.estimator is not None:
                self._estimate(msg.timestamp_us, payload)
            case _:
                pass  # IMU, and sensors the model does not read

    def _estimate(self, t_us: int, payload: ImuSample | GnssFix | VehicleSpeed) -> None:
        """Feed the pose estimator; a pose it emits joins the pose buffer."""
        est = self.estimator
        match payload:
            case ImuSample():
                n = est.emitted
                est.add_imu(t_us, payload.angular_velocity, payload.linear_acceleration)
                if est.emitted > n:
                    t, pose = est.last_pose()
                    self.poses.add(t, self._in_map_frame(pose))
            case GnssFix():
                f = payload
                est.add_fix(
                    t_us, f.lat_deg, f.lon_deg, f.alt_m, f.covariance, f.covariance_type, f.status
                )
            case VehicleSpeed():
                est.add_speed(t_us, payload.speed)

    def _in_map_frame(self, pose: Transform) -> Transform:
        """An estimated pose (first fix's ENU <- ego) in the map frame of `map_origin` when it
        is known. Two ENU frames differ by one rigid motion (both are fixed to the earth),
        computed once through WGS84 from the estimator's origin (set at its first fix)."""
        origin, est = self.options.map_origin, self.estimator
        if origin is None or est is None or est.origin is None:
            return pose
        if self._to_map is None:
            shift = enu_to_enu(np.zeros((1, 3)), est.origin, origin)[0]
            m = np.eye(4)
            m[:3, :3] = enu_rotation(est.origin, origin)
            m[:3, 3] = shift
            self._to_map = Transform(m, src="global", dst="global")
        return self._to_map @ pose

    def is_trigger(self, msg: LogMessage) -> bool:
        """Whether a LIDAR_TOP message is a trigger (every scan, or the keyframes)."""
        return self.options.trigger == "lidar" or msg.is_keyframe

    _is_trigger = is_trigger

    def _add_trigger(self, t: int) -> None:
        if self._triggers and t <= self._triggers[-1]:
            if t in self._triggers:
                return
            items = sorted([*self._triggers, t])
            self._triggers.clear()
            self._triggers.extend(items)
        else:
            self._triggers.append(t)
        self._trigger_period.add(t)

    def _neighbours(self, t: int) -> tuple[int | None, int | None]:
        """The triggers just before and after `t` among those received (None: not known)."""
        ts = list(self._triggers)
        i = bisect.bisect_left(ts, t)
        prev = ts[i - 1] if i > 0 else None
        j = i + 1 if i < len(ts) and ts[i] == t else i
        return prev, (ts[j] if j < len(ts) else None)

    @staticmethod
    def _insert(buf: deque[_Held], held: _Held) -> None:
        """Append keeping timestamp order (logs can be slightly out of order)."""
        buf.append(held)
        if len(buf) > 1 and buf[-2].msg.timestamp_us > held.msg.timestamp_us:
            items = sorted(buf, key=lambda h: h.msg.timestamp_us)
            buf.clear()
            buf.extend(items)

    def reset(self) -> None:
        """Forget everything buffered (a jump in the log, e.g. the start of a new loop)."""
        self.poses.clear()
        if self.estimator is not None:  # the log jumps back: start over
            self.estimator = PoseEstimator(self.options.localization)
            self._to_map = None
        self._lidar.clear()
        for buf in (*self._cameras.values(), *self._radars.values()):
            buf.clear()
        self._latest.clear()
        self._keyframe_at.clear()
        self._abandoned.extend(
            p.held.serial for p in self._pending if p.held.serial in self._started
        )
        self._started.clear()
        self._pending.clear()
        self._periods.clear()
        self._triggers.clear()
        self._trigger_period.clear()
        self._clock_us = None
        self._heard_us = None

    # -- readiness -----------------------------------------------------------------------------
    def deadline(self, trigger: PendingTrigger) -> int:
        return trigger.timestamp_us + self.options.wait_us

    def next_deadline(self) -> int | None:
        """The earliest time a waiting trigger must be released (us), or None. With a causal
        match and a stated logging delay, also the first clocks at which a trigger's causal
        sensors are final by the clock alone (t + `log_delay_us` + 1, plus the slack of causal
        cameras; `_choose_causal`), if the stream has not been heard up to them: a real-time
        replay wakes then (`ready` at it) instead of waiting for the next message."""
        times = [self.deadline(p) for p in self._pending]
        o = self.options
        if times and o.log_delay_us is not None and "causal" in (o.camera_match, o.radar_match):
            heard = max(self._clock_us or 0, self._heard_us or 0)
            lates = {o.log_delay_us + self._causal_slack(ch) for ch in self._causal_channels()}
            wake = (p.timestamp_us + late + 1 for p in self._pending for late in lates)
            times += [w for w in wake if w > heard]
        return min(times, default=None)

    def _own(
        self, h: _Held, p: PendingTrigger, tol: int, prev: int | None, nxt: int | None
    ) -> bool:
        """Whether message `h` is trigger `p`'s own: unused, within tolerance and the wait, and
        nearer to `p` than to the triggers received on either side (a keyframe's messages are
        its own only, where the log marks keyframes)."""
        ts, t = h.msg.timestamp_us, p.timestamp_us
        if h.serial in self._used or abs(ts - t) > tol or ts > t + self.options.wait_us:
            return False
        if self._keyframe_tokens and h.msg.sample_token is not None:
            return h.msg.sample_token == p.held.msg.sample_token
        if prev is not None and 2 * ts < prev + t:
            return False
        return nxt is None or 2 * ts < t + nxt

    def _choose(
        self, ch: str, buf: Iterable[_Held], p: PendingTrigger, tol: int
    ) -> tuple[_Held | None, bool]:
        """(trigger `p`'s own message of `ch` nearest to it, or None; whether that choice is
        final: no message of `ch` still to come can be nearer, or be its own)."""
        o = self.options
        t = p.timestamp_us
        if self._causal(ch):
            return self._choose_causal(ch, buf, p, tol)
        prev, nxt = self._neighbours(t)
        own = [h for h in buf if self._own(h, p, tol, prev, nxt)]
        token = p.held.msg.sample_token
        fired = next((h for h in own if token is not None and h.msg.sample_token == token), None)
        best = fired or min(own, key=lambda h: abs(h.msg.timestamp_us - t), default=None)
        latest = self._latest.get(ch)
        hi = t + min(tol, o.wait_us)
        if not o.early_decision:
            return best, latest is not None and latest > hi
        if fired is not None:
            return fired, True  # the message that fired for this keyframe
        if latest is None:
            return best, False
        # per channel, messages come in timestamp order: every later one is stamped >= nb
        period = self._periods[ch].lower_bound_us if ch in self._periods else None
        nb = latest + max(period or 0, 1)
        if token is not None and self._keyframe_tokens:
            return best, nb > hi  # its own image may still come, anywhere within tolerance
        if nxt is not None and 2 * nb >= t + nxt:
            return best, True  # every later message is the next trigger's
        if best is None:
            return None, nb > hi
        if nb < t + abs(best.msg.timestamp_us - t):
            return best, False  # a nearer one may still come
        return best, self._surely_own(best, t, nxt)

    def _causal(self, ch: str) -> bool:
        o = self.options
        return (o.radar_match == "causal" and ch in self._radars) or (
            o.camera_match == "causal" and ch in self._cameras
        )

    def _choose_causal(
        self, ch: str, buf: Iterable[_Held], p: PendingTrigger, tol: int
    ) -> tuple[_Held | None, bool]:
        """`radar_match` or `camera_match` `"causal"`: (the newest unused message of `ch`
        stamped within tolerance at or before t, or None; whether final: a message stamped after
        t was received, or the period puts the next one after t; with `early_decision=False`,
        only the former). For a camera, "t" is t + `camera_causal_slack_us` here: an image
        stamped just after the scan it fired for is still its own. Where the log marks
        keyframes, a marked message is its keyframe's only; a keyframe takes its own marked
        image, stamped up to a few ms after its scan in nuScenes, so waits for it (or a later
        image), and its own marked radar scan if stamped at or before it."""
        t = p.timestamp_us
        token = p.held.msg.sample_token if self._keyframe_tokens else None
        camera = ch in self._cameras
        hi = t + self._causal_slack(ch)
        own = []
        for h in buf:
            if h.serial in self._used:
                continue
            ts = h.msg.timestamp_us
            mark = h.msg.sample_token if self._keyframe_tokens else None
            if mark is not None and mark != token:
                continue  # another keyframe's
            if mark is not None and (camera or ts <= t):
                return h, True  # the image that fired for this keyframe (a radar scan: causal)
            if t - tol <= ts <= hi:
                own.append(h)
        best = max(own, key=lambda h: h.msg.timestamp_us, default=None)
        latest = self._latest.get(ch)
        after = latest is not None and latest > hi
        if after or (token is not None and camera) or not self.options.early_decision:
            # (a keyframe's own image may still come: nuScenes pairs a keyframe with images
            # stamped up to a few ms after its scan; final once it or a later image is in)
            return best, after
        period = self._periods[ch].lower_bound_us if ch in self._periods else None
        if latest is not None and period is not None and latest + period > hi:
            return best, True
        # the log is read in log-time order and logs every message at most `log_delay_us` after
        # its stamp: once everything logged up to t + that bound is in, no message stamped at or
        # before t is still to come (a 12 Hz camera that skipped this 20 Hz scan)
        bound = self.options.log_delay_us
        heard = max(self._clock_us or 0, self._heard_us or 0) - 1
        return best, bound is not None and heard >= hi + bound

    def _causal_slack(self, ch: str) -> int:
        """How far after a causal trigger a message of `ch` may be stamped and be its own."""
        return self.options.camera_causal_slack_us if ch in self._cameras else 0

    def _causal_channels(self) -> list[str]:
        return [ch for ch in (*self._cameras, *self._radars) if self._causal(ch)]

    def _surely_own(self, h: _Held, t: int, nxt: int | None) -> bool:
        """Whether no trigger still to come can be nearer to `h` than `t`: it is stamped at or
        before t, or the next trigger is known, or it comes a period later at the earliest."""
        ts = h.msg.timestamp_us
        if ts <= t or nxt is not None:
            return True
        tp = self._trigger_period.lower_bound_us
        return tp is not None and 2 * ts < 2 * t + tp

    def _complete(self, p: PendingTrigger) -> bool:
        """Every sensor's match is final, and the ego pose is known (not extrapolated) at the
        trigger's time and at each message it takes as its own: a radar scan stamped after the
        trigger waits for the poses of its time too. (Otherwise a log that gives a keyframe's
        messages before the poses of their times, as nuscenes2mcap's convention does, would
        have them extrapolated, and detections would depend on the layout.)"""
        return not self.waiting_for(p)

    def waiting_for(self, p: PendingTrigger) -> dict[str, str]:
        """What a waiting trigger's match still depends on, per sensor (empty: complete): `none
        yet` (no own message; one may still come within tolerance, or the next trigger may
        show none can), `after the trigger` (its own nearest is stamped after it: a nearer
        one, or the next trigger, may still come), `before the trigger` (a nearer one may still
        come), `pose` (the ego pose at its time is not in yet). For benchmarks and diagnostics:
        `benchmarks/sync_wait.py` counts it at the cap."""
        o = self.options
        out: dict[str, str] = {}
        latest_pose = self.poses.latest_us
        if latest_pose is None or latest_pose < p.timestamp_us:
            out["pose"] = "pose"
        # a started trigger (`startable`) took its cameras already: only its radars are open
        cameras = () if p.held.serial in self._started else o.camera_channels
        for chans, bufs, tol in (
            (cameras, self._cameras, o.camera_tolerance_us),
            (o.radar_channels, self._radars, o.radar_tolerance_us),
        ):
            for ch in chans:
                best, final = self._choose(ch, bufs[ch], p, tol)
                if not final:
                    out[ch] = (
                        "none yet"
                        if best is None
                        else "after the trigger"
                        if best.msg.timestamp_us > p.timestamp_us
                        else "before the trigger"
                    )
                elif best is not None and latest_pose is not None:
                    if best.msg.timestamp_us > latest_pose:
                        out[ch] = "pose"
        return out

    def ready(self, clock_us: int | None = None, flush: bool = False) -> list[PendingTrigger]:
        """Waiting triggers that can be built now, oldest first: every sensor's match is final
        (`_choose`), or `clock_us` passed its deadline, or `flush`. Each released trigger's wait
        (its release on the clock, at most its deadline, minus its time) goes to
        `counters.sync_wait_us`."""
        self._heard_until(clock_us)
        out = []
        while self._pending:
            p = self._pending[0]
            due = clock_us is not None and clock_us >= self.deadline(p)
            if not (flush or due):
                key = (p.held.serial, self._version)
                if self._incomplete == key:
                    break  # nothing arrived since it was found waiting
                if not self._complete(p):
                    self._incomplete = key
                    break
            out.append(self._pending.popleft())
            now = clock_us if clock_us is not None else self._clock_us
            started = p.held.serial in self._started
            self._started.discard(p.held.serial)
            if now is not None:
                wait = self._wait_us(p, now)
                self.counters.sync_wait_us.append(wait)
                if not started:
                    self.counters.start_wait_us.append(wait)
        return out

    def _heard_until(self, clock_us: int | None) -> None:
        """The stream's clock reached `clock_us`: every message logged before it was pushed.
        The causal matches decide by it (`_choose_causal`), so its advance counts as news."""
        if clock_us is None or (self._heard_us is not None and clock_us <= self._heard_us):
            return
        self._heard_us = clock_us
        o = self.options
        if o.log_delay_us is not None and "causal" in (o.camera_match, o.radar_match):
            self._version += 1

    def _wait_us(self, p: PendingTrigger, now: int) -> int:
        """A trigger's wait when released (or started) at `now`: at most its deadline."""
        return max(0, min(now, self.deadline(p)) - p.timestamp_us)

    def startable(self, clock_us: int | None = None) -> list[PendingTrigger]:
        """Waiting triggers whose frame can be started before their radar scans are final
        (`build_start`), oldest first and each once: every older waiting trigger was started,
        the ego pose at its time is known and every sensor's match but the radars' is final
        (`waiting_for` names radar channels only). They stay waiting: `ready` releases each
        when its radars are final too (or at its deadline), and `build_radars` completes the
        frame then, with what `build` would have given. The start's wait goes to
        `counters.start_wait_us`."""
        self._heard_until(clock_us)
        out: list[PendingTrigger] = []
        radars = set(self.options.radar_channels)
        now = clock_us if clock_us is not None else self._clock_us
        for p in self._pending:
            if p.held.serial in self._started:
                continue
            key = (p.held.serial, self._version)
            if self._unstartable == key:
                break  # nothing arrived since it was found not startable
            if not self.waiting_for(p).keys() <= radars:
                self._unstartable = key
                break
            self._started.add(p.held.serial)
            out.append(p)
            if now is not None:
                self.counters.start_wait_us.append(self._wait_us(p, now))
        return out

    def take_abandoned(self) -> list[int]:
        """Serials (`PendingTrigger.held.serial`) of started triggers dropped before their
        release (the oldest beyond `max_pending`, or a `reset`): their frames are never
        completed; the drop is counted in `overflow` (a reset follows a flush)."""
        out, self._abandoned = self._abandoned, []
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- frames --------------------------------------------------------------------------------
    def build(self, trigger: PendingTrigger) -> Frame | None:
        """The frame of a released trigger; None (counted in `no_pose`) when the ego pose at its
        time cannot be known from the poses received."""
        frame = self.build_start(trigger)
        return None if frame is None else self.build_radars(trigger, frame)

    def build_start(self, trigger: PendingTrigger) -> Frame | None:
        """The frame of a released or started trigger without its radars: the LIDAR sweeps and
        the cameras (`build` less `build_radars`); None (counted in `no_pose`) as `build`."""
        o = self.options
        t = trigger.timestamp_us
        lidar_cal = self.rig[LIDAR_CHANNEL]
        ego = self.poses.at(t)
        if ego is None:
            self.counters.no_pose += 1
            return None
        reference = SensorPose(LIDAR_CHANNEL, t, lidar_cal.sensor_to_ego, ego)
        picks = {
            ch: self._match(ch, self._cameras[ch], trigger, o.camera_tolerance_us)
            for ch in o.camera_channels
        }
        # the images decode on the pool while this thread compensates the LIDAR sweeps
        images_decoded = self._decode_together([h for h, _ in picks.values() if h is not None])
        scans = [(reference, trigger.held.payload.points)]  # type: ignore[union-attr]
        for h in reversed(self._lidar):
            if len(scans) >= o.lidar_sweeps:
                break
            if h.msg.timestamp_us >= t:
                continue  # sweeps strictly older than the trigger
            if t - h.msg.timestamp_us > max_sweep_age_us(o.lidar_sweeps, LIDAR_PERIOD_US):
                continue  # beyond the chain's span (a keyframes-only log): see the docstring
            pose = self._sensor_pose(LIDAR_CHANNEL, h.msg.timestamp_us)
            if pose is not None:
                scans.append((pose, h.payload.points))  # type: ignore[union-attr]
        lidar = lidar_sweeps(scans, reference, trigger.held.msg.origin)
        missing: dict[str, str] = {}
        cameras: dict[str, CameraData] = {}
        reused: list[str] = []
        images_decoded()
        for ch in o.camera_channels:
            cam = self._camera(ch, picks[ch], missing, reused)
            if cam is not None:
                cameras[ch] = cam
        self._count(cameras, missing, reused)
        return Frame(
            sample_token=trigger.held.msg.sample_token or "",
            scene_name=self.scene_name,
            timestamp_us=t,
            reference=reference,
            lidar=lidar,
            cameras=cameras,
            radars={},
            boxes=None,
            missing=missing,
            reused=tuple(reused),
        )

    def build_radars(self, trigger: PendingTrigger, frame: Frame) -> Frame:
        """`frame` (`build_start` of `trigger`) with its radars, once `trigger` is released."""
        missing: dict[str, str] = {}
        reused: list[str] = []
        radars: dict[str, RadarData] = {}
        for ch in self.options.radar_channels:
            rad = self._radar(ch, trigger, frame.reference, missing, reused)
            if rad is not None:
                radars[ch] = rad
        self._count(radars, missing, reused)
        return dataclasses.replace(
            frame,
            radars=radars,
            missing={**frame.missing, **missing},
            reused=(*frame.reused, *reused),
        )

    def _count(self, used: Iterable[str], missing: Iterable[str], reused: Iterable[str]) -> None:
        for ch in missing:
            self.counters.missing[ch] = self.counters.missing.get(ch, 0) + 1
        for ch in used:
            self.counters.used[ch] = self.counters.used.get(ch, 0) + 1
        for ch in reused:
            self.counters.reused[ch] = self.counters.reused.get(ch, 0) + 1

    def _sensor_pose(self, channel: str, timestamp_us: int) -> SensorPose | None:
        ego = self.poses.at(timestamp_us)
        if ego is None or channel not in self.rig:
            return None
        return SensorPose(channel, timestamp_us, self.rig[channel].sensor_to_ego, ego)

    def _match(
        self, ch: str, buf: Iterable[_Held], trigger: PendingTrigger, tol: int
    ) -> tuple[_Held | None, bool]:
        """(the message of `ch` the trigger's frame takes, whether it is reused): its own
        nearest (`_choose`; one that a trigger still to come may be nearer to is not taken as
        its own), else with `between="reuse"` the newest received within tolerance and the wait
        (a neighbour's, not marked used), else None. A message marked for a keyframe is reused
        only by the triggers at or after that keyframe's scan: nuscenes2mcap logs a keyframe's
        messages at its scan's time, after the wait of the trigger before it has ended (by up
        to the LIDAR period's jitter), so that trigger could have them in one layout and not in
        another; it reuses an earlier message, in every layout."""
        held, _ = self._choose(ch, buf, trigger, tol)
        t = trigger.timestamp_us
        if held is not None and held.msg.sample_token is None:
            if not self._surely_own(held, t, self._neighbours(t)[1]):
                held = None  # at the cap, perhaps the next trigger's: left to it
        if held is not None or self.options.between == "none":
            return held, False
        lo, hi = t - tol, t + min(tol, self.options.wait_us)
        if self._causal(ch):
            lo, hi = t - self._causal_age(ch, tol), t + self._causal_slack(ch)
        near = [
            h
            for h in buf
            if lo <= h.msg.timestamp_us <= hi and not h.undecodable and self._reusable(h, t)
        ]
        return (max(near, key=lambda h: h.msg.timestamp_us), True) if near else (None, False)

    def _causal_age(self, ch: str, tol: int) -> int:
        """How old a message a causal trigger may reuse: the sensor's longest recent interval
        (`PeriodEstimate.longest_us`) when it is longer than the tolerance, at most twice the
        tolerance. nuScenes cameras fire on the 20 Hz LIDAR grid at 12 Hz on average (intervals
        of 50 and 100 ms): a scan a camera skipped has its newest image up to 100 ms behind."""
        longest = self._periods[ch].longest_us if ch in self._periods else None
        return min(max(tol, longest or 0), 2 * tol)

    def _reusable(self, h: _Held, t: int) -> bool:
        """Whether a trigger at `t` may reuse `h`: unmarked, or marked for a keyframe whose scan
        was received, at or before `t` (see `_match`)."""
        token = h.msg.sample_token
        return token is None or self._keyframe_at.get(token, t + 1) <= t

    def _mark_used(self, held: _Held) -> None:
        self._used.add(held.serial)
        self._used_order.append(held.serial)
        while len(self._used_order) > 4096:  # bounded: older serials have left every buffer
            self._used.discard(self._used_order.popleft())

    def _decode_together(self, held: list[_Held]) -> Callable[[], None]:
        """Start decoding the undecoded ones of a frame's messages at once, on a pool of the
        machine's cores (the JPEG decoder releases the GIL), and return the call that waits for
        them: the frame waits for the slowest image, not for their sum, and does its other work
        in between. `_payload` takes each result, or meets and counts a failure, once.
        `build_decode_ms` counts the submission and the wait (the images' share of the frame's
        time), not the work done in between."""
        todo = [h for h in held if h.payload is None and not h.undecodable and h.decoding is None]
        if len(todo) < 2:
            return lambda: None
        t0 = time.perf_counter()
        for h in todo:
            self._start_decode(h, early=False)
        self.counters.build_decode_ms += (time.perf_counter() - t0) * 1e3

        def wait() -> None:
            t1 = time.perf_counter()
            futures_wait([h.decoding for h in todo if h.decoding is not None])
            self.counters.build_decode_ms += (time.perf_counter() - t1) * 1e3

        return wait

    def _camera(
        self,
        ch: str,
        pick: tuple[_Held | None, bool],
        missing: dict[str, str],
        reused: list[str],
    ) -> CameraData | None:
        if ch not in self.rig or self.rig[ch].camera is None:
            missing[ch] = "no camera calibration"
            return None
        held, again = pick
        if held is None:
            missing[ch] = f"no message within {self.options.camera_tolerance_us} us"
            return None
        pose = self._sensor_pose(ch, held.msg.timestamp_us)
        if pose is None:
            missing[ch] = "no ego pose at its time"
            return None
        try:  # taken undecoded: decoded now, once (a trigger reusing it decodes nothing)
            payload = self._payload(held)
        except DataError as err:
            missing[ch] = f"undecodable: {err}"
            return None
        image = payload.image  # type: ignore[union-attr]
        camera = self.rig[ch].camera
        small = self._decoded.get(ch)
        if small is not None and image.shape[:2] == (small[1].height, small[1].width):
            camera = small[1]  # decoded at 1/k (`decode`); a full image keeps the calibration
        elif image.shape[:2] != (camera.height, camera.width):
            missing[ch] = (
                f"image is {image.shape[1]}x{image.shape[0]}, calibration says "
                f"{camera.width}x{camera.height}"
            )
            return None
        if again:
            reused.append(ch)
        else:
            self._mark_used(held)
        return CameraData(pose, image, camera, held.msg.origin)

    def _radar(
        self,
        ch: str,
        trigger: PendingTrigger,
        reference: SensorPose,
        missing: dict[str, str],
        reused: list[str],
    ) -> RadarData | None:
        o = self.options
        held, again = self._match(ch, self._radars[ch], trigger, o.radar_tolerance_us)
        if held is None:
            missing[ch] = f"no message within {o.radar_tolerance_us} us"
            return None
        scans = []
        for h in reversed(self._radars[ch]):
            if len(scans) >= o.radar_sweeps:
                break
            if h.msg.timestamp_us > held.msg.timestamp_us:
                continue
            age_us = held.msg.timestamp_us - h.msg.timestamp_us
            if age_us > max_sweep_age_us(o.radar_sweeps, RADAR_PERIOD_US):
                continue  # beyond the chain's span (a keyframes-only log)
            pose = self._sensor_pose(ch, h.msg.timestamp_us)
            if pose is None:
                if h is held:
                    missing[ch] = "no ego pose at its time"
                    return None
                continue
            try:
                fields = self._payload(h).fields  # type: ignore[union-attr]
            except DataError as err:
                if h is held:
                    missing[ch] = f"undecodable: {err}"
                    return None
                continue  # a corrupt earlier sweep is left out
            scans.append((pose, fields[:, radar_keep(fields, o.radar_filter)]))
        if again:
            reused.append(ch)
        else:
            self._mark_used(held)
        return radar_sweeps(scans, reference, held.msg.origin)

"""The online, causal synchronizer: log messages in arrival order -> `Frame`s at each trigger.

Fed one decoded message at a time (`push`), it keeps bounded per-channel buffers and a bounded
pose buffer, and turns each trigger (a LIDAR keyframe, or every LIDAR sweep) into a `Frame`
built only from what had arrived:
- a trigger at time t waits for each other sensor until a message of that sensor newer than
  t + its tolerance has arrived (its nearest candidate is then known), or until the clock passes
  t + `wait_us`, whichever is first; no message stamped after t + `wait_us` is used;
- each camera and radar contributes its message nearest to t within its tolerance (config
  `[sync]`), each message at most once; a sensor with none is missing in the frame and counted;
- LIDAR sweeps are the trigger scan and the previous scans, strictly older; radar sweeps the
  matched scan and that radar's previous ones; both motion-compensated into LIDAR_TOP at t
  (`fusion.sweeps`) through ego poses interpolated from the pose messages received so far, or
  extrapolated at constant velocity over at most `max_extrapolation_us`, never from the future.
  A scan older than the span of `lidar_sweeps` (`radar_sweeps`) scans at the nuScenes rig's
  rate is not fused (`max_sweep_age_us`): in a keyframes-only log (sweep files absent) the
  previous scans are the previous keyframes, 0.5 s apart, which the offline reader does not
  fuse and the models never saw in training.

Decoding (`decode`): with `camera_decode="reduced"` (inference's fast path; the default `full`
keeps every pixel) each camera message is decoded at the JPEG DCT reduction its network input
allows (`fusion.pipeline.decoded_camera`), and the frame carries the matching scaled camera
model; an image that came full (PNG, raw pixels) keeps the calibrated one.

Times in us (sensor time, the messages' own `timestamp_us`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from calibration import Transform, quaternion_slerp
from fusion.config import LIDAR_CHANNEL, PipelineConfig
from fusion.errors import DataError
from fusion.frame import CameraData, Frame, RadarData, SensorPose
from fusion.localization import POSE_SOURCE, LocalizationConfig, PoseEstimator
from fusion.sensor_io import RadarFilter, radar_keep
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
from fusion.sweeps import lidar_sweeps, radar_sweeps

if TYPE_CHECKING:
    from calibration import PinholeCamera
    from fusion.pipeline import ImageDecode

Trigger = Literal["keyframes", "lidar"]
PoseChoice = Literal["auto", "log", "gnss-imu"]

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
    # camera messages decoded in full, or at the JPEG reduction the network input `image_hw`
    # (H, W) allows (see the module docstring)
    camera_decode: ImageDecode = "full"
    image_hw: tuple[int, int] | None = None

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
        if poses == "log" and pose_channel is None:
            raise DataError("--poses log: the log has no localization (/tf map->base_link, /odom)")
        if poses == "gnss-imu" and not can_estimate:
            raise DataError("--poses gnss-imu: the log needs IMU and GNSS messages")
        if poses == "gnss-imu" or (poses == "auto" and pose_channel is None and can_estimate):
            pose_channel = POSE_SOURCE
        mods = set(modalities)
        chosen: dict[str, object] = {
            "wait_us": wait_us,
            "trigger": trigger,
            "pose_channel": pose_channel,
            "camera_channels": cfg.camera.channels if "camera" in mods else (),
            "radar_channels": cfg.radar.channels if "radar" in mods else (),
            "lidar_sweeps": max(1, cfg.point_cloud.sweeps) if "lidar" in mods else 1,
        }
        return cls.from_config(cfg, **(chosen | overrides))

    def __post_init__(self) -> None:
        for name in (
            "camera_tolerance_us",
            "radar_tolerance_us",
            "wait_us",
            "max_extrapolation_us",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.lidar_sweeps < 1 or self.radar_sweeps < 1:
            raise ValueError("sweeps must be >= 1")
        if self.camera_decode == "reduced" and self.image_hw is None:
            raise ValueError("camera_decode='reduced' needs the network input image_hw")


class PoseBuffer:
    """Ego poses received so far (global <- ego), at most `size`, for causal lookup."""

    def __init__(self, size: int, max_extrapolation_us: int) -> None:
        self._t: deque[int] = deque(maxlen=size)
        self._trans: deque[np.ndarray] = deque(maxlen=size)
        self._quat: deque[np.ndarray] = deque(maxlen=size)
        self.max_extrapolation_us = max_extrapolation_us
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._t)

    @property
    def latest_us(self) -> int | None:
        return self._t[-1] if self._t else None

    def add(self, timestamp_us: int, pose: Transform) -> None:
        if self._t and timestamp_us <= self._t[-1]:
            if timestamp_us == self._t[-1]:
                return  # the same pose twice (e.g. ego_pose and tf of one sample)
            # an out-of-order pose: keep the buffer sorted (rare; logs are nearly ordered)
            items = sorted(
                [
                    *zip(self._t, self._trans, self._quat, strict=True),
                    (timestamp_us, pose.translation, pose.quaternion),
                ],
                key=lambda x: x[0],
            )
            self._t.clear(), self._trans.clear(), self._quat.clear()
            for t, tr, q in items[-(self._t.maxlen or len(items)) :]:
                self._t.append(t), self._trans.append(tr), self._quat.append(q)
        else:
            self._t.append(int(timestamp_us))
            self._trans.append(pose.translation)
            self._quat.append(pose.quaternion)
        self._arrays = None

    def clear(self) -> None:
        self._t.clear(), self._trans.clear(), self._quat.clear()
        self._arrays = None

    def at(self, timestamp_us: int) -> Transform | None:
        """Pose at `timestamp_us`: interpolated between received poses (linear translation,
        SLERP rotation); past the newest one, extrapolated at the last velocity within the
        horizon; None when it cannot be known from what was received."""
        if not self._t:
            return None
        if self._arrays is None:
            self._arrays = (
                np.array(self._t, np.int64),
                np.array(self._trans),
                np.array(self._quat),
            )
        t, trans, quat = self._arrays
        ts = int(timestamp_us)
        i = int(np.searchsorted(t, ts))
        if i < len(t) and t[i] == ts:
            return _pose(trans[i], quat[i])
        if 0 < i < len(t):
            a = (ts - int(t[i - 1])) / (int(t[i]) - int(t[i - 1]))
            return _pose(
                (1 - a) * trans[i - 1] + a * trans[i], quaternion_slerp(quat[i - 1], quat[i], a)
            )
        if i == 0:  # older than everything kept: unknown (the buffer is bounded)
            return None
        ahead = ts - int(t[-1])
        if ahead > self.max_extrapolation_us:
            return None
        if len(t) == 1:
            return _pose(trans[-1], quat[-1])
        span = int(t[-1]) - int(t[-2])
        # constant velocity and angular rate from the last two poses (SLERP's great circle
        # continues past t = 1)
        a = 1.0 + ahead / span
        return _pose(
            trans[-2] + a * (trans[-1] - trans[-2]), quaternion_slerp(quat[-2], quat[-1], a)
        )


def _pose(trans: np.ndarray, quat: np.ndarray) -> Transform:
    return Transform.from_translation_quaternion(trans, quat, src="ego", dst="global")


@dataclass(frozen=True, eq=False)
class _Held:
    """A decoded sensor message in a buffer."""

    msg: LogMessage
    payload: Payload | None  # None: a camera message taken undecoded (`push_undecoded`)
    serial: int  # arrival number, unique: identifies the message for "used at most once"


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
        self._lidar: deque[_Held] = deque(maxlen=options.lidar_sweeps + 2)
        self._cameras = {ch: deque(maxlen=6) for ch in options.camera_channels}
        self._radars = {ch: deque(maxlen=options.radar_sweeps + 6) for ch in options.radar_channels}
        self._latest: dict[str, int] = {}  # newest timestamp seen per channel
        self._used: set[int] = set()  # serials of camera / radar messages already in a frame
        self._used_order: deque[int] = deque()
        self._pending: deque[PendingTrigger] = deque()
        self._serial = 0
        self.counters = StreamCounters()
        # per camera: (JPEG reduction k, camera model of the image decoded at 1/k)
        self._decoded: dict[str, tuple[int, PinholeCamera]] = {}
        if options.camera_decode == "reduced":
            from fusion.pipeline import decoded_camera

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
        ch = msg.channel
        self._latest[ch] = max(self._latest.get(ch, msg.timestamp_us), msg.timestamp_us)
        return _Held(msg, payload, self._serial)

    def push_undecoded(self, msg: LogMessage) -> None:
        """Take a camera message without decoding it: it is decoded (`decode`) only when a frame
        uses it, as that frame is built, so camera messages no frame takes (12 Hz cameras against
        2 Hz keyframe triggers) cost nothing; a corrupt one makes its camera missing in that frame
        (counted in `counters.undecodable`). Other kinds: `push(msg, decode(msg))`."""
        if msg.kind != "camera":
            self.push(msg, self.decode(msg))
            return
        held = self._hold(msg, None)
        if msg.channel in self._cameras:
            self._insert(self._cameras[msg.channel], held)

    def push(self, msg: LogMessage, payload: Payload) -> None:
        """Take one decoded message (in arrival order)."""
        held = self._hold(msg, payload)
        ch = msg.channel
        match payload:
            case EgoPose():
                if self.options.pose_channel in (None, ch):
                    self.poses.add(msg.timestamp_us, payload.ego_to_global)
            case LidarScan() if ch == LIDAR_CHANNEL:
                if self._is_trigger(msg):
                    self.counters.triggers += 1
                    self._pending.append(PendingTrigger(msg.timestamp_us, held))
                    while len(self._pending) > self.options.max_pending:
                        self._pending.popleft()
                        self.counters.overflow += 1
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
                    self.poses.add(*est.last_pose())
            case GnssFix():
                f = payload
                est.add_fix(
                    t_us, f.lat_deg, f.lon_deg, f.alt_m, f.covariance, f.covariance_type, f.status
                )
            case VehicleSpeed():
                est.add_speed(t_us, payload.speed)

    def _is_trigger(self, msg: LogMessage) -> bool:
        return self.options.trigger == "lidar" or msg.is_keyframe

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
        self._lidar.clear()
        for buf in (*self._cameras.values(), *self._radars.values()):
            buf.clear()
        self._latest.clear()
        self._pending.clear()

    # -- readiness -----------------------------------------------------------------------------
    def deadline(self, trigger: PendingTrigger) -> int:
        return trigger.timestamp_us + self.options.wait_us

    def next_deadline(self) -> int | None:
        """The earliest time a waiting trigger must be released (us), or None."""
        return min((self.deadline(p) for p in self._pending), default=None)

    def _complete(self, p: PendingTrigger) -> bool:
        o = self.options
        t = p.timestamp_us
        for ch, tol in (
            *((c, o.camera_tolerance_us) for c in o.camera_channels),
            *((r, o.radar_tolerance_us) for r in o.radar_channels),
        ):
            if self._latest.get(ch, -(2**62)) <= t + min(tol, o.wait_us):
                return False
        latest_pose = self.poses.latest_us
        return latest_pose is not None and latest_pose >= t

    def ready(self, clock_us: int | None = None, flush: bool = False) -> list[PendingTrigger]:
        """Waiting triggers that can be built now, oldest first: every sensor has been heard
        past the trigger's tolerance window, or `clock_us` passed its deadline, or `flush`."""
        out = []
        while self._pending:
            p = self._pending[0]
            due = clock_us is not None and clock_us >= self.deadline(p)
            if not (flush or due or self._complete(p)):
                break
            out.append(self._pending.popleft())
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- frames --------------------------------------------------------------------------------
    def build(self, trigger: PendingTrigger) -> Frame | None:
        """The frame of a released trigger; None (counted in `no_pose`) when the ego pose at its
        time cannot be known from the poses received."""
        o = self.options
        t = trigger.timestamp_us
        lidar_cal = self.rig[LIDAR_CHANNEL]
        ego = self.poses.at(t)
        if ego is None:
            self.counters.no_pose += 1
            return None
        reference = SensorPose(LIDAR_CHANNEL, t, lidar_cal.sensor_to_ego, ego)
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
        for ch in o.camera_channels:
            cam = self._camera(ch, t, missing)
            if cam is not None:
                cameras[ch] = cam
        radars: dict[str, RadarData] = {}
        for ch in o.radar_channels:
            rad = self._radar(ch, t, reference, missing)
            if rad is not None:
                radars[ch] = rad
        for ch in missing:
            self.counters.missing[ch] = self.counters.missing.get(ch, 0) + 1
        for ch in (*cameras, *radars):
            self.counters.used[ch] = self.counters.used.get(ch, 0) + 1
        return Frame(
            sample_token=trigger.held.msg.sample_token or "",
            scene_name=self.scene_name,
            timestamp_us=t,
            reference=reference,
            lidar=lidar,
            cameras=cameras,
            radars=radars,
            boxes=None,
            missing=missing,
        )

    def _sensor_pose(self, channel: str, timestamp_us: int) -> SensorPose | None:
        ego = self.poses.at(timestamp_us)
        if ego is None or channel not in self.rig:
            return None
        return SensorPose(channel, timestamp_us, self.rig[channel].sensor_to_ego, ego)

    def _nearest(self, buf: Iterable[_Held], t: int, tol: int) -> _Held | None:
        limit = t + min(tol, self.options.wait_us)
        best = None
        for h in buf:
            ts = h.msg.timestamp_us
            if h.serial in self._used or ts > limit or abs(ts - t) > tol:
                continue
            if best is None or abs(ts - t) < abs(best.msg.timestamp_us - t):
                best = h
        return best

    def _mark_used(self, held: _Held) -> None:
        self._used.add(held.serial)
        self._used_order.append(held.serial)
        while len(self._used_order) > 4096:  # bounded: older serials have left every buffer
            self._used.discard(self._used_order.popleft())

    def _camera(self, ch: str, t: int, missing: dict[str, str]) -> CameraData | None:
        if ch not in self.rig or self.rig[ch].camera is None:
            missing[ch] = "no camera calibration"
            return None
        held = self._nearest(self._cameras[ch], t, self.options.camera_tolerance_us)
        if held is None:
            missing[ch] = f"no message within {self.options.camera_tolerance_us} us"
            return None
        pose = self._sensor_pose(ch, held.msg.timestamp_us)
        if pose is None:
            missing[ch] = "no ego pose at its time"
            return None
        payload = held.payload
        if payload is None:  # taken undecoded: decode the one message this frame uses
            t0 = time.perf_counter()
            try:
                payload = self.decode(held.msg)
            except DataError as err:
                self._mark_used(held)  # tried once, never again
                self.counters.undecodable[ch] = self.counters.undecodable.get(ch, 0) + 1
                missing[ch] = f"undecodable: {err}"
                return None
            finally:
                self.counters.build_decode_ms += (time.perf_counter() - t0) * 1e3
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
        self._mark_used(held)
        return CameraData(pose, image, camera, held.msg.origin)

    def _radar(
        self, ch: str, t: int, reference: SensorPose, missing: dict[str, str]
    ) -> RadarData | None:
        o = self.options
        held = self._nearest(self._radars[ch], t, o.radar_tolerance_us)
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
            fields = h.payload.fields  # type: ignore[union-attr]
            scans.append((pose, fields[:, radar_keep(fields, o.radar_filter)]))
        self._mark_used(held)
        return radar_sweeps(scans, reference, held.msg.origin)

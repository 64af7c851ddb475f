"""`fusion replay`: a recorded drive through the detector at the car's pace, without ROS.

One log source (`fusion.sources`: a nuScenes dataroot scene, a Foxglove MCAP, a ROS 2 bag, a
ROS 1 bag) feeds the ingest pump (`fusion.sync.ingest.IngestPump`, the one `fusion bench latency`
times: only the channels the model reads kept, each message decoded at most once and a camera
image only when a frame takes it, at reduced JPEG scale by default) and the online synchronizer
(`fusion.sync.online`), whose frames go through the same pipeline as eval
(`fusion.engines.runner.Runner`).

Defaults are the measured fast path: `--backend auto` (TensorRT on an NVIDIA GPU when
installed, else ONNX Runtime) and `--decode reduced`; both are printed in the summary. A warm
start comes first: the engine is built, its kernels compiled and one frame built from the log's
first messages run through it before the clock starts (`warmup_s` in the summary, apart from the
frames' figures), so no processed frame pays a first-call cost.

Real time (`--rate R > 0`): a producer thread reads, paces (log time against a monotonic clock,
scaled by R), injects faults, decodes and synchronizes; the inference thread takes the newest
frame from a one-slot mailbox. A producer more than a budget behind the log sheds the stale
messages (left unread by the pump, counted per channel in `shed`; a trigger scan only beyond one
more LIDAR period behind, as a dropped trigger, `stale`) instead of lagging. A frame that
arrives while one waits replaces it (latest wins); the replaced one is counted as dropped.
Nothing queues without bound: the mailbox holds one frame, the synchronizer's buffers are
bounded, outputs are streamed to their files.
Through the idle gaps of a paced replay (the keyframe trigger: one frame each 0.5 s), the
detector is kept warm (`KeepWarm`, `--no-keep-warm` to turn it off): it runs once more on the
last frame, output discarded, just before the next frame is due, so that the frame does not pay
the machine's return from idle (cold caches, idle cores); the runs are counted in the summary.
`--rate 0` runs as fast as possible in one thread, processes every trigger, and gives the same
detections on every run.

Accounting: `processed + dropped == triggers`. A trigger is dropped when it is replaced in the
mailbox (`busy`), when too many wait for their sensors (`overflow`), when no ego pose is known
at its time (`no_pose`) or when its scan was shed (`stale`). `sync_wait_ms`: per trigger, its
release by the synchronizer on the replay clock minus its time (`fusion.sync.online`). A frame is
`late` when its detections come out after its deadline (trigger time + budget). `latency_ms` is
end to end on the replay clock: from the trigger's sensor time to its detections out (at
`--rate 0` the replay clock is the stream's time plus the wall time spent since).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from calibration.geodesy import GeodeticOrigin
from fusion.data.sensor_io import ImageDecode
from fusion.engines.runner import Runner, StageTimes
from fusion.errors import DataError, FusionError
from fusion.frame import Frame
from fusion.localization.estimator import POSE_SOURCE, REJECTIONS, LocalizationConfig
from fusion.localization.pose_source import PoseChoice
from fusion.machine import current_rss_mb, peak_rss_mb
from fusion.outputs.sinks import Processed, Sink
from fusion.replay.faults import FaultInjector, Faults
from fusion.sources.base import LogMessage, Source
from fusion.sources.layout import localization_from_frames
from fusion.stats import LatencyRecorder
from fusion.sync.ingest import Ingested, IngestPump
from fusion.sync.online import (
    Between,
    Match,
    OnlineSynchronizer,
    PeriodEstimate,
    StreamOptions,
    Trigger,
)

LIDAR_PERIOD_MS = 50.0  # 20 Hz: the default budget of a trigger


# -- clock and mailbox ----------------------------------------------------------------------------


class ReplayClock:
    """Log time (us) on a monotonic wall clock scaled by `rate` (> 0)."""

    def __init__(self, rate: float, log_start_us: int) -> None:
        self.rate = rate
        self.log_start_us = log_start_us
        self.wall_start = time.monotonic()

    def now_us(self) -> int:
        return self.log_start_us + int((time.monotonic() - self.wall_start) * 1e6 * self.rate)

    def sleep_until(self, log_us: int, stop: threading.Event | None = None) -> None:
        wait = (log_us - self.log_start_us) / (1e6 * self.rate) - (
            time.monotonic() - self.wall_start
        )
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)


class LatestSlot:
    """A one-item mailbox: `put` replaces a waiting item and returns it (latest wins)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False

    def put(self, item: Any) -> Any:
        with self._cond:
            replaced, self._item = self._item, item
            self._cond.notify()
            return replaced

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def get(self, timeout_s: float | None = None) -> Any:
        """The waiting item, blocking until there is one; None once closed and empty;
        `TIMED_OUT` when `timeout_s` passed first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._item is None and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return TIMED_OUT
                self._cond.wait(left)
            item, self._item = self._item, None
            return item

    def waiting(self) -> bool:
        """Whether an item waits."""
        with self._cond:
            return self._item is not None


TIMED_OUT = object()  # `LatestSlot.get`: the timeout passed with no item


class KeepWarm:
    """The detector kept warm through idle gaps (`ReplayOptions.keep_warm`, at --rate > 0).

    A machine whose idle cores and caches go cold makes a paced detector slower than a busy
    one: on our 2-vCPU VM the LIDAR model's detector took 1.3-1.4 x its back-to-back time after
    the 0.45 s it sleeps between keyframe triggers (`benchmarks/replay_notes.md`). When frames
    come with idle gaps, the detector runs once more on the last frame (its output discarded),
    timed to end `margin_s` before the next frame is due: the due time is the last frame's
    arrival plus the lower bound of the frames' period (`PeriodEstimate`: the shortest of the
    recent intervals between arrivals, less `period_margin`).
    A frame that arrives while that run is still going waits for it (counted in `delayed`).
    No run when the gap would be shorter than `min_idle_s` (frames back to back, as at the
    LIDAR trigger's 20 Hz), nor once the whole log is read (no trigger is still to come).
    Costs one detector run per gap."""

    def __init__(
        self,
        detect: Callable[[Frame], object],
        min_idle_s: float = 0.15,
        margin_s: float = 0.01,
        period_margin: float = 0.05,
    ) -> None:
        self.detect = detect
        self.min_idle_s = min_idle_s
        self.margin_s = margin_s
        self.period = PeriodEstimate(period_margin, size=6)  # of the arrivals, in us
        self.last_arrival_s = 0.0
        self.frame: Frame | None = None
        self.run_s = 0.0  # the detector's time of the last frame
        self.warm_s: float | None = None  # the last warm run's time (from idle)
        self.done_s = 0.0  # when the last frame was done
        self.armed = False  # one run per gap
        self.runs = 0
        self.delayed = 0

    def arrived(self, now_s: float) -> None:
        self.period.add(round(now_s * 1e6))
        self.last_arrival_s = now_s

    def finished(self, frame: Frame | None, now_s: float, run_s: float) -> None:
        """The detector finished a frame at `now_s`, `run_s` after starting it."""
        if frame is not None:
            self.frame = frame
        self.done_s, self.run_s = now_s, run_s
        self.armed = self.frame is not None

    def due_in(self, now_s: float) -> float | None:
        """Seconds until the warm run is due (0: now); None: no run in this gap."""
        period_us = self.period.lower_bound_us
        if not self.armed or period_us is None:
            return None
        at = self.last_arrival_s + period_us / 1e6 - (self.warm_s or self.run_s) - self.margin_s
        if at - self.done_s < self.min_idle_s:
            self.armed = False
            return None
        return max(0.0, at - now_s)

    def run(self, slot: LatestSlot) -> None:
        """The warm run on the last frame; `slot`: a frame arrived meanwhile waited for it."""
        self.armed = False
        if self.frame is None:
            return
        t0 = time.monotonic()
        self.detect(self.frame)
        self.warm_s = time.monotonic() - t0
        self.runs += 1
        self.delayed += int(slot.waiting())


# -- summary --------------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    source: str
    rate: float
    backend: str = ""  # the engine that ran (after --backend auto)
    decode: str = ""  # camera JPEG decode: reduced or full
    between: str = ""  # a trigger without a message of its own: reuse a neighbour's, or none
    radar_match: str = ""  # a trigger's own radar scan: the nearest, or the newest before it
    camera_match: str = ""  # a trigger's own camera image: the same choice
    log_delay_ms: float | None = None  # the stated logging delay the causal matches used
    # a frame's camera and LIDAR work starts before its radar scans are final (--rate > 0)
    early_start: bool = False
    warmup_s: float = 0.0  # the warm start before the clock: engine run on the first frame
    # `KeepWarm` (--rate > 0): on, its runs (one per idle gap, outputs discarded), and the
    # frames that arrived during one and waited for it
    keep_warm: bool = False
    warm_runs: int = 0
    warm_delayed: int = 0
    received: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    triggers: int = 0
    processed: int = 0
    dropped: int = 0
    dropped_by: dict[str, int] = field(default_factory=dict)
    late: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    # channel -> sweeps in a dataroot's tables whose files are absent (keyframes-only layout):
    # no message, so frames fuse the scans that exist
    absent_sweeps: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_stats: dict[str, Any] = field(default_factory=dict)
    first_frame_ms: float = math.nan  # end to end of the first processed trigger
    sync_wait_ms: dict[str, float] = field(default_factory=dict)
    # per trigger, the wait before its frame's work began: with early_start, until all but its
    # radars were final (the rest of the radars' wait overlaps the camera and LIDAR work)
    start_wait_ms: dict[str, float] = field(default_factory=dict)
    shed: dict[str, int] = field(default_factory=dict)  # stale messages shed per channel
    reused: dict[str, int] = field(default_factory=dict)  # frames given a neighbour's message
    wall_s: float = 0.0
    # the producer's wall time from the log's first message to its last (--rate > 0): at
    # rate 1 within a few % of log_s when it keeps pace (wall_s adds the last frame's inference)
    producer_s: float = 0.0
    log_s: float = 0.0
    peak_rss_mb: float = 0.0
    rss_mb_per_loop: list[dict[str, float]] = field(default_factory=list)  # at each loop's end
    errors: list[str] = field(default_factory=list)  # first rejection reasons, for the user
    # the one pose stream used: `pose` (/tf map->base_link, ego_pose), `odom` (CAN bus), or
    # `gnss-imu` (estimated here); and what the estimator rejected (bad or gated input)
    pose_source: str = ""
    pose_rejected: dict[str, int] = field(default_factory=dict)
    pose_calibration: str = ""  # gnss-imu: where the lever arm and IMU extrinsic came from

    def as_json(self) -> dict[str, Any]:
        """Plain JSON: statistics without samples (no processed trigger) are null, not NaN."""
        out = _no_nan(dataclasses.asdict(self))
        out["errors"] = self.errors[:10]
        return out


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


# -- the replay -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayOptions:
    rate: float = 1.0  # 0: as fast as possible, deterministic
    trigger: Trigger = "keyframes"
    budget_ms: float = LIDAR_PERIOD_MS
    start_s: float = 0.0
    duration_s: float | None = None
    loop: int = 1
    faults: Faults = Faults()
    warmup: int = 0  # processed triggers left out of the latency statistics
    decode: ImageDecode = "reduced"
    between: Between = "reuse"
    radar_match: Match = "nearest"
    camera_match: Match = "nearest"
    # the most a message is logged after its stamp (`StreamOptions.log_delay_us`); None: the
    # source's (0 for a dataroot, unknown for a log)
    log_delay_ms: float | None = None
    # --rate > 0: start a frame's camera and LIDAR work as soon as only its radar scans are not
    # final (`fusion.sync.ingest.IngestPump`'s early start); the same detections
    early_start: bool = True
    warm_start: bool = True  # run one frame of the log before the clock starts
    # --rate > 0: through idle gaps between frames, run the detector once more on the last
    # frame just before the next is due (`KeepWarm`), so that a paced frame does not pay the
    # machine's return from idle
    keep_warm: bool = True
    poses: PoseChoice = "auto"  # the log's localization, or poses estimated from GNSS/IMU
    # the estimator's calibration and noise (`--rig`), and where it came from; None: the log's
    # static transforms of the GNSS antenna and the IMU (Rig.frames), else none
    localization: LocalizationConfig | None = None
    pose_calibration: str = ""
    # > 0: the estimator estimates the GNSS fix latency online from the configured one, with
    # this prior sigma (s); 0: the configured latency is held
    gnss_latency_sigma_s: float = 0.0
    # the geodetic origin of the log's map frame (`--rig`'s [gnss]): estimated poses, and so the
    # detections' global boxes, are taken into it; None: the ENU frame of the first fix
    map_origin: GeodeticOrigin | None = None

    def __post_init__(self) -> None:
        if not (self.rate >= 0 and math.isfinite(self.rate)):
            raise FusionError("--rate must be >= 0 (0: as fast as possible)")
        if not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise FusionError("--budget-ms must be > 0")
        if self.start_s < 0 or (self.duration_s is not None and self.duration_s <= 0):
            raise FusionError("--start must be >= 0 and --duration > 0")
        if self.loop < 1:
            raise FusionError("--loop must be >= 1")
        if self.log_delay_ms is not None and not (
            0 <= self.log_delay_ms < 60_000 and math.isfinite(self.log_delay_ms)
        ):
            raise FusionError("--log-delay-ms must be in [0, 60000)")


class ReplayRun:
    """State of one replay: counters, synchronizer, sinks."""

    def __init__(
        self,
        source: Source,
        runner: Runner,
        options: ReplayOptions,
        sinks: Sequence[Sink],
        status: Any | None,
    ) -> None:
        self.source = source
        self.runner = runner
        self.options = options
        self.sinks = sinks
        self.status = status
        info = dict(source.info())
        if options.log_delay_ms is not None:
            info["log_delay_us"] = math.ceil(options.log_delay_ms * 1000)
        if info.get("log_delay_us") is not None and options.faults.delay_ms > 0:
            # the faults delay a message by up to delay_ms past its log time
            info["log_delay_us"] += math.ceil(options.faults.delay_ms * 1000)
        rig = source.rig()
        self.stream_options = StreamOptions.for_log(
            runner.cfg,
            info,
            options.budget_ms,
            options.trigger,
            runner.modalities,
            options.poses,
            camera_decode=options.decode,
            between=options.between,
            radar_match=options.radar_match,
            camera_match=options.camera_match,
            localization=options.localization,
            map_origin=options.map_origin,
        )
        localization, calibration = options.localization, options.pose_calibration
        if self.stream_options.pose_channel == POSE_SOURCE and localization is None:
            # no --rig: the log's static transforms of the GNSS antenna and the IMU, if any
            localization = localization_from_frames(rig.frames)
            calibration = (
                rig.frames_origin
                if localization is not None
                else "none (antenna and IMU taken at the ego origin; --rig gives them)"
            )
            self.stream_options = dataclasses.replace(
                self.stream_options, localization=localization
            )
        if options.gnss_latency_sigma_s > 0 and self.stream_options.pose_channel == POSE_SOURCE:
            localization = dataclasses.replace(
                localization or LocalizationConfig(),
                time_offset_sigma=options.gnss_latency_sigma_s,
            )
            self.stream_options = dataclasses.replace(
                self.stream_options, localization=localization
            )
        self.trigger = self.stream_options.trigger
        self.sync = OnlineSynchronizer(
            self.stream_options, rig, scene_name=str(getattr(source, "scene", "") or "")
        )
        self.pump = IngestPump(self.sync, early_start=options.early_start and options.rate > 0)
        self.faults = FaultInjector(options.faults)
        self.summary = ReplaySummary(
            str(source.path),
            options.rate,
            backend=str(getattr(runner.engine, "name", type(runner.engine).__name__)),
            decode=options.decode,
            between=options.between,
            radar_match=options.radar_match,
            camera_match=options.camera_match,
            log_delay_ms=_ms(self.stream_options.log_delay_us),
            early_start=self.pump.early_start,
            keep_warm=options.keep_warm and options.rate > 0,
        )
        self.summary.absent_sweeps = dict(info.get("absent_sweeps", {}))
        self.summary.pose_source = self.stream_options.pose_channel or "none"
        if self.summary.pose_source == POSE_SOURCE:
            cfg = localization or LocalizationConfig()
            imu = cfg.imu_to_ego.translation
            self.summary.pose_calibration = (
                f"{calibration}: antenna {[round(float(v), 3) for v in cfg.antenna_in_ego]} m "
                f"and IMU {[round(float(v), 3) for v in imu]} m in ego, fix latency "
                f"{cfg.gnss_time_offset_s:g} s"
                + (
                    f" (estimated online, prior sigma {cfg.time_offset_sigma:g} s)"
                    if cfg.time_offset_sigma > 0
                    else " (configured)"
                )
                + (
                    f"; poses in the map frame of origin {options.map_origin.lat_deg:.6f},"
                    f" {options.map_origin.lon_deg:.6f}"
                    if options.map_origin is not None
                    else "; poses in the ENU frame of the first fix (no map origin: --rig gives it)"
                )
            )
        self.recorder = LatencyRecorder(options.warmup)
        self.busy_dropped = 0
        self.shed: dict[str, int] = {}
        self.shed_triggers = 0
        self.producer_s = 0.0  # wall time the producer took over the log (--rate > 0)
        self.lock = threading.Lock()  # counters shared by producer and consumer
        self.clock: ReplayClock | None = None
        self.stream_now_us = 0  # newest log time delivered (the clock at --rate 0)
        self.wall_at_stream = time.monotonic()

    # -- producer side -------------------------------------------------------------------------
    def messages(self) -> Iterator[tuple[int, LogMessage | None]]:
        """(arrival log time, message) over all loops, after faults; time-shifted per loop so
        the log time keeps increasing. A None message marks the end of a loop (the
        synchronizer is flushed and reset there: the log jumps back)."""
        o = self.options
        offset = 0
        for loop in range(o.loop):
            first: int | None = None
            last = 0
            delayed: list[tuple[int, int, LogMessage]] = []  # heap of (arrival, n, message)
            n = 0
            it = iter(self.source.messages())
            while True:
                msg = self.pump.read(it)
                if msg is None:
                    break
                if first is None:
                    first = msg.log_time_us
                rel = msg.log_time_us - first
                if rel < o.start_s * 1e6:
                    continue
                if o.duration_s is not None and rel > (o.start_s + o.duration_s) * 1e6:
                    break
                last = max(last, msg.log_time_us)
                if loop and offset:
                    msg = _shifted(msg, offset)
                faulty, delay = self.faults.apply(msg)
                if faulty is None:
                    continue
                arrival = faulty.log_time_us + delay
                n += 1
                heapq.heappush(delayed, (arrival, n, faulty))
                # delayed messages wait in a heap bounded by delay_ms worth of messages
                while delayed and delayed[0][0] <= faulty.log_time_us:
                    a, _, m = heapq.heappop(delayed)
                    yield a, m
            while delayed:
                a, _, m = heapq.heappop(delayed)
                yield a, m
            self.summary.rss_mb_per_loop.append(
                {"rss_mb": round(current_rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
            )
            if first is not None:
                span = last - first
                self.summary.log_s += span * 1e-6
                offset += span + 100_000
            if loop + 1 < o.loop:
                yield -1, None

    def shed_stale(self, msg: LogMessage, lag_us: int) -> bool:
        """Whether the producer, `lag_us` behind the log, sheds `msg` (counted per channel): a
        message the model reads, once the producer is more than a budget behind, except the
        poses and the trigger scans (a trigger is kept: the detector takes the newest frame)
        unless it is more than a LIDAR period beyond a budget behind (its frame could not come
        out in time anyway; counted as a dropped trigger, `stale`)."""
        budget = self.options.budget_ms * 1000
        if lag_us <= budget or msg.kind == "pose" or not self.sync.wants(msg):
            return False  # (a message the model does not read is left unread by the pump)
        trigger = msg.kind == "lidar" and self.sync.is_trigger(msg)
        if trigger and lag_us <= budget + LIDAR_PERIOD_MS * 1000:
            return False
        self.shed[msg.channel] = self.shed.get(msg.channel, 0) + 1
        self.shed_triggers += trigger
        return True

    def warm_up(self) -> None:
        """Before the clock: one frame built from the log's first messages (a synchronizer of
        its own) through the runner, which builds the engine's sessions, compiles the kernels
        and fills the camera-geometry cache; its time goes to `summary.warmup_s`."""
        t0 = time.monotonic()
        pump = IngestPump(OnlineSynchronizer(self.stream_options, self.source.rig()))
        frame: Frame | None = None
        it = iter(self.source.messages())
        while frame is None and (msg := pump.read(it)) is not None:
            out = pump.offer(msg, msg.log_time_us)
            frame = out[0].frame if out else None
        if frame is None:
            out = pump.release(flush=True)
            frame = out[0].frame if out else None
        if frame is not None:
            self.runner.detect(frame)
        self.summary.warmup_s = time.monotonic() - t0

    # -- consumer side -------------------------------------------------------------------------
    def now_us(self) -> int:
        if self.clock is not None:
            return self.clock.now_us()
        return self.stream_now_us + int((time.monotonic() - self.wall_at_stream) * 1e6)

    def process(self, built: Ingested) -> Frame | None:
        """Detect `built`'s frame, time it, write it out; the whole frame (None: its trigger
        was dropped while it waited for its radars)."""
        frame, decode_ms = built.frame, built.decode_ms
        if built.radars is None:
            dets, times = self.runner.detect(frame)
        else:  # started before its radars: they join once the pump has them
            out = self.runner.detect_started(frame, built.radars.wait)
            if out is None:
                return None  # its trigger was dropped while it waited (counted: overflow)
            frame, dets, times = out
            decode_ms += built.radars.decode_ms
        times = dataclasses.replace(times, read=built.read_ms, decode=decode_ms)
        done_us = self.now_us()
        latency_ms = (done_us - frame.timestamp_us) / 1000.0
        late = latency_ms > self.options.budget_ms
        item = Processed(frame, dets, times, latency_ms, late)
        with self.lock:
            if self.summary.processed == 0:
                self.summary.first_frame_ms = latency_ms
            self.summary.processed += 1
            self.summary.late += int(late)
            self.recorder.add(times.as_dict(), latency_ms)
        for sink in self.sinks:
            sink.write(item)
        if self.status is not None:
            self.status(self)
        return frame


def _shifted(msg: LogMessage, offset_us: int) -> LogMessage:
    return dataclasses.replace(
        msg, timestamp_us=msg.timestamp_us + offset_us, log_time_us=msg.log_time_us + offset_us
    )


def replay(
    source: Source,
    runner: Runner,
    options: ReplayOptions,
    sinks: Sequence[Sink] = (),
    status: Any | None = None,
) -> ReplaySummary:
    """Replay `source` through `runner`; see the module docstring."""
    run = ReplayRun(source, runner, options, sinks, status)
    if options.warm_start:
        run.warm_up()
    wall0 = time.monotonic()
    try:
        if options.rate == 0:
            _replay_sequential(run)
        else:
            _replay_realtime(run)
    finally:
        for sink in sinks:
            sink.close()
    s = run.summary
    s.wall_s = time.monotonic() - wall0
    s.producer_s = run.producer_s
    c = run.sync.counters
    s.triggers = c.triggers + run.shed_triggers
    s.dropped_by = {
        "busy": run.busy_dropped,
        "overflow": c.overflow,
        "no_pose": c.no_pose,
        "stale": run.shed_triggers,
    }
    if run.sync.estimator is not None:
        s.pose_rejected = {
            k: v for k, v in run.sync.estimator.counts.items() if v and k in REJECTIONS
        }
        offset = run.sync.estimator.poses().time_offset_s
        if offset is not None and offset[1] > 0:
            s.pose_calibration += f"; latency estimated {offset[0]:.3f} +- {offset[1]:.3f} s"

    s.dropped = sum(s.dropped_by.values())
    s.missing = dict(sorted(c.missing.items()))
    s.received = dict(run.pump.counts.received)
    s.rejected = run.pump.rejected()
    s.errors = list(run.pump.counts.errors)
    s.sync_wait_ms = c.sync_wait_ms()
    s.start_wait_ms = c.start_wait_ms()
    s.shed = dict(sorted(run.shed.items()))
    s.reused = dict(sorted(c.reused.items()))
    s.faults = {
        "dropped": run.faults.dropped,
        "corrupted": run.faults.corrupted,
        "delayed": run.faults.delayed,
    }
    summary = run.recorder.summary(StageTimes.names())
    s.latency_stats = summary
    e2e = summary["end_to_end"]
    s.latency_ms = {k: e2e[f"{k}_ms"] for k in ("p50", "p90", "p99", "max")}
    s.stages_ms = {
        st: {"p50": v["p50_ms"], "p99": v["p99_ms"]} for st, v in summary["stages"].items()
    }
    s.peak_rss_mb = round(peak_rss_mb(), 1)
    if s.triggers == 0 and not any(k == "LIDAR_TOP" for k in s.received):
        raise DataError("the log has no LIDAR_TOP messages to trigger on", source.path)
    return s


def _replay_sequential(run: ReplayRun) -> None:
    """--rate 0: one thread, every trigger processed as soon as its sensors are in."""
    for arrival, msg in run.messages():
        if msg is None:
            _flush(run)
            run.pump.reset()
            continue
        run.stream_now_us = max(run.stream_now_us, arrival)
        run.wall_at_stream = time.monotonic()
        for built in run.pump.offer(msg, run.stream_now_us):
            _dispatch(run, built, None)
    _flush(run)


def _flush(run: ReplayRun, slot: LatestSlot | None = None) -> None:
    """Release every waiting trigger (the end of a loop or of the log)."""
    for built in run.pump.release(flush=True):
        _dispatch(run, built, slot)


def _dispatch(run: ReplayRun, built: Ingested, slot: LatestSlot | None) -> None:
    if slot is None:
        run.process(built)
        return
    if slot.put(built) is not None:
        with run.lock:
            run.busy_dropped += 1


def _replay_realtime(run: ReplayRun) -> None:
    """--rate > 0: a producer thread paces, decodes and synchronizes; this thread infers."""
    slot = LatestSlot()
    stop = threading.Event()
    read = threading.Event()  # the producer has read the whole log: no trigger is still to come
    failure: list[BaseException] = []

    def produce() -> None:
        last_arrival: int | None = None
        try:
            for arrival, msg in run.messages():
                if stop.is_set():
                    return
                if msg is None:
                    _flush(run, slot)
                    run.pump.reset()
                    continue
                if run.clock is None:
                    run.clock = ReplayClock(run.options.rate, arrival)
                last = run.pump.clock_us
                if last is not None and arrival > last:  # the previous log time's batch is in
                    for built in run.pump.release(last):
                        _dispatch(run, built, slot)
                # release triggers whose wait ends before this message arrives
                while (d := run.sync.next_deadline()) is not None and d < arrival:
                    run.clock.sleep_until(d, stop)
                    for built in run.pump.release(d):
                        _dispatch(run, built, slot)
                last_arrival = arrival
                if not run.sync.wants(msg):
                    # a channel the model does not read: counted, and not waited for (a wake-up
                    # per message would only take the detector's cores; the batch it closed is
                    # released above, and a later wanted message moves the pump's clock)
                    run.pump.skip(msg)
                    continue
                run.clock.sleep_until(arrival, stop)
                now = run.clock.now_us()
                if run.shed_stale(msg, now - arrival):
                    continue
                for built in run.pump.offer(msg, arrival):  # (batched by log time)
                    _dispatch(run, built, slot)
            read.set()
            if run.pump.clock_us is not None:  # the last batch is in
                for built in run.pump.release(run.pump.clock_us):
                    _dispatch(run, built, slot)
            if run.clock is not None and last_arrival is not None:
                run.clock.sleep_until(last_arrival, stop)  # the log's end, skipped or not
            run.producer_s = time.monotonic() - run.clock.wall_start if run.clock else 0.0
            if run.clock is not None:
                while (d := run.sync.next_deadline()) is not None:
                    run.clock.sleep_until(d, stop)
                    for built in run.pump.release(d):
                        _dispatch(run, built, slot)
            _flush(run, slot)
        except BaseException as exc:  # noqa: BLE001  # handed to the main thread
            failure.append(exc)
        finally:
            run.pump.abandon()  # a frame left waiting for its radars gets None, not a hang
            slot.close()

    producer = threading.Thread(target=produce, name="replay-producer", daemon=True)
    producer.start()
    warm = KeepWarm(run.runner.detect) if run.summary.keep_warm else None
    try:
        while True:
            due = None if warm is None else warm.due_in(time.monotonic())
            built = slot.get(due)
            if built is TIMED_OUT:
                if read.is_set():  # no frame is still to come after the ones released
                    warm.armed = False  # type: ignore[union-attr]
                else:
                    warm.run(slot)  # type: ignore[union-attr]
                continue
            if built is None:
                break
            t0 = time.monotonic()
            if warm is not None:
                warm.arrived(t0)
            frame = run.process(built)
            if warm is not None:
                done = time.monotonic()
                warm.finished(frame, done, done - t0)
    finally:
        if warm is not None:
            run.summary.warm_runs, run.summary.warm_delayed = warm.runs, warm.delayed
        stop.set()
        producer.join(timeout=10)
    if failure:
        raise failure[0]


def _ms(us: int | None) -> float | None:
    return None if us is None else us / 1000

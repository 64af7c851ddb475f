"""The one ingest path from a live log to frames, shared by `fusion replay` and
`fusion bench latency`: `IngestPump`.

Messages are offered in log order, each at the stream's clock (its arrival on the log clock):
- only the channels the model reads are kept (`OnlineSynchronizer.wants`: its sensors, the
  LIDAR scans its sweeps need, the one pose stream); the others are counted and left undecoded;
- each kept message is decoded at most once, and a camera or radar message only when a frame
  takes it (`OnlineSynchronizer.push_undecoded`: images at the JPEG reduction of the
  synchronizer's `camera_decode`, radar scans as the matched scan or one of its sweeps; a reused
  one is not decoded again);
- triggers are released as soon as their match is final (`OnlineSynchronizer.ready`) and built
  into frames at once, once every message of that log time is in: messages of one log time are
  taken as one batch (`offer` releases before a message of a later time, `settle` when the clock
  moves on without one), so that the order a log gives messages of one time, which differs
  between layouts (nuscenes2mcap logs a keyframe's images, radar scans and LIDAR scan at one
  time), changes no frame;
- `read` (the messages taken from the log) and `decode` (decoding, synchronizing, building the
  frame with its motion-compensated sweeps) are timed as stages, charged to the next frame out,
  with the camera messages' share of both.

Replay wraps pacing, faults and the mailbox around the pump; the benchmark cycles the log through
it (`StreamFrames`). Neither reads a log any other way, so both time the same code and build the
same frames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fusion.data.sensor_io import ImageDecode
from fusion.errors import DataError, FusionError
from fusion.frame import Frame
from fusion.sources.base import LogMessage, Source
from fusion.sync.online import OnlineSynchronizer, PendingTrigger, StreamOptions, Trigger


class RadarCompletion:
    """The radars of a frame the pump started without them (`IngestPump(early_start=True)`):
    the pump resolves it when the trigger is released (`OnlineSynchronizer.build_radars`), with
    the whole frame, or with None when the trigger was dropped before (counted by the
    synchronizer). `wait` blocks until then: the detector calls it after the frame's camera and
    LIDAR work. Thread-safe: the pump's thread resolves, the detector's waits."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame  # without radars
        self.decode_ms = 0.0  # the radars' decode and motion compensation, when resolved
        self._done = threading.Event()
        self._whole: Frame | None = None

    def resolve(self, whole: Frame | None, decode_ms: float = 0.0) -> None:
        self._whole, self.decode_ms = whole, decode_ms
        self._done.set()

    @property
    def resolved(self) -> bool:
        return self._done.is_set()

    def wait(self) -> Frame | None:
        """The whole frame (None: its trigger was dropped), once the pump has it."""
        self._done.wait()
        return self._whole


@dataclass(frozen=True, eq=False)
class Ingested:
    """One frame out of the pump, with what it cost since the previous one (ms): `read`,
    `decode` and `camera_ms` (the camera messages' share of both). `radars`: for a frame
    started before its radar scans were final (`IngestPump(early_start=True)`), what completes
    it; None for a whole frame."""

    frame: Frame
    read_ms: float
    decode_ms: float
    camera_ms: float
    radars: RadarCompletion | None = None


@dataclass
class IngestCounts:
    """Per channel: messages offered, kept for frames (decoded, or held undecoded: cameras),
    left out (a sensor the model does not read), rejected (bytes that do not decode)."""

    received: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    decoded: int = 0  # messages decoded on arrival (every kept one but cameras and radars)
    errors: list[str] = field(default_factory=list)  # the first rejection reasons


def _bump(d: dict[str, int], key: str) -> None:
    d[key] = d.get(key, 0) + 1


class IngestPump:
    """See the module docstring. Not thread-safe: one thread reads, offers and releases
    (a `RadarCompletion` it hands out may be waited on from another).

    `early_start` (real-time replay): a trigger whose radar scans are the only part not yet
    final is built at once without them (`OnlineSynchronizer.startable`, `build_start`) and
    handed out with a `RadarCompletion`, which the pump resolves when the trigger is released;
    so the detector's camera and LIDAR work overlaps the wait for a radar scan stamped after the
    trigger (the nearest scan, up to 37 ms after a nuScenes keyframe). The whole frame is the
    one `build` gives (tested). Without radars in the model it changes nothing."""

    def __init__(self, sync: OnlineSynchronizer, early_start: bool = False) -> None:
        self.sync = sync
        self.early_start = early_start and bool(sync.options.radar_channels)
        self.counts = IngestCounts()
        self._read = self._decode = self._camera = 0.0  # since the previous frame out
        self.clock_us: int | None = None  # log time of the batch being taken (newest offered)
        # started triggers (by serial) -> their completion (None: start gave no frame)
        self._started: dict[int, RadarCompletion | None] = {}

    def read(self, messages: Iterator[LogMessage]) -> LogMessage | None:
        """The next message of `messages` (None at the end), its read time charged."""
        t0 = time.perf_counter()
        msg = next(messages, None)
        dt = (time.perf_counter() - t0) * 1e3
        self._read += dt
        if msg is not None and msg.kind == "camera":
            self._camera += dt
        return msg

    def settle(self, clock_us: int) -> list[Ingested]:
        """The clock moves on to `clock_us`: the batch of the previous log time is complete, so
        the triggers it completed are released (their wait ends at that time), then those whose
        wait ends before `clock_us`. Nothing when `clock_us` is still the batch's time."""
        if self.clock_us is None or clock_us <= self.clock_us:
            return []
        out = self.release(self.clock_us)
        self.clock_us = clock_us
        return out + self.release(clock_us - 1)

    def offer(self, msg: LogMessage, clock_us: int) -> list[Ingested]:
        """Take one message arriving at `clock_us` (log clock, us, not decreasing): `settle`
        first (the triggers the previous batch completed or whose wait ended before it), then the
        message is kept or left out. A trigger it completes is released by the next `offer` at
        a later time, `settle` or the flush: every message logged at or before a trigger's
        deadline is in time for it, in any order within one log time."""
        out = self.settle(clock_us)
        self.clock_us = clock_us if self.clock_us is None else max(self.clock_us, clock_us)
        t0 = time.perf_counter()
        c, ch = self.counts, msg.channel
        _bump(c.received, ch)
        if not self.sync.wants(msg):
            _bump(c.skipped, ch)
        elif msg.kind in ("camera", "radar"):
            self.sync.push_undecoded(msg)  # decoded when a frame takes it
            _bump(c.kept, ch)
        else:
            try:
                payload = self.sync.decode(msg)
            except DataError as err:
                _bump(c.rejected, ch)
                if len(c.errors) < 10:
                    c.errors.append(str(err))
            else:
                self.sync.push(msg, payload)
                _bump(c.kept, ch)
                c.decoded += 1
        dt = (time.perf_counter() - t0) * 1e3
        self._decode += dt
        if msg.kind == "camera":
            self._camera += dt
        return out

    def skip(self, msg: LogMessage) -> None:
        """Count a message of a channel the synchronizer does not want (`wants`) without taking
        it: what `offer` does with it, less the clock (real-time replay reads such messages
        without waiting for their time)."""
        _bump(self.counts.received, msg.channel)
        _bump(self.counts.skipped, msg.channel)

    def release(self, clock_us: int | None = None, flush: bool = False) -> list[Ingested]:
        """The frames of the triggers ready at `clock_us` (or all waiting ones: `flush`)."""
        out: list[Ingested] = []
        t0 = time.perf_counter()
        for trig in self.sync.ready(clock_us, flush=flush):
            serial = trig.held.serial
            if serial in self._started:  # started: its radars complete the frame handed out
                completion = self._started.pop(serial)
                if completion is not None:
                    t1 = time.perf_counter()
                    whole = self.sync.build_radars(trig, completion.frame)
                    completion.resolve(whole, (time.perf_counter() - t1) * 1e3)
                t0 = time.perf_counter()  # the radars' time is their frame's, not the next's
                continue
            frame = self._build(self.sync.build, trig)
            if frame is not None:
                t0 = self._emit(out, t0, frame)
        if self.early_start and not flush:
            for trig in self.sync.startable(clock_us):
                frame = self._build(self.sync.build_start, trig)
                completion = None if frame is None else RadarCompletion(frame)
                self._started[trig.held.serial] = completion
                if frame is not None:
                    t0 = self._emit(out, t0, frame, completion)
        for serial in self.sync.take_abandoned():
            completion = self._started.pop(serial, None)
            if completion is not None:
                completion.resolve(None)
        self._decode += (time.perf_counter() - t0) * 1e3
        return out

    def _build(
        self, build: Callable[[PendingTrigger], Frame | None], trig: PendingTrigger
    ) -> Frame | None:
        """`build(trig)`, the camera messages it decoded charged to the camera share."""
        before = self.sync.counters.build_decode_ms
        frame = build(trig)
        self._camera += self.sync.counters.build_decode_ms - before
        return frame

    def _emit(
        self,
        out: list[Ingested],
        t0: float,
        frame: Frame,
        radars: RadarCompletion | None = None,
    ) -> float:
        """Hand out `frame` with what it cost since the previous one (the decode since `t0`);
        the time it was handed out, the next frame's `t0`."""
        now = time.perf_counter()
        self._decode += (now - t0) * 1e3
        out.append(Ingested(frame, self._read, self._decode, self._camera, radars))
        self._read = self._decode = self._camera = 0.0
        return now

    def abandon(self) -> None:
        """Resolve every frame still waiting for its radars with None (the producer stops
        early: nothing is left waiting on a completion that would never come)."""
        for completion in self._started.values():
            if completion is not None:
                completion.resolve(None)
        self._started.clear()

    def reset(self) -> None:
        """A jump in the log (a new loop): the synchronizer forgets what it holds (a started
        frame it still held is resolved with None; callers flush first)."""
        self.sync.reset()
        self.sync.take_abandoned()
        self.abandon()
        self.clock_us = None

    def rejected(self) -> dict[str, int]:
        """Messages that did not decode, per channel: on arrival, or (cameras, radars) when a
        frame took them."""
        out = dict(self.counts.rejected)
        for ch, n in self.sync.counters.undecodable.items():
            out[ch] = out.get(ch, 0) + n
        return dict(sorted(out.items()))


# -- the pump cycled over a log: `fusion bench latency`'s queries -------------------------------


@dataclass(frozen=True, eq=False)
class StreamedFrame:
    """One frame built by the online synchronizer, with what it cost since the previous one (ms):
    `read` (the messages' bytes from the log), `decode` (payloads decoded, synchronized, the frame
    built) and `camera_ms` (the camera messages' share of both)."""

    frame: Frame
    read_ms: float
    decode_ms: float
    camera_ms: float


class StreamFrames:
    """The frames of a log (`fusion.sources.open_source`: a dataroot scene, MCAP, ROS 2 or ROS 1
    bag)
    through `IngestPump`, the ingest path of `fusion replay`: messages in log order, one frame
    per trigger, the log cycled (the synchronizer reset at each wrap, as replay's loops). A
    model keeps only what it reads; camera messages are decoded only when a frame takes one, at
    the JPEG reduction the network input allows (`decode="reduced"`) with the scaled camera
    model, or in full. Every message is still read, as a replay reads the whole log."""

    def __init__(
        self,
        source: Source,
        cfg: Any,
        modalities: tuple[str, ...],
        decode: ImageDecode = "reduced",
        trigger: Trigger = "keyframes",
        budget_ms: float = 50.0,
    ) -> None:
        self.source = source
        options = StreamOptions.for_log(
            cfg,
            source.info(),
            budget_ms,
            trigger,
            modalities,
            camera_decode=decode,
        )
        self.sync = OnlineSynchronizer(
            options, source.rig(), scene_name=str(getattr(source, "scene", "") or "")
        )
        self.pump = IngestPump(self.sync)
        self._it: Iterator[LogMessage] | None = None
        self._now = 0  # the stream's clock: newest log time of this loop (replay's --rate 0)
        self._built: deque[StreamedFrame] = deque()
        self.loops = 0  # completed passes over the log
        self.frames_in_loop = 0
        self.frames_per_loop: int | None = None
        self.built = 0

    @property
    def messages(self) -> int:
        return sum(self.pump.counts.received.values())

    @property
    def camera_kept(self) -> int:
        cams = self.sync.options.camera_channels
        return sum(n for ch, n in self.pump.counts.kept.items() if ch in cams)

    def _take(self, ingested: list[Any]) -> None:
        for x in ingested:
            self._built.append(StreamedFrame(x.frame, x.read_ms, x.decode_ms, x.camera_ms))
            self.frames_in_loop += 1
            self.built += 1

    def _wrap(self) -> None:
        self._take(self.pump.release(flush=True))
        if self._it is not None:
            if self.frames_in_loop == 0:
                raise FusionError("the log yields no frame to time", self.source.path)
            self.loops += 1
            if self.frames_per_loop is None:
                self.frames_per_loop = self.frames_in_loop
        self.pump.reset()
        self.frames_in_loop = 0
        self._now = 0
        self._it = iter(self.source.messages())

    def stats(self) -> dict[str, Any]:
        """Frames built, passes over the log, messages per frame, what the synchronizer missed."""
        frames = max(1, self.built)
        c = self.sync.counters
        cams = self.sync.options.camera_channels
        camera_decoded = sum(c.used.get(ch, 0) - c.reused.get(ch, 0) for ch in cams) + sum(
            c.undecodable.values()
        )
        return {
            "frames_built": self.built,
            "frames_per_loop": self.frames_per_loop,
            "loops": self.loops,
            "read_per_frame": self.messages / frames,
            "decoded_per_frame": (self.pump.counts.decoded + c.decoded_at_build) / frames,
            "camera_kept_per_frame": self.camera_kept / frames,
            "camera_decoded_per_frame": camera_decoded / frames,
            # keyframe images whose decode started on the pool as they arrived, and its CPU
            "camera_decoded_early_per_frame": c.decoded_early / frames,
            "early_decode_cpu_ms_per_frame": c.early_decode_cpu_ms / frames,
            "dropped": {"overflow": c.overflow, "no_pose": c.no_pose},
            "missing": dict(sorted(c.missing.items())),
            "undecodable": dict(sorted(c.undecodable.items())),
            "sync_wait_ms": c.sync_wait_ms(),
        }

    def next(self) -> StreamedFrame:
        """The next frame, reading and decoding as many messages as it takes."""
        while not self._built:
            if self._it is None:
                self._wrap()
            msg = self.pump.read(self._it)  # type: ignore[arg-type]
            if msg is None:
                self._wrap()
                continue
            self._now = max(self._now, msg.log_time_us)
            self._take(self.pump.offer(msg, self._now))
        return self._built.popleft()

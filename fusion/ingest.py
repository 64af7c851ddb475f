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
it. Neither reads a log any other way, so both time the same code and build the same frames.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from fusion.errors import DataError
from fusion.frame import Frame
from fusion.sources.base import LogMessage
from fusion.stream import OnlineSynchronizer


@dataclass(frozen=True, eq=False)
class Ingested:
    """One frame out of the pump, with what it cost since the previous one (ms): `read`,
    `decode` and `camera_ms` (the camera messages' share of both)."""

    frame: Frame
    read_ms: float
    decode_ms: float
    camera_ms: float


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
    """See the module docstring. Not thread-safe: one thread reads, offers and releases."""

    def __init__(self, sync: OnlineSynchronizer) -> None:
        self.sync = sync
        self.counts = IngestCounts()
        self._read = self._decode = self._camera = 0.0  # since the previous frame out
        self.clock_us: int | None = None  # log time of the batch being taken (newest offered)

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

    def release(self, clock_us: int | None = None, flush: bool = False) -> list[Ingested]:
        """The frames of the triggers ready at `clock_us` (or all waiting ones: `flush`)."""
        out = []
        sc = self.sync.counters
        t0 = time.perf_counter()
        for trig in self.sync.ready(clock_us, flush=flush):
            before = sc.build_decode_ms
            frame = self.sync.build(trig)
            self._camera += sc.build_decode_ms - before  # the camera messages it took
            if frame is None:
                continue
            now = time.perf_counter()
            self._decode += (now - t0) * 1e3
            t0 = now
            out.append(Ingested(frame, self._read, self._decode, self._camera))
            self._read = self._decode = self._camera = 0.0
        self._decode += (time.perf_counter() - t0) * 1e3
        return out

    def reset(self) -> None:
        """A jump in the log (a new loop): the synchronizer forgets what it holds."""
        self.sync.reset()
        self.clock_us = None

    def rejected(self) -> dict[str, int]:
        """Messages that did not decode, per channel: on arrival, or (cameras, radars) when a
        frame took them."""
        out = dict(self.counts.rejected)
        for ch, n in self.sync.counters.undecodable.items():
            out[ch] = out.get(ch, 0) + n
        return dict(sorted(out.items()))

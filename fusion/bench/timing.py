"""Wall-clock timing shared by the benchmarks: a perf_counter stopwatch and repeat/median runs.

Everything here is `time.perf_counter` (monotonic, sub-microsecond); GPU work is timed only
after the caller's `sync` (e.g. `cuda.synchronize`) so that queued kernels are counted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measure:
    """Median and fastest of `runs` timed runs, ms."""

    median_ms: float
    min_ms: float
    runs: int


class Stopwatch:
    """Laps of a perf_counter clock, ms; `lap(name)` charges the time since the last lap to
    `name` (accumulating when a stage is entered twice)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._start = self._t = time.perf_counter()

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        ms = (now - self._t) * 1e3
        self.laps[name] = self.laps.get(name, 0.0) + ms
        self._t = now
        return ms

    def elapsed_ms(self) -> float:
        """Since construction, ms."""
        return (time.perf_counter() - self._start) * 1e3


def time_ms(fn: Callable[[], Any], sync: Callable[[], None] | None = None) -> tuple[Any, float]:
    """`fn()`'s result and its wall time in ms (after `sync` when given)."""
    t0 = time.perf_counter()
    out = fn()
    if sync:
        sync()
    return out, (time.perf_counter() - t0) * 1e3


def repeat_ms(
    fn: Callable[[], Any],
    repeats: int,
    sync: Callable[[], None] | None = None,
    warmup: int = 1,
) -> list[float]:
    """Wall times (ms) of `repeats` calls of `fn` after `warmup` untimed calls (JIT
    compilation, caches, allocator)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    return [time_ms(fn, sync)[1] for _ in range(repeats)]


def timed(
    fn: Callable[[], Any], repeats: int, sync: Callable[[], None] | None = None, warmup: int = 1
) -> Measure:
    """Median and min of `repeat_ms(fn, repeats, sync, warmup)`."""
    times = repeat_ms(fn, repeats, sync, warmup)
    return Measure(statistics.median(times), min(times), len(times))

"""Latency statistics shared by `fusion bench`, `fusion eval` and `fusion replay`.

The anchors are trtexec and MLPerf LoadGen: min, mean, median, tail percentiles, max and
standard deviation over the measured queries, with warm-up queries counted and excluded.
Percentiles are numpy's default (linear interpolation between order statistics).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

STAT_KEYS: tuple[str, ...] = ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "std_ms")


def latency_stats(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """`STAT_KEYS` -> value (ms) over `samples_ms`; NaN for each when there are none."""
    x = np.asarray(samples_ms, dtype=np.float64).ravel()
    if len(x) == 0:
        return {k: float("nan") for k in STAT_KEYS}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {
        "min_ms": float(x.min()),
        "mean_ms": float(x.mean()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(x.max()),
        "std_ms": float(x.std()),
    }


class LatencyRecorder:
    """Per-query end-to-end and per-stage times; the first `warmup` queries are counted but
    left out of every statistic."""

    def __init__(self, warmup: int = 0) -> None:
        if warmup < 0:
            raise ValueError("warmup must be >= 0")
        self.warmup = warmup
        self.seen = 0
        self.end_to_end: list[float] = []
        self.stages: dict[str, list[float]] = {}

    def add(self, stages_ms: Mapping[str, float], end_to_end_ms: float | None = None) -> None:
        """Record one query. Without `end_to_end_ms` the stages' sum is its end-to-end time."""
        self.seen += 1
        if self.seen <= self.warmup:
            return
        total = float(sum(stages_ms.values())) if end_to_end_ms is None else float(end_to_end_ms)
        self.end_to_end.append(total)
        for stage, ms in stages_ms.items():
            self.stages.setdefault(stage, []).append(float(ms))

    @property
    def frames(self) -> int:
        """Measured (non-warm-up) queries."""
        return len(self.end_to_end)

    @property
    def warmup_seen(self) -> int:
        return min(self.seen, self.warmup)

    def means(self, stage_order: Iterable[str]) -> dict[str, float]:
        """Mean ms of each stage in `stage_order` (0 where never recorded) and "total", the
        mean end-to-end time, over the measured queries (NaN when there are none)."""
        out = {s: float(np.mean(self.stages[s])) if s in self.stages else 0.0 for s in stage_order}
        out["total"] = float(np.mean(self.end_to_end)) if self.end_to_end else float("nan")
        return out

    def summary(self, stage_order: Iterable[str] | None = None) -> dict:
        """`{"frames", "warmup", "end_to_end": STATS, "stages": {stage: STATS}}`."""
        order = list(stage_order) if stage_order is not None else list(self.stages)
        order += [s for s in self.stages if s not in order]
        return {
            "frames": self.frames,
            "warmup": self.warmup_seen,
            "end_to_end": latency_stats(self.end_to_end),
            "stages": {s: latency_stats(self.stages[s]) for s in order if s in self.stages},
        }

"""fusion.stats: the latency figures against numpy, warm-up counted and excluded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusion.bench.timing import Stopwatch, repeat_ms, timed
from fusion.stats import STAT_KEYS, LatencyRecorder, latency_stats


def test_percentiles_match_numpy_on_known_data():
    x = np.arange(1, 101, dtype=float)  # 1..100 ms
    s = latency_stats(x)
    assert s["min_ms"] == 1 and s["max_ms"] == 100
    assert s["mean_ms"] == pytest.approx(50.5)
    # numpy's linear interpolation: p50 of 1..100 is 50.5, p90 90.1, p99 99.01
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["std_ms"] == pytest.approx(np.std(x))


def test_percentiles_match_numpy_on_a_long_tail():
    rng = np.random.default_rng(3)
    x = rng.lognormal(3.0, 0.6, 997)
    s = latency_stats(list(x))
    for key, q in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99)):
        assert s[key] == pytest.approx(float(np.percentile(x, q)), rel=1e-12)
    assert s["p50_ms"] < s["p90_ms"] < s["p99_ms"] < s["max_ms"]
    assert tuple(s) == STAT_KEYS


def test_empty_input_gives_nan_for_every_figure():
    s = latency_stats([])
    assert tuple(s) == STAT_KEYS
    assert all(math.isnan(v) for v in s.values())
    rec = LatencyRecorder(warmup=3)
    rec.add({"a": 1.0})
    summary = rec.summary()
    assert summary["frames"] == 0 and summary["warmup"] == 1
    assert math.isnan(summary["end_to_end"]["p50_ms"]) and summary["stages"] == {}


def test_warmup_is_counted_and_excluded():
    rec = LatencyRecorder(warmup=2)
    # the first two queries are slow (JIT compilation): they must not reach any figure
    for i, ms in enumerate([500.0, 300.0, 10.0, 12.0, 14.0]):
        rec.add({"read": 1.0, "net": ms - 1.0}, end_to_end_ms=ms + 0.5 if i == 4 else None)
    s = rec.summary(["read", "net"])
    assert s["warmup"] == 2 and s["frames"] == 3
    assert s["end_to_end"]["max_ms"] == pytest.approx(14.5)  # given end-to-end wins
    assert s["end_to_end"]["min_ms"] == pytest.approx(10.0)  # else the stages' sum
    assert s["stages"]["net"]["max_ms"] == pytest.approx(13.0)
    assert list(s["stages"]) == ["read", "net"]
    with pytest.raises(ValueError):
        LatencyRecorder(warmup=-1)


def test_stage_order_keeps_unlisted_stages():
    rec = LatencyRecorder()
    rec.add({"b": 1.0, "a": 2.0, "c": 3.0})
    assert list(rec.summary(["a", "missing"])["stages"]) == ["a", "b", "c"]


def test_timing_helpers_run_warmup_untimed():
    calls = []
    times = repeat_ms(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and len(times) == 4 and all(t >= 0 for t in times)
    m = timed(lambda: None, repeats=5)
    assert m.runs == 5 and 0 <= m.min_ms <= m.median_ms
    sw = Stopwatch()
    sw.lap("a")
    sw.lap("b")
    sw.lap("a")
    assert set(sw.laps) == {"a", "b"} and sw.elapsed_ms() >= sum(sw.laps.values())


def test_means_leave_the_warmup_out():
    # what `fusion eval` reports: the first frame's Numba compilation must not show
    rec = LatencyRecorder(warmup=1)
    rec.add({"voxelize": 288.0, "bev_net": 20.0})
    rec.add({"voxelize": 1.0, "bev_net": 10.0})
    rec.add({"voxelize": 3.0, "bev_net": 12.0})
    assert rec.means(["voxelize", "bev_net", "radar_raster"]) == {
        "voxelize": 2.0,
        "bev_net": 11.0,
        "radar_raster": 0.0,
        "total": 13.0,
    }

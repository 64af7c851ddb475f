"""The early start (`IngestPump(early_start=True)`, real-time replay's default): a frame is built
without its radars as soon as they are the only part not final, handed out with a
`RadarCompletion`, and completed when its trigger is released. The whole frames are those of
the pump without it, the detections those of `Runner.detect`, and nothing is left waiting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from replay_data import SCENE, VERSION, Collect
from test_layouts_timing import (
    RADAR_PERIODS_US,
    _keyframe_time,
    _message,
    real_synchronizer,
    real_timing,
)
from test_realtime import _same_frame
from test_stream import _rig

from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.model.weights import load_detector, packaged_weights
from fusion.replay.runner import ReplayOptions, replay
from fusion.sources import open_source
from fusion.sync.ingest import IngestPump
from fusion.sync.online import OnlineSynchronizer, StreamOptions


def _pump(trigger: str, early_start: bool, max_pending: int = 8) -> IngestPump:
    sync = real_synchronizer(trigger, lidar_sweeps=3, radar_sweeps=2, max_pending=max_pending)
    return IngestPump(sync, early_start=early_start)


def _run(pump: IngestPump, msgs) -> list:
    out = []
    for m in msgs:
        out += pump.offer(m, m.log_time_us)
    return out + pump.release(flush=True)


@settings(max_examples=10, deadline=None)
@given(real_timing())
def test_completed_frames_are_the_whole_frames_and_start_earlier(msgs):
    for trigger in ("keyframes", "lidar"):
        for order in (msgs, _keyframe_time(msgs)):
            plain = _pump(trigger, early_start=False)
            early = _pump(trigger, early_start=True)
            whole = _run(plain, order)
            started = _run(early, order)
            assert len(started) == len(whole) > 0
            assert any(x.radars is not None for x in started)
            for a, b in zip(started, whole, strict=True):
                assert b.radars is None
                if a.radars is None:  # released whole (its radars final at once)
                    _same_frame(a.frame, b.frame)
                    continue
                assert not a.frame.radars and a.radars.resolved  # the flush completed it
                _same_frame(a.radars.wait(), b.frame)
                assert not set(a.frame.missing) & set(RADAR_PERIODS_US)
            ce, cp = early.sync.counters, plain.sync.counters
            assert ce.missing == cp.missing and ce.used == cp.used and ce.reused == cp.reused
            assert list(ce.sync_wait_us) == list(cp.sync_wait_us)
            assert list(cp.start_wait_us) == list(cp.sync_wait_us)  # no early start: the same
            if trigger == "keyframes":  # radar scans up to 37 ms after the scan; cameras before
                assert ce.start_wait_ms()["p50"] < ce.sync_wait_ms()["p50"]


def test_a_started_trigger_dropped_before_its_release_is_resolved_empty():
    """A trigger started while its radar scan is late is dropped by the next trigger
    (`max_pending` 1: overflow): its completion gives None, and nothing is left waiting."""
    options = StreamOptions(
        camera_channels=("CAM_FRONT",),
        radar_channels=("RADAR_FRONT",),
        camera_tolerance_us=50_000,
        radar_tolerance_us=60_000,
        lidar_sweeps=1,
        radar_sweeps=1,
        wait_us=200_000,
        trigger="lidar",
        max_pending=1,
    )
    pump = IngestPump(
        OnlineSynchronizer(options, _rig(("CAM_FRONT",), ("RADAR_FRONT",))), early_start=True
    )
    msgs = [_message("pose", "pose", t, None) for t in range(900_000, 1_300_001, 10_000)]
    msgs += [_message("CAM_FRONT", "camera", t, None) for t in (823_000, 906_000, 990_000)]
    msgs += [_message("RADAR_FRONT", "radar", t, None) for t in (876_000, 953_000)]
    msgs += [_message("LIDAR_TOP", "lidar", t, None) for t in (1_000_000, 1_050_000)]
    # the scan nearest the first trigger (1.030 s) reaches us late, after the second trigger
    msgs.append(
        dataclasses.replace(
            _message("RADAR_FRONT", "radar", 1_030_000, None), log_time_us=1_120_000
        )
    )
    msgs.sort(key=lambda m: m.log_time_us)
    out = _run(pump, msgs)
    first = [x for x in out if x.frame.timestamp_us == 1_000_000]
    assert len(first) == 1 and first[0].radars is not None
    assert first[0].radars.resolved and first[0].radars.wait() is None
    assert pump.sync.counters.overflow == 1
    # the reset of a new loop resolves a started frame it still holds
    pump = IngestPump(
        OnlineSynchronizer(options, _rig(("CAM_FRONT",), ("RADAR_FRONT",))), early_start=True
    )
    held = []
    for m in msgs:
        held += pump.offer(m, m.log_time_us)
        if any(x.radars is not None for x in held):
            break
    started = [x for x in held if x.radars is not None]
    assert started and not started[0].radars.resolved
    pump.reset()
    assert started[0].radars.resolved and started[0].radars.wait() is None


@pytest.fixture(scope="module")
def fusion_runner() -> Runner:
    model = load_detector(packaged_weights("fusion"))
    return Runner(model.cfg, model.variant, TorchEngine(model), model.params)


def test_detections_of_a_started_frame_are_those_of_the_whole(replay_root, fusion_runner):
    sink = Collect()
    opts = ReplayOptions(rate=0, trigger="keyframes", duration_s=1.0, warm_start=False)
    replay(open_source(replay_root, version=VERSION, scene=SCENE), fusion_runner, opts, [sink])
    whole = next(i.frame for i in sink.items if i.frame.radars)
    dets, _ = fusion_runner.detect(whole)
    part = dataclasses.replace(whole, radars={})
    frame, got, times = fusion_runner.detect_started(part, lambda: whole)
    assert frame is whole and times.radar_wait >= 0 and times.radar_raster > 0
    for field in ("center", "size_wlh", "yaw", "velocity", "scores", "labels"):
        np.testing.assert_array_equal(getattr(got, field), getattr(dets, field))
    # without the radars the detections differ: the late radar raster is used
    alone, _ = fusion_runner.detect(part)
    assert len(alone) != len(dets) or not np.array_equal(alone.scores, dets.scores)
    assert fusion_runner.detect_started(part, lambda: None) is None


def test_real_time_replay_starts_early_and_says_so(replay_root, fusion_runner):
    """At rate > 0 the default starts frames early: keyframes' work begins before their radars
    are final, every trigger is processed or counted, and the detections of the processed
    keyframes are those of --rate 0."""
    source = open_source(replay_root, version=VERSION, scene=SCENE)
    runs = {}
    for rate, early in ((0.0, True), (0.25, True), (0.25, False)):
        sink = Collect()
        opts = ReplayOptions(rate=rate, trigger="keyframes", early_start=early, warm_start=False)
        s = replay(source, fusion_runner, opts, [sink])
        assert s.processed + s.dropped == s.triggers
        runs[rate, early] = (s, sink.boxes())
    s0, boxes0 = runs[0.0, True]
    assert not s0.early_start  # rate 0 builds whole frames
    s1, boxes1 = runs[0.25, True]
    assert s1.early_start and s1.start_wait_ms["p50"] < s1.sync_wait_ms["p50"]
    assert not runs[0.25, False][0].early_start
    assert s1.processed >= 3 and boxes1
    for t, b in boxes1.items():
        assert b == boxes0[t]

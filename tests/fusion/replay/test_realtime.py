"""Replay runs the measured fast path: one ingest pump under replay and under `bench latency`
(the same frames), the engine and decode defaults printed in the summary, a warm start (no
first-call outlier), stale input shed and counted."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from replay_data import SCENE, VERSION, Collect, quiet

from fusion.engines.device import resolve_backend
from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.model.weights import load_detector, packaged_weights
from fusion.replay.runner import ReplayOptions, replay
from fusion.sources import open_source
from fusion.sync.ingest import StreamFrames


@pytest.fixture(scope="module")
def fusion_runner() -> Runner:
    model = load_detector(packaged_weights("fusion"))
    return Runner(model.cfg, model.variant, TorchEngine(model), model.params)


def _source(root):
    return open_source(root, version=VERSION, scene=SCENE)


def _same_frame(a, b) -> None:
    assert a.timestamp_us == b.timestamp_us and a.sample_token == b.sample_token
    assert set(a.cameras) == set(b.cameras) and set(a.radars) == set(b.radars)
    assert a.missing == b.missing and a.reused == b.reused
    np.testing.assert_array_equal(a.lidar.points, b.lidar.points)
    for ch, cam in a.cameras.items():
        assert cam.filename == b.cameras[ch].filename
        np.testing.assert_array_equal(cam.image, b.cameras[ch].image)
        np.testing.assert_array_equal(cam.camera.intrinsics, b.cameras[ch].camera.intrinsics)
    for ch, rad in a.radars.items():
        np.testing.assert_array_equal(rad.points, b.radars[ch].points)


@pytest.mark.parametrize("trigger", ["keyframes", "lidar"])
def test_replay_and_bench_latency_build_the_same_frames(replay_root, fusion_runner, trigger):
    sink = Collect()
    opts = ReplayOptions(rate=0, trigger=trigger, warm_start=False)
    s = replay(_source(replay_root), fusion_runner, opts, [sink])
    frames = StreamFrames(
        _source(replay_root), fusion_runner.cfg, fusion_runner.modalities, "reduced", trigger
    )
    bench = [frames.next().frame for _ in range(len(sink.items))]
    # (the last trigger is released by the flush at the log's end: one pass)
    assert frames.loops <= 1 and len(bench) == s.processed == s.triggers >= 4
    for a, b in zip((i.frame for i in sink.items), bench, strict=True):
        _same_frame(a, b)
    keyframes = [i.frame for i in sink.items if i.frame.sample_token]
    assert s.decode == "reduced" and len(keyframes) == 4 and all(f.cameras for f in keyframes)
    # the JPEGs at reduced scale: smaller than the 704x396 calibration
    cam = keyframes[0].cameras["CAM_FRONT"]
    assert cam.image.shape[1] < 704 and cam.camera.width == cam.image.shape[1]


def test_auto_is_the_fastest_engine_installed():
    assert resolve_backend("auto", has_cuda=False, installed={"onnxruntime", "tensorrt"}) == (
        "onnxruntime"
    )
    assert resolve_backend("auto", has_cuda=True, installed={"onnxruntime", "tensorrt"}) == (
        "tensorrt"
    )
    assert resolve_backend("auto", has_cuda=True, installed={"onnxruntime"}) == "onnxruntime"
    assert resolve_backend("auto", has_cuda=False, installed=set()) == "torch"
    for name in ("torch", "onnxruntime", "tensorrt"):
        assert resolve_backend(name, has_cuda=False, installed=set()) == name


def test_replay_defaults_are_the_fast_path_and_say_so(replay_root, tmp_path):
    """`fusion replay` with no engine or decode option: ONNX Runtime on this CPU machine, the
    reduced decode, a warm start; each in the text and the --summary JSON."""
    import onnxruntime  # noqa: F401  (the default needs it; it is a core dependency)

    summary = tmp_path / "summary.json"
    argv = ["replay", "--dataroot", str(replay_root), "--version", VERSION, "--scene", SCENE]
    argv += ["--model", "lidar", "--rate", "0", "--no-status", "--summary", str(summary)]
    rc, text, err = quiet(argv)
    assert rc == 0, text + err
    s = json.loads(summary.read_text())
    assert s["backend"] == "onnxruntime" and s["decode"] == "reduced"
    assert s["between"] == "reuse" and s["warmup_s"] > 0
    assert s["radar_match"] == "nearest"  # the causal radar option is off unless asked for
    assert set(s["sync_wait_ms"]) == {"p50", "p99", "max"}
    assert "backend onnxruntime  decode reduced" in text and "warm start" in text
    assert "sync_wait_ms: p50" in text
    rc, text, err = quiet(
        [*argv, "--backend", "torch", "--decode", "full", "--no-warm-start", "--radar-match",
         "causal"]
    )  # fmt: skip
    assert rc == 0, text + err
    s = json.loads(summary.read_text())
    assert (s["backend"], s["decode"], s["warmup_s"]) == ("torch", "full", 0.0)
    assert s["radar_match"] == "causal" and "radar causal" in text
    # --json: the same summary on stdout, and no text
    rc, text, err = quiet([*argv[: argv.index("--summary")], "--json"])
    assert rc == 0, text + err
    printed = json.loads(text)
    assert printed["processed"] == s["processed"] and printed["backend"] == "onnxruntime"


def test_a_warm_start_leaves_no_first_call_outlier(replay_root):
    """A fresh engine and runner: with the warm start the first processed frame's stages are
    in line with the others' (by ratio to the median), and the warm-up is reported apart."""
    model = load_detector(packaged_weights("fusion"))
    runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
    sink = Collect()
    s = replay(_source(replay_root), runner, ReplayOptions(rate=0, duration_s=1.2, trigger="lidar"),
               [sink])  # fmt: skip
    assert s.warmup_s > 0 and s.processed >= 10
    times = [i.times.as_dict() for i in sink.items]
    inference = [sum(v for k, v in t.items() if k not in ("read", "decode")) for t in times]
    assert inference[0] <= 2.0 * float(np.median(inference[1:])), inference[:3]
    for stage in ("images", "camera_geometry", "camera_net", "bev_pool", "voxelize", "bev_net"):
        rest = np.median([t[stage] for t in times[1:]])
        if rest >= 1.0:  # stages of a millisecond or more (below, the ratio is timer noise)
            assert times[0][stage] <= 3.0 * rest, (stage, times[0][stage], rest)
    assert times[0]["camera_geometry"] <= max(1.0, 3.0 * np.median([t["camera_geometry"] for t
                                                                     in times[1:]]))  # fmt: skip


class _SlowStart:
    """A source whose reader stalls once, 0.3 s, before its 5th LIDAR scan: the producer falls
    behind the log."""

    def __init__(self, source) -> None:
        self.source = source
        self.path, self.kind = source.path, source.kind

    def rig(self):
        return self.source.rig()

    def info(self):
        return self.source.info()

    def messages(self):
        scans = 0
        for m in self.source.messages():
            if m.channel == "LIDAR_TOP":
                scans += 1
                if scans == 5:
                    time.sleep(0.3)
            yield m


def test_a_producer_behind_the_log_sheds_stale_input_and_counts_it(replay_root):
    model = load_detector(packaged_weights("lidar"))
    runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
    opts = ReplayOptions(rate=1.0, trigger="lidar", duration_s=1.0)
    s = replay(_SlowStart(_source(replay_root)), runner, opts)
    assert sum(s.shed.values()) > 0 and "pose" not in s.shed
    assert s.dropped_by["stale"] == s.shed.get("LIDAR_TOP", 0) > 0
    assert s.processed + s.dropped == s.triggers


def test_a_keyframe_is_detected_alike_whichever_trigger(replay_root, fusion_runner):
    """A keyframe's frame under `--trigger lidar` is its frame under `--trigger keyframes` (its
    own images and radar scans, the same sweeps), so its detections are the same."""
    from fusion.outputs.sinks import boxes_global

    runs = {}
    for trigger in ("keyframes", "lidar"):
        sink = Collect()
        opts = ReplayOptions(rate=0, trigger=trigger, duration_s=1.6, warm_start=False)
        replay(_source(replay_root), fusion_runner, opts, [sink])
        runs[trigger] = {i.frame.sample_token: i for i in sink.items if i.frame.sample_token}
    assert len(runs["keyframes"]) >= 2 and runs["keyframes"].keys() == runs["lidar"].keys()
    for token, a in runs["keyframes"].items():
        b = runs["lidar"][token]
        _same_frame(a.frame, b.frame)
        assert not a.frame.reused and len(a.frame.cameras) == 6
        assert boxes_global(a) == boxes_global(b)


def test_real_time_replay_does_not_wait_for_messages_the_model_does_not_read(
    replay_root, monkeypatch
):
    """A LIDAR-only model at rate > 0: the camera and radar messages are counted (received,
    skipped) but the producer does not sleep until their times; it still ends at the log's."""
    from fusion.replay import runner as replay_runner

    sleeps: list[int] = []
    sleep_until = replay_runner.ReplayClock.sleep_until

    def counting(self, log_us, stop=None):
        sleeps.append(log_us)
        return sleep_until(self, log_us, stop)

    monkeypatch.setattr(replay_runner.ReplayClock, "sleep_until", counting)
    model = load_detector(packaged_weights("lidar"))
    runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
    opts = ReplayOptions(rate=4.0, trigger="keyframes", duration_s=1.0, warm_start=False)
    s = replay(_source(replay_root), runner, opts)
    cameras = sum(n for ch, n in s.received.items() if ch.startswith("CAM_"))
    radars = sum(n for ch, n in s.received.items() if ch.startswith("RADAR_"))
    assert cameras > 0 and radars > 0
    wanted = sum(s.received.values()) - cameras - radars
    assert len(sleeps) <= wanted + s.triggers + 1  # its messages, deadlines, the log's end
    assert s.processed + s.dropped == s.triggers
    assert abs(s.producer_s * opts.rate - s.log_s) < 0.25 * s.log_s


class _Counted:
    """`runner.detect` that counts its calls."""

    def __init__(self, detect) -> None:
        self.detect, self.calls = detect, 0

    def __call__(self, frame):
        self.calls += 1
        return self.detect(frame)


def test_keep_warm_runs_once_per_idle_gap_just_before_the_next_frame():
    from fusion.replay.runner import KeepWarm, LatestSlot

    frame = object()
    detect = _Counted(lambda f: time.sleep(0.002))
    warm = KeepWarm(detect, min_idle_s=0.15, margin_s=0.01, period_margin=0.05)
    for k in range(2):  # two frames, 0.5 s apart: no period known yet
        warm.arrived(0.5 * k)
        warm.finished(frame, 0.5 * k + 0.04, 0.04)
        assert warm.due_in(0.5 * k + 0.04) is None
    warm.arrived(1.0)
    warm.finished(frame, 1.04, 0.04)
    # the next frame is due 0.95 x 0.5 s after the last: the run starts its 40 ms + 10 ms before
    assert warm.due_in(1.04) == pytest.approx(1.0 + 0.475 - 0.05 - 1.04)
    assert warm.due_in(1.5) == 0.0  # overdue: now
    slot = LatestSlot()
    warm.run(slot)
    assert (detect.calls, warm.runs, warm.delayed) == (1, 1, 0)
    assert warm.due_in(1.45) is None  # one run per gap
    assert warm.warm_s is not None and warm.warm_s < 0.04  # the run's own time is used next
    # a frame that arrives during the run waits for it: counted
    warm.arrived(1.5)
    warm.finished(frame, 1.54, 0.04)
    slot.put("frame")
    warm.run(slot)
    assert (warm.runs, warm.delayed) == (2, 1)


def test_keep_warm_stays_off_when_frames_come_back_to_back():
    """At the LIDAR trigger (20 Hz) a 40 ms detector leaves 10 ms gaps: no run (it would
    only delay the next frame)."""
    from fusion.replay.runner import KeepWarm

    warm = KeepWarm(_Counted(lambda f: None))
    for k in range(6):
        warm.arrived(0.05 * k)
        warm.finished(object(), 0.05 * k + 0.04, 0.04)
        assert warm.due_in(0.05 * k + 0.04) is None


def test_latest_slot_get_times_out():
    from fusion.replay.runner import TIMED_OUT, LatestSlot

    slot = LatestSlot()
    t0 = time.monotonic()
    assert slot.get(0.05) is TIMED_OUT and time.monotonic() - t0 >= 0.04
    assert not slot.waiting()
    slot.put(1)
    assert slot.waiting() and slot.get(0.05) == 1 and slot.get(0) is TIMED_OUT


def test_keep_warm_in_a_paced_replay_changes_no_detection(replay_root):
    """At rate > 0 with the keyframe trigger the detector is kept warm through the idle gaps
    (the runs counted in the summary and printed); the frames' detections are those of a
    replay without it (a run on the last frame leaves nothing behind)."""
    from fusion.commands.replay import format_summary
    from fusion.outputs.sinks import boxes_global

    model = load_detector(packaged_weights("lidar"))
    runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
    counted = _Counted(runner.detect)
    runner.detect = counted  # type: ignore[method-assign]
    runs = {}
    for keep_warm in (True, False):
        sink = Collect()
        opts = ReplayOptions(rate=1.0, trigger="keyframes", loop=2, keep_warm=keep_warm)
        counted.calls = 0
        s = replay(_source(replay_root), runner, opts, [sink])
        assert s.keep_warm is keep_warm and s.processed + s.dropped == s.triggers == 8
        # every call of the detector is the warm start, a processed frame or a warm run
        assert counted.calls == 1 + s.processed + s.warm_runs
        runs[keep_warm] = (s, {(i.frame.timestamp_us): boxes_global(i) for i in sink.items})
    on, off = runs[True][0], runs[False][0]
    assert on.warm_runs >= 2 and off.warm_runs == 0 and on.warm_delayed <= on.warm_runs
    # runs only between frames: none before three frames gave an interval, none after the last
    assert on.warm_runs <= on.processed - 3
    assert "keep warm: " in format_summary(on) and "keep warm" not in format_summary(off)
    same = runs[True][1].keys() & runs[False][1].keys()
    assert len(same) >= 6
    for t in same:
        assert runs[True][1][t] == runs[False][1][t]

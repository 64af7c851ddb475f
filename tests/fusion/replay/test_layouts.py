"""The same scene replayed from every log layout gives the same frames and detections at
`--rate 0`, for each trigger, and a keyframe's are the same whichever trigger is used.

Layouts: the dataroot, and what `fusion convert` makes of it: a Foxglove MCAP with each message
logged at its sensor time, a Foxglove MCAP in nuscenes2mcap's convention (`--log-time keyframe`:
a keyframe's images and radar scans logged at its LIDAR scan's time, after the wait of the scan
before it), a ROS 2 bag and a ROS 1 bag. Scenes:
- a moving synthetic scene with 12 Hz camera sweeps and free-running 13 Hz radars, whose timing
  follows the nuScenes rig (each camera fires as the LIDAR spin passes it, up to 43 ms before the
  scan; radars with their own phases): the triggers between keyframes, which reuse a neighbour's
  image or radar scan;
- the two real keyframes of scene-0916 in tests/data (the real offsets; keyframes only, so every
  trigger is a keyframe).
The real scene's timing with its sweeps, through the ingest pump alone, is in
`test_layouts_timing.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from replay_data import Collect, quiet
from shared_data import REAL_KEYFRAMES, REAL_VERSION

from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.model.weights import load_detector, packaged_weights
from fusion.outputs.sinks import boxes_global
from fusion.replay.runner import ReplayOptions, replay
from fusion.sources import open_source

SWEEPS_VERSION, SWEEPS_SCENE = "v1.0-synth", "scene-0001"
REAL_SCENE = "scene-0916"
LAYOUTS = {  # name: (convert --to, --log-time, output name)
    "mcap": ("mcap", "sensor", "scene.mcap"),
    "mcap-keyframe-time": ("mcap", "keyframe", "scene_kf.mcap"),
    "ros2": ("ros2", "sensor", "scene_ros2"),
    "ros1": ("ros1", "sensor", "scene.bag"),
}
TRIGGERS = ("keyframes", "lidar")


def _convert(root: Path, version: str, scene: str, folder: Path) -> dict[str, Path]:
    logs = {}
    for name, (to, log_time, out) in LAYOUTS.items():
        argv = ["convert", "--dataroot", str(root), "--version", version, "--scene", scene]
        argv += ["--to", to, "--log-time", log_time, "--out", str(folder / out)]
        rc, text, err = quiet(argv)
        assert rc == 0, text + err
        logs[name] = folder / out
    return logs


@pytest.fixture(scope="module")
def sweeps_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A 1 s moving scene, 2 keyframes, with 12 Hz camera sweeps (352x198 images)."""
    root = tmp_path_factory.mktemp("layouts") / "root"
    argv = ["generate", "--out", str(root), "--version", SWEEPS_VERSION, "--scenes", "1"]
    argv += ["--samples-per-scene", "2", "--seed", "11", "--conditions", "day"]
    argv += ["--workers", "1", "--image-size", "352x198", "--camera-sweeps"]
    rc, text, err = quiet(argv)
    assert rc == 0, text + err
    return root, _convert(root, SWEEPS_VERSION, SWEEPS_SCENE, root.parent)


@pytest.fixture(scope="module")
def real_scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _convert(REAL_KEYFRAMES, REAL_VERSION, REAL_SCENE, tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def fusion_runner() -> Runner:
    model = load_detector(packaged_weights("fusion"))
    return Runner(model.cfg, model.variant, TorchEngine(model), model.params)


def _replay(source, runner: Runner, trigger: str) -> list:
    sink = Collect()
    opts = ReplayOptions(rate=0, trigger=trigger, warm_start=False)
    s = replay(source, runner, opts, [sink])
    assert s.processed == s.triggers == len(sink.items)
    return sink.items


def _same(a, b, what: str) -> None:
    """Two processed triggers: the same frame (time, sensors and the messages taken, reuse,
    LIDAR and radar points within 1 mm) and the same boxes (class, score, box). (The tolerance:
    in nuscenes2mcap's convention a keyframe's radar scan stamped after its LIDAR scan arrives
    before the ego poses of its time, and its pose is extrapolated, not interpolated: 0.1 mm
    apart on the real scene.)"""
    fa, fb = a.frame, b.frame
    assert fa.timestamp_us == fb.timestamp_us, what
    assert {ch: c.pose.timestamp_us for ch, c in fa.cameras.items()} == {
        ch: c.pose.timestamp_us for ch, c in fb.cameras.items()
    }, (what, fa.timestamp_us)
    assert set(fa.radars) == set(fb.radars) and fa.reused == fb.reused, (what, fa.timestamp_us)
    assert set(fa.missing) == set(fb.missing), (what, fa.timestamp_us)
    np.testing.assert_allclose(fa.lidar.points, fb.lidar.points, atol=1e-3, err_msg=what)
    for ch, rad in fa.radars.items():
        np.testing.assert_allclose(rad.points, fb.radars[ch].points, atol=1e-3, err_msg=what)
    ba, bb = boxes_global(a), boxes_global(b)
    assert [x["detection_name"] for x in ba] == [x["detection_name"] for x in bb], what
    for x, y in zip(ba, bb, strict=True):
        assert abs(x["detection_score"] - y["detection_score"]) <= 1e-4, what
        for key in ("translation", "size", "rotation", "velocity"):
            np.testing.assert_allclose(x[key], y[key], atol=1e-3, err_msg=f"{what} {key}")


def _check_layouts(reference, logs: dict[str, Path], runner: Runner) -> dict[str, dict]:
    """Replays the reference and each log per trigger; asserts they agree; returns per trigger
    the reference's processed triggers by time."""
    out = {}
    for trigger in TRIGGERS:
        ref = _replay(reference(), runner, trigger)
        for name, path in logs.items():
            got = _replay(open_source(path), runner, trigger)
            assert [i.frame.timestamp_us for i in got] == [i.frame.timestamp_us for i in ref], (
                name,
                trigger,
            )
            for a, b in zip(ref, got, strict=True):
                _same(a, b, f"{name} --trigger {trigger}")
        out[trigger] = {i.frame.timestamp_us: i for i in ref}
    return out


def _check_keyframes_alike(runs: dict[str, dict]) -> int:
    """A keyframe's frame and detections are the same under either trigger."""
    keyframes = {t: i for t, i in runs["keyframes"].items() if i.frame.sample_token}
    for t, item in keyframes.items():
        assert runs["lidar"][t].frame.sample_token == item.frame.sample_token
        _same(item, runs["lidar"][t], "keyframe under --trigger lidar")
        assert not item.frame.reused
    return len(keyframes)


def test_every_layout_gives_the_dataroot_detections_with_camera_sweeps(sweeps_scene, fusion_runner):
    root, logs = sweeps_scene
    runs = _check_layouts(
        lambda: open_source(root, version=SWEEPS_VERSION, scene=SWEEPS_SCENE), logs, fusion_runner
    )
    lidar = list(runs["lidar"].values())
    assert len(runs["keyframes"]) == 2 and len(lidar) >= 15
    # the triggers between keyframes reuse a neighbour's image: the case layouts could differ on
    assert sum(len(i.frame.reused) for i in lidar) > 15
    assert sum(len(boxes_global(i)) for i in lidar) > 50  # a real detector, not an empty compare
    assert _check_keyframes_alike(runs) == 2


def test_every_layout_gives_the_dataroot_detections_on_real_keyframes(real_scene, fusion_runner):
    runs = _check_layouts(
        lambda: open_source(REAL_KEYFRAMES, version=REAL_VERSION, scene=REAL_SCENE),
        real_scene,
        fusion_runner,
    )
    frames = [i.frame for i in runs["keyframes"].values()]
    assert len(frames) == 2 and all(len(f.cameras) == 6 and len(f.radars) == 5 for f in frames)
    assert sum(len(boxes_global(i)) for i in runs["keyframes"].values()) > 20
    assert _check_keyframes_alike(runs) == 2

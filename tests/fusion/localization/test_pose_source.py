"""One pose source offline: `fusion eval --poses log|gnss-imu|auto` and the reader's
`ReaderOptions(poses=...)` take the ego poses from the ego_pose table or from the estimator run
causally over each scene's CAN bus IMU, wheel speed and GNSS (`fusion generate --gnss rtk`). A
keyframe the estimator has no pose for yet is counted and scored with no detections."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fusion.cli import main
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.errors import DataError
from fusion.localization.pose_source import choose_pose_source
from fusion.motion.poses import NoEgoPose

VERSION = "v1.0-synth"
SCENE = "scene-0001"
# RTK fixes: the estimator starts after ~5 m of driving, before the first keyframe (1.5 s)
GENERATE = [
    "--version", VERSION, "--scenes", "1", "--samples-per-scene", "4", "--seed", "11",
    "--conditions", "day", "--workers", "1", "--image-size", "160x90", "--gnss", "rtk",
]  # fmt: skip
LATE_FIX_US = 1_700_000_001_900_000  # the receiver has no fix before this (dropouts)


def _quiet(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The generated dataroot, and a copy whose receiver has no fix before 1.9 s (status -1,
    as the generator's dropouts): its estimator starts after the first keyframes."""
    folder = tmp_path_factory.mktemp("pose-source")
    root = folder / "root"
    rc, text, err = _quiet(["generate", "--out", str(root), *GENERATE])
    assert rc == 0, text + err
    late = folder / "late"
    shutil.copytree(root, late)
    path = late / "can_bus" / f"{SCENE}_gnss.json"
    fixes = json.loads(path.read_text())
    for f in fixes:
        if f["utime"] < LATE_FIX_US:
            f.update(latitude=0.0, longitude=0.0, altitude=0.0, status=-1)
    path.write_text(json.dumps(fixes))
    return {"root": root, "late": late}


def test_the_rule_is_one_for_replay_and_reader():
    assert choose_pose_source("auto", True, True) == "log"
    assert choose_pose_source("auto", False, True) == "gnss-imu"
    assert choose_pose_source("auto", False, False) is None
    assert choose_pose_source("gnss-imu", True, True) == "gnss-imu"
    assert choose_pose_source("log", True, False) == "log"
    with pytest.raises(DataError, match="no localization"):
        choose_pose_source("log", False, True)
    with pytest.raises(DataError, match="needs IMU and GNSS"):
        choose_pose_source("gnss-imu", True, False)


def test_reader_takes_estimated_poses_close_to_the_truth(roots):
    log = NuScenesReader(roots["root"], VERSION, ReaderOptions(poses="log"))
    auto = NuScenesReader(roots["root"], VERSION)
    est = NuScenesReader(roots["root"], VERSION, ReaderOptions(poses="gnss-imu"))
    assert (log.pose_source, auto.pose_source, est.pose_source) == ("log", "log", "gnss-imu")
    for tok in log.sample_tokens():
        truth, frame = log.frame(tok), est.frame(tok)
        a, b = truth.reference.ego_to_global, frame.reference.ego_to_global
        # RTK: centimetres, in the map frame (the rig's geodetic origin, through WGS84)
        assert np.linalg.norm(a.translation[:2] - b.translation[:2]) < 0.1
        cos = (np.trace(a.rotation.T @ b.rotation) - 1) / 2
        assert np.degrees(np.arccos(min(1.0, cos))) < 0.5
        assert frame.ego_motion is not None and frame.ego_motion.source == "gnss-imu"
        np.testing.assert_allclose(
            frame.ego_motion.velocity[:2], truth.ego_motion.velocity[:2], atol=0.3
        )
        # the same sensors: the boxes (annotations, global) land where the truth puts them
        np.testing.assert_allclose(
            frame.boxes.center_lidar[:, :2], truth.boxes.center_lidar[:, :2], atol=0.5
        )
    counts = est.estimates[SCENE].counts
    assert counts["gnss_fused"] > 20 and counts["imu_used"] > 200


def test_keyframes_before_the_estimator_starts_have_no_pose(roots):
    reader = NuScenesReader(roots["late"], VERSION, ReaderOptions(poses="gnss-imu"))
    tokens = reader.sample_tokens()
    first_us = int(reader.scene_estimate(SCENE).timestamps_us[0])
    assert first_us > LATE_FIX_US  # no pose is made up before the fixes come
    times = {t: reader.nusc.get("sample", t)["timestamp"] for t in tokens}
    unposed = [t for t in tokens if times[t] < first_us]
    assert 1 <= len(unposed) < len(tokens)
    for tok in tokens:
        if tok in unposed:
            with pytest.raises(NoEgoPose, match="no estimated ego pose"):
                reader.frame(tok)
        else:
            frame = reader.frame(tok)
            assert frame.reference.timestamp_us >= first_us
    # sweeps older than the first pose are left out and counted, not posed
    assert reader.no_pose.get("LIDAR_TOP", 0) >= 1
    # fusion inspect: the same reader, the source stated; a keyframe without pose is an error
    argv = ["inspect", "--dataroot", str(roots["late"]), "--version", VERSION, "--poses",
            "gnss-imu", "--sample"]  # fmt: skip
    rc, text, err = _quiet([*argv, unposed[0]])
    assert rc == 2 and "no estimated ego pose" in err, text + err
    posed = next(t for t in tokens if t not in unposed)
    rc, text, err = _quiet([*argv, posed])
    assert rc == 0 and "ego poses: estimated from GNSS, IMU and wheel speed" in text, text + err
    assert "(from gnss-imu)" in text


def test_eval_states_the_source_and_counts_keyframes_without_pose(roots, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--dataroot", str(roots["late"]), "--version", VERSION, "--split",
            "synth_all", "--models", "lidar", "--out", str(out), "--pictures", "1",
            "--no-progress", "--poses", "gnss-imu"]  # fmt: skip
    rc, text, err = _quiet([*argv, "--gnss-latency-sigma", "0.1"])
    assert rc == 0, text + err
    summary = json.loads((out / "summary.json").read_text())
    poses = summary["poses"]
    assert poses["source"] == "gnss-imu"
    assert poses["calibration"] == "the default rig's [gnss]"
    assert poses["antenna_in_ego_m"] == [0.0, 0.0, 1.9]
    # the fix latency estimated online from the rig's 0.05 s (the generator's true latency)
    assert poses["gnss_latency_estimated"] and poses["gnss_time_offset_s"] == 0.05
    td, sigma = poses["time_offset_s"][SCENE]
    assert 0 < sigma < 0.1 and abs(td - 0.05) < 0.05, (td, sigma)
    assert "latency estimated: scene-0001" in text
    unposed = poses["tokens_without_pose"]
    assert 1 <= poses["samples_without_pose"] == len(unposed) < summary["samples"]
    fixes = json.loads((roots["late"] / "can_bus" / f"{SCENE}_gnss.json").read_text())
    lost = sum(f["status"] == -1 for f in fixes)
    assert lost >= 10 and poses["estimator_counts"]["gnss_no_fix"] == lost  # rejected, counted
    results = json.loads((out / "lidar" / "results_nusc.json").read_text())["results"]
    assert set(results) == set(NuScenesReader(roots["late"], VERSION).sample_tokens())
    assert all(results[t] == [] for t in unposed)
    assert all(results[t] for t in results if t not in unposed)
    # the metrics over the keyframes with a pose, beside those of the split
    with_pose = poses["subsets"]["with_pose"]["lidar"]
    assert with_pose["samples"] == summary["samples"] - len(unposed)
    assert with_pose["mean_ap"] >= summary["models"]["lidar"]["mean_ap"]
    assert "ego poses: estimated from GNSS, IMU and wheel speed" in text
    assert f"{len(unposed)} of {summary['samples']} keyframes without an ego pose" in text
    # --poses log on a dataroot: the ego_pose table, stated; --poses gnss-imu without GNSS fails
    no_gnss = tmp_path / "no_gnss"
    shutil.copytree(roots["root"], no_gnss)
    (no_gnss / "can_bus" / f"{SCENE}_gnss.json").unlink()
    rc, text, err = _quiet([*argv[:2], str(no_gnss), *argv[3:]])
    assert rc == 2 and "--poses gnss-imu: the log needs" in err, text + err

"""A log without localization: `fusion convert --no-localization` writes a ROS 2 bag with the
sensors, /imu, /gps, /vehicle/twist and /tf_static but no /odom and no /tf map->base_link;
`fusion replay --rate 0` estimates the ego poses from GNSS, IMU and wheel speed and detects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from replay_data import SCENE, VERSION, quiet

from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.errors import DataError
from fusion.model.weights import load_detector, packaged_weights
from fusion.replay.runner import ReplayOptions, replay
from fusion.sources import open_source

# RTK fixes: the estimator starts after ~5 m of travel, before the first keyframe
GENERATE = [
    "--version", VERSION, "--scenes", "1", "--samples-per-scene", "4", "--seed", "11",
    "--conditions", "day", "--workers", "1", "--image-size", "704x396", "--gnss", "rtk",
]  # fmt: skip


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gnss-replay")
    root = folder / "root"
    rc, text, err = quiet(["generate", "--out", str(root), *GENERATE])
    assert rc == 0, text + err
    out = {"root": root, "raw": folder / "raw_ros2", "full": folder / "full_ros2"}
    base = [
        "convert",
        "--dataroot",
        str(root),
        "--version",
        VERSION,
        "--scene",
        SCENE,
        "--to",
        "ros2",
    ]
    rc, text, err = quiet([*base, "--out", str(out["raw"]), "--no-localization"])
    assert rc == 0, text + err
    rc, text, err = quiet([*base, "--out", str(out["full"])])
    assert rc == 0, text + err
    return out


@pytest.fixture(scope="module")
def lidar_runner() -> Runner:
    model = load_detector(packaged_weights("lidar"))
    return Runner(model.cfg, model.variant, TorchEngine(model), model.params)


def test_the_raw_bag_has_gnss_imu_speed_and_no_localization(bags):
    channels = open_source(bags["raw"]).info()["channels"]
    assert channels.get("gnss", 0) > 20 and channels.get("imu", 0) > 200
    assert channels.get("speed", 0) > 200
    assert "tf" not in channels and "odom" not in channels
    full = open_source(bags["full"]).info()["channels"]
    assert full["tf"] > 0 and full["odom"] > 0 and full["gnss"] == channels["gnss"]


def test_replay_without_localization_estimates_poses_and_detects(bags, lidar_runner):
    src = open_source(bags["raw"])
    boxes = []

    class Sink:
        def write(self, item) -> None:  # noqa: ANN001
            from fusion.outputs.sinks import boxes_global

            boxes.extend(boxes_global(item))

        def close(self) -> None:
            pass

    summary = replay(src, lidar_runner, ReplayOptions(rate=0, trigger="lidar"), [Sink()])
    assert summary.pose_source == "gnss-imu"
    assert summary.triggers >= 30, summary
    # only the sweeps before the estimator's start (~5 m of driving) lack a pose
    assert summary.dropped_by["no_pose"] <= 12, summary.dropped_by
    assert summary.processed >= summary.triggers - 12, summary
    assert len(boxes) > 0
    assert np.isfinite([b["translation"] for b in boxes]).all()


def test_cli_states_the_pose_source(bags, tmp_path):
    argv = ["replay", "--log", str(bags["raw"]), "--model", "lidar", "--rate", "0", "--no-status"]
    rc, text, err = quiet([*argv, "--summary", str(tmp_path / "s.json")])
    assert rc == 0, text + err
    assert "ego poses: estimated from GNSS, IMU and wheel speed" in text
    # the rig file's [gnss] section: the antenna lever arm and the fix latency of the data
    rig = Path(__file__).resolve().parents[3] / "configs" / "rig_nuscenes.toml"
    rc, text, err = quiet([*argv, "--rig", str(rig)])
    assert rc == 0 and "ego poses: estimated" in text, text + err
    assert "no_pose 1" in text or "no_pose 0" in text, text
    rc, text, err = quiet([*argv, "--poses", "log"])
    assert rc == 2 and "no localization" in err
    rc, text, err = quiet(["replay", "--log", str(bags["full"]), "--model", "lidar", "--rate", "0",
                           "--no-status", "--duration", "2"])  # fmt: skip
    assert rc == 0 and "ego poses: the log's localization" in text


def test_poses_gnss_imu_needs_gnss(bags):
    from fusion.model.weights import load_detector as _load
    from fusion.sync.online import StreamOptions

    cfg = _load(packaged_weights("lidar")).cfg
    with pytest.raises(DataError, match="needs IMU and GNSS"):
        StreamOptions.for_log(cfg, {"channels": {"LIDAR_TOP": 10, "imu": 5}}, poses="gnss-imu")
    auto = StreamOptions.for_log(cfg, open_source(bags["full"]).info(), poses="auto")
    assert auto.pose_channel in ("pose", "odom")
    forced = StreamOptions.for_log(cfg, open_source(bags["full"]).info(), poses="gnss-imu")
    assert forced.pose_channel == "gnss-imu"


def test_calibration_comes_from_tf_static_and_rig_overrides(bags, lidar_runner, tmp_path):
    """`fusion convert` writes the GNSS antenna and the IMU as static transforms (base_link ->
    gps, base_link -> imu); the replay's estimator takes its lever arm and IMU extrinsic from
    them, and `--rig FILE` overrides them; the summary says where they came from."""
    from fusion.data.rig_file import localization_from_rig

    src = open_source(bags["raw"])
    rig = src.rig()
    assert rig.frames_origin.startswith("/tf_static")
    np.testing.assert_allclose(rig.frames["gnss"].translation, [0.0, 0.0, 1.9], atol=1e-9)
    np.testing.assert_allclose(rig.frames["imu"].matrix, np.eye(4), atol=1e-12)
    options = ReplayOptions(rate=0, trigger="lidar", duration_s=1.0)
    summary = replay(src, lidar_runner, options, [])
    assert summary.pose_source == "gnss-imu"
    assert summary.pose_calibration.startswith("/tf_static (base_link -> gps, base_link -> imu)")
    assert "antenna [0.0, 0.0, 1.9] m" in summary.pose_calibration, summary.pose_calibration
    # a rig file with another antenna position: it wins, and is named
    text = (Path(__file__).resolve().parents[3] / "configs" / "rig_nuscenes.toml").read_text()
    assert "translation = [0.0, 0.0, 1.9]" in text
    moved = tmp_path / "rig.toml"
    moved.write_text(text.replace("translation = [0.0, 0.0, 1.9]", "translation = [0.5, 0.0, 1.5]"))
    config, _ = localization_from_rig(moved)
    options = ReplayOptions(
        rate=0,
        trigger="lidar",
        duration_s=1.0,
        localization=config,
        pose_calibration=f"rig {moved}",
    )
    summary = replay(open_source(bags["raw"]), lidar_runner, options, [])
    assert summary.pose_calibration.startswith(f"rig {moved}: antenna [0.5, 0.0, 1.5] m")
    assert "(configured)" in summary.pose_calibration
    # the fix latency estimated online (not in /tf_static): stated with its estimate
    options = ReplayOptions(rate=0, trigger="lidar", duration_s=1.0, gnss_latency_sigma_s=0.1)
    summary = replay(open_source(bags["raw"]), lidar_runner, options, [])
    assert "(estimated online, prior sigma 0.1 s)" in summary.pose_calibration
    assert "; latency estimated " in summary.pose_calibration, summary.pose_calibration


def test_estimated_poses_are_taken_into_the_maps_frame(bags, lidar_runner):
    """With the map's geodetic origin (`--rig`'s [gnss]), the estimated ego poses, and with them
    every global box, are in the map frame: they meet the log's own poses (RTK, a few cm).
    Without it they stay in the ENU frame of the first fix, hundreds of metres away, and the
    summary says so."""
    from fusion.data.rig_file import localization_from_rig

    class Poses:
        def __init__(self) -> None:
            self.at: dict[int, np.ndarray] = {}

        def write(self, item) -> None:  # noqa: ANN001
            ref = item.frame.reference
            self.at[ref.timestamp_us] = ref.ego_to_global.translation

        def close(self) -> None:
            pass

    def run(path: Path, **kw) -> tuple[Poses, object]:
        sink = Poses()
        options = ReplayOptions(rate=0, trigger="lidar", **kw)
        return sink, replay(open_source(path), lidar_runner, options, [sink])

    truth, _ = run(bags["full"], poses="log")
    config, origin = localization_from_rig()
    mapped, summary = run(bags["raw"], localization=config, map_origin=origin)
    assert summary.pose_source == "gnss-imu"
    assert "poses in the map frame of origin" in summary.pose_calibration
    common = sorted(set(truth.at) & set(mapped.at))
    assert len(common) >= 20
    err = np.array([np.linalg.norm((mapped.at[t] - truth.at[t])[:2]) for t in common])
    # the first poses after the estimator's start are still converging (about 0.6 m)
    assert np.median(err) < 0.1 and np.quantile(err, 0.9) < 0.2 and err.max() < 1.0, err
    first_fix, summary = run(bags["raw"], localization=config)
    assert "ENU frame of the first fix" in summary.pose_calibration
    off = np.array([np.linalg.norm((first_fix.at[t] - truth.at[t])[:2]) for t in common])
    assert np.median(off) > 10.0, off

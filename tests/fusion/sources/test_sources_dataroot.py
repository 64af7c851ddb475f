"""DatarootSource: every sample_data of the scene at sensor time, payloads equal to the files,
poses and rig equal to the tables, on a generated scene (radar, sweeps, CAN bus) and the real
keyframe."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from shared_data import REAL_ROOT, REAL_VERSION
from source_logs import SYNTH_SCENE, SYNTH_VERSION

from fusion.data.canbus import load_can_bus
from fusion.data.sensor_io import decode_radar_pcd, load_image, load_lidar_bin
from fusion.sources import open_source
from fusion.sources.dataroot import DatarootSource


def _nusc(root: Path, version: str):  # noqa: ANN202
    from nuscenes.nuscenes import NuScenes

    with contextlib.redirect_stdout(io.StringIO()):
        return NuScenes(version, str(root), verbose=False)


@pytest.fixture(scope="module", params=["synth", "real"])
def case(request: pytest.FixtureRequest, synth_root: Path, real_scene: str):  # noqa: ANN201
    if request.param == "synth":
        root, version, scene = synth_root, SYNTH_VERSION, SYNTH_SCENE
    else:
        root, version, scene = REAL_ROOT, REAL_VERSION, real_scene
    src = open_source(root, version=version, scene=scene)
    assert isinstance(src, DatarootSource)
    return src, _nusc(root, version), list(src.messages())


def test_one_message_per_sample_data_in_time_order(case) -> None:  # noqa: ANN001
    src, nusc, msgs = case
    sensors = [m for m in msgs if m.kind in ("lidar", "radar", "camera")]
    expected = Counter(
        nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])["sensor_token"]
        for sd in nusc.sample_data
    )
    channel_of = {s["token"]: s["channel"] for s in nusc.sensor}
    assert Counter(m.channel for m in sensors) == {channel_of[k]: n for k, n in expected.items()}
    times = [m.log_time_us for m in msgs]
    assert times == sorted(times)
    by_file = {sd["filename"]: sd for sd in nusc.sample_data}
    for m in sensors:  # sensor time, keyframe marks, the file's own bytes
        sd = by_file[str(Path(m.origin).relative_to(src.path.resolve()))]
        assert m.timestamp_us == m.log_time_us == sd["timestamp"]
        assert m.is_keyframe == sd["is_key_frame"]
        assert m.sample_token == (sd["sample_token"] if sd["is_key_frame"] else None)
    lidar_keyframes = [m for m in sensors if m.channel == "LIDAR_TOP" and m.is_keyframe]
    assert len(lidar_keyframes) == len(nusc.sample) == src.info()["keyframes"]
    assert sum(src.info()["channels"].values()) == len(msgs)


def test_payloads_equal_the_files(case) -> None:  # noqa: ANN001
    _, _, msgs = case
    for m in msgs:
        match m.kind:
            case "lidar":
                assert np.array_equal(m.decode().points, load_lidar_bin(m.origin))
            case "radar":
                raw = Path(m.origin).read_bytes()
                assert np.array_equal(m.decode().fields, decode_radar_pcd(raw, m.origin, None))
            case "camera":
                assert np.array_equal(m.decode().image, load_image(m.origin))


def test_poses_are_the_ego_pose_records_and_the_can_bus(case) -> None:  # noqa: ANN001
    src, nusc, msgs = case
    poses = {m.timestamp_us: m.decode().ego_to_global for m in msgs if m.channel == "pose"}
    sd_times = {sd["timestamp"] for sd in nusc.sample_data}
    assert set(poses) == {ep["timestamp"] for ep in nusc.ego_pose} == sd_times
    for ep in nusc.ego_pose:
        tf = poses[ep["timestamp"]]
        assert np.allclose(tf.translation, ep["translation"], atol=1e-12)
        q = np.asarray(ep["rotation"])
        assert np.allclose(tf.quaternion, q * np.sign(q[0]), atol=1e-9)
    can = load_can_bus(src.path, src.scene)
    odom = [m for m in msgs if m.channel == "odom"]
    imu = [m for m in msgs if m.channel == "imu"]
    if can is None:
        assert not odom and not imu
        return
    assert [m.timestamp_us for m in odom] == can.pose.timestamps_us.tolist()
    for m, pos in zip(odom, can.pose.translations, strict=True):
        assert np.array_equal(m.decode().ego_to_global.translation, pos)
    assert [m.timestamp_us for m in imu] == can.imu_timestamps_us.tolist()
    for m, w, a in zip(imu, can.imu_rotation_rate, can.imu_linear_accel, strict=True):
        s = m.decode()
        assert np.array_equal(s.angular_velocity, w) and np.array_equal(s.linear_acceleration, a)


def test_rig_is_calibrated_sensor(case) -> None:  # noqa: ANN001
    src, nusc, msgs = case
    rig = src.rig()
    sensors = ("lidar", "radar", "camera")
    assert set(rig.sensors) == {m.channel for m in msgs if m.kind in sensors}
    for sd in nusc.sample_data:
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        ch = nusc.get("sensor", cs["sensor_token"])["channel"]
        cal = rig[ch]
        assert cal.sensor_to_ego.src == ch and cal.sensor_to_ego.dst == "ego"
        assert np.allclose(cal.sensor_to_ego.translation, cs["translation"], atol=1e-12)
        if cs["camera_intrinsic"]:
            assert np.array_equal(cal.camera.intrinsics, np.asarray(cs["camera_intrinsic"]))
            assert (cal.camera.width, cal.camera.height) == (sd["width"], sd["height"])
        else:
            assert cal.camera is None


def test_messages_are_lazy(synth_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusion.sources.dataroot as dataroot

    reads: list[Path] = []
    real_read = dataroot._read
    monkeypatch.setattr(dataroot, "_read", lambda p: reads.append(p) or real_read(p))
    src = DatarootSource(synth_root, SYNTH_VERSION, SYNTH_SCENE)
    it = src.messages()
    assert reads == []  # opening and creating the iterator read no sensor file
    first_sensor = next(m for m in it if m.kind in ("lidar", "radar", "camera"))
    assert reads == [Path(first_sensor.origin)]


def test_version_and_scene_may_be_left_out_when_unique(synth_root: Path) -> None:
    src = open_source(REAL_ROOT)
    assert (src.version, src.kind) == (REAL_VERSION, "dataroot")
    assert open_source(synth_root).scene == SYNTH_SCENE
    from fusion.errors import DataError

    with pytest.raises(DataError, match="no scene 'scene-0404'"):
        open_source(synth_root, scene="scene-0404")

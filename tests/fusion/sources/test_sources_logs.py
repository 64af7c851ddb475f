"""Foxglove MCAP, ROS 2 (mcap and db3 storage, and a bare .mcap) and ROS 1 logs written by
`fusion convert` read back as the dataroot's own messages: channel, sensor time, decoded
payload (points bit-exact, JPEG passed through, radar fields), keyframe marks, poses and rig."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from shared_data import REAL_ROOT, REAL_VERSION
from source_logs import SYNTH_SCENE, SYNTH_VERSION, quiet_main

from fusion.errors import DataError
from fusion.sources import detect_kind, open_source
from fusion.sources.base import LogMessage, Rig
from fusion.sources.mcap import FoxgloveMcapWriter

KINDS = {"mcap": "mcap", "ros2-mcap": "ros2", "ros2-db3": "ros2", "ros1": "ros1"}
KINDS["ros2-bare-mcap"] = "ros2"


def _key(m: LogMessage) -> tuple[int, str]:
    return (m.timestamp_us, m.channel)


def assert_same_payload(a: LogMessage, b: LogMessage) -> None:
    p, q = a.decode(), b.decode()
    assert type(p) is type(q)
    match a.kind:
        case "lidar":
            assert p.points.dtype == q.points.dtype == np.float32
            assert p.points.tobytes() == q.points.tobytes()  # bit-exact
        case "radar":
            assert np.array_equal(p.fields, q.fields)
        case "camera":
            assert np.array_equal(p.image, q.image)
        case "pose":
            assert np.allclose(p.ego_to_global.matrix, q.ego_to_global.matrix, atol=1e-9)
        case "imu":
            assert np.array_equal(p.angular_velocity, q.angular_velocity)
            assert np.array_equal(p.linear_acceleration, q.linear_acceleration)
        case "gnss":
            assert p.status == q.status
            if p.status >= 0:  # a no-fix message carries no position
                assert (p.lat_deg, p.lon_deg, p.alt_m) == (q.lat_deg, q.lon_deg, q.alt_m)
                assert np.array_equal(p.covariance, q.covariance)
                assert p.covariance_type == q.covariance_type
        case "speed":
            assert p.speed == q.speed


def assert_same_log(reference, log) -> None:  # noqa: ANN001
    a = sorted(reference.messages(), key=_key)
    b = list(log.messages())
    assert [m.log_time_us for m in b] == sorted(m.log_time_us for m in b)
    b.sort(key=_key)
    assert [_key(m) for m in a] == [_key(m) for m in b]
    for x, y in zip(a, b, strict=True):
        assert (x.kind, x.is_keyframe, x.sample_token) == (y.kind, y.is_keyframe, y.sample_token)
        assert y.log_time_us == x.timestamp_us  # convert logs each message at its sensor time
        assert_same_payload(x, y)
    ra, rb = reference.rig(), log.rig()
    assert set(ra.sensors) == set(rb.sensors)
    for ch, cal in ra.sensors.items():
        assert np.allclose(cal.sensor_to_ego.matrix, rb[ch].sensor_to_ego.matrix, atol=1e-9)
        assert (rb[ch].sensor_to_ego.src, rb[ch].sensor_to_ego.dst) == (ch, "ego")
        if cal.camera is None:
            assert rb[ch].camera is None
        else:
            assert np.allclose(cal.camera.intrinsics, rb[ch].camera.intrinsics, atol=1e-12)
            assert (cal.camera.width, cal.camera.height) == (
                rb[ch].camera.width,
                rb[ch].camera.height,
            )
    # the GNSS antenna and the IMU frames (static transforms) survive the round trip
    assert set(ra.frames) == set(rb.frames)
    for name, tf in ra.frames.items():
        assert np.allclose(tf.matrix, rb.frames[name].matrix, atol=1e-9)


@pytest.mark.parametrize("layout", list(KINDS))
def test_synthetic_round_trip(layout: str, synth_root: Path, synth_logs: dict[str, Path]) -> None:
    ref = open_source(synth_root, version=SYNTH_VERSION, scene=SYNTH_SCENE)
    log = open_source(synth_logs[layout])
    assert detect_kind(synth_logs[layout]) == log.kind == KINDS[layout]
    assert_same_log(ref, log)
    counts = log.info()["channels"]
    ref_counts = ref.info()["channels"]
    for ch in ("LIDAR_TOP", "CAM_FRONT", "RADAR_FRONT", "odom", "imu", "gnss", "speed"):
        assert counts[ch] == ref_counts[ch]
    assert log.info()["keyframes"] == ref.info()["keyframes"] == 2


@pytest.mark.parametrize("layout", ["mcap", "ros2-db3", "ros1"])
def test_real_keyframe_round_trip(layout: str, real_scene: str, real_logs: dict[str, Path]) -> None:
    ref = open_source(REAL_ROOT, version=REAL_VERSION, scene=real_scene)
    assert_same_log(ref, open_source(real_logs[layout]))


def _shifted(msgs, shift_us: int):  # noqa: ANN001, ANN202
    """Messages logged `shift_us` after their sensor time, as a recorder would log them."""
    for m in msgs:
        yield LogMessage(
            m.channel, m.kind, m.timestamp_us, m.timestamp_us + shift_us, m.raw, m.decoder,
            m.origin, m.is_keyframe, m.sample_token,
        )  # fmt: skip


@pytest.mark.parametrize("to", ["mcap", "ros2", "ros1"])
def test_sensor_time_comes_from_the_message_not_the_log_time(
    to: str, synth_root: Path, tmp_path: Path
) -> None:
    from fusion.sources.rosbag import RosbagWriter

    ref = open_source(synth_root, version=SYNTH_VERSION, scene=SYNTH_SCENE)
    out = tmp_path / {"mcap": "a.mcap", "ros2": "bag", "ros1": "a.bag"}[to]
    if to == "mcap":
        writer = FoxgloveMcapWriter(out, ref.rig())
    else:
        writer = RosbagWriter(out, ref.rig(), ros=to)
    with writer:
        for m in _shifted(ref.messages(), 37_000):
            writer.write(m)
    got = {_key(m): m for m in open_source(out).messages()}
    for m in ref.messages():
        # The JSON /odom, /imu and speed of the foxglove layout carry no time field: the log
        # time is their only time. Every other message keeps its own sensor time.
        untimed = to == "mcap" and m.channel in ("odom", "imu", "speed")
        key = (m.timestamp_us + (37_000 if untimed else 0), m.channel)
        assert key in got, key
        assert got[key].log_time_us == m.timestamp_us + 37_000


def test_messages_pickle_for_a_decoding_process(synth_logs: dict[str, Path]) -> None:
    for layout in ("mcap", "ros2-mcap", "ros1"):
        seen = set()
        for m in open_source(synth_logs[layout]).messages():
            if m.channel in seen:
                continue
            seen.add(m.channel)
            assert_same_payload(m, pickle.loads(pickle.dumps(m)))


def test_missing_calibration_comes_from_the_rig_file(synth_root: Path, tmp_path: Path) -> None:
    ref = open_source(synth_root, version=SYNTH_VERSION, scene=SYNTH_SCENE)
    out = tmp_path / "nocal.mcap"
    with FoxgloveMcapWriter(out, Rig({})) as writer:  # no /tf extrinsics, no camera_info
        for m in ref.messages():
            writer.write(m)
    with pytest.raises(DataError, match="sensor CAM_FRONT|sensor LIDAR_TOP") as err:
        open_source(out).rig()
    assert err.value.path == str(out)
    rig_file = Path(__file__).resolve().parents[3] / "configs" / "rig_nuscenes.toml"
    rig = open_source(out, rig=rig_file).rig()
    from fusion.data.rig_file import load_rig

    spec = load_rig(rig_file)
    assert np.allclose(rig["LIDAR_TOP"].sensor_to_ego.matrix, spec.lidar.to_ego.matrix)
    assert np.array_equal(
        rig["CAM_FRONT"].camera.intrinsics,
        np.asarray(next(c for c in spec.cameras if c.channel == "CAM_FRONT").intrinsic),
    )
    assert set(rig.sensors) == set(ref.rig().sensors)


@pytest.mark.parametrize("to", ["mcap", "ros2", "ros1"])
def test_nuscenes2mcap_timing(to: str, synth_root: Path, tmp_path: Path) -> None:
    """`--log-time keyframe`: a sample's keyframe messages logged at its LIDAR keyframe's time,
    as nuscenes2mcap logs them; every message still reads back at its own sensor time."""
    out = tmp_path / {"mcap": "k.mcap", "ros2": "kbag", "ros1": "k.bag"}[to]
    argv = [
        "convert",
        "--dataroot",
        str(synth_root),
        "--version",
        SYNTH_VERSION,
        "--scene",
        SYNTH_SCENE,
    ]
    rc, text = quiet_main([*argv, "--to", to, "--out", str(out), "--log-time", "keyframe"])
    assert rc == 0, text
    ref = open_source(synth_root, version=SYNTH_VERSION, scene=SYNTH_SCENE)
    lidar_time = {
        m.sample_token: m.timestamp_us
        for m in ref.messages()
        if m.is_keyframe and m.channel == "LIDAR_TOP"
    }
    log = list(open_source(out).messages())
    assert [m.log_time_us for m in log] == sorted(m.log_time_us for m in log)
    shifted = 0
    for m in log:
        if m.is_keyframe:
            assert m.log_time_us == lidar_time[m.sample_token]
            shifted += m.log_time_us != m.timestamp_us
        else:
            assert m.log_time_us == m.timestamp_us
    assert shifted >= 10  # camera and radar keyframes are not at the LIDAR time
    assert sorted(_key(m) for m in log) == sorted(_key(m) for m in ref.messages())


def test_a_storage_file_opens_its_bag(synth_logs: dict[str, Path]) -> None:
    db3 = next(synth_logs["ros2-db3"].glob("*.db3"))
    src = open_source(db3)
    assert (src.kind, src.path) == ("ros2", synth_logs["ros2-db3"])
    assert open_source(next(synth_logs["ros2-mcap"].glob("*.mcap"))).path == synth_logs["ros2-mcap"]


def test_reads_a_log_written_as_nuscenes2mcap_writes_it(real_scene: str, tmp_path: Path) -> None:
    """A log written independently of our writer, with mcap-protobuf-support's own Writer, the
    way nuscenes2mcap writes a keyframe: everything logged at the LIDAR keyframe's time, the
    sensor extrinsics on /tf with each keyframe, camera_info with each image."""
    from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
    from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform
    from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
    from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
    from foxglove_schemas_protobuf.Quaternion_pb2 import Quaternion
    from foxglove_schemas_protobuf.Vector3_pb2 import Vector3
    from google.protobuf.timestamp_pb2 import Timestamp
    from mcap_protobuf.writer import Writer

    ref = open_source(REAL_ROOT, version=REAL_VERSION, scene=real_scene)
    nusc = ref.reader.nusc
    sample = nusc.sample[0]
    lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
    stamp_ns = nusc.get("ego_pose", lidar_sd["ego_pose_token"])["timestamp"] * 1000

    def ts(us: int) -> Timestamp:
        return Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)

    def tf(parent: str, child: str, rec: dict, us: int) -> FrameTransform:
        t, q = rec["translation"], rec["rotation"]
        return FrameTransform(
            timestamp=ts(us),
            parent_frame_id=parent,
            child_frame_id=child,
            translation=Vector3(x=t[0], y=t[1], z=t[2]),
            rotation=Quaternion(w=q[0], x=q[1], y=q[2], z=q[3]),
        )

    path = tmp_path / "nuscenes2mcap-like.mcap"
    with path.open("wb") as f, Writer(f) as w:
        ego = nusc.get("ego_pose", lidar_sd["ego_pose_token"])
        w.write_message("/tf", tf("map", "base_link", ego, ego["timestamp"]), log_time=stamp_ns)
        for channel, token in sample["data"].items():
            sd = nusc.get("sample_data", token)
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            frame, topic = channel.lower(), "/" + channel.lower()
            w.write_message("/tf", tf("base_link", frame, cs, sd["timestamp"]), log_time=stamp_ns)
            data = (REAL_ROOT / sd["filename"]).read_bytes()
            if channel == "LIDAR_TOP":
                fields = [
                    PackedElementField(name=n, offset=4 * i, type=7)
                    for i, n in enumerate("x y z intensity ring".split())
                ]
                msg = PointCloud(
                    timestamp=ts(sd["timestamp"]),
                    frame_id=frame,
                    point_stride=20,
                    fields=fields,
                    data=data,
                )
                w.write_message(topic, msg, log_time=stamp_ns)
            else:
                img = CompressedImage(
                    timestamp=ts(sd["timestamp"]), frame_id=frame, format="jpeg", data=data
                )
                w.write_message(topic + "/image_rect_compressed", img, log_time=stamp_ns)
                k = [v for row in cs["camera_intrinsic"] for v in row]
                cal = CameraCalibration(
                    timestamp=ts(sd["timestamp"]),
                    frame_id=frame,
                    width=sd["width"],
                    height=sd["height"],
                    K=k,
                )
                w.write_message(topic + "/camera_info", cal, log_time=stamp_ns)

    log = open_source(path)
    assert log.kind == "mcap"
    got = list(log.messages())
    assert {m.log_time_us for m in got} == {stamp_ns // 1000}
    want = sorted((m for m in ref.messages() if m.kind != "pose"), key=_key)
    sensors = sorted((m for m in got if m.kind != "pose"), key=_key)
    assert [_key(m) for m in sensors] == [_key(m) for m in want]  # sensor times, not log time
    for a, b in zip(want, sensors, strict=True):
        assert_same_payload(a, b)
    poses = [m for m in got if m.kind == "pose"]
    assert [m.timestamp_us for m in poses] == [lidar_sd["timestamp"]]
    for ch, cal in ref.rig().sensors.items():
        assert np.allclose(cal.sensor_to_ego.matrix, log.rig()[ch].sensor_to_ego.matrix, atol=1e-12)
        if cal.camera is not None:
            assert np.array_equal(cal.camera.intrinsics, log.rig()[ch].camera.intrinsics)
